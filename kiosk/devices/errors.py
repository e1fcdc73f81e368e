"""The device layer's exception family."""

from __future__ import annotations

from kiosk.errors import KioskError


class DeviceError(KioskError):
    """A device is missing, answered wrongly or failed an operation; the message says which and what to check."""


class DeviceTimeout(DeviceError):
    """A device did not answer within its bounded timeout."""


class TagFormatError(KioskError):
    """Tag memory is not a known library data model, or is damaged (bad CRC, truncated, malformed)."""
