"""The fast path of `kiosk sip2 decode`: a captured line of the common shape straight to its JSON.

Most lines of a real capture have one shape: a known command, a fixed part of the spec's length
with its transaction date where the widths put it, fields that each carry their id (and their
delimiter, but for the last one), and an `AY<n>AZ<checksum>` trailer or none. For such a line
`json_line` writes the very bytes the lenient decoder's JSON would be (kiosk/sync/sip2/cli.py,
decode_line): one regular expression per command for the fixed part, one for the trailer, a split
for the fields, and a format for the line. A fixed part of another shape (short, or shifted by a
hand-built date) is cut by the lenient decoder's own functions, the rest of the line as above.
A request to resend (96, 97) is written as it is. For any other line it writes nothing and says
so, and the caller hands the line to the lenient decoder. It never guesses: a line it is not sure
of is not its to decode. `json_lines` does this for the lines of a read in one call.
tests/sync/test_codec_fast_path.py holds the two paths to the same output on the real-world
corpus and on thousands of seeded mutations of it.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator

from kiosk.sync.sip2.codec import (
    _ADLER_EXACT,
    _ADLER_EXACT_ASCII,
    _LAYOUTS,
    KNOWN_FIELD_IDS,
    NOTE_CODEPOINTS,
    NOTE_LAST_FIELD,
    NOTE_STRAY,
    _fixed_end,
    _split_fixed,
)

# The fixed part is printable ASCII without the delimiter, a quote or a backslash: the lenient
# decoder cuts it by characters and this path by bytes, and JSON writes it as it is.
_FIXED = rb"[ !#-\[\]-{}-\x7f]"
# A transaction date's zone of another width (one blank or a TAB where the spec has four), as a
# realignment takes it where the widths put the date: one to three non-digits, none of them a
# delimiter, a quote or a backslash; a TAB, which JSON escapes, is the one control character.
_ZONE = rb"[\t !#-/:-\[\]-{}-\x7f]{1,3}"
_KNOWN_IDS = frozenset(fid.encode("ascii") for fid in KNOWN_FIELD_IDS)
# Control characters, which JSON writes as escapes; the lenient decoder refuses CR, LF and NUL.
_CONTROL = bytes(range(0x20))
_SPECIAL = _CONTROL + b'"\\'  # and what JSON escapes
# (matched at its one place, its nine bytes from the end: it needs no \Z)
_TRAILER = re.compile(rb"AY([0-9])AZ([0-9A-F]{4})")
# A line end the lenient decoder reads as something else than the end of a plain last field
# (a checksum, a sequence number without one, padding) when there is no trailer.
_ODD_END = re.compile(rb"(?:AZ[0-9A-Fa-f]{4}|AY[0-9]\|?| )\Z")
_REPLACEMENT = "\ufffd".encode()  # the lenient decoder notes it as a byte it could not read
# A field's id and value, split where a delimiter is followed by an id (two classes, not one
# repeated: the split of an answer's fields 6 % faster).
_FIELD_SPLIT = re.compile(rb"\|([A-Z0-9][A-Z0-9])")
# A request to resend (96 from the SC, 97 from the ACS): no fields, a checksum or nothing.
_RESEND = re.compile(rb"(9[67])(?:AZ([0-9A-F]{4}))?\Z")
_RESEND_BARE = (
    b'{"line":%d,"command":"%s","fixed":{},"fields":{},"sequence":null,"checksum":null,'
    b'"checksum_ok":null,"checksum_variant":null,"notes":[]}\n'
)
_RESEND_CHECKED = (
    b'{"line":%d,"command":"%s","fixed":{},"fields":{},"sequence":null,"checksum":"%s",'
    b'"checksum_ok":%s,"notes":[]}\n'
)
_BYTES_OK = b'true,"checksum_variant":"bytes"'
_NOT_OK = b'false,"checksum_variant":null'
_CODEPOINTS_OK = b'true,"checksum_variant":"codepoints"'
# JSON's escapes of the characters it escapes in a string, as msgspec (and json) write them.
_JSON_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x20)} | {
    ord("\b"): "\\b",
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\f"): "\\f",
    ord("\r"): "\\r",
    ord('"'): '\\"',
    ord("\\"): "\\\\",
}


def _json_text(text: str) -> bytes:
    """The JSON of an ASCII string without its quotes, as the lenient decoder's JSON has it."""
    return text.translate(_JSON_ESCAPES).encode("ascii")


_NOTE_CODEPOINTS = b'"%s"' % _json_text(NOTE_CODEPOINTS)
_NOTE_LAST_FIELD = b'"%s"' % _json_text(NOTE_LAST_FIELD)
_NOTE_STRAY = b'"%s"' % _json_text(NOTE_STRAY)


