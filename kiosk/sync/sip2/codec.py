"""SIP2 message codec: a strict encoder and a lenient decoder for 3M SIP 2.00 frames.

The decoder accepts what real ACSs send (CRLF, missing or lower-case trailers, code-point
checksums, stray delimiters, padded fields, short fixed parts) and raises Sip2FormatError
for anything it cannot make sense of; the encoder only ever writes spec-conformant frames.
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiosk.errors import KioskError

log = logging.getLogger(__name__)


class Sip2Error(KioskError):
    """Anything that went wrong talking SIP2 to the library system."""


class Sip2FormatError(Sip2Error):
    """Bytes or text that are not a SIP2 message, or a message that cannot be encoded."""


class Sip2LinkError(Sip2Error):
    """The ACS could not be reached or did not answer within the retry budget.

    `maybe_delivered` is True when the request was written and no valid answer came back:
    the ACS may have applied it, so the transaction is in doubt and must be reconciled.
    """

    def __init__(self, message: str, *, maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.maybe_delivered = maybe_delivered


_DATE = 18

FIXED_FIELDS: dict[str, tuple[tuple[str, int], ...]] = {
    "93": (("uid_algorithm", 1), ("pwd_algorithm", 1)),
    "94": (("ok", 1),),
    "99": (("status_code", 1), ("max_print_width", 3), ("protocol_version", 4)),
    "98": (
        ("online_status", 1),
        ("checkin_ok", 1),
        ("checkout_ok", 1),
        ("acs_renewal_policy", 1),
        ("status_update_ok", 1),
        ("offline_ok", 1),
        ("timeout_period", 3),
        ("retries_allowed", 3),
        ("date_time_sync", _DATE),
        ("protocol_version", 4),
    ),
    "23": (("language", 3), ("transaction_date", _DATE)),
    "24": (("patron_status", 14), ("language", 3), ("transaction_date", _DATE)),
    "63": (("language", 3), ("transaction_date", _DATE), ("summary", 10)),
    "64": (
        ("patron_status", 14),
        ("language", 3),
        ("transaction_date", _DATE),
        ("hold_items_count", 4),
        ("overdue_items_count", 4),
        ("charged_items_count", 4),
        ("fine_items_count", 4),
        ("recall_items_count", 4),
        ("unavailable_holds_count", 4),
    ),
    "11": (
        ("sc_renewal_policy", 1),
        ("no_block", 1),
        ("transaction_date", _DATE),
        ("nb_due_date", _DATE),
    ),
    "12": (
        ("ok", 1),
        ("renewal_ok", 1),
        ("magnetic_media", 1),
        ("desensitize", 1),
        ("transaction_date", _DATE),
    ),
    "09": (("no_block", 1), ("transaction_date", _DATE), ("return_date", _DATE)),
    "10": (
        ("ok", 1),
        ("resensitize", 1),
        ("magnetic_media", 1),
        ("alert", 1),
        ("transaction_date", _DATE),
    ),
    "29": (
        ("third_party_allowed", 1),
        ("no_block", 1),
        ("transaction_date", _DATE),
        ("nb_due_date", _DATE),
    ),
    "30": (
        ("ok", 1),
        ("renewal_ok", 1),
        ("magnetic_media", 1),
        ("desensitize", 1),
        ("transaction_date", _DATE),
    ),
    "65": (("transaction_date", _DATE),),
    "66": (("ok", 1), ("renewed_count", 4), ("unrenewed_count", 4), ("transaction_date", _DATE)),
    "17": (("transaction_date", _DATE),),
    "18": (
        ("circulation_status", 2),
        ("security_marker", 2),
        ("fee_type", 2),
        ("transaction_date", _DATE),
    ),
    "19": (("transaction_date", _DATE),),
    "20": (("item_properties_ok", 1), ("transaction_date", _DATE)),
    "35": (("transaction_date", _DATE),),
    "36": (("end_session", 1), ("transaction_date", _DATE)),
    "37": (("transaction_date", _DATE), ("fee_type", 2), ("payment_type", 2), ("currency_type", 3)),
    "38": (("payment_accepted", 1), ("transaction_date", _DATE)),
    "15": (("hold_mode", 1), ("transaction_date", _DATE)),
    "16": (("ok", 1), ("available", 1), ("transaction_date", _DATE)),
    "01": (("card_retained", 1), ("transaction_date", _DATE)),
    "25": (("transaction_date", _DATE),),
    "26": (("patron_status", 14), ("language", 3), ("transaction_date", _DATE)),
    "96": (),
    "97": (),
}

_FIXED_LENGTH = {cmd: sum(w for _, w in spec) for cmd, spec in FIXED_FIELDS.items()}
_FIXED_NAMES = {cmd: tuple(n for n, _ in spec) for cmd, spec in FIXED_FIELDS.items()}


@dataclass(frozen=True)
class _Layout:
    """Where a command's fixed fields stand when its fixed part has the spec's length."""

    end: int  # where the identified fields start
    cuts: tuple[tuple[str, int, int], ...]  # name, start, end in the message text
    date: int  # where the one transaction date starts, -1 when not exactly one
    date_index: int  # which fixed field it is, -1 when not exactly one
    after_date: int  # how many characters the fixed fields after it take
    # The fields cut from the left of a part of any length, as (name, start, end) in the part,
    # the last one to the part's end (end None): all of them, and those after the date.
    left: tuple[tuple[str, int, int | None], ...]
    left_after_date: tuple[tuple[str, int, int | None], ...]


def _left_cuts(spec: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int, int | None], ...]:
    cuts: list[tuple[str, int, int | None]] = []
    at = 0
    for name, width in spec:
        cuts.append((name, at, at + width))
        at += width
    if cuts:
        cuts[-1] = (cuts[-1][0], cuts[-1][1], None)
    return tuple(cuts)


def _layout(spec: tuple[tuple[str, int], ...]) -> _Layout:
    cuts, at = [], 2
    for name, width in spec:
        cuts.append((name, at, at + width))
        at += width
    dates = [i for i, (_, width) in enumerate(spec) if width == _DATE]
    if len(dates) != 1:
        return _Layout(at, tuple(cuts), -1, -1, 0, _left_cuts(spec), ())
    d = dates[0]
    return _Layout(
        at,
        tuple(cuts),
        cuts[d][1],
        d,
        sum(w for _, w in spec[d + 1 :]),
        _left_cuts(spec),
        _left_cuts(spec[d + 1 :]),
    )


_LAYOUTS = {cmd: _layout(spec) for cmd, spec in FIXED_FIELDS.items()}

# Standard field ids (spec) plus extensions kiosks commonly see (docs/protocols/sip2.md §8, §9); used to find
# where identified fields start when an ACS sends a fixed part of the wrong length.
KNOWN_FIELD_IDS = frozenset(
    "AA AB AC AD AE AF AG AH AJ AL AM AN AO AP AQ AS AT AU AV AY AZ "
    "BD BE BF BG BH BI BK BL BM BN BO BP BQ BR BS BT BU BV BW BX BY BZ "
    "CA CB CC CD CF CG CH CI CJ CK CL CM CN CO CP CQ "
    "CR CS CT CV CY DA PB PC PI PA ZY PT MA MB MC BC PE PS".split()
)

# The known ids by first letter, for one search instead of a look-up at every position.
_KNOWN_ID_RE = re.compile(
    "|".join(
        first + "[" + "".join(sorted(f[1] for f in KNOWN_FIELD_IDS if f[0] == first)) + "]"
        for first in sorted({f[0] for f in KNOWN_FIELD_IDS})
    )
)
_CONTROL = ("96", "97")
# Notes a decoded message may carry (`Message.notes`); kiosk/sync/sip2/fastpath.py writes the same.
NOTE_CODEPOINTS = "checksum over code points, not bytes"
NOTE_LAST_FIELD = "last field has no delimiter"
NOTE_STRAY = "stray delimiter"
_COMMAND_RE = re.compile(r"[0-9A-Z]{2}\Z")
_FIELD_ID_RE = re.compile(r"[A-Z0-9]{2}\Z")
_ID_LIKE_RE = re.compile(r"[A-Z][A-Z0-9]\Z")
_CHECKSUM_RE = re.compile(rb"AZ([0-9A-Fa-f]{4})\Z")
_SEQUENCE_RE = re.compile(rb"AY([0-9])\|?\Z")


def _tail_search(pattern: re.Pattern[bytes], data: bytes, width: int) -> re.Match[bytes] | None:
    # An end-anchored search() would try every offset; only the last `width` bytes can match.
    start = max(0, len(data) - width)
    return pattern.search(data, start)


MAX_VALUE_BYTES = 255  # the spec's limit on one variable-length field


@dataclass
class Message:
    """One SIP2 message: command id, fixed fields by name, identified fields in wire order."""

    command: str
    fixed: dict[str, str] = field(default_factory=dict)
    fields: list[tuple[str, str]] = field(default_factory=list)
    sequence: int | None = None
    checksum: str | None = None
    checksum_ok: bool | None = None
    # "bytes" or "codepoints" when a checksum verified, else None (docs/protocols/sip2.md §12.1)
    checksum_variant: str | None = None
    # What the lenient decoder had to overlook, for the wire log and forensics.
    notes: list[str] = field(default_factory=list)

    def get(self, fid: str, default: str = "") -> str:
        """The first value of field `fid`, or `default` when absent."""
        for key, value in self.fields:
            if key == fid:
                return value
        return default

    def get_all(self, fid: str) -> list[str]:
        """Every value of a (repeatable) field, in wire order."""
        return [value for key, value in self.fields if key == fid]

    def has(self, fid: str) -> bool:
        return any(key == fid for key, _ in self.fields)

    def to_json(self) -> dict[str, Any]:
        grouped: dict[str, list[str]] = {}
        for key, value in self.fields:
            grouped.setdefault(key, []).append(value)
        return {
            "command": self.command,
            "fixed": dict(self.fixed),
            "fields": grouped,
            "sequence": self.sequence,
            "checksum": self.checksum,
            "checksum_ok": self.checksum_ok,
        }


def message(
    command: str,
    fixed: dict[str, str] | None = None,
    fields: list[tuple[str, str]] | None = None,
    **fixed_kwargs: str,
) -> Message:
    """Build a message; fixed fields may come as a dict and/or keywords, and are kept in spec order."""
    merged = dict(fixed or {})
    merged.update(fixed_kwargs)
    names = _FIXED_NAMES.get(command, ())
    ordered = {name: merged.pop(name) for name in names if name in merged}
    ordered.update(merged)  # unknown names stay at the end; encode() rejects them
    return Message(command=command, fixed=ordered, fields=list(fields or []))


def checksum(prefix: bytes | bytearray) -> str:
    """The SIP2 checksum of `prefix` (every byte up to and including `AZ`): 4 upper-case hex digits."""
    return f"{(-byte_sum(prefix)) & 0xFFFF:04X}"


# zlib's Adler-32 keeps 1 + the sum of the bytes, modulo 65521, in its low half: the plain sum
# while that stays below 65520, which 256 bytes of any value or 515 ASCII bytes cannot reach.
_ADLER_EXACT = 65519 // 255
_ADLER_EXACT_ASCII = 65519 // 127


def byte_sum(data: bytes | bytearray) -> int:
    """sum(data), the sum SIP2's checksum is made of, summed in C where that is exact."""
    if len(data) <= _ADLER_EXACT or (len(data) <= _ADLER_EXACT_ASCII and data.isascii()):
        return (zlib.adler32(data) & 0xFFFF) - 1
    return sum(data)


