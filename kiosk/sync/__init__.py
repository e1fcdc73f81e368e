"""The link to the library system: SIP2, the circulation service, the journal, the demo library system."""
