"""PC/SC access through pyscard's low-level `smartcard.scard` with an own context that is
re-established after a pcscd restart or reader unplug (docs/protocols/rfid.md §7.5, P11), and PcscReader: ISO 15693
tags presented by the reader as storage cards (UID via FF CA, blocks via FF B0 / FF D6, AFI and EAS
through the PC/SC 2.02 transparent exchange where the reader has it).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.readers.base import (
    InventoryEntry,
    NotSupported,
    ReaderFrameError,
    SystemInfo,
    TagNotFound,
    TagReader,
    TagWriteError,
    check_afi,
    check_blocks,
    normalize_uid,
)

log = logging.getLogger(__name__)

# PC/SC error codes the kiosk reacts to (winscard / pcsclite values).
SCARD_E_TIMEOUT = 0x8010000A
SCARD_E_NO_SMARTCARD = 0x8010000C
SCARD_F_COMM_ERROR = 0x80100013
SCARD_E_READER_UNAVAILABLE = 0x80100017
SCARD_E_NO_SERVICE = 0x8010001D
SCARD_E_SERVICE_STOPPED = 0x8010001E
SCARD_E_NO_READERS_AVAILABLE = 0x8010002E
SCARD_W_REMOVED_CARD = 0x80100069
SCARD_E_INVALID_HANDLE = 0x80100003
SCARD_E_UNKNOWN_READER = 0x80100009

_CONTEXT_LOST = {
    SCARD_F_COMM_ERROR,
    SCARD_E_NO_SERVICE,
    SCARD_E_SERVICE_STOPPED,
    SCARD_E_INVALID_HANDLE,
}
_CARD_GONE = {SCARD_W_REMOVED_CARD, SCARD_E_NO_SMARTCARD, SCARD_E_READER_UNAVAILABLE}

GET_UID = bytes.fromhex("FFCA000000")
TRANSPARENT_START = bytes.fromhex("FFC2000002810000")
TRANSPARENT_END = bytes.fromhex("FFC2000002820000")
TRANSPARENT_ISO15693_L3 = bytes.fromhex("FFC20002048F020203")

ISO_FLAGS_ADDRESSED = 0x22  # addressed + high data rate


class PcscUnavailable(DeviceError):
    """pcscd is not running or not reachable (or pyscard is not installed)."""


def _code(hresult: int) -> int:
    return hresult & 0xFFFFFFFF


def _scard():
    try:
        from smartcard import scard  # lazy: pyscard is optional
    except ImportError as exc:
        raise PcscUnavailable(
            "pyscard is not installed; install the kiosk with the [pcsc] extra"
        ) from exc
    return scard


def error_message(hresult: int) -> str:
    try:
        return f"{_scard().SCardGetErrorMessage(hresult)} (0x{_code(hresult):08X})"
    except Exception:
        # A driver boundary: the text is only decoration, the code below says it all.
        log.debug("no text for PC/SC code 0x%08X", _code(hresult), exc_info=True)
        return f"0x{_code(hresult):08X}"


@dataclass(frozen=True)
class CardStatus:
    """Whether a card sits on a reader, and its ATR."""

    reader: str
    present: bool
    atr: bytes = b""


class PcscContext:
    """One PC/SC context, re-established after pcscd restarts or the reader disappears."""

    def __init__(self) -> None:
        self._ctx = None
        self.lock = threading.RLock()

    def context(self):
        with self.lock:
            if self._ctx is None:
                scard = _scard()
                hresult, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if hresult != scard.SCARD_S_SUCCESS:
                    raise PcscUnavailable(
                        f"PC/SC service not available: {error_message(hresult)}; is pcscd running?"
                    )
                self._ctx = ctx
            return self._ctx

    def reset(self) -> None:
        with self.lock:
            ctx, self._ctx = self._ctx, None
            if ctx is not None:
                try:
                    _scard().SCardReleaseContext(ctx)
                except Exception:
                    # A driver boundary: a dead context may refuse to be released.
                    log.debug("releasing the PC/SC context failed", exc_info=True)

    def check(self, hresult: int, what: str) -> None:
        """DeviceError for a failed call; the context is dropped when pcscd went away."""
        if hresult == 0:
            return
        code = _code(hresult)
        if code in _CONTEXT_LOST:
            self.reset()
            raise PcscUnavailable(
                f"PC/SC {what} failed: {error_message(hresult)}; pcscd restarted or stopped"
            )
        if code in _CARD_GONE:
            raise TagNotFound(f"PC/SC {what}: no card on the reader ({error_message(hresult)})")
        if code == SCARD_E_TIMEOUT:
            raise DeviceTimeout(f"PC/SC {what} timed out")
        raise DeviceError(f"PC/SC {what} failed: {error_message(hresult)}")

    def readers(self) -> list[str]:
        scard = _scard()
        with self.lock:
            hresult, names = scard.SCardListReaders(self.context(), [])
            if _code(hresult) in (SCARD_E_NO_READERS_AVAILABLE,):
                return []
            self.check(hresult, "listing readers")
            return list(names)

    def find_reader(self, substring: str) -> str:
        names = self.readers()
        for name in names:
            if substring.lower() in name.lower():
                return name
        listed = ", ".join(names) or "none"
        raise DeviceError(
            f"no PC/SC reader matches {substring!r} (readers: {listed}); check the USB cable and the reader name in the configuration"
        )

    def status(self, reader: str, timeout_ms: int = 0) -> CardStatus:
        scard = _scard()
        with self.lock:
            hresult, states = scard.SCardGetStatusChange(
                self.context(), timeout_ms, [(reader, scard.SCARD_STATE_UNAWARE)]
            )
            if _code(hresult) == SCARD_E_TIMEOUT:
                return CardStatus(reader, False)
            self.check(hresult, f"status of {reader!r}")
        _name, state, atr = states[0]
        if state & (scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE):
            raise DeviceError(f"PC/SC reader {reader!r} is unavailable; check the USB cable")
        return CardStatus(
            reader,
            bool(state & scard.SCARD_STATE_PRESENT) and not state & scard.SCARD_STATE_MUTE,
            bytes(atr or b""),
        )

    def wait_for_change(self, reader: str, known_state: int, timeout_ms: int) -> tuple[int, bytes]:
        """Block up to timeout_ms for the reader's state to leave known_state; (new state, ATR)."""
        scard = _scard()
        hresult, states = scard.SCardGetStatusChange(
            self.context(), timeout_ms, [(reader, known_state)]
        )
        if _code(hresult) == SCARD_E_TIMEOUT:
            return known_state, b""
        self.check(hresult, f"waiting on {reader!r}")
        _name, state, atr = states[0]
        return state & ~scard.SCARD_STATE_CHANGED, bytes(atr or b"")


