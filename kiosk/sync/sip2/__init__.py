"""SIP2: the message codec, the kiosk's client session to the ACS, wire-log masking and technician commands."""