class _Shape:
    """A command's fixed part as a pattern, and its JSON lines by number of fields."""

    __slots__ = (
        "command",
        "pattern",
        "cut",
        "shifted",
        "end",
        "names",
        "head",
        "tails",
        "formats",
    )

    def __init__(self, command: str) -> None:
        self.command = command
        layout = _LAYOUTS[command]
        shifted, names = [], []
        # The pattern checks the fixed part's characters without a group for each field (runs of
        # fields of one kind are one repeat, several times faster to match); a match puts them at
        # the spec's places, where `cut` takes them all in one call.
        before, after = layout.end - 2, 0
        if layout.date >= 0:
            before, after = layout.date - 2, layout.end - layout.date - 18
        parts = [_FIXED + b"{%d}" % before] if before else []
        if layout.date >= 0:  # the one transaction date, as the lenient decoder checks it
            parts.append(rb"[0-9]{8}[ 0-9A-Z]{4}[0-9]{6}")
        if after:
            parts.append(_FIXED + b"{%d}" % after)
        for name, start, end in layout.cuts:
            names.append(name)
            if start == layout.date:
                shifted.append(rb"([0-9]{8}" + _ZONE + rb"[0-9]{6})")
            else:
                shifted.append(b"(" + _FIXED + b"{%d})" % (end - start))
        # After the fixed part comes a field id starting with a letter, the trailer, nothing, or
        # a stray delimiter (consumed: the match ends where the fields start; a second one is the
        # lenient decoder's): it takes nothing else for a part of the spec's length.
        self.pattern = re.compile(
            command.encode("ascii") + b"".join(parts) + rb"(?:\|(?=[A-Z0-9]|\Z)|(?=[A-Z]|\Z))"
        )
        self.cut = struct.Struct("".join(f"{end - start}s" for _, start, end in layout.cuts))
        # The same with the date's zone of another width, which the realignment takes where it
        # stands when the fields plainly begin after the part (a delimiter or a known id follows:
        # _shifted checks which).
        self.shifted = (
            re.compile(command.encode("ascii") + b"".join(shifted) + rb"(?=\||[A-Z]{2})")
            if layout.date >= 0
            else None
        )
        self.end = layout.end
        self.names = tuple(names)
        fixed = ",".join(f'"{name}":"%s"' for name in names)
        head = '{"line":%d,"command":"' + command + '","fixed":{' + fixed + '},"fields":{%s'
        self.head = head.encode("ascii")
        self.tails = (
            b'},"sequence":null,"checksum":null,"checksum_ok":null,"checksum_variant":null,'
            b'"notes":[%s]}\n',
            b'},"sequence":%s,"checksum":"%s","checksum_ok":%s,"notes":[%s]}\n',
        )
        # without and with a trailer, by number of fields; with 0 fields the first %s after the
        # fixed fields takes the fields' JSON whole
        self.formats: tuple[list[bytes], list[bytes]] = ([], [])

    def format(self, trailer: int, count: int) -> bytes:
        formats = self.formats[trailer]
        while len(formats) <= count:
            fields = b",".join([b'"%s":["%s"]'] * len(formats))
            formats.append(self.head + fields + self.tails[trailer])
        return formats[count]


_SHAPES: dict[bytes, _Shape | None] = {}


def _shape(command: bytes) -> _Shape | None:
    # Compiled on first use: a capture holds a handful of commands, and start-up counts.
    text = command.decode("ascii", errors="replace")
    shape = _Shape(text) if text in _LAYOUTS and _LAYOUTS[text].cuts else None
    _SHAPES[command] = shape
    return shape


def json_line(raw: bytes, line: int, out: bytearray) -> bool:
    """Append the JSON line of `raw` (one captured message, UTF-8, `|` between fields) to `out`
    and return True, or return False, leaving `out` as it was, when the line is not of the
    common shape and the lenient decoder must read it."""
    return json_lines(iter((raw,)), line - 1, out)[1] is None