def sip_date(dt: datetime) -> str:
    """`YYYYMMDD    HHMMSS` in local time (four blanks for the zone, the spec's preferred form)."""
    if dt.tzinfo is not None:
        dt = dt.astimezone()
    return dt.strftime("%Y%m%d    %H%M%S")


_LOOSE_DATE_RE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:[ T]+(\d{2}):?(\d{2})(?::?(\d{2}))?)?")


def parse_sip_date(text: str) -> datetime | None:
    """Best-effort parse of a SIP2 date (18-char form, or the ISO-like forms seen in `AH`).

    Returns a naive local datetime, or an aware UTC one when the zone is `   Z`;
    None for blanks, zeros or anything unrecognisable (never raises).
    """
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s or set(s) <= {"0", " "}:
        return None
    try:
        if len(text) == _DATE and text[:8].isdigit() and text[12:].isdigit():
            dt = datetime.strptime(text[:8] + text[12:], "%Y%m%d%H%M%S")
            zone = text[8:12]
            if zone.endswith("Z") and not zone[:3].strip():
                return dt.replace(tzinfo=UTC)
            return dt
        m = _LOOSE_DATE_RE.match(s)
        if m:
            y, mo, d, h, mi, sec = m.groups()
            return datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(sec or 0))
    except ValueError:
        return None
    return None


