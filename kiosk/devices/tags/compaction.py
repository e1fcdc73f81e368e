"""ISO/IEC 15962 compaction schemes used by ISO 28560-2, and the ISIL compaction of ISO 28560-2.

Each ``compact_*`` function raises ValueError for a value its scheme cannot hold; each
``expand_*`` function raises ValueError for bytes that are not a valid compaction. The
ISO 28560-2 codec turns both into TagFormatError with the element's name.
"""

from __future__ import annotations

INTEGER, NUMERIC, FIVE_BIT, SIX_BIT, SEVEN_BIT, OCTET, UTF8 = 1, 2, 3, 4, 5, 6, 7
APPLICATION_DEFINED = 0
SCHEME_NAMES = {
    0: "application-defined",
    1: "integer",
    2: "numeric",
    3: "5-bit",
    4: "6-bit",
    5: "7-bit",
    6: "octet",
    7: "utf-8",
}


def _pack(symbols: list[tuple[int, int]], pad_bits: str) -> bytes:
    """Pack (value, width) symbols MSB first; fill the last byte with the leading bits of pad_bits."""
    bits = "".join(format(value, f"0{width}b") for value, width in symbols)
    gap = -len(bits) % 8
    bits += (pad_bits * 8)[:gap]
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def _bits(data: bytes) -> str:
    return "".join(format(b, "08b") for b in data)


# --- integer -------------------------------------------------------------------------------


def compact_integer(text: str) -> bytes:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError("integer compaction needs decimal digits without a leading zero")
    value = int(text)
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def expand_integer(data: bytes) -> str:
    if not data:
        raise ValueError("integer with no bytes")
    return str(int.from_bytes(data, "big"))


# --- numeric (BCD) -------------------------------------------------------------------------


def compact_numeric(text: str) -> bytes:
    if not text or not text.isascii() or not text.isdigit():
        raise ValueError("numeric compaction needs decimal digits")
    digits = text + ("F" if len(text) % 2 else "")
    return bytes.fromhex(digits)


def expand_numeric(data: bytes) -> str:
    nibbles = data.hex().upper()
    digits = nibbles.rstrip("F") if nibbles.endswith("F") else nibbles
    if len(nibbles) - len(digits) > 1 or not digits.isdigit():
        raise ValueError(f"numeric (BCD) data {data.hex(' ')} has non-digit nibbles")
    return digits


# --- 5-bit, 6-bit, 7-bit ------------------------------------------------------------------


def compact_5bit(text: str) -> bytes:
    if not text or not all(0x41 <= ord(c) <= 0x5F for c in text):
        raise ValueError("5-bit code holds only A-Z [ \\ ] ^ _")
    return _pack([(ord(c) - 0x40, 5) for c in text], "0")


def expand_5bit(data: bytes) -> str:
    bits = _bits(data)
    out = []
    for i in range(0, len(bits) - 4, 5):
        value = int(bits[i : i + 5], 2)
        if value == 0:  # zero padding
            break
        out.append(chr(value + 0x40))
    rest = bits[5 * len(out) :]
    if len(rest) >= 8 or "1" in rest:
        # Padding only fills the last byte, with 0-bits: anything else is not 5-bit code.
        raise ValueError(f"5-bit code {data.hex(' ')} has data after its zero padding")
    return "".join(out)


def compact_6bit(text: str) -> bytes:
    # A trailing space would be indistinguishable from a whole 6-bit pad symbol.
    if not text or text.endswith(" ") or not all(0x20 <= ord(c) <= 0x5F for c in text):
        raise ValueError("6-bit code holds only ISO 646 0x20-0x5F (no trailing space)")
    return _pack([((ord(c) - 0x40) if ord(c) >= 0x40 else ord(c), 6) for c in text], "100000")


def expand_6bit(data: bytes) -> str:
    bits = _bits(data)
    out = []
    for i in range(0, len(bits) - 5, 6):
        value = int(bits[i : i + 6], 2)
        out.append(chr(value + 0x40) if value < 0x20 else chr(value))
    rest = bits[len(bits) - len(bits) % 6 :]
    if rest not in ("100000"[: len(rest)], "0" * len(rest)):
        # The pad is the leading bits of the space code (some encoders write 0-bits).
        raise ValueError(f"6-bit code {data.hex(' ')} ends in bits {rest} that are no padding")
    text = "".join(out)
    # A pad of a full symbol is the space code; encoders never end real text with a space here.
    return text[:-1] if text.endswith(" ") and len(bits) % 6 == 0 else text


def compact_7bit(text: str) -> bytes:
    if not text or not all(ord(c) < 0x7F for c in text):
        raise ValueError("7-bit code holds only US-ASCII below 0x7F")
    return _pack([(ord(c), 7) for c in text], "1")


