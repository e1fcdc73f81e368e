"""FEIG OBID ISO host protocol (rfid.md §7.3): frame codec, CRC-16/MCRF4XX and the FeigReader
transport for ISC.MR/LR and CPR readers over a serial port, USB-serial adapter or socket.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import serial

from kiosk.devices.errors import DeviceError
from kiosk.devices.readers.base import (
    InventoryEntry,
    NotSupported,
    ReaderFrameError,
    SerialLink,
    SerialTagReader,
    SystemInfo,
    TagNotFound,
    TagWriteError,
    atomic,
    check_afi,
    check_blocks,
    normalize_uid,
    uid_bytes,
)

log = logging.getLogger(__name__)

STX = 0x02  # first byte of an advanced frame
BROADCAST_ADR = 0xFF

CMD_ISO_HOST = 0xB0
CMD_ISO_CUSTOM = 0xB1
CMD_SOFTWARE_VERSION = 0x65
CMD_RF_RESET = 0x69

SUB_INVENTORY = 0x01
SUB_STAY_QUIET = 0x02
SUB_READ_MULTIPLE = 0x23
SUB_WRITE_MULTIPLE = 0x24
SUB_WRITE_AFI = 0x27
SUB_LOCK_AFI = 0x28
SUB_SYSTEM_INFO = 0x2B

MODE_ADDRESSED = 0x01
MODE_SEC = 0x08  # ask for the block security status with reads
MODE_MORE = 0x80  # fetch the data sets the reader still holds

MFR_NXP = 0x04
NXP_SET_EAS = 0xA2
NXP_RESET_EAS = 0xA3
NXP_LOCK_EAS = 0xA4
NXP_EAS_ALARM = 0xA5

TR_TYPE_ISO15693 = 0x03
MAX_DATA_BYTES = 128  # per read or write request (32 four-byte blocks)

STATUS_OK = 0x00
STATUS_NO_TRANSPONDER = 0x01
STATUS_WRITE_ERROR = 0x03
STATUS_OVERFLOW = 0x93
STATUS_MORE_DATA = 0x94
STATUS_ISO_ERROR = 0x95

STATUS_TEXT = {
    0x00: "OK",
    0x01: "no transponder",
    0x02: "data false (CRC, parity or framing error on the air)",
    0x03: "write error",
    0x04: "address error",
    0x05: "wrong transponder type",
    0x08: "authentication error",
    0x0E: "general error",
    0x10: "EEPROM failure",
    0x11: "parameter out of range",
    0x80: "unknown command",
    0x81: "length error",
    0x82: "command not available (scan mode active)",
    0x83: "RF communication error (anticollision incomplete)",
    0x93: "data buffer overflow (more tags than the reader holds)",
    0x94: "more data",
    0x95: "ISO 15693 error",
    0xF1: "hardware warning",
}

ISO_ERROR_TEXT = {
    0x01: "command not supported",
    0x02: "command not recognised",
    0x03: "option not supported",
    0x0F: "unknown error",
    0x10: "block not available",
    0x11: "already locked",
    0x12: "locked",
    0x13: "program failed",
    0x14: "lock failed",
}


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc16(data: bytes, crc: int = 0xFFFF) -> int:
    """CRC-16/MCRF4XX (reflected 0x8408, preset 0xFFFF, no final XOR); check value 0x6F91."""
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


def status_text(status: int, data: bytes = b"") -> str:
    text = STATUS_TEXT.get(status, "unknown status")
    if status == STATUS_ISO_ERROR and data:
        text += f" 0x{data[0]:02X} ({ISO_ERROR_TEXT.get(data[0], 'custom or unknown')})"
    return f"status 0x{status:02X} {text}"


@dataclass(frozen=True)
class FeigRequest:
    """A host → reader frame."""

    com_adr: int
    cmd: int
    data: bytes = b""


@dataclass(frozen=True)
class FeigResponse:
    """A reader → host frame."""

    com_adr: int
    cmd: int
    status: int
    data: bytes = b""

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK


def _with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "little")


def _encode(com_adr: int, cmd: int, payload: bytes) -> bytes:
    """A standard frame when it fits in 255 bytes, else an advanced frame (STX + 16-bit length)."""
    n = 3 + len(payload) + 2
    if n <= 255:
        return _with_crc(bytes([n, com_adr, cmd]) + payload)
    n = 1 + 2 + 2 + len(payload) + 2
    if n > 0xFFFF:
        raise DeviceError(f"FEIG frame of {n} bytes is longer than the protocol allows")
    return _with_crc(bytes([STX]) + n.to_bytes(2, "big") + bytes([com_adr, cmd]) + payload)


def build_request(com_adr: int, cmd: int, data: bytes = b"") -> bytes:
    """The bytes of a host → reader frame: LEN | COM-ADR | CMD | data | CRC (LSB first)."""
    return _encode(com_adr, cmd, bytes(data))


def build_response(com_adr: int, cmd: int, status: int, data: bytes = b"") -> bytes:
    """The bytes of a reader → host frame: LEN | COM-ADR | CMD | STATUS | data | CRC."""
    return _encode(com_adr, cmd, bytes([status]) + bytes(data))


def frame_length(head: bytes) -> int | None:
    """The whole frame's length from its first bytes (1 for standard, 3 for advanced); None if more are needed."""
    if not head:
        return None
    if head[0] == STX:
        if len(head) < 3:
            return None
        return int.from_bytes(head[1:3], "big")
    return head[0]


