"""3M 810/210 pad serial protocol (docs/protocols/rfid.md §7.2, "Model 210 Protocol Specification 1.0.0"):
frame codec, CRC-16/GENIBUS and the ThreeMReader transport (19200 8N1, serial or socket).
"""

from __future__ import annotations

import binascii
import logging
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

START = 0xD6
PROBE_START = 0xD5  # hardware-version probe some drivers send at start-up (not in the 2009 spec)

CMD_QUIET = 0x01
CMD_READ_MULTIPLE = 0x02
CMD_CHECK_EAS = 0x03
CMD_WRITE_MULTIPLE = 0x04
CMD_WRITE_BLOCK = 0x05
CMD_LOCK_AFI = 0x06
CMD_WRITE_AFI = 0x09
CMD_GET_AFI = 0x0A
CMD_EAS_CONTROL = 0x0C
CMD_TAG_INFO = 0x0D
CMD_GET_DSFID = 0x0F
CMD_VERSION = 0x11
CMD_PASS_THROUGH = 0x14
CMD_INVENTORY = 0xFE

INV_UID = 0x01
INV_DSFID = 0x02

INFO_DSFID = 0x01
INFO_AFI = 0x02
INFO_MEMORY = 0x04
INFO_ICREF = 0x08

ERR_OK = 0x00
ERR_NOT_IMPLEMENTED = 0x02
ERR_NO_TRANSPONDER = 0x06

ERROR_TEXT = {
    0x00: "OK",
    0x02: "command not implemented",
    0x06: "no transponder (or the tag does not answer this command)",
    0x0F: "unknown error",
    0x11: "memory not available",
    0x12: "locked",
    0x15: "read error",
    0x16: "write error (not enough power?)",
    0x21: "ISO error 1",
    0x22: "ISO error 2",
    0x23: "ISO error 3",
    0x30: "not supported by this tag",
    0x31: "option not supported",
    0x32: "parameter error",
    0xFD: "user cancel",
    0xFE: "no memory",
}

BLOCK_SIZE = 4


def crc16(data: bytes) -> int:
    """CRC-16/GENIBUS (0x1021, preset 0xFFFF, not reflected, final XOR 0xFFFF); check value 0xD64E."""
    return binascii.crc_hqx(bytes(data), 0xFFFF) ^ 0xFFFF


def error_text(err: int) -> str:
    return f"error 0x{err:02X} {ERROR_TEXT.get(err, 'unknown error')}"


@dataclass(frozen=True)
class ThreeMFrame:
    """A decoded frame. `err` is None for host → reader commands."""

    cmd: int
    fields: bytes = b""
    err: int | None = None
    start: int = START


def build_frame(
    cmd: int, fields: bytes = b"", *, err: int | None = None, start: int = START
) -> bytes:
    """START | LEN_hi LEN_lo | CMD | [ERR] | fields | CRC_hi CRC_lo; LEN counts CMD through the CRC."""
    body = bytes([cmd]) + (bytes([err]) if err is not None else b"") + bytes(fields)
    n = len(body) + 2
    if n > 0xFFFF:
        raise DeviceError(f"3M frame body of {n} bytes is longer than the protocol allows")
    covered = n.to_bytes(2, "big") + body
    return bytes([start]) + covered + crc16(covered).to_bytes(2, "big")


def build_command(cmd: int, fields: bytes = b"") -> bytes:
    return build_frame(cmd, fields)


def build_response(cmd: int, err: int, fields: bytes = b"") -> bytes:
    return build_frame(cmd, fields, err=err)


