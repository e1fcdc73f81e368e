"""The one interface every RFID reader transport implements, its values and errors, and the
serial link (open by URL, bounded reads, re-open after a USB re-enumeration) and request/answer
retry loop the serial readers share.

Two threads use one reader (the stack reader polls, the core worker writes security), so every
operation that takes more than one frame holds the reader's operation lock for its whole length
(`@atomic`); see docs/architecture.md.
"""

from __future__ import annotations

import abc
import errno
import functools
import logging
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

import serial

from kiosk.devices.errors import DeviceError, DeviceTimeout

log = logging.getLogger(__name__)


class ReaderFrameError(DeviceError):
    """Bytes from the reader are not a valid frame (short, bad length, bad CRC, unexpected command)."""


class TagNotFound(DeviceError):
    """The addressed tag did not answer (not on the pad, or out of the field)."""


class NotSupported(DeviceError):
    """The reader or tag cannot do this operation (e.g. EAS on a PC/SC reader without transparent exchange)."""


class TagWriteError(DeviceError):
    """The reader reported that writing to a tag failed."""


@dataclass(frozen=True)
class InventoryEntry:
    """One tag seen in an inventory round; uid is hex, upper-case, MSB first (E0 04 ...)."""

    uid: str
    dsfid: int | None = None
    afi: int | None = None


@dataclass(frozen=True)
class SystemInfo:
    """A tag's ISO 15693 system information; sizes are real values (already +1 from the air encoding)."""

    uid: str
    dsfid: int | None = None
    afi: int | None = None
    block_size: int = 4
    block_count: int | None = None
    ic_reference: int | None = None


def normalize_uid(uid: str | bytes) -> str:
    """A UID as upper-case MSB-first hex without separators; raises DeviceError for anything else."""
    if isinstance(uid, (bytes, bytearray)):
        return bytes(uid).hex().upper()
    text = uid.replace(":", "").replace(" ", "").replace("-", "").upper()
    if not text or len(text) % 2:
        raise DeviceError(f"tag UID {uid!r} is not an even number of hex digits")
    try:
        bytes.fromhex(text)
    except ValueError:
        raise DeviceError(f"tag UID {uid!r} is not hexadecimal") from None
    return text


def uid_bytes(uid: str) -> bytes:
    """The UID as 8 bytes MSB first (shorter UIDs, e.g. TI Tag-it, are zero-padded on the left)."""
    raw = bytes.fromhex(normalize_uid(uid))
    if len(raw) > 8:
        raise DeviceError(f"tag UID {uid} is longer than the 8 bytes ISO 15693 allows")
    return raw.rjust(8, b"\x00")


class TagReader(abc.ABC):
    """An ISO 15693 reader. Every operation is addressed by UID; none is ever a broadcast write.

    Errors are DeviceError (TagNotFound, TagWriteError, NotSupported, ReaderFrameError) or
    DeviceTimeout; each message names the reader and what to check.
    """

    url: str = ""

    @property
    def operation_lock(self) -> threading.RLock:
        """Held for the whole of one reader operation, however many frames it takes (`atomic`)."""
        lock = self.__dict__.get("_operation_lock")
        if lock is None:
            lock = self.__dict__.setdefault("_operation_lock", threading.RLock())
        return cast(threading.RLock, lock)

    @abc.abstractmethod
    def inventory(self) -> list[InventoryEntry]:
        """The tags in the field now, each UID once."""

    @abc.abstractmethod
    def read_blocks(self, uid: str, first: int, count: int) -> bytes:
        """count blocks from block `first`, in tag memory order."""

    @abc.abstractmethod
    def write_blocks(self, uid: str, first: int, data: bytes) -> None:
        """Write whole blocks from block `first`; len(data) must be a multiple of the block size."""

    @abc.abstractmethod
    def read_system_info(self, uid: str) -> SystemInfo: ...

    @abc.abstractmethod
    def write_afi(self, uid: str, afi: int) -> None: ...

    @abc.abstractmethod
    def set_eas(self, uid: str, on: bool) -> None: ...

    def eas(self, uid: str) -> bool | None:
        """The tag's EAS bit where the reader can tell; None where it cannot."""
        return None

    @abc.abstractmethod
    def close(self) -> None:
        """Release the device; reopen() brings it back."""

    @abc.abstractmethod
    def reopen(self) -> None:
        """Close and open the device again (after an unplug or a stuck reader)."""

    def __enter__(self) -> TagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Operation = TypeVar("Operation", bound=Callable[..., Any])


def atomic(method: Operation) -> Operation:
    """Run a reader method holding its operation lock, so no other thread's frames come between
    this method's frames (a FEIG inventory continued with MORE, an EAS check that inventories)."""

    @functools.wraps(method)
    def locked(self: TagReader, *args: Any, **kwargs: Any) -> Any:
        with self.operation_lock:
            return method(self, *args, **kwargs)

    return cast(Operation, locked)


