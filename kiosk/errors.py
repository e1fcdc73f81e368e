"""The root of the kiosk's exception families; each layer derives its own from KioskError."""

from __future__ import annotations


class KioskError(Exception):
    """An error carrying a message a patron-facing screen or a technician can act on."""


class ConfigError(KioskError):
    """The configuration file is missing, malformed or has a wrong key, type or value."""