def parse_frame(frame: bytes, *, response: bool = True) -> ThreeMFrame:
    """A whole frame; ReaderFrameError when it is short, mislabelled or its CRC is wrong."""
    frame = bytes(frame)
    if len(frame) < 6:
        raise ReaderFrameError(f"3M frame too short ({len(frame)} bytes): {frame.hex(' ')}")
    if frame[0] not in (START, PROBE_START):
        raise ReaderFrameError(
            f"3M frame starts with 0x{frame[0]:02X}, expected 0xD6: {frame.hex(' ')}"
        )
    n = int.from_bytes(frame[1:3], "big")
    if n + 3 != len(frame):
        raise ReaderFrameError(
            f"3M frame length field says {n} but {len(frame) - 3} bytes follow: {frame.hex(' ')}"
        )
    if n < (4 if response else 3):
        raise ReaderFrameError(
            f"3M frame too short for a {'response' if response else 'command'}: {frame.hex(' ')}"
        )
    got = int.from_bytes(frame[-2:], "big")
    want = crc16(frame[1:-2])
    if got != want:
        raise ReaderFrameError(
            f"3M frame CRC is 0x{got:04X}, expected 0x{want:04X}: {frame.hex(' ')}"
        )
    if response:
        return ThreeMFrame(cmd=frame[3], err=frame[4], fields=frame[5:-2], start=frame[0])
    return ThreeMFrame(cmd=frame[3], fields=frame[4:-2], start=frame[0])


def read_frame(link: SerialLink, deadline: float) -> bytes:
    """One frame from the link; bytes before a start byte are skipped (line noise, a late echo)."""
    for _ in range(512):
        b = link.read_exact(1, deadline)
        if b[0] in (START, PROBE_START):
            break
    else:
        raise ReaderFrameError(
            "3M reader sent 512 bytes without a frame start byte; check the baud rate"
        )
    head = link.read_exact(2, deadline)
    n = int.from_bytes(head, "big")
    if n < 4:
        raise ReaderFrameError(f"3M frame announces {n} bytes, fewer than a response has")
    return b + head + link.read_exact(n, deadline)


# -- command fields --------------------------------------------------------------------------


def inventory_fields(afi: int = 0, options: int = INV_UID | INV_DSFID) -> bytes:
    return bytes([afi, options])


def parse_inventory(fields: bytes) -> list[InventoryEntry]:
    """AFI, options, count, count × ([DSFID] UID(8)); duplicates are dropped (a tag missed the quiet)."""
    if len(fields) < 3:
        raise ReaderFrameError(f"3M inventory answer too short: {fields.hex(' ')}")
    options, count = fields[1], fields[2]
    rec = 8 + (1 if options & INV_DSFID else 0)
    body = len(fields) - 3
    if count and body != count * rec and body in (count * 8, count * 9):
        # The record size is what the reader sent, whatever its options byte claims.
        rec = body // count
    if body < count * rec:
        raise ReaderFrameError(
            f"3M inventory announces {count} tags but carries {len(fields) - 3} bytes for them"
        )
    seen: dict[str, InventoryEntry] = {}
    for i in range(count):
        r = fields[3 + i * rec : 3 + (i + 1) * rec]
        dsfid = r[0] if rec == 9 else None
        uid = r[-8:].hex().upper()
        seen.setdefault(uid, InventoryEntry(uid=uid, dsfid=dsfid))
    return list(seen.values())


def read_multiple_fields(uid: str, first: int, count: int) -> bytes:
    return uid_bytes(uid) + bytes([first, count])


LOCK_STATES = {
    0x00: "unlocked",
    0x01: "user locked",
    0x02: "factory locked",
    0x03: "user and factory locked",
}
READ_ALL_DATA = (
    0x01  # Read Multiblock option bit 0: send each block's data even when reading it failed
)


class TagReadError(DeviceError):
    """The reader could not read a block of the tag (its lock/error byte is an error code)."""


@dataclass(frozen=True)
class BlockRecord:
    """One block of a Read Multiblock answer: its number, its lock/error byte and, when the byte
    is a lock state (0x00-0x03), its data. Above 0x03 the byte is an error code and any bytes the
    reader sent with it are not tag memory."""

    block: int
    status: int
    data: bytes | None

    @property
    def ok(self) -> bool:
        return self.status <= 0x03


