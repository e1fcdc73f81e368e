"""3M "RFID 501" legacy tag layout (3M alphanumeric format), reverse-engineered in Biblio-RFID.

Eight 4-byte blocks, no CRC (docs/protocols/rfid.md §5): byte 0 = 0x04; byte 1 = part number (high nibble) and
parts in set (low nibble); byte 2 = 0x00; byte 3 = item type; bytes 4-19 barcode (ASCII,
NUL-padded); bytes 20-23 big-endian branch (top 12 bits) and library (low 20 bits); bytes
24-27 a signed custom number; bytes 28-31 zero.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags.data import TagData, int_field, read_set, set_ok
from kiosk.devices.tags.iso28560_3 import order_blocks, pad_blocks, reorder

MODEL = "rfid501"
MARKER = 0x04
SIZE = 32
MIN_SIZE = 20  # marker, set, 0x00, type and the 16-byte barcode
FACTORY_BLANK = b"\x55" * 24

ITEM_TYPES: dict[int, str] = {
    0: "other",
    1: "book",
    2: "magazine",
    3: "bound-journal",
    4: "audio-tape",
    5: "video",
    6: "cd",
    7: "diskette",
    8: "book-with-diskette",
    9: "book-with-cd",
    13: "book-with-audio-tape",
}
_TYPE_NUMBERS = {name: number for number, name in ITEM_TYPES.items()}


def item_type_name(number: int) -> str:
    return ITEM_TYPES.get(number, f"type-{number}")


def item_type_number(text: str) -> int:
    """The 3M item type for a name ("book"), "type-N" or a decimal number; "" means book."""
    if not text:
        return 1
    key = text.strip().lower()
    if key in _TYPE_NUMBERS:
        return _TYPE_NUMBERS[key]
    digits = key.removeprefix("type-")
    if digits.isdigit() and int(digits) <= 255:
        return int(digits)
    raise TagFormatError(
        f"3M item type {text!r} unknown; use a number 0..255 or one of {', '.join(_TYPE_NUMBERS)}"
    )


def decode(
    memory: bytes, *, block_size: int = 4, try_reversed: bool = True, strict: bool = False
) -> TagData:
    """Decode a 3M RFID 501 tag, read as stored or with every block reversed (a FEIG reader in
    ISO host mode); raises TagFormatError for a blank or damaged one.

    ``strict`` (autodetection) also wants the layout's fixed bytes as 3M writes them: byte 2
    0x00, a set with its part in range, and nothing but NUL padding after the barcode.
    """
    try:
        return _decode(memory, "normal", strict)
    except TagFormatError as first:
        if try_reversed and block_size > 1 and memory[:1] != bytes([MARKER]):
            swapped = reorder(memory, block_size)
            if swapped[:1] == bytes([MARKER]):
                try:
                    return _decode(swapped, "reversed", strict)
                except TagFormatError:
                    pass
        raise first


def _check_layout(memory: bytes) -> None:
    part, parts = memory[1] >> 4, memory[1] & 0x0F
    if memory[2] != 0:
        raise TagFormatError(f"3M RFID 501 byte 2 is 0x{memory[2]:02X}, not 0x00: misread")
    if not set_ok(part, parts):
        raise TagFormatError(f"3M RFID 501 set byte 0x{memory[1]:02X} (part {part} of {parts})")
    barcode_field = memory[4:20]
    end = barcode_field.find(b"\x00")
    if end >= 0 and any(barcode_field[end:]):
        raise TagFormatError(
            f"3M RFID 501 barcode field has data after its NUL padding: {barcode_field.hex(' ')}"
        )


def _decode(memory: bytes, order: str, strict: bool = False) -> TagData:
    if memory[:24] == FACTORY_BLANK:
        raise TagFormatError("3M factory-blank tag (0x55 filler): no item data written")
    if len(memory) < MIN_SIZE:
        raise TagFormatError(f"3M RFID 501 tag truncated: {len(memory)} bytes, at least 20 needed")
    if memory[0] != MARKER:
        raise TagFormatError(f"not a 3M RFID 501 tag: byte 0 is 0x{memory[0]:02X}, not 0x04")
    raw_barcode = memory[4:20].split(b"\x00", 1)[0]
    if not raw_barcode.strip():
        raise TagFormatError("3M RFID 501 tag has an empty barcode")
    if not all(0x20 <= b < 0x7F for b in raw_barcode):
        raise TagFormatError(f"3M RFID 501 barcode is not printable ASCII: {raw_barcode.hex(' ')}")
    if strict:
        _check_layout(memory)
    block = memory.ljust(SIZE, b"\x00")[:SIZE]
    branch_library, custom = struct.unpack(">Ii", block[20:28])
    extra: dict[str, Any] = {
        "item_type": block[3],
        "branch": branch_library >> 20,
        "library": branch_library & 0xFFFFF,
        "custom": custom,
    }
    if block[2] != 0:
        extra["byte2"] = block[2]
    if any(block[28:32]):
        extra["trailer"] = block[28:32].hex()
    part, parts = read_set(block[1] >> 4, block[1] & 0x0F, extra)
    return TagData(
        model=MODEL,
        item_id=raw_barcode.decode("ascii"),
        part_number=part,
        parts_in_set=parts,
        owner_institution="",
        type_of_usage=item_type_name(block[3]),
        crc_ok=None,
        block_order=order,
        extra=extra,
    )


def encode(data: TagData, *, block_size: int = 4, block_order: str = "normal") -> bytes:
    """The 32 bytes of a 3M RFID 501 tag for ``data`` (for re-tagging with the legacy layout).

    The layout has no owner institution: ``owner_institution`` is not stored, the numeric
    ``branch`` and ``library`` in ``extra`` are.
    """
    extra: Mapping[str, Any] = data.extra or {}
    try:
        barcode = data.item_id.encode("ascii")
    except UnicodeEncodeError:
        raise TagFormatError(f"3M RFID 501 barcode {data.item_id!r} must be ASCII") from None
    if not barcode.strip() or len(barcode) > 16 or not all(0x20 <= b < 0x7F for b in barcode):
        raise TagFormatError(
            f"3M RFID 501 barcode {data.item_id!r} must be 1..16 printable ASCII characters"
        )
    if not 1 <= data.parts_in_set <= 15 or not 1 <= data.part_number <= data.parts_in_set:
        raise TagFormatError(
            f"3M RFID 501 holds sets of at most 15 parts: part {data.part_number} of "
            f"{data.parts_in_set} does not fit"
        )
    item_type = item_type_number(data.type_of_usage)
    branch = int_field(extra, "branch", 0)
    library = int_field(extra, "library", 0)
    custom = int_field(extra, "custom", 0)
    if (
        not 0 <= branch < 1 << 12
        or not 0 <= library < 1 << 20
        or not -(1 << 31) <= custom < 1 << 31
    ):
        raise TagFormatError(
            "3M RFID 501 branch must be 0..4095, library 0..1048575, custom a signed 32-bit number"
        )
    memory = struct.pack(
        ">BBBB16sIi4x",
        MARKER,
        data.part_number << 4 | data.parts_in_set,
        0,
        item_type,
        barcode,
        branch << 20 | library,
        custom,
    )
    return order_blocks(pad_blocks(memory, block_size), block_size, block_order)
