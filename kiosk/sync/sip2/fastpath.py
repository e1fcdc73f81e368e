"""The fast path of `kiosk sip2 decode`: a captured line of the common shape straight to its JSON.

Most lines of a real capture have one shape: a known command, a fixed part of the spec's length
with its transaction date where the widths put it, fields that each carry their id (and their
delimiter, but for the last one), and an `AY<n>AZ<checksum>` trailer or none. For such a line
`json_line` writes the very bytes the lenient decoder's JSON would be (kiosk/sync/sip2/cli.py,
decode_line) from one regular expression per command; for any other line it writes nothing and
says so, and the caller hands the line to the lenient decoder. It never guesses: a line it is
not sure of is not its to decode. tests/sync/test_codec_fast_path.py holds the two paths to the
same output on the real-world corpus and on thousands of seeded mutations of it.
"""

from __future__ import annotations

import re
import zlib

from kiosk.sync.sip2.codec import _LAYOUTS

# A byte of a field value: not the delimiter or a control character, which JSON would write as an
# escape (bytes from 0x80 are UTF-8, checked once per line; a quote or a backslash is escaped
# here). The fixed part is printable ASCII: the lenient decoder cuts it by characters and this
# path by bytes.
_VALUE = rb"[^|\x00-\x1f]"
_FIXED = rb"[ !#-\[\]-{}-\x7f]"
_ID = rb"[A-Z0-9]{2}"
# The trailer, and a line end the lenient decoder reads differently from a plain last field
# (a checksum, a sequence number without one, padding) when there is no trailer.
_TRAILER = rb"(?:AY([0-9])AZ([0-9A-F]{4}))?\Z"
_ODD_END = re.compile(rb"(?:AZ[0-9A-Fa-f]{4}|AY[0-9]\|?| )\Z")
_REPLACEMENT = "\ufffd".encode()  # the lenient decoder notes it as a byte it could not read
_ADLER_EXACT = 256  # up to 256 bytes, Adler-32's low half is 1 + the plain byte sum (< 65521)


def _pattern(command: str) -> tuple[re.Pattern[bytes], bytes, int]:
    """The command's shape, the JSON line around its parts, and how many fixed fields it has."""
    layout = _LAYOUTS[command]
    parts, names = [], []
    for name, start, end in layout.cuts:
        names.append(f'"{name}":"%s"')
        if start == layout.date:  # the one transaction date, as the lenient decoder checks it
            parts.append(rb"([0-9]{8}[ 0-9A-Z]{4}[0-9]{6})")
        else:
            parts.append(b"(" + _FIXED + b"{%d})" % (end - start))
    shape = re.compile(
        command.encode("ascii")
        + b"".join(parts)
        # the first field's id starts with a letter: the lenient decoder takes nothing else
        # for the end of a fixed part of the spec's length
        + rb"(?=[A-Z]|\Z)"
        + b"((?:"
        + _ID
        + _VALUE
        + rb"*\|)*)"
        # a last field without its delimiter, which must not be the trailer itself
        + rb"((?!AY[0-9]AZ[0-9A-Fa-f]{4}\Z)"
        + _ID
        + _VALUE
        + b"*?)?"
        + _TRAILER
    )
    line = (
        '{"line":%d,"command":"' + command + '","fixed":{' + ",".join(names) + '},"fields":{%s},'
        '"sequence":%s,"checksum":%s,"checksum_ok":%s,"checksum_variant":%s,"notes":[%s]}\n'
    ).encode("ascii")
    return shape, line, len(names)


_SHAPES: dict[bytes, tuple[re.Pattern[bytes], bytes, int] | None] = {}
# A field's id and value, split where each delimiter is followed by an id.
_FIELD_SPLIT = re.compile(rb"\|(" + _ID + b")")
_FIELDS_FORMAT: list[bytes] = []
_NOTE_CODEPOINTS = b'"checksum over code points, not bytes"'
_NOTE_LAST_FIELD = b'"last field has no delimiter"'


def _shape(command: bytes) -> tuple[re.Pattern[bytes], bytes, int] | None:
    # Compiled on first use: a capture holds a handful of commands, and start-up counts.
    text = command.decode("ascii", errors="replace")
    shape = _pattern(text) if text in _LAYOUTS and _LAYOUTS[text].cuts else None
    _SHAPES[command] = shape
    return shape


def _fields_format(count: int) -> bytes:
    while len(_FIELDS_FORMAT) <= count:
        n = len(_FIELDS_FORMAT)
        _FIELDS_FORMAT.append(b"%s" + b",".join([b'"%s":["%s"]'] * n))
    return _FIELDS_FORMAT[count]


def json_line(raw: bytes, line: int, out: bytearray) -> bool:
    """Append the JSON line of `raw` (one captured message, UTF-8, `|` between fields) to `out`
    and return True, or return False, leaving `out` as it was, when the line is not of the
    common shape and the lenient decoder must read it."""
    command = raw[:2]
    try:
        shape = _SHAPES[command]
    except KeyError:
        shape = _shape(command)
    if shape is None:
        return False
    pattern, template, width = shape
    m = pattern.match(raw)
    if m is None:
        return False
    text = ""
    if not raw.isascii():
        if _REPLACEMENT in raw:
            return False
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
    groups = m.groups()
    fields = groups[width]
    last = groups[width + 1]
    sequence = groups[width + 2]
    notes = b""
    if last is not None:
        if last.endswith(b" "):
            return False  # the lenient decoder strips the padding of an unterminated field
        fields = b"|" + fields + last
        notes = _NOTE_LAST_FIELD
    elif fields:
        fields = b"|" + fields[:-1]
    if sequence is None:
        if _ODD_END.search(raw, len(raw) - 6) is not None:
            return False
        sequence = checksum = ok = variant = b"null"
    else:
        checksum = groups[width + 3]
        prefix = raw[:-4]
        if len(prefix) <= _ADLER_EXACT:
            total = (zlib.adler32(prefix) & 0xFFFF) - 1
        else:
            total = sum(prefix)
        value = int(checksum, 16)
        checksum = b'"' + checksum + b'"'
        if (total + value) & 0xFFFF == 0:
            ok, variant = b"true", b'"bytes"'
        elif not text or (sum(map(ord, text[:-4])) + value) & 0xFFFF:
            ok, variant = b"false", b"null"
        else:  # some ACSs sum the characters, not the bytes
            ok, variant = b"true", b'"codepoints"'
            notes = _NOTE_CODEPOINTS + b"," + notes if notes else _NOTE_CODEPOINTS
    if fields:
        if b'"' in fields or b"\\" in fields:
            fields = fields.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        parts = _FIELD_SPLIT.split(fields)
        ids = parts[1::2]
        if len(set(ids)) == len(ids):
            fields = _fields_format(len(ids)) % tuple(parts)
        else:  # a repeated id: its values go into one list, at its first place
            grouped: dict[bytes, list[bytes]] = {}
            for i in range(1, len(parts), 2):
                values = grouped.get(parts[i])
                if values is None:
                    grouped[parts[i]] = [parts[i + 1]]
                else:
                    values.append(parts[i + 1])
            fields = b",".join(
                [b'"%s":["%s"]' % (key, b'","'.join(values)) for key, values in grouped.items()]
            )
    out += template % ((line,) + groups[:width] + (fields, sequence, checksum, ok, variant, notes))
    return True