def display(value: str) -> str:
    """A field value for the screen or a receipt: Koha's `&#124;` escape undone, NFC-normalised.

    Only for display; the wire value stays byte-exact because the checksum covers it.
    """
    return unicodedata.normalize("NFC", value.replace("&#124;", "|"))


# --- encoder -------------------------------------------------------------------------------


def _clean_value(fid: str, value: str, encoding: str, delimiter: str) -> bytes:
    """The wire bytes of one value, exactly as given, or Sip2FormatError.

    A value holding the delimiter, CR, LF or NUL would open a new field or frame, and one over
    255 bytes breaks the spec's field limit; altering either would send another identifier
    than the one the journal keeps (a PIN ``7391|54`` sent as ``739154``), so both are refused.
    """
    if not isinstance(value, str):
        raise Sip2FormatError(f"field {fid}: value must be text, got {type(value).__name__}")
    if delimiter in value or "\r" in value or "\n" in value or "\0" in value:
        raise Sip2FormatError(
            f"field {fid}: value contains the field delimiter {delimiter!r}, CR, LF or NUL, "
            "which SIP2 cannot carry; it is refused, not altered"
        )
    try:
        data = value.encode(encoding)
    except UnicodeEncodeError as exc:
        raise Sip2FormatError(
            f"field {fid}: {value[exc.start : exc.end]!r} cannot be written in the ACS encoding {encoding}; "
            "set sip2.encoding to utf-8 or cp1257"
        ) from None
    if len(data) > MAX_VALUE_BYTES:
        raise Sip2FormatError(
            f"field {fid}: value is {len(data)} bytes in {encoding}; SIP2 fields hold at most "
            f"{MAX_VALUE_BYTES}, and a shortened value would name something else"
        )
    return data


