"""Asterisk over AMI: wire protocol, connection, call tracker, control, checks and simulator."""
