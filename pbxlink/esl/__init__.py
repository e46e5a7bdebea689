"""FreeSWITCH over ESL: client (greenswitch in its own thread), tracker (pure), outbound socket, simulator."""
