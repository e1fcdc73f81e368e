"""Is the kiosk's clock trustworthy? Its synchronisation state (the kernel's, as NTP leaves it)
and its drift against the library system's clock (the date/time in every SIP2 `98` status).

A Raspberry Pi has no battery clock: booted without network, its clock can be months off and an
offline loan would get a wrong due date. `kiosk doctor` fails beyond the allowed drift
(docs/operations.md, "Clock").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The allowed difference between the kiosk's clock and the library system's.
DEFAULT_MAX_DRIFT = timedelta(minutes=2)
# adjtimex(2): the clock state it returns; TIME_ERROR means "not synchronised".
_TIME_ERROR = 5
_STA_UNSYNC = 0x0040
# struct timex is 208 bytes on 64-bit Linux; room to spare for other ABIs.
_TIMEX_SIZE = 512
_STATUS_OFFSET = 8 * 5  # modes (padded to 8), offset, freq, maxerror, esterror


class SyncState(enum.StrEnum):
    """What the kernel says about the clock."""

    SYNCHRONISED = "synchronised"
    UNSYNCHRONISED = "unsynchronised"
    UNKNOWN = "unknown"  # not Linux, or the call failed


def kernel_sync_state() -> SyncState:
    """The kernel's clock state as NTP (systemd-timesyncd, chrony) leaves it; reading needs no privilege."""
    name = ctypes.util.find_library("c")
    if not name:
        return SyncState.UNKNOWN
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return SyncState.UNKNOWN
    buf = ctypes.create_string_buffer(_TIMEX_SIZE)  # zeroed: modes = 0 only reads
    state = adjtimex(buf)
    if state < 0:
        return SyncState.UNKNOWN
    status = int.from_bytes(buf.raw[_STATUS_OFFSET : _STATUS_OFFSET + 4], "little", signed=True)
    if state == _TIME_ERROR or status & _STA_UNSYNC:
        return SyncState.UNSYNCHRONISED
    return SyncState.SYNCHRONISED


@dataclass(frozen=True)
class Drift:
    """The kiosk's clock minus the library system's, at one status exchange."""

    seconds: float

    @classmethod
    def between(cls, kiosk_now: datetime, acs_time: datetime) -> Drift:
        """Naive times are local; an aware ACS time (a `Z` zone) is compared in UTC."""
        if acs_time.tzinfo is not None and kiosk_now.tzinfo is None:
            kiosk_now = kiosk_now.astimezone(UTC)
        elif acs_time.tzinfo is None and kiosk_now.tzinfo is not None:
            kiosk_now = kiosk_now.astimezone().replace(tzinfo=None)
        return cls((kiosk_now - acs_time).total_seconds())

    def beyond(self, limit: timedelta = DEFAULT_MAX_DRIFT) -> bool:
        return abs(self.seconds) > limit.total_seconds()

    def describe(self) -> str:
        """`3 min 5 s ahead of the library system`, `in step with the library system`."""
        total = round(abs(self.seconds))
        if total == 0:
            return "in step with the library system"
        days, rest = divmod(total, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, secs = divmod(rest, 60)
        parts = [
            f"{n} {unit}"
            for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s"))
            if n
        ]
        return (
            f"{' '.join(parts)} {'ahead of' if self.seconds > 0 else 'behind'} the library system"
        )