def _split(frame: bytes, min_body: int) -> tuple[int, int, bytes]:
    if len(frame) < 1:
        raise ReaderFrameError("FEIG frame is empty")
    header = 3 if frame[0] == STX else 1
    declared = frame_length(frame[:3])
    if declared is None:
        raise ReaderFrameError(f"FEIG frame too short ({len(frame)} bytes): {frame.hex(' ')}")
    if declared != len(frame):
        raise ReaderFrameError(f"FEIG frame length byte says {declared} but {len(frame)} bytes arrived: {frame.hex(' ')}")
    if len(frame) < header + 2 + min_body + 2:
        raise ReaderFrameError(f"FEIG frame too short ({len(frame)} bytes): {frame.hex(' ')}")
    got = int.from_bytes(frame[-2:], "little")
    want = crc16(frame[:-2])
    if got != want:
        raise ReaderFrameError(f"FEIG frame CRC is 0x{got:04X}, expected 0x{want:04X}: {frame.hex(' ')}")
    return frame[header], frame[header + 1], frame[header + 2 : -2]


def parse_response(frame: bytes) -> FeigResponse:
    """A reader → host frame; ReaderFrameError for anything else."""
    adr, cmd, rest = _split(bytes(frame), 1)
    return FeigResponse(adr, cmd, rest[0], rest[1:])


def parse_request(frame: bytes) -> FeigRequest:
    """A host → reader frame (used by the emulator); ReaderFrameError for anything else."""
    adr, cmd, rest = _split(bytes(frame), 0)
    return FeigRequest(adr, cmd, rest)


# -- ISO host command payloads (after CMD 0xB0) --------------------------------------------


def inventory_request(more: bool = False) -> bytes:
    return bytes([SUB_INVENTORY, MODE_MORE if more else 0x00])


def read_multiple_request(uid: str, first: int, count: int) -> bytes:
    return bytes([SUB_READ_MULTIPLE, MODE_ADDRESSED | MODE_SEC]) + uid_bytes(uid) + bytes([first, count])


def write_multiple_request(uid: str, first: int, block_size: int, wire_data: bytes) -> bytes:
    count = len(wire_data) // block_size
    return bytes([SUB_WRITE_MULTIPLE, MODE_ADDRESSED]) + uid_bytes(uid) + bytes([first, count, block_size]) + wire_data


def write_afi_request(uid: str, afi: int) -> bytes:
    return bytes([SUB_WRITE_AFI, MODE_ADDRESSED]) + uid_bytes(uid) + bytes([afi])


def system_info_request(uid: str) -> bytes:
    return bytes([SUB_SYSTEM_INFO, MODE_ADDRESSED]) + uid_bytes(uid)


def nxp_request(nxp_cmd: int, uid: str) -> bytes:
    """Payload after CMD 0xB1: MFR 0x04, the NXP command, MODE addressed, UID."""
    return bytes([MFR_NXP, nxp_cmd, MODE_ADDRESSED]) + uid_bytes(uid)


def parse_inventory(data: bytes) -> list[InventoryEntry]:
    """DATA-SETS then per tag TR-TYPE, DSFID, UID(8); other transponder types are skipped."""
    if not data:
        raise ReaderFrameError("FEIG inventory answer has no data-set count")
    n = data[0]
    need = 1 + n * 10
    if len(data) < need:
        raise ReaderFrameError(f"FEIG inventory announces {n} tags but carries {len(data) - 1} bytes for them")
    out = []
    for i in range(n):
        rec = data[1 + i * 10 : 11 + i * 10]
        if rec[0] != TR_TYPE_ISO15693:
            # Other transponder types have other record lengths; what follows cannot be framed.
            log.warning("FEIG inventory: transponder type 0x%02X reported; configure the reader for ISO 15693 only", rec[0])
            break
        out.append(InventoryEntry(uid=rec[2:10].hex().upper(), dsfid=rec[1], afi=None))
    return out