def _walk_blocks(body: bytes, n: int, error_has_data: bool) -> list[BlockRecord] | None:
    out = []
    pos = 0
    for _ in range(n):
        if pos + 2 > len(body):
            return None
        number, status = body[pos], body[pos + 1]
        pos += 2
        data: bytes | None = None
        if status <= 0x03 or error_has_data:
            if pos + BLOCK_SIZE > len(body):
                return None
            data = body[pos : pos + BLOCK_SIZE] if status <= 0x03 else None
            pos += BLOCK_SIZE
        out.append(BlockRecord(number, status, data))
    return out if pos == len(body) else None


def parse_read_blocks(fields: bytes) -> tuple[str, list[BlockRecord]]:
    """UID, count, count × (block no, lock/err, 4 data) — the header read as two separate bytes.
    A block whose lock/err byte is an error code carries its 4 data bytes only
    when the request asked for them (option bit 0), so both layouts are accepted."""
    if len(fields) < 9:
        raise ReaderFrameError(f"3M read answer too short: {fields.hex(' ')}")
    n = fields[8]
    body = fields[9:]
    blocks = _walk_blocks(body, n, error_has_data=True)
    if blocks is None:
        blocks = _walk_blocks(body, n, error_has_data=False)
    if blocks is None:
        raise ReaderFrameError(
            f"3M read answer announces {n} blocks but carries {len(body)} bytes for them"
        )
    return fields[:8].hex().upper(), blocks


def parse_read_multiple(fields: bytes, first: int, count: int) -> bytes:
    """The data of blocks first..first+count-1 in block order; TagReadError when the reader
    reports an error code for one of them (its bytes are never taken as tag memory)."""
    uid, records = parse_read_blocks(fields)
    blocks = {r.block: r for r in records}
    missing = [b for b in range(first, first + count) if b not in blocks]
    if missing:
        raise ReaderFrameError(f"3M read answer lacks blocks {missing}")
    failed = [blocks[b] for b in range(first, first + count) if not blocks[b].ok]
    if failed:
        which = ", ".join(f"block {r.block}: {error_text(r.status)}" for r in failed)
        raise TagReadError(
            f"3M reader could not read tag {uid} ({which}); re-place the item on the pad"
        )
    return b"".join(blocks[b].data or b"" for b in range(first, first + count))


