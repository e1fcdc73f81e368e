"""The embedded demo library system (an ACS in SIP2 terms): a small SQL catalogue with circulation
rules and a SIP2 server, for trying a kiosk without a real library system and for tests.
"""
