"""Pure domain: the call record, the normalized call events and the ports. No I/O here."""