def check_afi(afi: int) -> int:
    if not isinstance(afi, int) or not 0 <= afi <= 0xFF:
        raise DeviceError(f"AFI {afi!r} is not a byte 0x00-0xFF")
    return afi


def check_blocks(first: int, count: int, limit: int = 256) -> None:
    if first < 0 or count < 1 or first + count > limit:
        raise DeviceError(f"block range {first}..{first + count - 1} is outside 0..{limit - 1}")


class SerialLink:
    """A serial port named by a pyserial URL, re-opened with back-off when it disappears.

    USB serial adapters re-enumerate after a glitch: the /dev/serial/by-id path vanishes and
    comes back, and the old file descriptor is dead for good (docs/protocols/rfid.md P10). The link closes
    on any OS error and the next exchange opens the path again.
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int,
        parity: str = serial.PARITY_NONE,
        timeout_s: float = 1.0,
        reopen_attempts: int = 5,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        name: str = "reader",
        sleep: Callable[[float], None] = time.sleep,
        serial_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.parity = parity
        self.timeout_s = timeout_s
        self.reopen_attempts = reopen_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.name = name
        self._sleep = sleep
        self._kwargs = serial_kwargs or {}
        self._port: serial.SerialBase | None = None
        self.lock = threading.RLock()
        self.opens = 0
        self._parity_ignored = False  # told once that the device does not hold our parity

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def open(self) -> None:
        """Open the port, retrying with exponential back-off; DeviceError names the path when it stays gone."""
        with self.lock:
            if self._port is not None:
                return
            delay = self.backoff_s
            last: Exception | None = None
            for attempt in range(max(1, self.reopen_attempts)):
                try:
                    self._port = self._open_port()
                    self.opens += 1
                    self._drain()
                    if attempt:
                        log.info(
                            "%s: re-opened %s after %d attempts", self.name, self.url, attempt + 1
                        )
                    return
                except (serial.SerialException, OSError, ValueError, termios.error) as exc:
                    last = exc
                    if attempt + 1 < self.reopen_attempts:
                        self._sleep(delay)
                        delay = min(delay * 2, self.max_backoff_s)
            raise DeviceError(
                f"{self.name}: cannot open {self.url} ({last}); check the cable, the USB port "
                "and that the user is in the dialout group"
            )

    def _open_port(self) -> serial.SerialBase:
        try:
            return self._serial_for_url(self.parity)
        except termios.error as exc:
            if exc.args[:1] != (errno.EINVAL,) or self.parity == serial.PARITY_NONE:
                raise
            # A pseudo-terminal (an emulated reader, a serial-over-LAN bridge) or an adapter
            # without parity ignores the parity bit. The first open passes because it changes
            # other settings too; opening it again asks for nothing but the parity it cannot
            # hold, and Linux refuses a setting none of whose changes it can make (EINVAL), so
            # every re-open would fail and the reader would stay gone. The line never carried
            # parity here, so opening without it changes nothing on the wire
            # (docs/architecture.md, "A reader re-opened").
            port = self._serial_for_url(serial.PARITY_NONE)
            if not self._parity_ignored:
                self._parity_ignored = True
                log.warning(
                    "%s: %s does not hold parity %s (a pseudo-terminal or an adapter without "
                    "parity); opened it without",
                    self.name,
                    self.url,
                    self.parity,
                )
            return port

    def _serial_for_url(self, parity: str) -> serial.SerialBase:
        return serial.serial_for_url(
            self.url,
            baudrate=self.baudrate,
            parity=parity,
            bytesize=serial.EIGHTBITS,
            stopbits=serial.STOPBITS_ONE,
            # Short port timeout and a loop to the deadline: changing the timeout per
            # read would re-apply termios settings, which some ports refuse.
            timeout=min(self.timeout_s, 0.05),
            write_timeout=self.timeout_s,
            **self._kwargs,
        )

    def close(self) -> None:
        with self.lock:
            port, self._port = self._port, None
            if port is not None:
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass

    def _drain(self) -> None:
        """Throw away stale bytes (a late answer to a timed-out request must not answer the next one)."""
        port = self._port
        if port is None:
            return
        try:
            port.reset_input_buffer()
        except (serial.SerialException, OSError, AttributeError, NotImplementedError):
            pass

    def drain(self) -> None:
        with self.lock:
            self._drain()

    def write(self, data: bytes) -> None:
        self.open()
        assert self._port is not None
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError, termios.error) as exc:
            self.close()
            raise DeviceError(
                f"{self.name}: writing to {self.url} failed ({exc}); the reader was unplugged or reset"
            ) from exc

    def read_exact(self, n: int, deadline: float) -> bytes:
        """Exactly n bytes, or DeviceTimeout when `deadline` (time.monotonic) passes first."""
        self.open()
        assert self._port is not None
        buf = bytearray()
        while len(buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeviceTimeout(
                    f"{self.name}: no complete answer from {self.url} within {self.timeout_s:g} s "
                    f"(got {len(buf)} of {n} bytes); check power, cable and baud rate"
                )
            try:
                chunk = self._port.read(n - len(buf))
            except (serial.SerialException, OSError, termios.error) as exc:
                self.close()
                raise DeviceError(
                    f"{self.name}: reading from {self.url} failed ({exc}); the reader was unplugged or reset"
                ) from exc
            buf += chunk
        return bytes(buf)


Answer = TypeVar("Answer")


class SerialTagReader(TagReader, Generic[Answer]):
    """A reader that answers one request at a time over a SerialLink (FEIG, 3M).

    Subclasses send a request (`_send`), read one answer (`_receive`) and name the command an
    answer belongs to (`_command_of`); `exchange` retries timeouts and garbled frames and re-opens
    the link after an unplug.

    Neither FEIG nor 3M frames carry a request id, and every ISO 15693 request to a FEIG reader
    has the same command byte, so a late answer to a timed-out "read blocks of tag A" would pass
    for the answer to "read blocks of tag B". After a timeout or a garbled answer the link is
    stale: before the next request the reader is asked a harmless question (`sync_request`), and
    every answer before its own is discarded. The reader answers in order (one request at a time,
    docs/protocols/rfid.md §9 P21), so once that answer is in, nothing late is left on the line.
    """

    # A harmless request (command, payload) whose answer ends a resynchronisation; None: drain only.
    sync_request: tuple[int, bytes] | None = None

    def __init__(
        self,
        url: str,
        port_url: str,
        *,
        name: str,
        timeout_s: float,
        retries: int,
        baudrate: int,
        parity: str,
        reopen_attempts: int,
        backoff_s: float,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.link = SerialLink(
            port_url,
            baudrate=baudrate,
            parity=parity,
            timeout_s=timeout_s,
            reopen_attempts=reopen_attempts,
            backoff_s=backoff_s,
            name=name,
        )
        # Log under the transport's own module, where a technician filtering by reader looks.
        self._log = logging.getLogger(type(self).__module__)
        self._stale = False
        self.link.open()

    @property
    def operation_lock(self) -> threading.RLock:
        # The link's own lock: a single exchange and a whole operation exclude each other alike.
        return self.link.lock

    @abc.abstractmethod
    def _send(self, cmd: int, payload: bytes) -> None:
        """Frame one request and write it."""

    @abc.abstractmethod
    def _receive(self, deadline: float) -> Answer:
        """Read and parse one answer frame, or raise DeviceTimeout / ReaderFrameError."""

    @abc.abstractmethod
    def _command_of(self, answer: Answer) -> int:
        """The command an answer belongs to."""

    def _exchange_once(self, cmd: int, payload: bytes) -> Answer:
        """Send one request and read its answer, without retrying."""
        self._send(cmd, payload)
        answer = self._receive(time.monotonic() + self.timeout_s)
        got = self._command_of(answer)
        if got != cmd:
            raise ReaderFrameError(f"{self.link.name} answered command 0x{got:02X} to 0x{cmd:02X}")
        return answer

    def _resync(self) -> None:
        """Discard every answer still on its way, up to the answer to `sync_request`."""
        self.link.drain()
        if self.sync_request is None:
            self._stale = False
            return
        cmd, payload = self.sync_request
        self._send(cmd, payload)
        deadline = time.monotonic() + self.timeout_s
        discarded = 0
        while True:
            # DeviceTimeout and ReaderFrameError leave the link stale: the next attempt syncs again.
            answer = self._receive(deadline)
            if self._command_of(answer) == cmd:
                break
            discarded += 1
        self._stale = False
        if discarded:
            self._log.warning(
                "%s %s: discarded %d late answer(s) to an earlier request",
                self.link.name,
                self.link.url,
                discarded,
            )

    def exchange(self, cmd: int, payload: bytes = b"") -> Answer:
        """One request and its answer, retrying timeouts, garbled frames and unplugs."""
        with self.link.lock:
            last: DeviceError | None = None
            for attempt in range(self.retries + 1):
                try:
                    if self._stale:
                        self._resync()
                    return self._exchange_once(cmd, payload)
                except (ReaderFrameError, DeviceTimeout) as exc:
                    last = exc
                    self._stale = True
                    self._log.warning(
                        "%s %s: %s (attempt %d)", self.link.name, self.link.url, exc, attempt + 1
                    )
                except DeviceError as exc:
                    last = exc
                    self._log.warning("%s %s: %s; re-opening", self.link.name, self.link.url, exc)
                    self.link.close()
            assert last is not None
            raise last

    def close(self) -> None:
        self.link.close()

    def reopen(self) -> None:
        with self.link.lock:
            self.link.close()
            self.link.open()
