"""The interfaces the core's workflows depend on, implemented by kiosk/sync and kiosk/devices.

Workflows only see these protocols, so they run in tests with simple in-memory stand-ins
and on the kiosk with the SIP2 circulation service and real or simulated hardware.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from kiosk.core.domain import (
    CirculationResult,
    ItemInfo,
    ItemTag,
    LinkStatus,
    PatronResult,
    RenewAllResult,
)


class Clock(Protocol):
    """Injected time, so timeouts are testable without sleeping."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The real clock (local time)."""

    def now(self) -> datetime:
        return datetime.now()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock a test (or a simulation) advances by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 25, 10, 0, 0)
        self._mono = 1000.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        self._mono += seconds


@runtime_checkable
class Circulation(Protocol):
    """Circulation operations against the library system, online first with offline fallback."""

    def identify_patron(self, patron_id: str, pin: str | None = None) -> PatronResult: ...

    def checkout(
        self, patron_id: str, item_id: str, pin: str | None = None, fee_acknowledged: bool = False
    ) -> CirculationResult: ...

    def checkin(self, item_id: str) -> CirculationResult: ...

    def renew(self, patron_id: str, item_id: str, pin: str | None = None) -> CirculationResult: ...

    def renew_all(self, patron_id: str, pin: str | None = None) -> RenewAllResult: ...

    def item_information(self, item_id: str) -> ItemInfo: ...

    def end_session(self, patron_id: str) -> None: ...

    def status(self) -> LinkStatus: ...


@dataclass(frozen=True)
class SecurityResult:
    """The verified outcome of flipping one tag's security state."""

    uid: str
    ok: bool
    secured: bool
    attempts: int = 1
    message: str = ""


class TagSecurity(Protocol):
    """Secures and unsecures item tags by UID, verifying each write by read-back."""

    def secure(self, uid: str) -> SecurityResult: ...

    def unsecure(self, uid: str) -> SecurityResult: ...


class ReceiptPrinter(Protocol):
    """Prints receipts and slips; raises kiosk.devices DeviceError (paper out, offline) on failure."""

    def print_receipt(self, receipt: object) -> object: ...


class Sorter(Protocol):
    """Sends a returned item to a bin."""

    def route(self, item_id: str, bin_number: int) -> bool: ...


class TagEvents(Protocol):
    """What the pad reports: the decoded tags now present."""

    def current(self) -> tuple[ItemTag, ...]: ...
