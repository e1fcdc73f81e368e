"""The core layer's exception family: workflow misuse and site rules that cannot work."""

from __future__ import annotations

from kiosk.errors import KioskError


class CoreError(KioskError):
    """A workflow was driven wrongly or a site rule is unusable; the message says which and what to fix."""


class RoutingTableError(CoreError):
    """A `[[routing]]` row names an outcome or alert type the kiosk does not know."""
