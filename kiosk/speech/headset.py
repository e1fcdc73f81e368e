"""Headset jack detection from a Linux input device: the sound card reports plugging and
unplugging as switch events (EV_SW, SW_HEADPHONE_INSERT), which turn speech on and off.

Many kiosk sound cards report the jack this way (`/dev/input/by-path/...-event` named after the
card); where none does, speech is switched on by the speech key or the site setting instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import struct
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

EV_SW = 0x05
SW_HEADPHONE_INSERT = 0x02
EVENT = struct.Struct("llHHi")  # struct input_event: timeval, type, code, value


def eviocgsw(length: int) -> int:
    """The ioctl request that reads the switch states (EVIOCGSW, linux/input.h)."""
    return (2 << 30) | (length << 16) | (ord("E") << 8) | 0x1B


def headphone_events(data: bytes) -> list[bool]:
    """Plug (True) and unplug (False) events among whole input_event records in `data`."""
    found = []
    for offset in range(0, len(data) - EVENT.size + 1, EVENT.size):
        _sec, _usec, kind, code, value = EVENT.unpack_from(data, offset)
        if kind == EV_SW and code == SW_HEADPHONE_INSERT:
            found.append(bool(value))
    return found


class HeadsetWatcher:
    """Reads an input device on its own thread and calls `changed(plugged)` on every change."""

    def __init__(self, device: str, changed: Callable[[bool], None]) -> None:
        self.device = device
        self.changed = changed
        self.plugged: bool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="headset", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _report(self, plugged: bool) -> None:
        if plugged != self.plugged:
            self.plugged = plugged
            log.info("headset %s", "plugged in" if plugged else "unplugged")
            self.changed(plugged)

    def _initial(self, fd: int) -> None:
        buf = bytearray(8)
        try:
            fcntl.ioctl(fd, eviocgsw(len(buf)), buf)
        except OSError:
            return  # not an evdev device (or no switches): only events count
        self._report(bool(buf[0] & (1 << SW_HEADPHONE_INSERT)))

    def _run(self) -> None:
        pending = b""
        fd = -1
        while not self._stop.is_set():
            if fd < 0:
                try:
                    fd = os.open(self.device, os.O_RDONLY | os.O_NONBLOCK)
                except OSError as exc:
                    log.warning(
                        "headset device %s cannot be opened (%s); retrying", self.device, exc
                    )
                    self._stop.wait(5)
                    continue
                self._initial(fd)
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(fd, EVENT.size * 16)
            except BlockingIOError:
                continue
            except OSError as exc:
                log.warning("headset device %s failed (%s); reopening", self.device, exc)
                os.close(fd)
                fd = -1
                continue
            if not data:  # the writer went away (a device removed, or a test's pipe)
                self._stop.wait(0.1)
                continue
            pending += data
            whole = len(pending) - len(pending) % EVENT.size
            for plugged in headphone_events(pending[:whole]):
                self._report(plugged)
            pending = pending[whole:]
        if fd >= 0:
            os.close(fd)
