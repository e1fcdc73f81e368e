"""The return sorter: tells a book-drop sorter which bin each returned item goes to.

Chosen by the ``[sorter] url``:

* ``none`` (or empty): no sorter; every item lands in the one return bin, ``route`` says yes.
* ``sim:`` a simulated sorter that records the items routed to each bin, with injected faults
  as query parameters: ``sim:?down=maintenance`` (refuses everything), ``sim:?jam_after=5``
  (jams after five items), ``sim:?delay_s=0.3`` (each item takes that long; longer than the
  timeout counts as no answer), ``sim:?bins=4`` (bins 0-3 exist).
* ``serial:/dev/ttyUSB0`` (optionally ``?baud=19200``), ``serial:socket://host:port`` or any
  other pyserial URL, and ``tcp:host:port``: a sorter controller speaking the line protocol
  below.

The kiosk's sorter line protocol (ASCII, UTF-8 for item ids, each line ends with CR LF, a bare
CR or LF from the controller is accepted; one request at a time, the kiosk waits at most
``timeout_s`` for the answer and discards anything left from an earlier, late answer):

    kiosk → sorter   BIN <n> <item id>      route the item now on the belt to bin n (0 = exception bin)
    sorter → kiosk   OK                     accepted
                     ERR <reason>           refused (bin full, jam, unknown bin ...)
    kiosk → sorter   STATUS                 is the sorter ready?
    sorter → kiosk   READY | DOWN <reason>

Serial lines default to 9600 baud, 8N1. A controller that answers nothing, answers garbage or
drops the link makes ``route`` return False (logged, never raised), so the book drop can send
the item to the exception bin and tell staff; the link is reopened on the next item.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import parse_qsl

import serial

from kiosk.core.ports import Sorter
from kiosk.core.sanitize import for_sorter
from kiosk.devices.errors import DeviceError

try:
    from termios import error as _TermiosError
except ImportError:  # not a POSIX system
    _TermiosError = OSError

log = logging.getLogger(__name__)

DEFAULT_BAUD = 9600
MAX_BIN = 999
_MAX_LINE = 256
# A vanished tty (USB unplug) raises termios.error, which is not an OSError.
_LINK_ERRORS = (serial.SerialException, OSError, _TermiosError)


class SorterStatus(str):
    """``"ready"`` or ``"down: <reason>"``; also carries ``ok`` and ``message`` for diagnostics."""

    @property
    def ok(self) -> bool:
        return self == "ready"

    @property
    def message(self) -> str:
        return str(self)


READY = SorterStatus("ready")


def _down(reason: str) -> SorterStatus:
    return SorterStatus(f"down: {reason}")


class SorterDevice(Sorter, Protocol):
    """A sorter as the kiosk drives it: route items, report readiness, release the link."""

    def status(self) -> str: ...

    def close(self) -> None: ...


def _valid_request(item_id: str, bin_number: int) -> str | None:
    """Why a routing request cannot be sent, or None."""
    if not item_id or for_sorter(item_id) != item_id:
        return f"item id {item_id!r} is empty or contains a line break or control character"
    if (
        isinstance(bin_number, bool)
        or not isinstance(bin_number, int)
        or not 0 <= bin_number <= MAX_BIN
    ):
        return f"bin {bin_number!r} is not a number 0..{MAX_BIN}"
    return None


class NoSorter:
    """No sorter installed: items fall into the single return bin."""

    def route(self, item_id: str, bin_number: int) -> bool:
        log.debug("no sorter: item %s stays in the return bin", item_id)
        return True

    def status(self) -> str:
        return READY

    def close(self) -> None:
        return None


class SimulatedSorter:
    """A sorter in memory that records routed items per bin, with injectable faults."""

    def __init__(
        self,
        *,
        down: str = "",
        jam_after: int | None = None,
        delay_s: float = 0.0,
        bins: int | None = None,
        timeout_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bins: dict[int, list[str]] = {}
        self.down_reason = down
        self.jam_after = jam_after
        self.delay_s = delay_s
        self.bin_count = bins
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._routed = 0
        self._lock = threading.Lock()

    @property
    def routed(self) -> list[tuple[str, int]]:
        """Every item routed so far with its bin, in bin order."""
        return [(item, number) for number in sorted(self.bins) for item in self.bins[number]]

    def set_down(self, reason: str) -> None:
        self.down_reason = reason

    def clear_faults(self) -> None:
        """Clear a jam or an outage, as staff would at the machine."""
        self.down_reason = ""
        self.jam_after = None

    def route(self, item_id: str, bin_number: int) -> bool:
        problem = _valid_request(item_id, bin_number)
        with self._lock:
            if problem:
                log.warning("sorter (simulated): not routing: %s", problem)
                return False
            if self.down_reason:
                log.warning("sorter (simulated) refused %s: %s", item_id, self.down_reason)
                return False
            if self.bin_count is not None and bin_number >= self.bin_count:
                log.warning("sorter (simulated) refused %s: no bin %d", item_id, bin_number)
                return False
            if self.jam_after is not None and self._routed >= self.jam_after:
                self.down_reason = f"jammed after {self._routed} items"
                log.warning("sorter (simulated) refused %s: %s", item_id, self.down_reason)
                return False
            if self.delay_s:
                self._sleep(min(self.delay_s, self.timeout_s))
                if self.delay_s > self.timeout_s:
                    log.warning(
                        "sorter (simulated): no answer for %s within %.1f s",
                        item_id,
                        self.timeout_s,
                    )
                    return False
            self.bins.setdefault(bin_number, []).append(item_id)
            self._routed += 1
            log.info("sorter (simulated): %s -> bin %d", item_id, bin_number)
            return True

    def status(self) -> str:
        return _down(self.down_reason) if self.down_reason else READY

    def close(self) -> None:
        return None


class LineSorter:
    """A sorter controller on a serial line or TCP, speaking the kiosk's sorter line protocol."""

    def __init__(self, url: str, *, timeout_s: float = 2.0, baudrate: int = DEFAULT_BAUD) -> None:
        self.url = url  # a pyserial URL or device path
        self.timeout_s = timeout_s
        self.baudrate = baudrate
        self._port: serial.SerialBase | None = None
        self._lock = threading.Lock()
        self._last_problem = ""

    def _open(self) -> serial.SerialBase:
        if self._port is None:
            try:
                self._port = serial.serial_for_url(
                    self.url,
                    baudrate=self.baudrate,
                    timeout=self.timeout_s,
                    write_timeout=self.timeout_s,
                )
            except (*_LINK_ERRORS, ValueError) as exc:
                raise DeviceError(f"cannot open sorter link {self.url}: {exc}") from exc
        return self._port

    def _drop(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except _LINK_ERRORS:
                pass
            self._port = None

    def _exchange(self, request: str) -> str:
        """Send one request line and return the answer line; DeviceError on any link fault."""
        port = self._open()
        try:
            # A late answer to an earlier, timed-out request must not be taken for this one.
            port.reset_input_buffer()
            port.write(request.encode("utf-8") + b"\r\n")
            port.flush()
            deadline = time.monotonic() + self.timeout_s
            raw = b""
            while len(raw) < _MAX_LINE and b"\n" not in raw and b"\r" not in raw:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                port.timeout = left
                chunk = port.read(max(1, min(port.in_waiting, _MAX_LINE - len(raw))))
                if not chunk:
                    break
                raw += chunk
        except _LINK_ERRORS as exc:
            self._drop()
            raise DeviceError(f"sorter link {self.url} failed: {exc}") from exc
        # CR LF is the protocol's line end; a bare CR or LF from a simpler controller is taken too.
        ends = [i for i in (raw.find(b"\r"), raw.find(b"\n")) if i >= 0]
        if not ends:
            self._drop()
            if raw:
                raise DeviceError(
                    f"sorter sent an incomplete answer {raw[:40]!r} within {self.timeout_s:g} s"
                )
            raise DeviceError(f"sorter did not answer within {self.timeout_s:g} s")
        raw = raw[: min(ends)]
        return raw.decode("utf-8", errors="replace").strip()

    def route(self, item_id: str, bin_number: int) -> bool:
        problem = _valid_request(item_id, bin_number)
        if problem:
            log.warning("sorter: not routing: %s", problem)
            return False
        with self._lock:
            try:
                answer = self._exchange(f"BIN {bin_number} {item_id}")
            except DeviceError as exc:
                self._last_problem = str(exc)
                log.warning("sorter: item %s to bin %d failed: %s", item_id, bin_number, exc)
                return False
        if answer == "OK":
            self._last_problem = ""
            log.info("sorter: %s -> bin %d", item_id, bin_number)
            return True
        if answer.startswith("ERR"):
            reason = answer[3:].strip() or "no reason given"
            log.warning("sorter refused item %s for bin %d: %s", item_id, bin_number, reason)
        else:
            log.warning("sorter: unexpected answer %r to item %s", answer[:60], item_id)
        return False

    def status(self) -> str:
        with self._lock:
            try:
                answer = self._exchange("STATUS")
            except DeviceError as exc:
                return _down(str(exc))
        if answer == "READY":
            return READY
        if answer.startswith("DOWN"):
            return _down(answer[4:].strip() or "no reason given")
        return _down(f"unexpected answer {answer[:60]!r} to STATUS")

    def close(self) -> None:
        with self._lock:
            self._drop()


def open_sorter(url: str, *, timeout_s: float = 2.0) -> SorterDevice:
    """The sorter named by ``url`` (see the module docstring); DeviceError for a malformed URL.

    Opening never fails for an unreachable sorter: the link is opened on the first request.
    """
    text = (url or "none").strip()
    if timeout_s <= 0:
        raise DeviceError(f"sorter timeout must be positive, not {timeout_s}")
    if text in ("none", ""):
        return NoSorter()
    scheme, _, rest = text.partition(":")
    if scheme == "sim":
        return _simulated(rest.lstrip("?"), timeout_s)
    if scheme == "tcp":
        host, sep, port = rest.removeprefix("//").rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise DeviceError(f"sorter URL {url!r}: expected tcp:HOST:PORT")
        return LineSorter(f"socket://{host}:{port}", timeout_s=timeout_s)
    if scheme == "serial":
        if not rest:
            raise DeviceError(
                f"sorter URL {url!r}: expected serial:/dev/... or serial:socket://HOST:PORT"
            )
        if "://" in rest:
            return LineSorter(rest, timeout_s=timeout_s)
        path, _, query = rest.partition("?")
        params = dict(parse_qsl(query))
        try:
            baud = int(params.get("baud", DEFAULT_BAUD))
        except ValueError:
            raise DeviceError(f"sorter URL {url!r}: baud must be a number") from None
        return LineSorter(path, timeout_s=timeout_s, baudrate=baud)
    raise DeviceError(
        f"sorter URL {url!r}: unknown kind {scheme!r}; use none, sim:, serial: or tcp:"
    )


def _simulated(query: str, timeout_s: float) -> SimulatedSorter:
    params = dict(parse_qsl(query, keep_blank_values=True))
    known = {"down", "jam_after", "delay_s", "bins"}
    unknown = set(params) - known
    if unknown:
        raise DeviceError(
            f"simulated sorter: unknown option(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    try:
        return SimulatedSorter(
            down=params.get("down", "") or ("down" if "down" in params else ""),
            jam_after=int(params["jam_after"]) if "jam_after" in params else None,
            delay_s=float(params.get("delay_s", 0.0)),
            bins=int(params["bins"]) if "bins" in params else None,
            timeout_s=timeout_s,
        )
    except ValueError as exc:
        raise DeviceError(f"simulated sorter options {query!r}: {exc}") from None