def json_lines(lines: Iterator[bytes], line: int, out: bytearray) -> tuple[int, bytes | None]:
    """Append the JSON lines of `lines`, numbered on from `line`, to `out` (as json_line does)
    until one is not of the common shape: return its number and the line, which the caller
    hands to the lenient decoder before calling again with the same iterator; or (the number
    of the last line, None) when `lines` ran out.

    One call for a read's lines, not one a line: the loop is the hot spot of the command, and
    its names are bound to locals here for the same reason.
    """
    shapes = _SHAPES
    trailer_at = _TRAILER.match
    resend_at = _RESEND.match
    odd_end = _ODD_END.search
    field_split = _FIELD_SPLIT.split
    special, control, special_bar = _SPECIAL, _CONTROL, _SPECIAL + b"|"
    adler32 = zlib.adler32
    # Lines up to these sizes (any bytes, ASCII) have a checksum whose sum Adler-32 takes exactly.
    exact_any, exact_ascii = _ADLER_EXACT + 4, _ADLER_EXACT_ASCII + 4
    numbered = enumerate(lines, line + 1)
    for line, raw in numbered:
        try:
            shape = shapes[raw[:2]]
        except KeyError:
            shape = _shape(raw[:2])
        if shape is None:
            resend = resend_at(raw)
            if resend is None:
                return line, raw
            command, checksum = resend.groups()
            if checksum is None:
                out += _RESEND_BARE % (line, command)
            else:  # (ASCII: the sum of its code points is the sum of its bytes)
                ok = not (sum(raw[:4]) + int(checksum, 16)) & 0xFFFF
                out += _RESEND_CHECKED % (line, command, checksum, _BYTES_OK if ok else _NOT_OK)
            continue
        size = len(raw)
        body_end = size - 9  # where a trailer would start
        fixed = shape.pattern.match(raw)
        end = 2 if fixed is None else fixed.end()  # after a stray delimiter, when there is one
        trailer = trailer_at(raw, body_end) if body_end >= end else None
        if trailer is None:
            if odd_end(raw, size - 6) is not None:
                return line, raw
            body_end = size
        ascii = raw.isascii()
        if fixed is not None:
            if not (ascii or _utf8(raw)):
                return line, raw
            stray = end != shape.end
            head: tuple[bytes, ...] = shape.cut.unpack_from(raw, 2)
            notes = b""
        else:
            shifted = _shifted(raw, body_end, shape)
            if shifted is None:
                return line, raw
            head, end, stray, notes = shifted
        if end == body_end:
            args: list[bytes] = [b""]
            count = 0
        else:
            # The fields, each after a delimiter, as _FIELD_SPLIT takes them.
            last = raw[body_end - 1]
            if last == 0x7C:  # the last field's delimiter
                body = b"|" + raw[end : body_end - 1]
            elif last == 0x20:
                return line, raw  # the lenient decoder strips an unterminated last field's padding
            else:
                notes = notes + b"," + _NOTE_LAST_FIELD if notes else _NOTE_LAST_FIELD
                body = b"|" + raw[end:body_end]
            args = field_split(body)
            ids = args[1::2]
            count = len(ids)
            # The common case in one C call: nothing to escape, and every delimiter starts a field
            # (a split takes one delimiter a field, so taking both out takes one byte a field).
            if len(body.translate(None, special_bar)) + count != len(body):
                # (the fixed part's pattern and the trailer's hold no control character or quote)
                escaped = body.translate(None, special) != body
                if escaped:
                    if len(body.translate(None, control)) != len(body):
                        return line, raw
                    body = body.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
                    args = field_split(body)  # (the same places: neither is a delimiter or an id)
                    ids = args[1::2]
                if body.count(b"|") != count:  # a delimiter not followed by a field id
                    if stray:
                        notes = notes + b"," + _NOTE_STRAY if notes else _NOTE_STRAY
                        stray = False
                    merged = None if escaped or args[0] else _merged(args)
                    if merged is None:
                        return line, raw
                    notes = notes + b"," + merged if notes else merged
            if len(set(ids)) != count:  # a repeated id: its values in one list, at its first place
                args = [_grouped(args)]
                count = 0
        if stray:  # a delimiter right after the fixed part, overlooked
            notes = notes + b"," + _NOTE_STRAY if notes else _NOTE_STRAY
        if trailer is None:
            try:
                template = shape.formats[0][count]
            except IndexError:
                template = shape.format(0, count)
            out += template % (line, *head, *args, notes)
            continue
        sequence, checksum = trailer.groups()
        value = int(checksum, 16)
        # The checksum covers every byte up to and including AZ: all but its own four digits.
        # Adler-32's low half is 1 + their sum while that stays under 65521 (codec.byte_sum).
        if size <= exact_any or (ascii and size <= exact_ascii):
            ok = not (adler32(raw[:-4]) + value - 1) & 0xFFFF
        else:
            ok = not (sum(raw[:-4]) + value) & 0xFFFF
        if ok:
            verdict = _BYTES_OK
        elif ascii or (_codepoint_sum(raw) + value) & 0xFFFF:
            verdict = _NOT_OK  # (an ASCII line's code points are its bytes)
        else:  # some ACSs sum the characters, not the bytes
            verdict = _CODEPOINTS_OK
            notes = _NOTE_CODEPOINTS + b"," + notes if notes else _NOTE_CODEPOINTS
        try:
            template = shape.formats[1][count]
        except IndexError:
            template = shape.format(1, count)
        out += template % (line, *head, *args, sequence, checksum, verdict, notes)
    return line, None