def parse_read_multiple(data: bytes, with_sec: bool = True) -> tuple[int, bytes, list[int]]:
    """DB-N, DB-SIZE, then DB-N × ([SEC-STATUS], DB-SIZE bytes) → (block size, wire data, security bytes)."""
    if len(data) < 2:
        raise ReaderFrameError(f"FEIG read answer too short: {data.hex(' ')}")
    n, size = data[0], data[1]
    if size == 0:
        raise ReaderFrameError("FEIG read answer has block size 0")
    step = size + (1 if with_sec else 0)
    if len(data) != 2 + n * step:
        raise ReaderFrameError(f"FEIG read answer announces {n} blocks of {size} bytes but carries {len(data) - 2} bytes")
    out = bytearray()
    sec = []
    for i in range(n):
        rec = data[2 + i * step : 2 + (i + 1) * step]
        if with_sec:
            sec.append(rec[0])
            rec = rec[1:]
        out += rec
    return size, bytes(out), sec


def parse_system_info(data: bytes) -> SystemInfo:
    """DSFID, UID(8), AFI, MEM-SIZE(2), IC-REF. Sizes are ISO-encoded (value − 1; rfid.md P13)."""
    if len(data) < 13:
        raise ReaderFrameError(f"FEIG system information too short ({len(data)} bytes): {data.hex(' ')}")
    return SystemInfo(
        uid=data[1:9].hex().upper(),
        dsfid=data[0],
        afi=data[9],
        block_size=(data[10] & 0x1F) + 1,
        block_count=data[11] + 1,
        ic_reference=data[12] if len(data) > 12 else None,
    )


def reverse_blocks(data: bytes, block_size: int) -> bytes:
    """Each block's bytes reversed: FEIG in ISO host mode sends blocks MSB first (rfid.md §3.4)."""
    return b"".join(data[i : i + block_size][::-1] for i in range(0, len(data), block_size))


def read_frame(link: SerialLink, deadline: float) -> bytes:
    """One frame from the link, by its length header."""
    first = link.read_exact(1, deadline)
    if first[0] == STX:
        head = first + link.read_exact(2, deadline)
        total = int.from_bytes(head[1:3], "big")
        if total < 8:
            raise ReaderFrameError(f"FEIG advanced frame announces {total} bytes, fewer than a frame has")
        return head + link.read_exact(total - 3, deadline)
    total = first[0]
    if total < 6:
        raise ReaderFrameError(f"FEIG frame announces {total} bytes, fewer than an answer has")
    return first + link.read_exact(total - 1, deadline)


