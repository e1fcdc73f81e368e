"""Item security on the tag (AFI and/or EAS, per site configuration), every write verified by
read-back and retried; implements kiosk.core.ports.TagSecurity.

With `method = "both"` a tag without an EAS bit (TI Tag-it HF-I, or a reader that cannot switch
EAS) is secured by its AFI alone. A result that is not ok means the tag's state is not verified:
a write whose answer or read-back was lost may have landed, so callers treat the tag as touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from kiosk.core.errors import log_fault
from kiosk.core.ports import SecurityResult
from kiosk.devices.errors import DeviceError
from kiosk.devices.readers.base import NotSupported, TagReader, normalize_uid

log = logging.getLogger(__name__)


class TagSecurityService:
    """secure()/unsecure() one tag by UID. A tag that cannot be written gives SecurityResult(ok=False)
    with a message for staff; it never raises (docs/protocols/rfid.md P4, P5, P15)."""

    def __init__(
        self,
        reader: TagReader,
        cfg: Any,
        *,
        retry_delay_s: float = 0.02,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.reader = reader
        self.method = cfg.method
        self.afi_secured = cfg.afi_secured
        self.afi_unsecured = cfg.afi_unsecured
        self.write_retries = max(0, cfg.write_retries)
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep

    def secure(self, uid: str) -> SecurityResult:
        return self._apply(uid, True)

    def unsecure(self, uid: str) -> SecurityResult:
        return self._apply(uid, False)

    def state(self, uid: str) -> tuple[int | None, bool | None]:
        """(AFI, EAS) as the tag reports them now; None where unknown."""
        afi = self.reader.read_system_info(uid).afi if self.method in ("afi", "both") else None
        eas = self.reader.eas(uid) if self.method in ("eas", "both") else None
        return afi, eas

    def _matches(self, uid: str, secured: bool, eas: bool = True) -> tuple[bool, str]:
        """Whether the tag's state reads back as wanted, and what was read (for the message);
        `eas` False leaves the EAS bit out (a tag without one under method "both")."""
        notes = []
        ok = True
        if self.method in ("afi", "both"):
            want = self.afi_secured if secured else self.afi_unsecured
            afi = self.reader.read_system_info(uid).afi
            if afi != want:
                ok = False
                notes.append(
                    f"AFI reads {'?' if afi is None else f'0x{afi:02X}'}, wanted 0x{want:02X}"
                )
        if self.method == "eas" or (self.method == "both" and eas):
            eas_now = self.reader.eas(uid)
            if eas_now is None:
                notes.append("EAS not read back (this reader cannot read EAS)")
            elif eas_now != secured:
                ok = False
                notes.append(
                    f"EAS reads {'on' if eas_now else 'off'}, wanted {'on' if secured else 'off'}"
                )
        return ok, "; ".join(notes)

    def _write(self, uid: str, secured: bool) -> bool:
        """Write the wanted state; False when the EAS bit does not count for this tag."""
        if self.method in ("afi", "both"):
            self.reader.write_afi(uid, self.afi_secured if secured else self.afi_unsecured)
        if self.method in ("eas", "both"):
            try:
                self.reader.set_eas(uid, secured)
            except NotSupported as exc:
                if self.method == "eas":
                    raise
                log.info("tag %s: no EAS bit (%s); its AFI alone secures it", uid, exc)
                return False
            return True
        return False

    def _apply(self, uid: str, secured: bool) -> SecurityResult:
        what = "secure" if secured else "unsecure"
        try:
            uid = normalize_uid(uid)
        except DeviceError as exc:
            return SecurityResult(
                uid=str(uid), ok=False, secured=not secured, attempts=0, message=str(exc)
            )
        attempts = 0
        last = ""
        for attempt in range(self.write_retries + 1):
            if attempt and self.retry_delay_s:
                self._sleep(self.retry_delay_s)
            attempts += 1
            try:
                with_eas = self._write(uid, secured)
                ok, note = self._matches(uid, secured, eas=with_eas)
                if ok:
                    if attempt:
                        log.info("tag %s: %s succeeded on attempt %d", uid, what, attempts)
                    return SecurityResult(
                        uid=uid, ok=True, secured=secured, attempts=attempts, message=note
                    )
                last = f"read-back after writing: {note}"
            except NotSupported as exc:
                last = str(exc)
                break  # the tag or reader cannot do it; retrying will not help
            except DeviceError as exc:
                last = str(exc)
            except Exception as exc:  # one tag must never take the checkout down
                log_fault(log, exc, "tag %s: failure while trying to %s", uid, what)
                last = f"unexpected error: {exc}"
            log.info("tag %s: %s attempt %d failed: %s", uid, what, attempts, last)
        message = (
            f"could not {what} tag {uid} after {attempts} attempt(s): {last}; its state is not "
            "verified; ask the patron to place the item again or call staff"
        )
        log.warning(message)
        return SecurityResult(
            uid=uid, ok=False, secured=not secured, attempts=attempts, message=message
        )