_GOOD_IDS: set[str] = set()


def _check_id(cmd: str, fid: object) -> None:
    if not isinstance(fid, str) or not _FIELD_ID_RE.match(fid) or fid in ("AY", "AZ"):
        raise Sip2FormatError(f"message {cmd}: {fid!r} is not a field id (two characters A-Z/0-9)")
    _GOOD_IDS.add(fid)


def _encode_fields(cmd: str, fields: list[tuple[str, str]], encoding: str, delimiter: str) -> bytes:
    # Fast path: one join and one encode for the usual short, clean values.
    parts: list[str] = []
    clean = True
    for fid, value in fields:
        if fid not in _GOOD_IDS:
            _check_id(cmd, fid)
        if value.__class__ is not str or len(value) > 63:
            clean = False
            break
        parts += (fid, value, delimiter)
    if clean:
        text = "".join(parts)
        if (
            text.count(delimiter) == len(fields)
            and "\r" not in text
            and "\n" not in text
            and "\0" not in text
        ):
            try:
                return text.encode(encoding)
            except UnicodeEncodeError:
                pass  # the slow path names the field
    out = bytearray()
    delim = delimiter.encode(encoding)
    for fid, value in fields:
        if fid not in _GOOD_IDS:
            _check_id(cmd, fid)
        out += fid.encode("ascii")
        out += _clean_value(fid, value, encoding, delimiter)
        out += delim
    return bytes(out)