def write_multiple_fields(uid: str, first: int, data: bytes) -> bytes:
    return uid_bytes(uid) + bytes([first, len(data) // BLOCK_SIZE, 0]) + data


def write_block_fields(uid: str, block: int, data: bytes) -> bytes:
    return uid_bytes(uid) + bytes([block]) + data


def tag_info_fields(
    uid: str, request: int = INFO_DSFID | INFO_AFI | INFO_MEMORY | INFO_ICREF
) -> bytes:
    return uid_bytes(uid) + bytes([request])


def parse_tag_info(fields: bytes) -> SystemInfo:
    """UID, available bits, then DSFID, AFI, memory size (block size − 1, block count − 1) and the
    2-byte IC reference, each only when its bit is set."""
    if len(fields) < 9:
        raise ReaderFrameError(f"3M tag info too short: {fields.hex(' ')}")
    uid = fields[:8].hex().upper()
    avail = fields[8]
    pos = 9
    dsfid = afi = icref = None
    block_size, block_count = BLOCK_SIZE, None

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(fields):
            raise ReaderFrameError(f"3M tag info ends early: {fields.hex(' ')}")
        out = fields[pos : pos + n]
        pos += n
        return out

    if avail & INFO_DSFID:
        dsfid = take(1)[0]
    if avail & INFO_AFI:
        afi = take(1)[0]
    if avail & INFO_MEMORY:
        m = take(2)
        block_size, block_count = (m[0] & 0x1F) + 1, m[1] + 1
    if avail & INFO_ICREF:
        icref = int.from_bytes(take(2), "big")
    if pos != len(fields):
        raise ReaderFrameError(
            f"3M tag info carries {len(fields) - pos} byte(s) more than its flags 0x{avail:02X} announce: {fields.hex(' ')}"
        )
    return SystemInfo(
        uid=uid,
        dsfid=dsfid,
        afi=afi,
        block_size=block_size,
        block_count=block_count,
        ic_reference=icref,
    )


# -- decoding one captured frame for a technician (`kiosk devices decode-frame`) -----------------

CMD_NAMES = {
    CMD_QUIET: "quiet",
    CMD_READ_MULTIPLE: "read multiblock",
    CMD_CHECK_EAS: "check EAS",
    CMD_WRITE_MULTIPLE: "write multiblock",
    CMD_WRITE_BLOCK: "write block",
    CMD_LOCK_AFI: "lock AFI",
    0x07: "write and lock block",
    0x08: "lock block",
    CMD_WRITE_AFI: "write AFI",
    CMD_GET_AFI: "get AFI",
    0x0B: "write DSFID",
    CMD_EAS_CONTROL: "EAS control",
    CMD_TAG_INFO: "tag info",
    0x0E: "lock DSFID",
    CMD_GET_DSFID: "get DSFID",
    CMD_VERSION: "reader version",
    CMD_PASS_THROUGH: "ISO pass-through",
    CMD_INVENTORY: "read block UID (inventory)",
}
_UID_ONLY = (CMD_QUIET, CMD_CHECK_EAS, CMD_LOCK_AFI, CMD_GET_AFI, 0x0E, CMD_GET_DSFID)


def _exact(fields: bytes, n: int, what: str) -> None:
    if len(fields) != n:
        raise ReaderFrameError(
            f"3M {what} carries {len(fields)} byte(s), expected {n}: {fields.hex(' ')}"
        )


def _after_uid(cmd: int, f: bytes, info: dict[str, object], what: str) -> bytes | None:
    """The fields after the UID of an addressed command, its UID put in `info`; None for a
    command without a known layout, whose fields are shown as data."""
    if cmd not in CMD_NAMES or cmd == CMD_PASS_THROUGH:
        if f:
            info["data"] = f.hex().upper()
        return None
    if len(f) < 8:
        raise ReaderFrameError(f"3M {CMD_NAMES[cmd]} {what} has no 8-byte UID: {f.hex(' ')}")
    info["uid"] = f[:8].hex().upper()
    return f[8:]


def _describe_request(cmd: int, f: bytes, out: dict[str, object], info: dict[str, object]) -> None:
    if cmd == CMD_INVENTORY:
        if len(f) < 2:
            raise ReaderFrameError(f"3M inventory request too short: {f.hex(' ')}")
        info.update(afi_filter=f[0], options=f[1])  # the AFI asked for (0: every tag), not a tag's
        return
    if cmd == CMD_VERSION:
        _exact(f, 0, "version request")
        return
    rest = _after_uid(cmd, f, info, "request")
    if rest is None:
        return
    if cmd in _UID_ONLY:
        _exact(rest, 0, f"{CMD_NAMES[cmd]} request after the UID")
    elif cmd == CMD_READ_MULTIPLE:
        if len(rest) not in (2, 3):
            raise ReaderFrameError(
                f"3M read multiblock request carries {len(rest)} byte(s) after the UID, expected 2 or 3"
            )
        info.update(first_block=rest[0], blocks=rest[1], options=rest[2] if len(rest) == 3 else 0)
    elif cmd == CMD_WRITE_MULTIPLE:
        if len(rest) < 3 or len(rest) - 3 != rest[1] * BLOCK_SIZE:
            raise ReaderFrameError(
                f"3M write multiblock request does not carry the blocks it announces: {f.hex(' ')}"
            )
        info.update(first_block=rest[0], blocks=rest[1], data=rest[3:].hex().upper())
    elif cmd in (CMD_WRITE_BLOCK, 0x07):
        _exact(rest, 1 + BLOCK_SIZE, f"{CMD_NAMES[cmd]} request after the UID")
        info.update(block=rest[0], data=rest[1:].hex().upper())
    elif cmd == CMD_WRITE_AFI:
        _exact(rest, 1, "write AFI request after the UID")
        out["afi"] = rest[0]
    elif cmd in (0x08, 0x0B, CMD_EAS_CONTROL, CMD_TAG_INFO):
        _exact(rest, 1, f"{CMD_NAMES[cmd]} request after the UID")
        key = {0x08: "block", 0x0B: "dsfid", CMD_EAS_CONTROL: "eas", CMD_TAG_INFO: "requested"}[cmd]
        info[key] = rest[0]


def _describe_response(
    cmd: int, err: int, f: bytes, out: dict[str, object], info: dict[str, object]
) -> None:
    if err != ERR_OK:
        if len(f) >= 8:
            info["uid"] = f[:8].hex().upper()
        if len(f) != 8 and f:
            info["data"] = f.hex().upper()
        return
    if cmd == CMD_INVENTORY:
        if len(f) < 3:
            raise ReaderFrameError(f"3M inventory answer too short: {f.hex(' ')}")
        count, body = f[2], f[3:]
        rec = 9 if count and len(body) == count * 9 else 8
        if len(body) != count * rec:
            raise ReaderFrameError(
                f"3M inventory announces {count} tags but carries {len(body)} bytes for them"
            )
        sets = [body[i * rec : (i + 1) * rec] for i in range(count)]
        out["uids"] = [s[-8:].hex().upper() for s in sets]
        info.update(afi_filter=f[0], options=f[1])
        if rec == 9:
            info["dsfids"] = [s[0] for s in sets]
        return
    if cmd == CMD_VERSION:
        info["version"] = f.hex().upper()
        return
    rest = _after_uid(cmd, f, info, "answer")
    if rest is None:
        return
    if cmd == CMD_READ_MULTIPLE:
        _uid, records = parse_read_blocks(f)
        info["blocks"] = [
            {"block": r.block, "lock": LOCK_STATES[r.status], "data": (r.data or b"").hex().upper()}
            if r.ok
            else {
                "block": r.block,
                "error": r.status,
                "error_text": ERROR_TEXT.get(r.status, "unknown error"),
            }
            for r in records
        ]
        if all(r.ok for r in records):
            # Tag memory in block order, whatever order the reader listed the blocks in.
            out["tag_memory"] = (
                b"".join(r.data or b"" for r in sorted(records, key=lambda r: r.block))
                .hex()
                .upper()
            )
        return
    if cmd == CMD_TAG_INFO:
        tag = parse_tag_info(f)
        info["available"] = rest[0]
        if tag.dsfid is not None:
            info["dsfid"] = tag.dsfid
        if tag.afi is not None:
            out["afi"] = tag.afi
        if rest[0] & INFO_MEMORY:
            out.update(block_size=tag.block_size, block_count=tag.block_count)
        if tag.ic_reference is not None:
            info["ic_reference"] = f"{tag.ic_reference:04X}"
        return
    if cmd == CMD_GET_AFI:
        _exact(rest, 1, "get AFI answer after the UID")
        out["afi"] = rest[0]
    elif cmd == CMD_GET_DSFID:
        _exact(rest, 1, "get DSFID answer after the UID")
        info["dsfid"] = rest[0]
    elif cmd == CMD_CHECK_EAS:
        _exact(rest, 1, "check EAS answer after the UID")
        info["eas"] = rest[0]
    elif cmd == CMD_WRITE_MULTIPLE and rest:
        _exact(rest, 1, "write multiblock answer after the UID")
        info["next_block"] = rest[0]
    elif rest:
        info["data"] = rest.hex().upper()


def describe_frame(frame: bytes, direction: str | None = None) -> dict[str, object]:
    """One 3M frame as a JSON-ready dict (protocol, direction, crc_ok, command, err, uids,
    block_size, block_count, tag_memory, afi, fields; keys that do not apply are left out).

    `direction` None: a frame that decodes as an answer (known error code, fields that fit the
    command) is one, else it is a request. ReaderFrameError for a frame that fails its CRC or
    length, or whose fields do not fit its command.
    """
    frame = bytes(frame)
    if direction not in (None, "request", "response"):
        raise DeviceError(f"direction must be request or response, not {direction!r}")
    if direction is None:
        parse_frame(
            frame, response=False
        )  # CRC and length first: their errors are the ones to report
        if frame[0] == PROBE_START:
            # The probe is D5 00 05 04 00 11; its answer adds the hardware version.
            direction = "request" if len(frame) <= 8 else "response"
        else:
            known = frame[3] in CMD_NAMES
            if len(frame) > 5 and (
                frame[4] in ERROR_TEXT if known else frame[4] in (ERR_OK, ERR_NOT_IMPLEMENTED)
            ):
                try:
                    return describe_frame(frame, "response")
                except ReaderFrameError:
                    pass
            direction = "request"
    parsed = parse_frame(frame, response=direction == "response")
    info: dict[str, object] = {}
    out: dict[str, object] = {
        "protocol": "3m",
        "direction": direction,
        "crc_ok": True,
        "command": parsed.cmd,
    }
    if parsed.start == PROBE_START:
        info["probe"] = True  # the hardware-version probe some drivers send first
        if parsed.fields:
            info["data"] = parsed.fields.hex().upper()
    elif parsed.err is not None:
        out["err"] = parsed.err
        info["err_text"] = error_text(parsed.err)
        _describe_response(parsed.cmd, parsed.err, parsed.fields, out, info)
    else:
        _describe_request(parsed.cmd, parsed.fields, out, info)
    if parsed.start != PROBE_START and parsed.cmd in CMD_NAMES:
        info["name"] = CMD_NAMES[parsed.cmd]
    if parsed.err is not None and parsed.start == PROBE_START:
        out["err"] = parsed.err
    out["fields"] = info
    return out


class ThreeMReader(SerialTagReader[ThreeMFrame]):
    """A 3M 810/210 (later Bibliotheca) pad on a serial port or socket, 19200 8N1 by default."""

    def __init__(
        self,
        port_url: str,
        *,
        timeout_s: float = 1.0,
        retries: int = 3,
        baudrate: int = 19200,
        parity: str = serial.PARITY_NONE,
        reopen_attempts: int = 5,
        backoff_s: float = 0.05,
    ) -> None:
        self._multi_write = True
        super().__init__(
            f"3m:{port_url}",
            port_url,
            name="3M reader",
            timeout_s=timeout_s,
            retries=retries,
            baudrate=baudrate,
            parity=parity,
            reopen_attempts=reopen_attempts,
            backoff_s=backoff_s,
        )

    sync_request = (CMD_VERSION, b"")

    def _send(self, cmd: int, payload: bytes) -> None:
        self.link.write(build_command(cmd, payload))

    def _receive(self, deadline: float) -> ThreeMFrame:
        return parse_frame(read_frame(self.link, deadline))

    def _command_of(self, answer: ThreeMFrame) -> int:
        return answer.cmd

    def _check(self, resp: ThreeMFrame, what: str, uid: str = "") -> ThreeMFrame:
        if resp.err == ERR_OK:
            return resp
        err = resp.err if resp.err is not None else 0x0F
        where = f" tag {uid}" if uid else ""
        msg = f"3M reader: {what}{where} failed, {error_text(err)}"
        if err == ERR_NO_TRANSPONDER:
            raise TagNotFound(msg + "; is the item still on the pad?")
        if err in (ERR_NOT_IMPLEMENTED, 0x30, 0x31):
            raise NotSupported(msg)
        if err in (0x12, 0x16, 0x21, 0x22, 0x23):
            raise TagWriteError(
                msg + "; re-place the item, the tag may be locked or too far from the antenna"
            )
        raise DeviceError(msg)

    def version(self) -> bytes:
        return self._check(self.exchange(CMD_VERSION), "reading the version").fields

    def inventory(self) -> list[InventoryEntry]:
        resp = self.exchange(CMD_INVENTORY, inventory_fields())
        if resp.err == ERR_NO_TRANSPONDER:
            return []
        self._check(resp, "inventory")
        return parse_inventory(resp.fields)

    @atomic
    def read_blocks(self, uid: str, first: int, count: int) -> bytes:
        uid = normalize_uid(uid)
        check_blocks(first, count)
        out = bytearray()
        for start in range(first, first + count, 32):
            n = min(32, first + count - start)
            resp = self._check(
                self.exchange(CMD_READ_MULTIPLE, read_multiple_fields(uid, start, n)),
                "reading blocks of",
                uid,
            )
            self._expect_uid(resp, uid)
            out += parse_read_multiple(resp.fields, start, n)
        return bytes(out)

    @atomic
    def write_blocks(self, uid: str, first: int, data: bytes) -> None:
        uid = normalize_uid(uid)
        if not data or len(data) % BLOCK_SIZE:
            raise DeviceError(f"write of {len(data)} bytes is not whole {BLOCK_SIZE}-byte blocks")
        check_blocks(first, len(data) // BLOCK_SIZE)
        if self._multi_write:
            for i in range(0, len(data), 32 * BLOCK_SIZE):
                chunk = data[i : i + 32 * BLOCK_SIZE]
                resp = self.exchange(
                    CMD_WRITE_MULTIPLE, write_multiple_fields(uid, first + i // BLOCK_SIZE, chunk)
                )
                if resp.err == ERR_NOT_IMPLEMENTED:
                    log.info("3M reader: no multi-block write, using single-block writes")
                    self._multi_write = False
                    break
                self._check(resp, "writing blocks of", uid)
            else:
                return
        for i in range(0, len(data), BLOCK_SIZE):
            resp = self.exchange(
                CMD_WRITE_BLOCK,
                write_block_fields(uid, first + i // BLOCK_SIZE, data[i : i + BLOCK_SIZE]),
            )
            self._check(resp, "writing a block of", uid)

    def read_system_info(self, uid: str) -> SystemInfo:
        uid = normalize_uid(uid)
        resp = self._check(
            self.exchange(CMD_TAG_INFO, tag_info_fields(uid)), "reading tag information of", uid
        )
        info = parse_tag_info(resp.fields)
        if info.uid != uid_bytes(uid).hex().upper():
            raise ReaderFrameError(f"3M reader answered for tag {info.uid}, asked for {uid}")
        return info

    def get_afi(self, uid: str) -> int:
        uid = normalize_uid(uid)
        resp = self._check(self.exchange(CMD_GET_AFI, uid_bytes(uid)), "reading the AFI of", uid)
        if len(resp.fields) < 9:
            raise ReaderFrameError(f"3M Get AFI answer too short: {resp.fields.hex(' ')}")
        return resp.fields[8]

    def write_afi(self, uid: str, afi: int) -> None:
        uid = normalize_uid(uid)
        resp = self.exchange(CMD_WRITE_AFI, uid_bytes(uid) + bytes([check_afi(afi)]))
        self._check(resp, "writing the AFI of", uid)

    def set_eas(self, uid: str, on: bool) -> None:
        uid = normalize_uid(uid)
        resp = self.exchange(CMD_EAS_CONTROL, uid_bytes(uid) + bytes([1 if on else 0]))
        self._check(resp, "setting EAS of" if on else "resetting EAS of", uid)

    @atomic
    def eas(self, uid: str) -> bool | None:
        """Check EAS: error 0x06 reads as EAS = 0, so confirm the tag is present by inventory (docs/protocols/rfid.md P14)."""
        uid = normalize_uid(uid)
        resp = self.exchange(CMD_CHECK_EAS, uid_bytes(uid))
        if resp.err == ERR_NO_TRANSPONDER:
            if uid_bytes(uid).hex().upper() not in {e.uid for e in self.inventory()}:
                raise TagNotFound(
                    f"3M reader: tag {uid} is not on the pad; cannot read its EAS state"
                )
            return False
        self._check(resp, "checking EAS of", uid)
        if len(resp.fields) < 9:
            raise ReaderFrameError(f"3M Check EAS answer too short: {resp.fields.hex(' ')}")
        return bool(resp.fields[8])

    @staticmethod
    def _expect_uid(resp: ThreeMFrame, uid: str) -> None:
        if resp.fields[:8] != uid_bytes(uid):
            raise ReaderFrameError(
                f"3M reader answered for tag {resp.fields[:8].hex().upper()}, asked for {uid}"
            )