def expand_7bit(data: bytes) -> str:
    bits = _bits(data)
    rest = bits[len(bits) - len(bits) % 7 :]
    if rest not in ("1" * len(rest), "0" * len(rest)):
        # The pad is 1-bits (some encoders write 0-bits).
        raise ValueError(f"7-bit code {data.hex(' ')} ends in bits {rest} that are no padding")
    text = "".join(chr(int(bits[i : i + 7], 2)) for i in range(0, len(bits) - 6, 7))
    # 1-bit padding of seven bits reads as one DEL, which is never text.
    return text[:-1] if text.endswith("\x7f") else text


# --- octet, UTF-8 --------------------------------------------------------------------------


def compact_octet(text: str) -> bytes:
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError("octet string holds only ISO 8859-1 characters") from None


def expand_octet(data: bytes) -> str:
    return data.decode("latin-1")


def compact_utf8(text: str) -> bytes:
    return text.encode("utf-8")


def expand_utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"invalid UTF-8 at byte {exc.start}") from None


COMPACT = {
    INTEGER: compact_integer,
    NUMERIC: compact_numeric,
    FIVE_BIT: compact_5bit,
    SIX_BIT: compact_6bit,
    SEVEN_BIT: compact_7bit,
    OCTET: compact_octet,
    UTF8: compact_utf8,
}
EXPAND = {
    INTEGER: expand_integer,
    NUMERIC: expand_numeric,
    FIVE_BIT: expand_5bit,
    SIX_BIT: expand_6bit,
    SEVEN_BIT: expand_7bit,
    OCTET: expand_octet,
    UTF8: expand_utf8,
}


def best_compaction(text: str) -> tuple[int, bytes]:
    """The most compact scheme for ``text`` and its bytes (integer, numeric, 5/6/7-bit, octet, UTF-8)."""
    for scheme in (INTEGER, NUMERIC, FIVE_BIT, SIX_BIT, SEVEN_BIT, OCTET, UTF8):
        try:
            return scheme, COMPACT[scheme](text)
        except ValueError:
            continue
    raise ValueError(f"no compaction holds {text!r}")  # unreachable: UTF-8 holds any str


# --- ISIL ----------------------------------------------------------------------------------

_UPPER, _LOWER, _NUMERIC = "upper", "lower", "numeric"
_WIDTH = {_UPPER: 5, _LOWER: 5, _NUMERIC: 4}
_CHARS = {
    _UPPER: "-ABCDEFGHIJKLMNOPQRSTUVWXYZ:",
    _LOWER: "-abcdefghijklmnopqrstuvwxyz/",
    _NUMERIC: "0123456789-:",
}
# Switch codes: (latch, shift) from a mode to a target mode.
_SWITCH = {
    (_UPPER, _LOWER): (28, 29),
    (_UPPER, _NUMERIC): (30, 31),
    (_LOWER, _UPPER): (28, 29),
    (_LOWER, _NUMERIC): (30, 31),
    (_NUMERIC, _UPPER): (12, 13),
    (_NUMERIC, _LOWER): (14, 15),
}
_DECODE_SWITCH = {
    (mode, code): (target, kind)
    for (mode, target), codes in _SWITCH.items()
    for code, kind in zip(codes, ("latch", "shift"), strict=True)
}


def _mode_of(char: str, prefer: str) -> str:
    if char in _CHARS[prefer]:
        return prefer
    for mode in (_UPPER, _LOWER, _NUMERIC):
        if char in _CHARS[mode]:
            return mode
    raise ValueError(f"ISIL character {char!r} is not one of A-Z a-z 0-9 - : /")


def compact_isil(text: str) -> bytes:
    if not text:
        raise ValueError("empty ISIL")
    mode = _UPPER
    symbols: list[tuple[int, int]] = []
    for i, char in enumerate(text):
        target = _mode_of(char, mode)
        if target != mode:
            latch, shift = _SWITCH[(mode, target)]
            following = text[i + 1 : i + 2]
            if following and following in _CHARS[target] and following not in _CHARS[mode]:
                symbols.append((latch, _WIDTH[mode]))
                mode = target
            else:
                symbols.append((shift, _WIDTH[mode]))
                symbols.append((_CHARS[target].index(char), _WIDTH[target]))
                continue
        symbols.append((_CHARS[mode].index(char), _WIDTH[mode]))
    return _pack(symbols, "1")


def expand_isil(data: bytes) -> str:
    bits = _bits(data)
    pos, mode, out = 0, _UPPER, []
    shifted_from: str | None = None
    while True:
        rest = bits[pos:]
        width = _WIDTH[mode]
        if len(rest) < width or set(rest) == {"1"}:
            break
        value = int(rest[:width], 2)
        pos += width
        if value < len(_CHARS[mode]):
            out.append(_CHARS[mode][value])
            if shifted_from:
                mode, shifted_from = shifted_from, None
            continue
        target, kind = _DECODE_SWITCH.get((mode, value), (None, None))
        if target is None or shifted_from:
            raise ValueError(f"ISIL compaction: code {value} is not valid in {mode} mode here")
        if kind == "shift":
            shifted_from = mode
        mode = target
    if shifted_from:
        raise ValueError("ISIL compaction ends after a shift code")
    return "".join(out)