def encode(
    msg: Message,
    *,
    encoding: str = "utf-8",
    sequence: int | None = None,
    error_detection: bool = True,
    terminator: str = "\r",
    delimiter: str = "|",
) -> bytes:
    """Encode a message to wire bytes, terminator included.

    With error detection the trailer is `AY<seq>AZ<checksum>` (just `AZ<checksum>` for 96/97 or
    when no sequence is known). Raises Sip2FormatError for a message that breaks the spec.
    """
    cmd = msg.command
    if not isinstance(cmd, str) or not _COMMAND_RE.match(cmd):
        raise Sip2FormatError(f"command id must be two characters 0-9/A-Z, got {cmd!r}")
    if terminator not in ("\r", "\r\n"):
        raise Sip2FormatError(f"terminator must be CR or CRLF, got {terminator!r}")
    if len(delimiter) != 1 or delimiter in "\r\n\0":
        raise Sip2FormatError(f"field delimiter must be one printable character, got {delimiter!r}")
    out = bytearray(cmd.encode("ascii"))
    spec = FIXED_FIELDS.get(cmd)
    fixed = msg.fixed
    if spec is None:
        for name, value in fixed.items():
            out += _clean_value(name, value, encoding, delimiter)
    else:
        if len(fixed) != len(spec) or any(name not in fixed for name, _ in spec):
            missing = [n for n, _ in spec if n not in fixed]
            extra = [n for n in fixed if n not in _FIXED_NAMES[cmd]]
            raise Sip2FormatError(
                f"message {cmd}: fixed fields missing {missing} / unknown {extra}; "
                f"expected {list(_FIXED_NAMES[cmd])}"
            )
        values = [fixed[name] for name, _ in spec]
        text = "".join(values) if all(isinstance(v, str) for v in values) else None
        if (
            text is None
            or len(text) != _FIXED_LENGTH[cmd]
            or not text.isascii()
            or delimiter in text
            or "\r" in text
            or "\n" in text
            or "\0" in text
            or any(len(v) != w for v, (_, w) in zip(values, spec, strict=True))
        ):
            for name, width in spec:
                value = fixed[name]
                if not isinstance(value, str) or len(value) != width or not value.isascii():
                    raise Sip2FormatError(
                        f"message {cmd}: fixed field {name} must be {width} ASCII characters, got {value!r}"
                    )
                if delimiter in value or "\r" in value or "\n" in value or "\0" in value:
                    raise Sip2FormatError(
                        f"message {cmd}: fixed field {name} contains a control character"
                    )
        assert text is not None  # every fixed value was checked to be text just above
        out += text.encode("ascii")
    if cmd in _CONTROL:
        if msg.fields:
            raise Sip2FormatError(f"message {cmd} carries no fields (only the AZ checksum)")
    else:
        out += _encode_fields(cmd, msg.fields, encoding, delimiter)
    if error_detection:
        seq = msg.sequence if sequence is None else sequence
        if seq is not None and cmd not in _CONTROL:
            if not isinstance(seq, int) or not 0 <= seq <= 9:
                raise Sip2FormatError(f"sequence number must be a digit 0-9, got {seq!r}")
            out += b"AY%d" % seq
        out += b"AZ"
        out += checksum(out).encode("ascii")
    out += terminator.encode("ascii")
    return bytes(out)


# --- decoder -------------------------------------------------------------------------------


def _to_bytes(data: bytes | str, encoding: str) -> tuple[bytes, str]:
    if isinstance(data, str):
        try:
            return data.encode(encoding), encoding
        except UnicodeError:
            return data.encode("utf-8", errors="surrogatepass"), "utf-8"
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), encoding
    raise Sip2FormatError(f"expected bytes or text, got {type(data).__name__}")


def _fixed_end(text: str, expected: int, delimiter: str) -> int:
    """Where the identified fields start, allowing for ACSs that send a short or long fixed part."""
    n = len(text)
    first_delim = text.find(delimiter, 2)
    if first_delim < 0:
        first_delim = n
    if expected == n or expected == first_delim:
        return expected
    if expected < first_delim and _ID_LIKE_RE.match(text[expected : expected + 2]):
        return expected
    # The first field's id lies before the first delimiter; a known id there marks the start.
    known = _KNOWN_ID_RE.search(text, 2, min(first_delim, n - 1) + 1)
    if known is not None:
        return known.start()
    # Fixed fields never hold the delimiter: a short part followed by a stray one ends before it.
    return min(expected, first_delim)


_STRICT_DATE_RE = re.compile(r"\d{8}[ 0-9A-Z]{4}\d{6}\Z")
# A transaction date whose zone is not the four blanks: shorter (one blank, a TAB) or longer.
# Its date digits are the last eight of a run of digits (a non-digit follows them): the search
# takes each run whole, from its first digit, instead of trying every place (group 1: the run,
# group 2: the zone and the time).
_SHIFTED_DATE_RE = re.compile(r"(?<!\d)(\d{8,}+)(?=(\D{1,4}\d{6}))")
# The same date where the widths put it (its zone another width): the closest there can be.
_SHIFTED_DATE_AT_RE = re.compile(r"\d{8}\D{1,4}\d{6}")


