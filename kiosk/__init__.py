"""Self-service library terminal: self-checkout, returns, book drop and technician mode over SIP2."""

__version__ = "0.1.0"
