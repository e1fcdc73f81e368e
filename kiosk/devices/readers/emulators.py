"""Frame-level FEIG and 3M reader emulators over a SimulatedPad, speaking the real wire format
on a pseudo-terminal or a TCP socket, with injectable frame faults and the option to pace bytes
at the reader's baud rate; for tests and for technicians without hardware.

    pad = SimulatedPad(); pad.place(demo_tag("30000001"))
    port = FeigEmulator(pad).serve_pty(link_dir="/tmp/readers")   # port.path → open with feig:<path>
"""

from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path

from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.readers import feig, threem
from kiosk.devices.readers.base import NotSupported, ReaderFrameError, TagNotFound, TagWriteError
from kiosk.devices.readers.sim import SimulatedPad, demo_tag

log = logging.getLogger(__name__)

FAULTS = ("silent", "partial", "bad_crc", "garbage", "late")


class FrameEmulator:
    """Turns request bytes into answer bytes; subclasses know one protocol. Not thread-safe by
    itself: a transport feeds it from one thread."""

    protocol = ""
    bits_per_byte = 10

    def __init__(self, pad: SimulatedPad) -> None:
        self.pad = pad
        self._buf = bytearray()
        self._faults: deque[str] = deque()
        self._status_overrides: dict[int, deque[int]] = {}
        self.requests: deque[bytes] = deque(
            maxlen=5000
        )  # well-formed request frames, most recent last
        self.rejected: list[str] = []  # why a request was refused (e.g. a non-addressed write)
        # (request frame, bytes sent back, fault applied or ""), most recent last: what a test
        # shows when the host saw something it did not expect
        self.exchanges: deque[tuple[bytes, bytes, str]] = deque(maxlen=200)
        # How long a "late" answer is held back: longer than the host's timeout, so it arrives
        # while the host already waits for the answer to its next request.
        self.late_s = 1.5
        self._delay = 0.0

    def inject(self, fault: str, count: int = 1) -> None:
        """The next `count` answers are: silent (none), partial (first half only), bad_crc, garbage,
        or late (whole, but held back `late_s` seconds, as a busy reader answers a timed-out request)."""
        if fault not in FAULTS:
            raise DeviceError(
                f"unknown emulator fault {fault!r}; expected one of {', '.join(FAULTS)}"
            )
        self._faults.extend([fault] * count)

    @property
    def pending_faults(self) -> tuple[str, ...]:
        """The injected faults not yet applied, next first."""
        return tuple(self._faults)

    def override_status(self, key: int, status: int, count: int = 1) -> None:
        """The next `count` answers to command `key` carry `status` instead of doing the command."""
        self._status_overrides.setdefault(key, deque()).extend([status] * count)

    def _override(self, key: int) -> int | None:
        q = self._status_overrides.get(key)
        return q.popleft() if q else None

    def feed(self, data: bytes) -> bytes:
        """Bytes from the host in, bytes for the host out (possibly none)."""
        self._buf += data
        out = bytearray()
        while True:
            frame = self._extract()
            if frame is None:
                break
            answer = self._answer(frame)
            if answer is None:
                self.exchanges.append((frame, b"", "no answer"))
                continue
            fault = self._faults.popleft() if self._faults else ""
            sent = self._apply_fault(answer, fault)
            self.exchanges.append((frame, sent, fault))
            out += sent
        return bytes(out)

    def _apply_fault(self, answer: bytes, fault: str) -> bytes:
        if not fault:
            return answer
        if fault == "silent":
            return b""
        if fault == "partial":
            return answer[: max(1, len(answer) // 2)]
        if fault == "bad_crc":
            return answer[:-1] + bytes([answer[-1] ^ 0x5A])
        if fault == "late":
            self._delay += self.late_s
            return answer
        return bytes(range(0x30, 0x30 + len(answer) % 7 + 3))  # garbage

    def take_delay(self) -> float:
        """Seconds the transport holds back the answer just produced (a "late" fault), then 0."""
        delay, self._delay = self._delay, 0.0
        return delay

    def _extract(self) -> bytes | None:
        """The next whole frame taken out of the buffer; bytes that cannot start one are dropped."""
        while self._buf:
            total = self._frame_total()
            if total == 0:
                del self._buf[0]
                continue
            if total is None or len(self._buf) < total:
                return None
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            return frame
        return None

    def _frame_total(self) -> int | None:  # pragma: no cover - abstract
        """The length of the frame the buffer starts with; None until more bytes arrive, 0 when its
        first byte cannot start a frame."""
        raise NotImplementedError

    def _answer(self, frame: bytes) -> bytes | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def serve_pty(
        self,
        *,
        link_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        baud: int | None = None,
    ) -> PtyPort:
        return PtyPort(self, link_dir=link_dir, name=name, baud=baud)

    def serve_socket(self, *, baud: int | None = None) -> SocketPort:
        return SocketPort(self, baud=baud)


class FeigEmulator(FrameEmulator):
    """A FEIG ISO host-mode reader (docs/protocols/rfid.md §7.3): inventory with MORE, read/write multiple blocks
    (blocks MSB first on the wire, as the reader's default), write AFI, system information, NXP EAS."""

    protocol = "feig"
    bits_per_byte = 11  # 8E1

    def __init__(
        self,
        pad: SimulatedPad,
        *,
        com_adr: int = 0x00,
        max_data_sets: int = 255,
        block_order: str = "msb",
    ) -> None:
        super().__init__(pad)
        self.com_adr = com_adr
        self.max_data_sets = max_data_sets
        self.block_order = block_order
        self._pending: list[bytes] = []
        # Transponders of other types in the field (with ISO 14443 enabled on the reader), as
        # (position among the ISO 15693 records, TR-TYPE + record bytes)
        self._others: list[tuple[int, bytes]] = []
        self.block_security: dict[
            tuple[str, int], int
        ] = {}  # (UID, block) → SEC-STATUS when asked for

    def add_transponder(self, tr_type: int, record: bytes, position: int = 0) -> None:
        """Put a transponder of another type in the field: its inventory data set (TR-TYPE, then
        `record`) is answered before the ISO 15693 tag at `position` (0: first)."""
        raw = bytes([tr_type]) + bytes(record)
        if [r.tr_type for r in feig.parse_inventory_records(b"\x01" + raw)] != [tr_type]:
            raise DeviceError(
                f"not one FEIG inventory record of type 0x{tr_type:02X}: {raw.hex(' ')}"
            )
        self._others.append((position, raw))

    def remove_transponders(self) -> None:
        self._others.clear()

    def _inventory_records(self) -> list[bytes]:
        tags = [
            bytes([feig.TR_TYPE_ISO15693, t.dsfid]) + bytes.fromhex(t.uid)
            for t in self.pad.inventory_tags()
        ]
        for position, raw in sorted(self._others, key=lambda o: o[0], reverse=True):
            tags.insert(min(position, len(tags)), raw)
        return tags

    def _frame_total(self) -> int | None:
        total = feig.frame_length(bytes(self._buf[:3]))
        if total is not None and total < 5:
            return 0  # FEIG readers ignore what they cannot frame; resynchronise on the next byte.
        return total

    def _resp(self, cmd: int, status: int, data: bytes = b"") -> bytes:
        return feig.build_response(self.com_adr, cmd, status, data)

    def _wire(self, data: bytes, size: int) -> bytes:
        return feig.reverse_blocks(data, size) if self.block_order == "msb" else data

    def _answer(self, frame: bytes) -> bytes | None:
        try:
            req = feig.parse_request(frame)
        except ReaderFrameError as exc:
            log.debug("FEIG emulator: dropping bad frame (%s)", exc)
            return None  # a real reader stays silent on a framing or CRC error
        if req.com_adr not in (self.com_adr, feig.BROADCAST_ADR):
            return None
        self.requests.append(frame)
        if not self.pad.connected:
            return None
        key = req.cmd << 8 | (req.data[0] if req.data else 0)
        forced = self._override(key)
        if forced is None:
            forced = self._override(req.cmd)
        if forced is not None:
            return self._resp(req.cmd, forced, b"\x13" if forced == feig.STATUS_ISO_ERROR else b"")
        try:
            if req.cmd == feig.CMD_SOFTWARE_VERSION:
                return self._resp(req.cmd, 0, bytes([0x03, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00]))
            if req.cmd == feig.CMD_ISO_HOST and req.data:
                return self._iso_host(req)
            if req.cmd == feig.CMD_ISO_CUSTOM and len(req.data) >= 3:
                return self._iso_custom(req)
            return self._resp(req.cmd, 0x80)
        except IndexError:
            return self._resp(req.cmd, 0x81)
        except TagNotFound:
            return self._resp(req.cmd, feig.STATUS_NO_TRANSPONDER)
        except DeviceTimeout:
            return self._resp(req.cmd, 0x02)
        except NotSupported:
            return self._resp(req.cmd, feig.STATUS_ISO_ERROR, b"\x01")
        except TagWriteError as exc:
            return self._resp(
                req.cmd, feig.STATUS_ISO_ERROR, b"\x12" if "locked" in str(exc) else b"\x13"
            )
        except DeviceError:
            return self._resp(req.cmd, 0x11)

    def _addressed_uid(self, mode: int, data: bytes, what: str) -> tuple[str, bytes]:
        if mode & 0x07 != feig.MODE_ADDRESSED:
            self.rejected.append(f"{what} in non-addressed mode 0x{mode:02X}")
            raise DeviceError("non-addressed")
        if len(data) < 8:
            raise IndexError
        return data[:8].hex().upper(), data[8:]

    def _iso_host(self, req: feig.FeigRequest) -> bytes:
        sub, body = req.data[0], req.data[1:]
        mode = body[0]
        if sub == feig.SUB_INVENTORY:
            if not mode & feig.MODE_MORE or not self._pending:
                self._pending = self._inventory_records()
            if not self._pending:
                return self._resp(req.cmd, feig.STATUS_NO_TRANSPONDER)
            batch, self._pending = (
                self._pending[: self.max_data_sets],
                self._pending[self.max_data_sets :],
            )
            data = bytes([len(batch)]) + b"".join(batch)
            return self._resp(req.cmd, feig.STATUS_MORE_DATA if self._pending else 0, data)
        if sub == feig.SUB_READ_MULTIPLE:
            uid, rest = self._addressed_uid(mode, body[1:], "read")
            first, count = rest[0], rest[1]
            raw = self.pad.read(uid, first, count)
            tag = self.pad.tag(uid)
            size = tag.block_size if tag is not None else 4
            wire = self._wire(raw, size)
            # The SEC-STATUS byte is always sent, 0x00 when the security status was not asked for.
            want_sec = bool(mode & feig.MODE_SEC)
            sec = [
                self.block_security.get((uid, first + i), 0) if want_sec else 0
                for i in range(count)
            ]
            recs = b"".join(bytes([sec[i]]) + wire[i * size : (i + 1) * size] for i in range(count))
            return self._resp(req.cmd, 0, bytes([count, size]) + recs)
        if sub == feig.SUB_WRITE_MULTIPLE:
            uid, rest = self._addressed_uid(mode, body[1:], "write")
            first, count, size = rest[0], rest[1], rest[2]
            wire = rest[3 : 3 + count * size]
            if len(wire) != count * size:
                return self._resp(req.cmd, 0x81)
            self.pad.write(uid, first, self._wire(wire, size))
            return self._resp(req.cmd, 0)
        if sub == feig.SUB_WRITE_AFI:
            uid, rest = self._addressed_uid(mode, body[1:], "write AFI")
            self.pad.write_afi(uid, rest[0])
            return self._resp(req.cmd, 0)
        if sub == feig.SUB_SYSTEM_INFO:
            uid, _ = self._addressed_uid(mode, body[1:], "system information")
            # Tags with more than 256 blocks answer with the 3-byte MEM-SIZE form.
            return self._resp(req.cmd, 0, feig.system_info_data(self.pad.system_info(uid)))
        return self._resp(req.cmd, 0x80)

    def _iso_custom(self, req: feig.FeigRequest) -> bytes:
        mfr, cmd, mode = req.data[0], req.data[1], req.data[2]
        if mfr != feig.MFR_NXP:
            return self._resp(req.cmd, feig.STATUS_ISO_ERROR, b"\x01")
        uid, _ = self._addressed_uid(mode, req.data[3:], "NXP custom command")
        if cmd in (feig.NXP_SET_EAS, feig.NXP_RESET_EAS):
            self.pad.set_eas(uid, cmd == feig.NXP_SET_EAS)
            return self._resp(req.cmd, 0)
        if cmd == feig.NXP_EAS_ALARM:
            # Only tags with EAS set answer the alarm; silence comes back as "no transponder".
            if self.pad.get_eas(uid):
                return self._resp(req.cmd, 0, bytes(32))
            return self._resp(req.cmd, feig.STATUS_NO_TRANSPONDER)
        return self._resp(req.cmd, feig.STATUS_ISO_ERROR, b"\x01")


class ThreeMEmulator(FrameEmulator):
    """A 3M 810/210 pad (docs/protocols/rfid.md §7.2): inventory (optionally with duplicated UIDs), read/write
    blocks, AFI, EAS, tag information, version."""

    protocol = "3m"
    bits_per_byte = 10  # 8N1

    def __init__(self, pad: SimulatedPad, *, duplicate_uids: bool = False) -> None:
        super().__init__(pad)
        self.duplicate_uids = duplicate_uids
        self.multi_write = True
        self.ic_reference = b"\x01\x00"  # Tag Info's IC reference is 2 bytes
        self._block_errors: dict[int, deque[int]] = {}

    def inject_block_error(self, block: int, code: int = 0x15, count: int = 1) -> None:
        """The next `count` reads of `block` answer its lock/error byte with error `code` (e.g.
        0x15 read error) instead of a lock state; its data is sent only if the request asks for
        all data (option bit 0), as the reader does."""
        if code <= 0x03:
            raise DeviceError(f"0x{code:02X} is a lock state, not an error code (above 0x03)")
        self._block_errors.setdefault(block, deque()).extend([code] * count)

    def _block_error(self, block: int) -> int | None:
        q = self._block_errors.get(block)
        return q.popleft() if q else None

    def _frame_total(self) -> int | None:
        if self._buf[0] not in (threem.START, threem.PROBE_START):
            return 0
        if len(self._buf) < 3:
            return None
        return 3 + int.from_bytes(self._buf[1:3], "big")

    def _answer(self, frame: bytes) -> bytes | None:
        try:
            req = threem.parse_frame(frame, response=False)
        except ReaderFrameError as exc:
            log.debug("3M emulator: dropping bad frame (%s)", exc)
            return None
        self.requests.append(frame)
        if not self.pad.connected:
            return None
        cmd, f = req.cmd, req.fields
        forced = self._override(cmd)
        if forced is not None:
            return threem.build_response(cmd, forced, f[:8])
        if req.start == threem.PROBE_START:
            return threem.build_frame(cmd, b"\x02\x01\x00\x00", err=0, start=threem.PROBE_START)
        try:
            return self._command(cmd, f)
        except IndexError:
            return threem.build_response(cmd, 0x32, f[:8])
        except (TagNotFound, DeviceTimeout):
            return threem.build_response(cmd, threem.ERR_NO_TRANSPONDER, f[:8])
        except NotSupported:
            return threem.build_response(cmd, 0x30, f[:8])
        except TagWriteError as exc:
            return threem.build_response(cmd, 0x12 if "locked" in str(exc) else 0x16, f[:8])
        except DeviceError:
            return threem.build_response(cmd, 0x32, f[:8])

    def _command(self, cmd: int, f: bytes) -> bytes:
        ok = threem.ERR_OK
        if cmd == threem.CMD_VERSION:
            return threem.build_response(cmd, ok, b"\x02\x01\x00\x00")
        if cmd == threem.CMD_INVENTORY:
            afi, options = f[0], f[1]
            tags = [t for t in self.pad.inventory_tags() if afi == 0 or t.afi == afi]
            if self.duplicate_uids and tags:
                tags = tags + tags[:1]
            recs = b"".join(
                (bytes([t.dsfid]) if options & threem.INV_DSFID else b"") + bytes.fromhex(t.uid)
                for t in tags
            )
            return threem.build_response(cmd, ok, bytes([afi, options, len(tags)]) + recs)
        if len(f) < 8:
            raise IndexError
        uid_raw, rest = f[:8], f[8:]
        uid = uid_raw.hex().upper()
        if cmd == threem.CMD_READ_MULTIPLE:
            first, count = rest[0], rest[1]
            options = rest[2] if len(rest) > 2 else 0
            raw = self.pad.read(uid, first, count)
            blocks = bytearray()
            for i in range(count):
                data = raw[i * 4 : i * 4 + 4]
                err = self._block_error(first + i)
                if err is None:
                    blocks += bytes([first + i, 0]) + data
                else:
                    blocks += bytes([first + i, err]) + (
                        data if options & threem.READ_ALL_DATA else b""
                    )
            return threem.build_response(cmd, ok, uid_raw + bytes([count]) + blocks)
        if cmd == threem.CMD_WRITE_MULTIPLE:
            if not self.multi_write:
                return threem.build_response(cmd, threem.ERR_NOT_IMPLEMENTED, uid_raw)
            first, count = rest[0], rest[1]
            data = rest[3 : 3 + count * 4]
            if len(data) != count * 4:
                raise IndexError
            self.pad.write(uid, first, data)
            return threem.build_response(cmd, ok, uid_raw + bytes([first + count]))
        if cmd == threem.CMD_WRITE_BLOCK:
            if len(rest) < 5:
                raise IndexError
            self.pad.write(uid, rest[0], rest[1:5])
            return threem.build_response(cmd, ok, uid_raw)
        if cmd == threem.CMD_GET_AFI:
            return threem.build_response(
                cmd, ok, uid_raw + bytes([self.pad.system_info(uid).afi or 0])
            )
        if cmd == threem.CMD_WRITE_AFI:
            self.pad.write_afi(uid, rest[0])
            return threem.build_response(cmd, ok, uid_raw)
        if cmd == threem.CMD_CHECK_EAS:
            if not self.pad.get_eas(uid):
                return threem.build_response(cmd, threem.ERR_NO_TRANSPONDER, uid_raw)
            return threem.build_response(cmd, ok, uid_raw + b"\x01")
        if cmd == threem.CMD_EAS_CONTROL:
            self.pad.set_eas(uid, bool(rest[0]))
            return threem.build_response(cmd, ok, uid_raw)
        if cmd == threem.CMD_TAG_INFO:
            want = rest[0]
            info = self.pad.system_info(uid)
            out = bytearray(uid_raw + bytes([want & 0x0F]))
            if want & threem.INFO_DSFID:
                out.append(info.dsfid or 0)
            if want & threem.INFO_AFI:
                out.append(info.afi or 0)
            if want & threem.INFO_MEMORY:
                out += bytes([info.block_size - 1, (info.block_count or 1) - 1])
            if want & threem.INFO_ICREF:
                out += self.ic_reference
            return threem.build_response(cmd, ok, bytes(out))
        return threem.build_response(cmd, threem.ERR_NOT_IMPLEMENTED, uid_raw)


class _Port:
    """Runs an emulator on a byte stream in a background thread, pacing answers at `baud` if given."""

    def __init__(self, emulator: FrameEmulator, baud: int | None) -> None:
        self.emulator = emulator
        self.baud = baud
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _pace(self, nbytes: int) -> None:
        if self.baud:
            time.sleep(nbytes * self.emulator.bits_per_byte / self.baud)

    def _start(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def __enter__(self) -> _Port:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PtyPort(_Port):
    """The emulator on a pseudo-terminal. `path` is what the reader opens: a stable symlink in
    `link_dir` (like /dev/serial/by-id) when given, else the pty slave. unplug() closes the master
    (the reader's next I/O fails, as on a USB unplug) and removes the link; replug() brings a new
    pty under the same link."""

    def __init__(
        self,
        emulator: FrameEmulator,
        *,
        link_dir: str | os.PathLike[str] | None = None,
        name: str | None = None,
        baud: int | None = None,
    ) -> None:
        super().__init__(emulator, baud)
        self._link = (
            Path(link_dir) / (name or f"usb-emulated-{emulator.protocol}-reader")
            if link_dir
            else None
        )
        self._master = -1
        self._slave = -1
        self.slave_name = ""
        self.replug()
        self._start(self._run, f"{emulator.protocol}-emulator-pty")

    @property
    def path(self) -> str:
        return str(self._link) if self._link else self.slave_name

    @property
    def plugged(self) -> bool:
        return self._master >= 0

    def replug(self) -> None:
        with self._lock:
            if self._master >= 0:
                return
            master, slave = os.openpty()
            tty.setraw(master)
            tty.setraw(slave)
            self._master, self._slave = master, slave
            self.slave_name = os.ttyname(slave)
            if self._link:
                tmp = self._link.with_name(self._link.name + ".new")
                tmp.unlink(missing_ok=True)
                tmp.symlink_to(self.slave_name)
                tmp.replace(self._link)

    def unplug(self) -> None:
        with self._lock:
            if self._link:
                self._link.unlink(missing_ok=True)
            for fd in (self._master, self._slave):
                if fd >= 0:
                    os.close(fd)
            self._master = self._slave = -1

    def _run(self) -> None:
        while not self._stop.is_set():
            fd = self._master
            if fd < 0:
                self._stop.wait(0.01)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(fd, 4096)
            except (OSError, ValueError):
                self._stop.wait(0.01)  # unplugged or the reader side closed; wait for replug
                continue
            if not data:
                continue
            self._pace(len(data))
            with self._lock:
                answer = self.emulator.feed(data)
                delay = self.emulator.take_delay()
            if delay:
                self._stop.wait(delay)
            if answer and self._master == fd:
                self._pace(len(answer))
                try:
                    os.write(fd, answer)
                except OSError:
                    pass

    def close(self) -> None:
        super().close()
        self.unplug()


class SocketPort(_Port):
    """The emulator on a TCP listener at 127.0.0.1 on an ephemeral port; `url` is the pyserial
    `socket://` URL. drop() closes the current connection (a LAN reader rebooting)."""

    def __init__(self, emulator: FrameEmulator, *, baud: int | None = None) -> None:
        super().__init__(emulator, baud)
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.05)
        self.port = self._server.getsockname()[1]
        self._conn: socket.socket | None = None
        self._start(self._run, f"{emulator.protocol}-emulator-socket")

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def drop(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = self._conn
            if conn is None:
                try:
                    c, _ = self._server.accept()
                except (TimeoutError, OSError):
                    continue
                c.settimeout(0.05)
                with self._lock:
                    self._conn = c
                continue
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                self.drop()
                continue
            if not data:
                self.drop()
                continue
            self._pace(len(data))
            with self._lock:
                answer = self.emulator.feed(data)
                delay = self.emulator.take_delay()
            if delay:
                self._stop.wait(delay)
            if answer:
                self._pace(len(answer))
                try:
                    conn.sendall(answer)
                except OSError:
                    self.drop()

    def close(self) -> None:
        super().close()
        self.drop()
        self._server.close()


def main(argv: list[str] | None = None) -> int:
    """Serve an emulated reader with demo items on it until interrupted:

    python -m kiosk.devices.readers.emulators feig --link /tmp/rfid/ttyFEIG 30000001 30000005:2
    python -m kiosk.devices.readers.emulators 3m --tcp 30000003

    then point `[reader] url` at `feig:/tmp/rfid/ttyFEIG` or the printed socket:// URL.
    """

    ap = argparse.ArgumentParser(
        prog="python -m kiosk.devices.readers.emulators",
        description=main.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("protocol", choices=("feig", "3m"))
    ap.add_argument("items", nargs="*", help="demo item ids to place, ITEM or ITEM:PART")
    where = ap.add_mutually_exclusive_group()
    where.add_argument("--link", help="symlink to create for the pty (like /dev/serial/by-id/...)")
    where.add_argument(
        "--tcp", action="store_true", help="serve on a TCP socket on 127.0.0.1 instead of a pty"
    )
    ap.add_argument(
        "--baud", type=int, default=0, help="pace bytes at this baud rate (0: as fast as possible)"
    )
    ap.add_argument(
        "--unsecured", action="store_true", help="place the items with the unsecured AFI / EAS off"
    )
    args = ap.parse_intermixed_args(argv)
    pad = SimulatedPad()
    for spec in args.items:
        item, _, part = spec.partition(":")
        pad.place(
            demo_tag(item, part=int(part) if part.isdigit() else 1, secured=not args.unsecured)
        )
    emu: FrameEmulator = FeigEmulator(pad) if args.protocol == "feig" else ThreeMEmulator(pad)
    if args.tcp:
        served = emu.serve_socket(baud=args.baud or None)
        url = served.url
        port: _Port = served
    else:
        link = Path(args.link) if args.link else None
        if link:
            link.parent.mkdir(parents=True, exist_ok=True)
        port = emu.serve_pty(
            link_dir=link.parent if link else None,
            name=link.name if link else None,
            baud=args.baud or None,
        )
        url = port.path
    print(
        f'{args.protocol} reader with {len(pad.tags)} tag(s): [reader] url = "{args.protocol}:{url}"',
        flush=True,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        port.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