def _shifted(
    raw: bytes, body_end: int, shape: _Shape
) -> tuple[tuple[bytes, ...], int, bool, bytes] | None:
    """A fixed part that is not of the spec's shape (a short part, a shifted date), cut as the
    lenient decoder cuts it, with its own functions: the fixed fields as JSON text, where the
    fields start, whether a stray delimiter comes first, and the notes; None when not an ASCII
    line."""
    if not raw.isascii() or b"\0" in raw or b"\r" in raw or b"\n" in raw:
        return None
    text = raw[:body_end].decode("ascii")
    expected = shape.end
    fixed_end = _fixed_end(text, expected, "|")
    head: tuple[bytes, ...]
    at_place = None if shape.shifted is None else shape.shifted.match(raw, 0, body_end)
    if (
        at_place is not None
        and fixed_end != expected
        and (raw[at_place.end()] == 0x7C or raw[at_place.end() : at_place.end() + 2] in _KNOWN_IDS)
    ):
        # The date where the widths put it with a zone of another width (the realignment's first
        # try, which it takes when the widths did not end the part where a field begins): the
        # fields before it where they stand, those after it from its end (codec._split_fixed).
        end, realigned = at_place.end(), True
        head = at_place.groups()
        if b"\t" in raw[2:end]:
            head = tuple(value.replace(b"\t", b"\\t") for value in head)
    else:
        fixed, end, realigned = _split_fixed(text, shape.command, fixed_end, "|")
        # (the fixed fields are cut from text[2:end]: without a character JSON escapes there,
        # their JSON text is their bytes)
        plain = len(raw[2:end].translate(None, _SPECIAL)) == end - 2
        head = tuple(map(str.encode if plain else _json_text, map(fixed.__getitem__, shape.names)))
    stray = raw[end : end + 1] == b"|" and raw[end + 1 : end + 2] != b"|"
    if stray:
        end += 1
    notes = []
    if end - stray != expected:
        notes.append(
            b'"fixed part is %d characters, expected %d"' % (end - stray - 2, expected - 2)
        )
    if realigned:
        notes.append(b'"fixed fields realigned on the transaction date"')
    return head, end, stray, b",".join(notes)


def _codepoint_sum(raw: bytes) -> int:
    """The sum of the code points of a UTF-8 line but its last four bytes, modulo 65536.

    From its UTF-32 form: a code point's low two bytes are all that count modulo 65536, and
    Adler-32 sums each of them over the line (exactly while the line has up to 256 characters,
    as for codec.byte_sum); twice as fast as summing the characters one by one.
    """
    text = raw[:-4].decode("utf-8")
    if len(text) > _ADLER_EXACT:
        return sum(map(ord, text))
    wide = text.encode("utf-32-le")
    return zlib.adler32(wide[0::4]) - 1 + ((zlib.adler32(wide[1::4]) - 1) << 8)


def _utf8(raw: bytes) -> bool:
    """Whether a line that is not ASCII is UTF-8 the lenient decoder reads without a note."""
    if _REPLACEMENT in raw:
        return False
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _merged(parts: list[bytes]) -> bytes | None:
    """The notes for delimiters inside values, which the lenient decoder keeps in the value when
    what follows cannot start a field (as in an e-mail address `a|b@c`); None for an empty or
    one-character piece, which it reads otherwise."""
    notes = []
    for i in range(2, len(parts), 2):
        if b"|" in parts[i]:
            for piece in parts[i].split(b"|")[1:]:
                if len(piece) < 2 or not piece[:2].isascii():  # (it counts characters)
                    return None
                notes.append(b'"delimiter inside the value of %s"' % parts[i - 1])
    return b",".join(notes)


def _grouped(parts: list[bytes]) -> bytes:
    """The fields' JSON when an id repeats: its values in one list, at its first place."""
    grouped: dict[bytes, list[bytes]] = {}
    for key, value in zip(parts[1::2], parts[2::2], strict=True):
        if key in grouped:
            grouped[key].append(value)
        else:
            grouped[key] = [value]
    return b",".join(
        [b'"%s":["%s"]' % (key, b'","'.join(values)) for key, values in grouped.items()]
    )