class FeigReader(SerialTagReader[FeigResponse]):
    """A FEIG reader in ISO host mode. Defaults: 38400 baud 8E1, bus address 0xFF (any reader).

    `block_order="msb"` (the reader's default) reverses each block on the wire so callers see tag
    memory order; use "lsb" when the reader is configured for LSB-first block data.
    """

    def __init__(
        self,
        port_url: str,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        baudrate: int = 38400,
        parity: str = serial.PARITY_EVEN,
        com_adr: int = BROADCAST_ADR,
        block_order: str = "msb",
        reopen_attempts: int = 5,
        backoff_s: float = 0.05,
    ) -> None:
        if block_order not in ("msb", "lsb"):
            raise DeviceError(f"FEIG block_order must be 'msb' or 'lsb', got {block_order!r}")
        self.com_adr = com_adr
        self.block_order = block_order
        self._last_io = 0.0
        super().__init__(
            f"feig:{port_url}",
            port_url,
            name="FEIG reader",
            timeout_s=timeout_s,
            retries=retries,
            baudrate=baudrate,
            parity=parity,
            reopen_attempts=reopen_attempts,
            backoff_s=backoff_s,
        )

    # -- transport ----------------------------------------------------------------------

    def _exchange_once(self, cmd: int, payload: bytes) -> FeigResponse:
        # The reader needs >= 5 ms of silence before a new request.
        gap = 0.005 - (time.monotonic() - self._last_io)
        if gap > 0:
            time.sleep(gap)
        self.link.write(build_request(self.com_adr, cmd, payload))
        try:
            frame = read_frame(self.link, time.monotonic() + self.timeout_s)
        finally:
            self._last_io = time.monotonic()
        resp = parse_response(frame)
        if resp.cmd != cmd:
            raise ReaderFrameError(f"FEIG reader answered command 0x{resp.cmd:02X} to 0x{cmd:02X}")
        return resp

    def _check(self, resp: FeigResponse, what: str, uid: str = "") -> FeigResponse:
        if resp.ok:
            return resp
        where = f" tag {uid}" if uid else ""
        msg = f"FEIG reader: {what}{where} failed, {status_text(resp.status, resp.data)}"
        if resp.status == STATUS_NO_TRANSPONDER:
            raise TagNotFound(msg + "; is the item still on the pad?")
        if resp.status in (STATUS_WRITE_ERROR, STATUS_ISO_ERROR):
            if resp.status == STATUS_ISO_ERROR and resp.data[:1] in (b"\x01", b"\x02", b"\x03"):
                raise NotSupported(msg + "; the tag does not support this command")
            raise TagWriteError(msg + "; re-place the item, the tag may be locked or password-protected")
        if resp.status in (0x80, 0x82):
            raise NotSupported(msg + "; check the reader's firmware and mode (ISO host mode)")
        raise DeviceError(msg)

    # -- TagReader ------------------------------------------------------------------------

    @atomic
    def inventory(self) -> list[InventoryEntry]:
        seen: dict[str, InventoryEntry] = {}
        more = False
        for _ in range(32):  # bounded: a reader that keeps saying "more" must not hang us
            resp = self.exchange(CMD_ISO_HOST, inventory_request(more))
            if resp.status == STATUS_NO_TRANSPONDER:
                break
            if resp.status not in (STATUS_OK, STATUS_MORE_DATA, STATUS_OVERFLOW):
                self._check(resp, "inventory")
            for e in parse_inventory(resp.data):
                seen.setdefault(e.uid, e)
            if resp.status == STATUS_OVERFLOW:
                log.warning("FEIG reader: inventory buffer overflow, some tags were not reported")
            if resp.status != STATUS_MORE_DATA:
                break
            more = True
        return list(seen.values())

    def _from_wire(self, data: bytes, size: int) -> bytes:
        return reverse_blocks(data, size) if self.block_order == "msb" else data

    @atomic
    def read_blocks(self, uid: str, first: int, count: int) -> bytes:
        uid = normalize_uid(uid)
        check_blocks(first, count)
        out = bytearray()
        block = first
        end = first + count
        step = MAX_DATA_BYTES // 4
        while block < end:
            n = min(step, end - block)
            resp = self._check(self.exchange(CMD_ISO_HOST, read_multiple_request(uid, block, n)), "reading blocks of", uid)
            size, wire, _sec = parse_read_multiple(resp.data, with_sec=True)
            if len(wire) != n * size:
                raise ReaderFrameError(f"FEIG reader returned {len(wire) // size} blocks of tag {uid}, asked for {n}")
            out += self._from_wire(wire, size)
            block += n
            step = max(1, MAX_DATA_BYTES // size)
        return bytes(out)

    @atomic
    def write_blocks(self, uid: str, first: int, data: bytes, block_size: int = 4) -> None:
        uid = normalize_uid(uid)
        if not data or len(data) % block_size:
            raise DeviceError(f"write of {len(data)} bytes is not whole {block_size}-byte blocks")
        check_blocks(first, len(data) // block_size)
        per = max(1, MAX_DATA_BYTES // block_size)
        for i in range(0, len(data), per * block_size):
            chunk = data[i : i + per * block_size]
            wire = reverse_blocks(chunk, block_size) if self.block_order == "msb" else chunk
            req = write_multiple_request(uid, first + i // block_size, block_size, wire)
            self._check(self.exchange(CMD_ISO_HOST, req), "writing blocks of", uid)

    def read_system_info(self, uid: str) -> SystemInfo:
        uid = normalize_uid(uid)
        resp = self._check(self.exchange(CMD_ISO_HOST, system_info_request(uid)), "reading system information of", uid)
        info = parse_system_info(resp.data)
        if info.uid != uid_bytes(uid).hex().upper():
            raise ReaderFrameError(f"FEIG reader answered for tag {info.uid}, asked for {uid}")
        return info

    def write_afi(self, uid: str, afi: int) -> None:
        uid = normalize_uid(uid)
        self._check(self.exchange(CMD_ISO_HOST, write_afi_request(uid, check_afi(afi))), "writing the AFI of", uid)

    def set_eas(self, uid: str, on: bool) -> None:
        uid = normalize_uid(uid)
        cmd = NXP_SET_EAS if on else NXP_RESET_EAS
        self._check(self.exchange(CMD_ISO_CUSTOM, nxp_request(cmd, uid)), "setting EAS of" if on else "resetting EAS of", uid)

    @atomic
    def eas(self, uid: str) -> bool | None:
        """EAS Alarm is answered only by tags with EAS set; pair with an inventory (rfid.md P14)."""
        uid = normalize_uid(uid)
        resp = self.exchange(CMD_ISO_CUSTOM, nxp_request(NXP_EAS_ALARM, uid))
        if resp.status == STATUS_OK:
            return True
        if resp.status == STATUS_NO_TRANSPONDER:
            present = any(e.uid == uid_bytes(uid).hex().upper() for e in self.inventory())
            if not present:
                raise TagNotFound(f"FEIG reader: tag {uid} is not on the pad; cannot read its EAS state")
            return False
        self._check(resp, "reading EAS of", uid)
        return None  # pragma: no cover

    def software_version(self) -> bytes:
        return self._check(self.exchange(CMD_SOFTWARE_VERSION), "reading the software version").data