def _shifted_dates(text: str, limit: int) -> list[tuple[int, int]]:
    """Where each transaction date of text[2:limit] with a zone of another width starts and ends."""
    # In a copy that starts at the fixed part: a digit of the command does not lengthen a run.
    return [(m.end(1) - 6, m.end(2) + 2) for m in _SHIFTED_DATE_RE.finditer(text[2:limit])]


def _closest_date(
    text: str,
    dates: list[tuple[int, int]],
    layout: _Layout,
    end: int,
    limit: int,
    delimiter: str,
) -> tuple[int, int, int] | None:
    """Of `dates` (start, end), the plausible one closest to where the widths put the date, with
    where the fixed part then ends; None when none is plausible."""
    start = layout.date
    exact = end == layout.end
    best: tuple[int, int, int] | None = None
    for ds, de in dates:
        new_end = de + layout.after_date
        # The realigned part must end where a field (or a stray delimiter) plainly begins; when
        # the widths already gave a plausible end, only a small shift is believable.
        if new_end > limit or new_end >= len(text):
            continue
        if text[new_end] != delimiter and text[new_end : new_end + 2] not in KNOWN_FIELD_IDS:
            continue
        if exact and (abs(ds - start) > 4 or abs(new_end - end) > 4):
            continue
        if best is None or abs(ds - start) < abs(best[0] - start):
            best = (ds, de, new_end)
    return best


def _split_fixed(
    text: str, command: str, end: int, delimiter: str
) -> tuple[dict[str, str], int, bool]:
    """Cut the fixed part text[2:end] into named fields; realign on the date when it is misplaced.

    ACSs hand-build fixed parts: a zone of one blank or a TAB instead of four blanks, or a patron
    status one character short, shift every later field. When the date is not where the widths
    put it but is found nearby, the fields before it are read right-aligned against it and the
    fields after it from its end, which is how a person reads such a message.
    Returns the fields, where the identified fields start, and whether the part was realigned.
    """
    layout = _LAYOUTS[command]
    start = layout.date
    exact = end == layout.end
    if exact and (
        start < 0
        or _STRICT_DATE_RE.match(text, start, start + _DATE)
        or text[end : end + 2] in KNOWN_FIELD_IDS
    ):  # the common case: the spec's length, the date where the widths put it
        return {name: text[a:b] for name, a, b in layout.cuts}, end, False
    if start < 0:
        return _cut_left(text[2:end], layout.left), end, False
    first_delim = text.find(delimiter, 2)
    limit = len(text) if first_delim < 0 else first_delim
    # A plausible date where the widths put it is the closest: every run of digits is searched
    # only when there is none.
    at_spec = _SHIFTED_DATE_AT_RE.match(text, start, limit)
    best = None
    if at_spec is not None:
        best = _closest_date(text, [(start, at_spec.end())], layout, end, limit, delimiter)
    if best is None:
        best = _closest_date(text, _shifted_dates(text, limit), layout, end, limit, delimiter)
    if best is None or best == (start, start + _DATE, end):
        return _cut_left(text[2:end], layout.left), end, False
    ds, de, new_end = best
    spec = FIXED_FIELDS[command]
    d = layout.date_index
    # The fields before the date, right-aligned against it (the first takes what is left).
    before: list[str] = []
    right = ds - 2
    for i in range(d - 1, 0, -1):
        left = max(0, right - spec[i][1])
        before.append(text[2 + left : 2 + right])
        right = left
    if d:
        before.append(text[2 : 2 + right])
    fixed = dict(zip([name for name, _ in spec[:d]], reversed(before), strict=True))
    fixed[spec[d][0]] = text[ds:de]
    fixed.update(_cut_left(text[de:new_end], layout.left_after_date))
    return fixed, new_end, True


