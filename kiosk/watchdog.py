"""systemd readiness and watchdog notifications (sd_notify) over $NOTIFY_SOCKET, without a dependency.

The kiosk pings from the Kivy main loop, so a hung UI thread stops the pings and systemd
restarts the service (Type=notify, WatchdogSec= in systemd/kiosk.service).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify datagrams; does nothing when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self.sent = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Read $NOTIFY_SOCKET and $WATCHDOG_USEC (honouring $WATCHDOG_PID as sd_watchdog_enabled does)."""
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC")
        if raw:  # unset or empty: no watchdog (not an error)
            try:
                usec = int(raw) or None
            except ValueError:
                log.warning("ignoring WATCHDOG_USEC=%r: not a number", raw)
        pid = env.get("WATCHDOG_PID")
        if pid and pid != str(os.getpid()):
            usec = None  # the watchdog is meant for another process of the unit
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    @property
    def ping_interval_s(self) -> float | None:
        """Half the watchdog period, as sd_watchdog_enabled(3) recommends; None without a watchdog."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def _target(self) -> str | bytes:
        assert self.address
        # An address starting with "@" is in the abstract namespace.
        return b"\0" + self.address[1:].encode() if self.address.startswith("@") else self.address

    def notify(self, *assignments: str) -> bool:
        """Send `KEY=value` lines in one datagram; returns False (and logs once) on failure."""
        if not self.address:
            return False
        payload = "\n".join(assignments).encode("utf-8")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._target())
        except OSError as exc:
            if self.sent >= 0:
                log.warning("sd_notify to %s failed: %s", self.address, exc)
            self.sent = -1
            return False
        self.sent = max(self.sent, 0) + 1
        return True

    def ready(self, status: str = "") -> bool:
        return self.notify(
            "READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}"
        )

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def start_kivy_watchdog(notifier: Notifier | None = None, status: str = "serving") -> Any:
    """Send READY=1 and schedule WATCHDOG=1 pings on the Kivy clock (call from App.on_start).

    Returns the scheduled Kivy event (or None when there is no watchdog); cancel it in on_stop
    and call `notifier.stopping()`.
    """
    from kivy.clock import Clock  # lazy: CLI tools must not need Kivy

    notifier = notifier or Notifier.from_env()
    if not notifier.enabled:
        return None
    notifier.ready(status)
    interval = notifier.ping_interval_s
    if interval is None:
        return None
    notifier.ping()
    return Clock.schedule_interval(lambda _dt: notifier.ping(), interval)