class CardConnection:
    """An open connection to the card on one reader."""

    def __init__(self, ctx: PcscContext, reader: str) -> None:
        scard = _scard()
        self.ctx = ctx
        self.reader = reader
        with ctx.lock:
            hresult, self.handle, self.protocol = scard.SCardConnect(
                ctx.context(),
                reader,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            ctx.check(hresult, f"connecting to the card on {reader!r}")

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """(response data, SW1SW2)."""
        scard = _scard()
        hresult, resp = scard.SCardTransmit(self.handle, self.protocol, list(apdu))
        self.ctx.check(hresult, f"APDU {apdu[:2].hex().upper()} on {self.reader!r}")
        if len(resp) < 2:
            raise ReaderFrameError(
                f"PC/SC card answered {bytes(resp).hex()} (no status word) on {self.reader!r}"
            )
        return bytes(resp[:-2]), resp[-2] << 8 | resp[-1]

    def close(self) -> None:
        scard = _scard()
        try:
            scard.SCardDisconnect(self.handle, scard.SCARD_LEAVE_CARD)
        except Exception:
            # A driver boundary: disconnecting a card that is gone can fail.
            log.debug("disconnecting the PC/SC card failed", exc_info=True)

    def uid(self) -> bytes:
        """The card UID as the reader delivers it (LSB first for ISO 15693, docs/protocols/rfid.md P12)."""
        data, sw = self.transmit(GET_UID)
        if sw != 0x9000 or not data:
            raise DeviceError(
                f"PC/SC reader {self.reader!r} did not give the card UID (SW {sw:04X})"
            )
        return data


def uid_from_pcsc(raw_uid: bytes, atr: bytes) -> bytes:
    """A PC/SC `FF CA` UID in MSB-first order: ISO 15693 cards deliver it LSB first (docs/protocols/rfid.md P12)."""
    # PC/SC part 3 storage-card ATR: 3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS ...; SS 0x0A/0x0B = ISO 15693
    if len(atr) > 12 and atr[7:12] == bytes.fromhex("A000000306") and atr[12] in (0x0A, 0x0B):
        return raw_uid[::-1]
    return raw_uid


def _sw_error(sw: int, what: str) -> DeviceError:
    if sw in (0x6A81, 0x6D00, 0x6E00):
        return NotSupported(f"{what} is not supported by this reader (SW {sw:04X})")
    if sw in (0x6282, 0x6A82):
        return DeviceError(f"{what}: block address outside the tag (SW {sw:04X})")
    return DeviceError(f"{what} failed (SW {sw:04X})")


def parse_tlvs(data: bytes) -> dict[int, bytes]:
    """BER-TLV objects of a transparent-exchange answer (one-byte tags are enough here)."""
    out: dict[int, bytes] = {}
    i = 0
    while i + 2 <= len(data):
        tag, n = data[i], data[i + 1]
        i += 2
        if n == 0x81 and i < len(data):
            n = data[i]
            i += 1
        if i + n > len(data):
            raise ReaderFrameError(f"transparent exchange answer is cut short: {data.hex(' ')}")
        out[tag] = data[i : i + n]
        i += n
    return out


def parse_iso15693_system_info(raw: bytes) -> SystemInfo:
    """An ISO 15693 Get System Information response (flags, info flags, UID LSB first, …)."""
    if len(raw) < 10:
        raise ReaderFrameError(f"ISO 15693 system information too short: {raw.hex(' ')}")
    info, uid = raw[1], raw[2:10][::-1].hex().upper()
    pos = 10
    dsfid = afi = icref = None
    size, count = 4, None
    try:
        if info & 0x01:
            dsfid = raw[pos]
            pos += 1
        if info & 0x02:
            afi = raw[pos]
            pos += 1
        if info & 0x04:
            count, size = raw[pos] + 1, (raw[pos + 1] & 0x1F) + 1
            pos += 2
        if info & 0x08:
            icref = raw[pos]
    except IndexError:
        raise ReaderFrameError(f"ISO 15693 system information ends early: {raw.hex(' ')}") from None
    return SystemInfo(
        uid=uid, dsfid=dsfid, afi=afi, block_size=size, block_count=count, ic_reference=icref
    )


class PcscReader(TagReader):
    """An ISO 15693 tag on a PC/SC reader (ACR1552U, OMNIKEY 5x22, …). PC/SC shows one card at a
    time, so inventory() reports at most one tag: this suits a single-item station, not a stack pad."""

    def __init__(
        self, name: str, *, timeout_s: float = 1.0, retries: int = 3, block_size: int = 4
    ) -> None:
        self.name = name
        self.url = f"pcsc:{name}"
        self.timeout_s = timeout_s
        self.retries = max(0, retries)
        self.block_size = block_size
        self.ctx = PcscContext()
        self._reader: str | None = None
        self._conn: CardConnection | None = None
        self._uid: str | None = None
        self._transparent: bool | None = None
        self._lock = threading.RLock()

    def _reader_name(self) -> str:
        if self._reader is None:
            self._reader = self.ctx.find_reader(self.name)
        return self._reader

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn, self._uid, self._transparent = None, None, None

    def _connect(self) -> CardConnection | None:
        """The connection to the card on the reader, or None when no card is there."""
        if self._conn is not None:
            return self._conn
        reader = self._reader_name()
        status = self.ctx.status(reader)
        if not status.present:
            return None
        conn = CardConnection(self.ctx, reader)
        self._conn = conn
        self._uid = uid_from_pcsc(conn.uid(), status.atr).hex().upper()
        return conn

    def _run(self, fn):
        last: DeviceError | None = None
        with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    return fn()
                except (PcscUnavailable, TagNotFound, DeviceTimeout) as exc:
                    last = exc
                    self._drop()
                    if isinstance(exc, PcscUnavailable):
                        self._reader = None
                    log.info("PC/SC reader %s: %s (attempt %d)", self.name, exc, attempt + 1)
            assert last is not None
            raise last

    def _card_for(self, uid: str) -> CardConnection:
        uid = normalize_uid(uid)
        conn = self._connect()
        if conn is None or self._uid != uid:
            raise TagNotFound(f"PC/SC reader {self.name}: tag {uid} is not on the reader")
        return conn

    def inventory(self) -> list[InventoryEntry]:
        def go():
            self._drop()  # a fresh look every round: the card may have been swapped
            conn = self._connect()
            return [] if conn is None else [InventoryEntry(uid=self._uid or "")]

        return self._run(go)

    def read_blocks(self, uid: str, first: int, count: int) -> bytes:
        check_blocks(first, count)

        def go():
            conn = self._card_for(uid)
            out = bytearray()
            for block in range(first, first + count):
                data, sw = conn.transmit(bytes([0xFF, 0xB0, 0x00, block, self.block_size]))
                if sw != 0x9000:
                    raise _sw_error(sw, f"reading block {block} of tag {uid}")
                if len(data) < self.block_size:
                    raise ReaderFrameError(
                        f"PC/SC reader returned {len(data)} bytes for block {block}, expected {self.block_size}"
                    )
                out += data[: self.block_size]
            return bytes(out)

        return self._run(go)

    def write_blocks(self, uid: str, first: int, data: bytes) -> None:
        if not data or len(data) % self.block_size:
            raise DeviceError(
                f"write of {len(data)} bytes is not whole {self.block_size}-byte blocks"
            )
        check_blocks(first, len(data) // self.block_size)

        def go():
            conn = self._card_for(uid)
            for i in range(0, len(data), self.block_size):
                block = first + i // self.block_size
                apdu = (
                    bytes([0xFF, 0xD6, 0x00, block, self.block_size])
                    + data[i : i + self.block_size]
                )
                _, sw = conn.transmit(apdu)
                if sw != 0x9000:
                    err = _sw_error(sw, f"writing block {block} of tag {uid}")
                    raise err if isinstance(err, NotSupported) else TagWriteError(str(err))

        self._run(go)

    # -- transparent exchange (PC/SC 2.02 part 3) ------------------------------------------

    def _air(self, conn: CardConnection, frame: bytes) -> bytes | None:
        """Send a raw ISO 15693 frame; the tag's raw answer, or None when the tag stayed silent."""
        _, sw = conn.transmit(TRANSPARENT_START)
        if sw != 0x9000:
            self._transparent = False
            raise NotSupported(
                f"AFI and EAS are not supported by this reader: no PC/SC transparent exchange (SW {sw:04X})"
            )
        try:
            _, sw = conn.transmit(TRANSPARENT_ISO15693_L3)
            if sw != 0x9000:
                raise NotSupported(
                    f"this reader cannot switch its transparent exchange to ISO 15693 (SW {sw:04X})"
                )
            # timer TLV 5F 46: 20 ms, so slow EEPROM writes are not reported as timeouts (docs/protocols/rfid.md P16)
            body = (
                bytes([0x5F, 0x46, 0x04])
                + (20000).to_bytes(4, "little")
                + bytes([0x95, len(frame)])
                + frame
            )
            data, sw = conn.transmit(bytes([0xFF, 0xC2, 0x00, 0x01, len(body)]) + body + b"\x00")
            if sw != 0x9000:
                raise DeviceError(f"transparent exchange failed (SW {sw:04X})")
            tlv = parse_tlvs(data)
            status = tlv.get(0xC0, b"\x00\x90\x00")
            if 0x97 not in tlv:
                if status[:1] != b"\x00":
                    return None  # no answer from the tag
                raise ReaderFrameError(
                    f"transparent exchange answer without tag data: {data.hex(' ')}"
                )
            return tlv[0x97]
        finally:
            try:
                conn.transmit(TRANSPARENT_END)
            except DeviceError as exc:
                log.info(
                    "PC/SC reader %s: ending the transparent session failed: %s", self.name, exc
                )

    def _iso(self, uid: str, cmd: bytes, payload: bytes = b"") -> bytes | None:
        uid = normalize_uid(uid)
        frame = bytes([ISO_FLAGS_ADDRESSED]) + cmd + bytes.fromhex(uid)[::-1] + payload

        def go():
            conn = self._card_for(uid)
            return self._air(conn, frame)

        return self._run(go)

    @staticmethod
    def _check_air(raw: bytes | None, what: str) -> bytes:
        if raw is None:
            raise TagNotFound(f"{what}: the tag did not answer; is the item still on the reader?")
        if not raw:
            raise ReaderFrameError(f"{what}: empty answer from the tag")
        if raw[0] & 0x01:
            code = raw[1] if len(raw) > 1 else 0x0F
            raise TagWriteError(
                f"{what}: ISO 15693 error 0x{code:02X}; the tag may be locked or password-protected"
            )
        return raw

    def read_system_info(self, uid: str) -> SystemInfo:
        raw = self._check_air(self._iso(uid, b"\x2b"), f"reading system information of tag {uid}")
        return parse_iso15693_system_info(raw)

    def write_afi(self, uid: str, afi: int) -> None:
        self._check_air(
            self._iso(uid, b"\x27", bytes([check_afi(afi)])), f"writing the AFI of tag {uid}"
        )

    def set_eas(self, uid: str, on: bool) -> None:
        self._check_air(
            self._iso(uid, bytes([0xA2 if on else 0xA3, 0x04])), f"setting EAS of tag {uid}"
        )

    def eas(self, uid: str) -> bool | None:
        """EAS Alarm is answered only by tags with EAS set; the card connection proves presence."""
        raw = self._iso(uid, bytes([0xA5, 0x04]))
        return raw is not None and len(raw) > 0 and not raw[0] & 0x01

    def close(self) -> None:
        with self._lock:
            self._drop()
            self.ctx.reset()

    def reopen(self) -> None:
        with self._lock:
            self.close()
            self._reader = None