def identified_start(text: str, delimiter: str = "|") -> int:
    """Where the identified fields of a message's text start, read as decode() reads it.

    `text` is the message without its terminator; for an unknown command this is 2.
    """
    spec = FIXED_FIELDS.get(text[:2])
    if not spec:
        return min(2, len(text))
    end = _fixed_end(text, 2 + _FIXED_LENGTH[text[:2]], delimiter)
    return _split_fixed(text, text[:2], end, delimiter)[1]


def _cut_left(part: str, cuts: tuple[tuple[str, int, int | None], ...]) -> dict[str, str]:
    """Fields by width from the left (_Layout.left); the last one takes whatever is left over."""
    return {name: part[a:b] for name, a, b in cuts}


def _sequence_in_place(
    before: bytes, delimiter: str, encoding: str, *, lenient: bool
) -> re.Match[bytes] | None:
    """The `AY<digit>` at the end of `before` (the frame up to its checksum) when it stands where
    a sequence number stands: at the start of a field, not at the end of a field's value.

    `AFPlease return the item to BAY7|` ends in `AY7|` but that is the AF value and its
    delimiter, so a sequence number must follow a delimiter or the fixed part. `lenient` (a
    checksum follows) also takes `...textAY7AZ`: an ACS that does not terminate its last field
    before the trailer, or sends a short fixed part (fixed fields hold no `AY<digit>` ending).
    """
    s = _tail_search(_SEQUENCE_RE, before, 4)
    if s is None:
        return None
    try:
        delim = delimiter.encode(encoding)
    except (UnicodeError, LookupError):
        delim = delimiter.encode("utf-8", errors="replace")
    start = s.start()
    fixed_end = 2 + _FIXED_LENGTH.get(before[:2].decode("ascii", errors="replace"), 0)
    at_field_start = before[:start].endswith(delim) or start == fixed_end
    if at_field_start:
        return s
    if not lenient or s.group(0).endswith(b"|") or start < 2:
        return None  # the end of a value followed by its delimiter (or no checksum to vouch)
    return s


@functools.cache
def _well_formed_fields(delimiter: str) -> re.Pattern[str]:
    """Identified fields that each start with an id and end with the delimiter."""
    d = re.escape(delimiter)
    return re.compile(rf"(?:[A-Z0-9]{{2}}[^{d}]*{d})+")


