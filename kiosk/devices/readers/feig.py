"""FEIG OBID ISO host protocol (docs/protocols/rfid.md §7.3): frame codec, CRC-16/MCRF4XX and the FeigReader
transport for ISC.MR/LR and CPR readers over a serial port, USB-serial adapter or socket.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import serial

from kiosk.core.errors import log_fault
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
        raise ReaderFrameError(
            f"FEIG frame length byte says {declared} but {len(frame)} bytes arrived: {frame.hex(' ')}"
        )
    if len(frame) < header + 2 + min_body + 2:
        raise ReaderFrameError(f"FEIG frame too short ({len(frame)} bytes): {frame.hex(' ')}")
    got = int.from_bytes(frame[-2:], "little")
    want = crc16(frame[:-2])
    if got != want:
        raise ReaderFrameError(
            f"FEIG frame CRC is 0x{got:04X}, expected 0x{want:04X}: {frame.hex(' ')}"
        )
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
    return (
        bytes([SUB_READ_MULTIPLE, MODE_ADDRESSED | MODE_SEC])
        + uid_bytes(uid)
        + bytes([first, count])
    )


def write_multiple_request(uid: str, first: int, block_size: int, wire_data: bytes) -> bytes:
    count = len(wire_data) // block_size
    return (
        bytes([SUB_WRITE_MULTIPLE, MODE_ADDRESSED])
        + uid_bytes(uid)
        + bytes([first, count, block_size])
        + wire_data
    )


def write_afi_request(uid: str, afi: int) -> bytes:
    return bytes([SUB_WRITE_AFI, MODE_ADDRESSED]) + uid_bytes(uid) + bytes([afi])


def system_info_request(uid: str) -> bytes:
    return bytes([SUB_SYSTEM_INFO, MODE_ADDRESSED]) + uid_bytes(uid)


def nxp_request(nxp_cmd: int, uid: str) -> bytes:
    """Payload after CMD 0xB1: MFR 0x04, the NXP command, MODE addressed, UID."""
    return bytes([MFR_NXP, nxp_cmd, MODE_ADDRESSED]) + uid_bytes(uid)


# Inventory data sets by transponder type (FEIG manuals, "Response-Data" per TR-TYPE; FEIG's
# SDK parses them the same way). A record's length depends on its type, so a reader with other
# air protocols enabled (ISO 14443 on CPR readers, EPC...) puts records of other lengths between
# the ISO 15693 ones; each is framed by its own length. tests/devices/data/reader_frames.json
# names the public sources the layouts and test frames come from.
TR_TYPE_NAMES = {
    0x00: "I-Code1",
    0x01: "Tag-it HF",
    0x03: "ISO 15693",
    0x04: "ISO 14443-A",
    0x05: "ISO 14443-B",
    0x06: "I-Code EPC",
    0x07: "I-Code UID",
    0x08: "Jewel",
    0x09: "ISO 18000-3 M3",
    0x0A: "SR176",
    0x0B: "SRIxx",
    0x0C: "MCRFxxx",
    0x0D: "FeliCa",
    0x0E: "keyboard",
    0x10: "Innovatron",
    0x11: "ASK CTx",
    0x7F: "generic",
    0x80: "ISO 18000-6 A",
    0x81: "ISO 18000-6 B",
    0x83: "EM4222",
    0x84: "EPC Class 1 Gen 2",
    0x88: "EPC Class 0",
    0x89: "EPC Class 1 Gen 1",
}
TR_TYPE_ISO14443A = 0x04
TR_TYPE_ISO14443B = 0x05
PATRON_CARD_TYPES = (
    TR_TYPE_ISO14443A,
    TR_TYPE_ISO14443B,
    0x0D,
)  # contactless cards a patron carries


@dataclass(frozen=True)
class TransponderRecord:
    """One inventory data set as the reader sent it: its transponder type and the bytes after it.

    `uid` is the identifier as transmitted (hex, upper case); `card_uid` is the identifier of a
    contactless card (ISO 14443 A/B, FeliCa) without the reader's zero padding, or None for
    other types. `framed` is False for a record of a type whose length is unknown, whose bytes
    run to the end of the answer.
    """

    tr_type: int
    body: bytes
    uid: str = ""
    dsfid: int | None = None
    card_uid: bytes | None = None
    framed: bool = True

    @property
    def type_name(self) -> str:
        return TR_TYPE_NAMES.get(self.tr_type, f"type 0x{self.tr_type:02X}")

    @property
    def is_iso15693(self) -> bool:
        return self.tr_type == TR_TYPE_ISO15693

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "tr_type": self.tr_type,
            "type": self.type_name,
            "uid": self.uid,
            "raw": self.body.hex().upper(),
        }
        if self.dsfid is not None:
            out["dsfid"] = self.dsfid
        if self.card_uid is not None:
            out["card_uid"] = self.card_uid.hex().upper()
        if not self.framed:
            out["framed"] = False
        return out


def _record_length(tr_type: int, rest: bytes) -> int | None:
    """Bytes after TR-TYPE for a record of this type, or None when the type is unknown."""

    def at(i: int) -> int:
        if i >= len(rest):
            raise ReaderFrameError(
                f"FEIG inventory record of {TR_TYPE_NAMES.get(tr_type, hex(tr_type))} ends early: {rest.hex(' ')}"
            )
        return rest[i]

    if tr_type in (0x00, 0x01, 0x03, 0x05, 0x0A, 0x0B):
        return 9  # DSFID / PROTO-INFO / chip id + 8 bytes
    if tr_type == TR_TYPE_ISO14443A:
        return 2 + (10 if at(0) & 0x04 else 7)  # TR_INFO (bit 2: 10-byte UID), OPT_INFO, UID
    if tr_type == 0x06:
        return 12 if at(0) >> 6 == 0 else 8  # EPC header: 96-bit or 64-bit
    if tr_type == 0x07:
        return 19
    if tr_type == 0x08:
        return 8  # two reserved bytes + HR0 HR1 UID0..3
    if tr_type in (0x09, 0x7F) or tr_type & 0x80:
        return 2 + at(1)  # IDDT / sub-type, LEN, LEN bytes
    if tr_type in (0x0C, 0x0E):
        return 1 + at(0)
    if tr_type == 0x0D:
        return 17  # LEN, IDm(8), PMm(8)
    if tr_type == 0x10:
        return 11 + at(10)  # UID(8), VERLOG, CONFIG, ATR-LEN, ATR
    if tr_type == 0x11:
        return 12
    return None


def _card_uid(tr_type: int, body: bytes) -> bytes | None:
    """A contactless card's UID in the order PC/SC and nfcpy deliver it (UID0 first), so one card
    rule maps it to the same library card number whichever reader saw it. FEIG sends ISO 14443
    UIDs last byte first, a 4-byte UID zero-filled at the front of a 7-byte field."""
    if tr_type == TR_TYPE_ISO14443A:
        uid = body[2:]
        level = body[1] & 0x03  # OPT_INFO cascade level, when the reader is configured to send it
        if len(uid) == 7 and level == 0 and uid[:3] == bytes(3):
            uid = uid[3:]
        return uid[::-1]
    if tr_type == TR_TYPE_ISO14443B:
        return body[5:9][::-1]  # PUPI
    if tr_type == 0x0D:
        return body[1:9]  # IDm
    return None


def _record(tr_type: int, body: bytes, framed: bool = True) -> TransponderRecord:
    if tr_type in (0x00, 0x01, TR_TYPE_ISO15693):
        return TransponderRecord(tr_type, body, uid=body[1:9].hex().upper(), dsfid=body[0])
    if tr_type == TR_TYPE_ISO14443A:
        return TransponderRecord(
            tr_type, body, uid=body[2:].hex().upper(), card_uid=_card_uid(tr_type, body)
        )
    if tr_type in (TR_TYPE_ISO14443B, 0x0D):
        card = _card_uid(tr_type, body)
        return TransponderRecord(
            tr_type, body, uid=card.hex().upper() if card else "", card_uid=card
        )
    if framed and (tr_type in (0x09, 0x7F) or tr_type & 0x80):
        return TransponderRecord(tr_type, body, uid=body[2:].hex().upper())
    if tr_type in (0x0A, 0x0B):
        return TransponderRecord(tr_type, body, uid=body[1:9].hex().upper())
    if tr_type == 0x08:
        return TransponderRecord(tr_type, body, uid=body[2:].hex().upper())
    return TransponderRecord(tr_type, body, uid=body.hex().upper() if framed else "", framed=framed)


def parse_inventory_records(data: bytes) -> list[TransponderRecord]:
    """DATA-SETS then that many records, each framed by its TR-TYPE's length, in reading order.

    A record of an unknown type cannot be framed: it and whatever follows come back as one
    record with framed=False (and a warning), so the records before it are not lost.
    """
    if not data:
        raise ReaderFrameError("FEIG inventory answer has no data-set count")
    n = data[0]
    pos = 1
    out: list[TransponderRecord] = []
    for i in range(n):
        if pos >= len(data):
            raise ReaderFrameError(
                f"FEIG inventory announces {n} data sets but carries {i}: {data.hex(' ')}"
            )
        tr_type = data[pos]
        length = _record_length(tr_type, data[pos + 1 :])
        if length is None:
            log.warning(
                "FEIG inventory: transponder type 0x%02X has no known record length; %d data set(s) not read",
                tr_type,
                n - i,
            )
            out.append(_record(tr_type, data[pos + 1 :], framed=False))
            return out
        body = data[pos + 1 : pos + 1 + length]
        if len(body) < length:
            raise ReaderFrameError(
                f"FEIG inventory data set {i + 1} ({TR_TYPE_NAMES.get(tr_type, hex(tr_type))}) ends early: {data.hex(' ')}"
            )
        out.append(_record(tr_type, body))
        pos += 1 + length
    if pos != len(data):
        raise ReaderFrameError(
            f"FEIG inventory carries {len(data) - pos} byte(s) after its {n} data sets: {data.hex(' ')}"
        )
    return out


def iso15693_entries(records: list[TransponderRecord]) -> list[InventoryEntry]:
    return [InventoryEntry(uid=r.uid, dsfid=r.dsfid, afi=None) for r in records if r.is_iso15693]


def parse_inventory(data: bytes) -> list[InventoryEntry]:
    """The ISO 15693 tags of an inventory answer; records of other types are framed and skipped."""
    return iso15693_entries(parse_inventory_records(data))


def parse_read_multiple(data: bytes) -> tuple[int, bytes, list[int]]:
    """DB-N, DB-SIZE, then DB-N × (SEC-STATUS, DB-SIZE bytes) → (block size, wire data, security bytes).

    The SEC-STATUS byte is always there (0x00 when the security status was not asked for), as
    FEIG's manuals say and FEIG's SDK reads it.
    """
    if len(data) < 2:
        raise ReaderFrameError(f"FEIG read answer too short: {data.hex(' ')}")
    n, size = data[0], data[1]
    if size == 0:
        raise ReaderFrameError("FEIG read answer has block size 0")
    step = size + 1
    if len(data) != 2 + n * step:
        raise ReaderFrameError(
            f"FEIG read answer announces {n} blocks of {size} bytes (each after its security status byte) but carries {len(data) - 2} bytes"
        )
    out = bytearray()
    sec = []
    for i in range(n):
        rec = data[2 + i * step : 2 + (i + 1) * step]
        sec.append(rec[0])
        out += rec[1:]
    return size, bytes(out), sec


def parse_system_info(data: bytes) -> SystemInfo:
    """DSFID, UID(8), AFI, MEM-SIZE, IC-REF. MEM-SIZE is 2 bytes (block size, block count) or,
    from tags with more than 256 blocks, 3 bytes (block size, block count high, low), which moves
    IC-REF to byte 13 (FEIG's SDK reads it so). Sizes are stored as value − 1."""
    if len(data) == 13:
        count = data[11]
        ic = data[12]
    elif len(data) == 14:
        count = int.from_bytes(data[11:13], "big")
        ic = data[13]
    else:
        raise ReaderFrameError(
            f"FEIG system information is {len(data)} bytes, expected 13 or 14: {data.hex(' ')}"
        )
    return SystemInfo(
        uid=data[1:9].hex().upper(),
        dsfid=data[0],
        afi=data[9],
        block_size=(data[10] & 0x1F) + 1,
        block_count=count + 1,
        ic_reference=ic,
    )


def system_info_data(info: SystemInfo) -> bytes:
    """The answer data of Get System Information for `info`: the 3-byte MEM-SIZE form when the tag
    has more than 256 blocks."""
    count = (info.block_count or 1) - 1
    size = (info.block_size - 1) & 0x1F
    mem = bytes([size, count]) if count <= 0xFF else bytes([size]) + count.to_bytes(2, "big")
    return (
        bytes([info.dsfid or 0])
        + uid_bytes(info.uid)
        + bytes([info.afi or 0])
        + mem
        + bytes([info.ic_reference or 0])
    )


def reverse_blocks(data: bytes, block_size: int) -> bytes:
    """Each block's bytes reversed: FEIG in ISO host mode sends blocks MSB first (docs/protocols/rfid.md §3.4)."""
    return b"".join(data[i : i + block_size][::-1] for i in range(0, len(data), block_size))


def read_frame(link: SerialLink, deadline: float) -> bytes:
    """One frame from the link, by its length header."""
    first = link.read_exact(1, deadline)
    if first[0] == STX:
        head = first + link.read_exact(2, deadline)
        total = int.from_bytes(head[1:3], "big")
        if total < 8:
            raise ReaderFrameError(
                f"FEIG advanced frame announces {total} bytes, fewer than a frame has"
            )
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
        # Non-ISO 15693 records of the last inventory (e.g. an ISO 14443 patron card on the pad)
        # and who to tell when one appears; the card's `card_uid` can be offered as the patron's card.
        self.other_transponders: tuple[TransponderRecord, ...] = ()
        self.on_other_transponder: Callable[[TransponderRecord], None] | None = None
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

    sync_request = (CMD_SOFTWARE_VERSION, b"")

    def _send(self, cmd: int, payload: bytes) -> None:
        # The reader needs >= 5 ms of silence before a new request.
        gap = 0.005 - (time.monotonic() - self._last_io)
        if gap > 0:
            time.sleep(gap)
        try:
            self.link.write(build_request(self.com_adr, cmd, payload))
        finally:
            self._last_io = time.monotonic()

    def _receive(self, deadline: float) -> FeigResponse:
        try:
            frame = read_frame(self.link, deadline)
        finally:
            self._last_io = time.monotonic()
        return parse_response(frame)

    def _command_of(self, answer: FeigResponse) -> int:
        return answer.cmd

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
            raise TagWriteError(
                msg + "; re-place the item, the tag may be locked or password-protected"
            )
        if resp.status in (0x80, 0x82):
            raise NotSupported(msg + "; check the reader's firmware and mode (ISO host mode)")
        raise DeviceError(msg)

    # -- TagReader ------------------------------------------------------------------------

    @atomic
    def inventory(self) -> list[InventoryEntry]:
        """The ISO 15693 tags in the field. Records of other transponder types (a patron's
        contactless card on the pad) are kept in `other_transponders` and, when they are new,
        passed to `on_other_transponder`."""
        seen: dict[str, InventoryEntry] = {}
        others: dict[tuple[int, str], TransponderRecord] = {}
        more = False
        for _ in range(32):  # bounded: a reader that keeps saying "more" must not hang us
            resp = self.exchange(CMD_ISO_HOST, inventory_request(more))
            if resp.status == STATUS_NO_TRANSPONDER:
                break
            if resp.status not in (STATUS_OK, STATUS_MORE_DATA, STATUS_OVERFLOW):
                self._check(resp, "inventory")
            for rec in parse_inventory_records(resp.data):
                if rec.is_iso15693:
                    seen.setdefault(rec.uid, InventoryEntry(uid=rec.uid, dsfid=rec.dsfid, afi=None))
                else:
                    others.setdefault((rec.tr_type, rec.uid), rec)
            if resp.status == STATUS_OVERFLOW:
                log.warning("FEIG reader: inventory buffer overflow, some tags were not reported")
            if resp.status != STATUS_MORE_DATA:
                break
            more = True
        self._report_others(tuple(others.values()))
        return list(seen.values())

    def _report_others(self, records: tuple[TransponderRecord, ...]) -> None:
        before = {(r.tr_type, r.uid) for r in self.other_transponders}
        self.other_transponders = records
        callback = self.on_other_transponder
        for rec in records:
            if (rec.tr_type, rec.uid) in before:
                continue
            log.info("FEIG reader: %s in the field (not an item tag)", rec.type_name)
            if callback is not None:
                try:
                    callback(rec)
                except Exception as exc:  # a listener bug must not break the inventory
                    log_fault(log, exc, "FEIG reader: listener for other transponders failed")

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
            resp = self._check(
                self.exchange(CMD_ISO_HOST, read_multiple_request(uid, block, n)),
                "reading blocks of",
                uid,
            )
            size, wire, _sec = parse_read_multiple(resp.data)
            if len(wire) != n * size:
                raise ReaderFrameError(
                    f"FEIG reader returned {len(wire) // size} blocks of tag {uid}, asked for {n}"
                )
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
        resp = self._check(
            self.exchange(CMD_ISO_HOST, system_info_request(uid)),
            "reading system information of",
            uid,
        )
        info = parse_system_info(resp.data)
        if info.uid != uid_bytes(uid).hex().upper():
            raise ReaderFrameError(f"FEIG reader answered for tag {info.uid}, asked for {uid}")
        return info

    def write_afi(self, uid: str, afi: int) -> None:
        uid = normalize_uid(uid)
        self._check(
            self.exchange(CMD_ISO_HOST, write_afi_request(uid, check_afi(afi))),
            "writing the AFI of",
            uid,
        )

    def set_eas(self, uid: str, on: bool) -> None:
        uid = normalize_uid(uid)
        cmd = NXP_SET_EAS if on else NXP_RESET_EAS
        self._check(
            self.exchange(CMD_ISO_CUSTOM, nxp_request(cmd, uid)),
            "setting EAS of" if on else "resetting EAS of",
            uid,
        )

    @atomic
    def eas(self, uid: str) -> bool | None:
        """EAS Alarm is answered only by tags with EAS set; pair with an inventory (docs/protocols/rfid.md P14)."""
        uid = normalize_uid(uid)
        resp = self.exchange(CMD_ISO_CUSTOM, nxp_request(NXP_EAS_ALARM, uid))
        if resp.status == STATUS_OK:
            return True
        if resp.status == STATUS_NO_TRANSPONDER:
            present = any(e.uid == uid_bytes(uid).hex().upper() for e in self.inventory())
            if not present:
                raise TagNotFound(
                    f"FEIG reader: tag {uid} is not on the pad; cannot read its EAS state"
                )
            return False
        self._check(resp, "reading EAS of", uid)
        return None  # pragma: no cover

    def software_version(self) -> bytes:
        return self._check(self.exchange(CMD_SOFTWARE_VERSION), "reading the software version").data


# -- decoding one captured frame for a technician (`kiosk devices decode-frame`) -----------------

SUB_NAMES = {
    SUB_INVENTORY: "inventory",
    SUB_STAY_QUIET: "stay quiet",
    0x22: "lock multiple blocks",
    SUB_READ_MULTIPLE: "read multiple blocks",
    SUB_WRITE_MULTIPLE: "write multiple blocks",
    0x25: "select",
    0x26: "reset to ready",
    SUB_WRITE_AFI: "write AFI",
    SUB_LOCK_AFI: "lock AFI",
    0x29: "write DSFID",
    0x2A: "lock DSFID",
    SUB_SYSTEM_INFO: "get system information",
    0x2C: "get multiple block security status",
}
CMD_NAMES = {
    0x52: "baud rate detection",
    0x55: "start flash loader",
    0x63: "CPU reset",
    CMD_SOFTWARE_VERSION: "get software version",
    0x66: "get reader info",
    CMD_RF_RESET: "RF reset",
    0x6A: "RF on/off",
    0x80: "read configuration",
    0x81: "write configuration",
    0x82: "save configuration",
    0x83: "set default configuration",
    CMD_ISO_HOST: "ISO 15693 host command",
    CMD_ISO_CUSTOM: "ISO 15693 custom command",
}


def _addressed(mode: int, body: bytes, fields: dict[str, object]) -> bytes:
    """The request bytes after MODE [UID]; records the addressing in `fields`."""
    adr = mode & 0x07
    fields["addressing"] = {0: "non-addressed", 1: "addressed", 2: "selected"}.get(
        adr, f"mode 0x{adr:X}"
    )
    if adr == MODE_ADDRESSED:
        if len(body) < 8:
            raise ReaderFrameError(
                f"FEIG request in addressed mode carries {len(body)} of the UID's 8 bytes"
            )
        fields["uid"] = body[:8].hex().upper()
        return body[8:]
    return body


def _need(body: bytes, n: int, what: str) -> None:
    if len(body) != n:
        raise ReaderFrameError(
            f"FEIG {what} request carries {len(body)} byte(s) after its address, expected {n}"
        )


def _describe_iso_request(
    data: bytes, out: dict[str, object], fields: dict[str, object], block_order: str
) -> None:
    if not data:
        raise ReaderFrameError("FEIG 0xB0 request has no sub-command")
    sub = data[0]
    out["sub"] = sub
    fields["name"] = SUB_NAMES.get(sub, "ISO 15693 host command")
    if len(data) < 2:
        raise ReaderFrameError(f"FEIG 0xB0 0x{sub:02X} request has no MODE byte")
    mode = data[1]
    fields["mode"] = mode
    body = data[2:]
    if sub == SUB_INVENTORY:
        fields["more"] = bool(mode & MODE_MORE)
        if body:
            fields["rest"] = body.hex().upper()
        return
    rest = _addressed(mode, body, fields)
    if sub == SUB_READ_MULTIPLE:
        _need(rest, 2, "read")
        fields.update(
            first_block=rest[0], blocks=rest[1], security_status_requested=bool(mode & MODE_SEC)
        )
    elif sub == SUB_WRITE_MULTIPLE:
        if len(rest) < 3:
            raise ReaderFrameError("FEIG write request ends before DB-SIZE")
        first, count, size = rest[0], rest[1], rest[2]
        wire = rest[3:]
        if size == 0 or len(wire) != count * size:
            raise ReaderFrameError(
                f"FEIG write request announces {count} blocks of {size} bytes but carries {len(wire)}"
            )
        memory = reverse_blocks(wire, size) if block_order == "msb" else wire
        fields.update(first_block=first, blocks=count, block_size=size, data=memory.hex().upper())
    elif sub == SUB_WRITE_AFI:
        _need(rest, 1, "write AFI")
        out["afi"] = rest[0]
    elif rest:
        fields["rest"] = rest.hex().upper()


def _looks_like_system_info(data: bytes) -> bool:
    return len(data) in (13, 14) and data[1] == 0xE0  # every ISO 15693 UID starts with 0xE0


def _describe_iso_response(
    data: bytes, out: dict[str, object], fields: dict[str, object], block_order: str
) -> None:
    status = out["status"]
    if status == STATUS_ISO_ERROR:
        if len(data) != 1:
            raise ReaderFrameError(
                f"FEIG status 0x95 answer carries {len(data)} bytes, expected the ISO error code"
            )
        fields["iso_error"] = data[0]
        fields["iso_error_text"] = ISO_ERROR_TEXT.get(data[0], "custom or unknown")
        return
    if status not in (STATUS_OK, STATUS_MORE_DATA, STATUS_OVERFLOW):
        if data:
            fields["data"] = data.hex().upper()
        return
    # The answer does not repeat the sub-command: it is told by the layout of the data.
    if status == STATUS_OK and _looks_like_system_info(data):
        info = parse_system_info(data)
        out.update(
            sub=SUB_SYSTEM_INFO,
            afi=info.afi,
            block_size=info.block_size,
            block_count=info.block_count,
        )
        fields.update(
            uid=info.uid,
            dsfid=info.dsfid,
            ic_reference=info.ic_reference,
            mem_size_bytes=len(data) - 11,
        )
        return
    if status == STATUS_OK and len(data) >= 2:
        try:
            size, wire, sec = parse_read_multiple(data)
        except ReaderFrameError:
            pass
        else:
            memory = reverse_blocks(wire, size) if block_order == "msb" else wire
            out.update(sub=SUB_READ_MULTIPLE, tag_memory=memory.hex().upper())
            fields.update(block_size=size, block_order=block_order, security_status=sec)
            return
    if data:
        try:
            records = parse_inventory_records(data)
        except ReaderFrameError as exc:
            # Not an inventory either: an answer whose layout is not decoded here (e.g. 0x2C).
            fields.update(
                data=data.hex().upper(),
                layout=f"not an inventory, read or system information answer ({exc})",
            )
            return
        out.update(sub=SUB_INVENTORY, uids=[r.uid for r in records if r.is_iso15693])
        others = [r.to_json() for r in records if not r.is_iso15693]
        if others:
            fields["other_transponders"] = others


def describe_frame(
    frame: bytes, direction: str | None = None, *, block_order: str = "msb"
) -> dict[str, object]:
    """One FEIG frame as a JSON-ready dict (protocol, direction, crc_ok, command, status, uids,
    block_size, block_count, tag_memory, afi, fields; keys that do not apply are left out).

    `direction` None: a frame to the broadcast address 0xFF, or one that does not decode as an
    answer, is a request. Block data is shown in tag memory order (`block_order` "msb" is the
    reader's default, each block sent last byte first). ReaderFrameError for a frame that fails
    its CRC or length, or whose data does not fit its command.
    """
    frame = bytes(frame)
    if direction not in (None, "request", "response"):
        raise DeviceError(f"direction must be request or response, not {direction!r}")
    if block_order not in ("msb", "lsb"):
        raise DeviceError(f"block order must be msb or lsb, not {block_order!r}")
    if direction is None:
        _split(frame, 0)  # CRC and length first: their errors are the ones to report
        adr = frame[3] if frame[:1] == bytes([STX]) else frame[1]
        if adr == BROADCAST_ADR:
            direction = "request"
        else:
            try:
                return describe_frame(frame, "response", block_order=block_order)
            except ReaderFrameError:
                direction = "request"
    fields: dict[str, object] = {}
    out: dict[str, object] = {"protocol": "feig", "direction": direction, "crc_ok": True}
    if direction == "response":
        resp = parse_response(frame)
        cmd = resp.cmd
        out.update(command=cmd, status=resp.status)
        fields.update(com_adr=resp.com_adr, status_text=status_text(resp.status, resp.data))
        if cmd == CMD_ISO_HOST:
            _describe_iso_response(resp.data, out, fields, block_order)
        elif resp.data:
            fields["data"] = resp.data.hex().upper()
    else:
        req = parse_request(frame)
        cmd = req.cmd
        out["command"] = cmd
        fields["com_adr"] = req.com_adr
        if cmd == CMD_ISO_HOST:
            _describe_iso_request(req.data, out, fields, block_order)
        elif cmd == CMD_ISO_CUSTOM and len(req.data) >= 3:
            fields.update(manufacturer=req.data[0], custom_command=req.data[1], mode=req.data[2])
            rest = _addressed(req.data[2], req.data[3:], fields)
            if rest:
                fields["rest"] = rest.hex().upper()
        elif req.data:
            fields["data"] = req.data.hex().upper()
    sub = out.get("sub")
    name = SUB_NAMES.get(sub) if isinstance(sub, int) else None
    if "name" not in fields and (name or cmd in CMD_NAMES):
        fields["name"] = name or CMD_NAMES[cmd]
    out["fields"] = fields
    return out
