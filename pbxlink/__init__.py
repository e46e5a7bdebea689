"""pbxlink: CTI, CRM sync, callbacks, recordings and campaigns beside an Asterisk or FreeSWITCH PBX."""

__version__ = "0.1.0"