def decode(data: bytes | str, *, encoding: str = "utf-8", delimiter: str = "|") -> Message:
    """Decode one message (with or without its terminator), leniently (docs/protocols/sip2.md §12, §14.3).

    Never raises anything but Sip2FormatError. Checksums are verified over the wire bytes,
    then over code points; the result is in `checksum_ok` / `checksum_variant`.
    """
    raw, enc = _to_bytes(data, encoding)
    notes: list[str] = []
    # Framing: CR or CRLF at the end, a stray LF (the tail of a previous CRLF) at the start.
    frame = raw.strip(b"\r\n")
    if not frame:
        raise Sip2FormatError("empty message")
    if b"\r" in frame or b"\n" in frame:
        raise Sip2FormatError("more than one message (CR or LF inside the frame)")
    if b"\0" in frame:
        raise Sip2FormatError("NUL byte inside the message")

    sequence: int | None = None
    cs: str | None = None
    cs_ok: bool | None = None
    variant: str | None = None
    body = frame
    m = _tail_search(_CHECKSUM_RE, frame, 6)
    if m is None and frame.endswith(b" "):
        stripped = frame.rstrip(b" ")
        m = _tail_search(_CHECKSUM_RE, stripped, 6)
        if m is not None:
            frame = stripped
            notes.append("trailing spaces after the checksum")
    if m is not None:
        cs = m.group(1).decode("ascii")
        if cs != cs.upper():
            notes.append("lower-case checksum")
            cs = cs.upper()
        prefix = frame[: m.start() + 2]
        before = frame[: m.start()]
        s = _sequence_in_place(before, delimiter, enc, lenient=True)
        if s is not None:
            sequence = int(s.group(1))
            body = before[: s.start()]
        else:
            body = before
        value = int(cs, 16)
        if (byte_sum(prefix) + value) & 0xFFFF == 0:
            cs_ok, variant = True, "bytes"
        elif prefix.isascii():  # code points are the bytes: the same sum, the same mismatch
            cs_ok = False
        else:
            points = sum(map(ord, prefix.decode(enc, errors="replace")))
            if (points + value) & 0xFFFF == 0:
                cs_ok, variant = True, "codepoints"
                notes.append(NOTE_CODEPOINTS)
            else:
                cs_ok = False
    else:
        s = _sequence_in_place(frame, delimiter, enc, lenient=False)
        if s is not None and len(frame) > 3 + 2:
            sequence = int(s.group(1))
            body = frame[: s.start()]
            notes.append("sequence number without checksum")

    text = body.decode(enc, errors="replace")
    if "\ufffd" in text and not (isinstance(data, str) and "\ufffd" in data):
        notes.append(f"bytes not valid in {enc} replaced")
        log.warning("SIP2 message has bytes that are not valid %s; replaced", enc)
    if len(text) < 2:
        raise Sip2FormatError(f"message too short for a command id: {text!r}")
    command = text[:2]
    if not _COMMAND_RE.match(command):
        raise Sip2FormatError(f"no SIP2 command id at the start of the message: {command!r}")

    fixed: dict[str, str] = {}
    pos = 2
    spec = FIXED_FIELDS.get(command)
    if spec:
        expected = 2 + _FIXED_LENGTH[command]
        end = _fixed_end(text, expected, delimiter)
        fixed, end, realigned = _split_fixed(text, command, end, delimiter)
        if end != expected:
            notes.append(f"fixed part is {end - 2} characters, expected {expected - 2}")
        if realigned:
            notes.append("fixed fields realigned on the transaction date")
        pos = end
    elif spec is None:
        notes.append(f"unknown command {command}")

    fields: list[tuple[str, str]] = []
    if pos < len(text):
        if command in _CONTROL:
            notes.append(f"text after a {command}: {text[pos:]!r}")
        elif _well_formed_fields(delimiter).fullmatch(text, pos):
            # The common case: every field has its id and its delimiter, nothing to overlook.
            fields = [(chunk[:2], chunk[2:]) for chunk in text[pos:-1].split(delimiter)]
        else:
            parts = text[pos:].split(delimiter)
            last = parts.pop()
            if last:
                # Unterminated final field (no delimiter before the trailer); Spydus pads BX with blanks.
                parts.append(last.rstrip(" "))
                notes.append(NOTE_LAST_FIELD)
            for i, chunk in enumerate(parts):
                if not chunk:
                    if i == 0 or i == len(parts) - 1:
                        notes.append(NOTE_STRAY)
                        continue
                    notes.append("empty field")
                    continue
                if fields and len(chunk) >= 2 and not _FIELD_ID_RE.match(chunk[:2]):
                    # No field id can start like this (ids are upper-case letters and digits):
                    # the delimiter was part of the previous value, as in an e-mail "a|b@c".
                    prev_fid, prev_value = fields[-1]
                    fields[-1] = (prev_fid, prev_value + delimiter + chunk)
                    notes.append(f"delimiter inside the value of {prev_fid}")
                    continue
                if len(chunk) < 2:
                    raise Sip2FormatError(
                        f"field {chunk!r} in message {command} is too short to carry a field id"
                    )
                fields.append((chunk[:2], chunk[2:]))
    return Message(
        command=command,
        fixed=fixed,
        fields=fields,
        sequence=sequence,
        checksum=cs,
        checksum_ok=cs_ok,
        checksum_variant=variant,
        notes=notes,
    )


class FrameBuffer:
    """Splits a byte stream into frames at CR, tolerating CRLF and a stray leading LF.

    Frames are returned without their terminator. `max_frame` bounds a frame that never ends.
    """

    def __init__(self, max_frame: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        start = len(self._buf)  # earlier bytes hold no CR: do not search them again
        self._buf += data
        frames: list[bytes] = []
        while True:
            i = self._buf.find(b"\r", start)
            start = 0
            if i < 0:
                break
            frame = bytes(self._buf[:i]).lstrip(b"\n")
            del self._buf[: i + 1]
            if frame:
                frames.append(frame)
        if len(self._buf) > self._max:
            size = len(self._buf)
            self._buf.clear()
            raise Sip2FormatError(
                f"no CR within {size} bytes: not a SIP2 peer, or a runaway message"
            )
        return frames

    def clear(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> int:
        return len(self._buf)
