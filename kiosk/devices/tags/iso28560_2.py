"""ISO 28560-2 tags: data elements stored as ISO/IEC 15962 objects (docs/protocols/rfid.md §4).

Each object is ``precursor | [relative-OID byte] | [pad count] | length | data | [pad]``; the
precursor holds the offset flag (bit 7), the compaction code (bits 6-4) and the relative OID
(bits 3-0, 0xF = "OID - 15 in the next byte"). A 0x00 precursor ends the data. The first object
is the primary item identifier (OID 1).

Decoded elements go into TagData: OID 1 ``item_id``, OID 3 ``owner_institution``, OID 4
``part_number``/``parts_in_set``, OID 5 ``type_of_usage`` (two hex digits); every other element
into ``extra`` under the names in ``ELEMENTS``. Code-valued elements (type of usage, media format
(other), supply chain stage) and application-defined data are shown as hex.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import compaction as c
from kiosk.devices.tags.data import TagData, read_set, set_ok
from kiosk.devices.tags.iso28560_3 import order_blocks, pad_blocks, reorder

log = logging.getLogger(__name__)

MODEL = "iso28560-2"

ELEMENTS: dict[int, str] = {
    1: "item_id",
    2: "content_parameter",
    3: "owner_institution",
    4: "set_information",
    5: "type_of_usage",
    6: "shelf_location",
    7: "onix_media_format",
    8: "marc_media_format",
    9: "supplier_identifier",
    10: "order_number",
    11: "ill_borrowing_institution",
    12: "ill_borrowing_transaction_number",
    13: "gs1_product_identifier",
    14: "alternative_unique_item_identifier",
    15: "local_data_a",
    16: "local_data_b",
    17: "title",
    18: "product_identifier_local",
    19: "media_format_other",
    20: "supply_chain_stage",
    21: "supplier_invoice_number",
    22: "alternative_item_identifier",
    23: "alternative_owner_institution",
    24: "subsidiary_of_owner_institution",
    25: "alternative_ill_borrowing_institution",
    26: "local_data_c",
}
OIDS = {name: oid for oid, name in ELEMENTS.items()}
_CODE_OIDS = {5, 19, 20}  # one-byte coded values, shown as hex
_ISIL_OIDS = {3, 11}  # written with the ISIL compaction
_ISIL_READ_OIDS = {3, 11, 23, 25}  # read as ISIL when marked application-defined
_FIELD_OIDS = {1, 2, 3, 4, 5}  # live in TagData's own fields (2 is computed on write)
_INFO_KEYS = {
    "item_id_not_first",
    "set_as_read",
    "content_parameter",
    "application_defined",
    "duplicate_oids",
    "padding_missing",
    "aligned",
}
_MAX_OID = 15 + 255
_MAX_BLOCK_SIZE = 32  # ISO/IEC 15693 allows blocks of up to 32 bytes
_MAX_STRICT_PAD = 8  # library tags have 4- or 8-byte blocks: padding is shorter than one
# Longest item id believed while the block order is being guessed (the longest barcodes
# reported for libraries have 27 characters: "RFID Data Model for Libraries", Doc 067).
MAX_GUESSED_ITEM_ID = 32
# Longest number believed in any element while guessing (GS1 identifiers have 14 digits, the
# longest numeric barcodes 20).
MAX_DIGITS = 24
# Application-defined data: the content parameter, ISILs (their own compaction), one-byte
# codes (seen on Finnish tags) and the local data elements, whose form is the library's business.
_APP_DEFINED_OIDS = {2, 3, 5, 11, 15, 16, 19, 20, 23, 25, 26}
# An ISIL as libraries write it (a prefix, a hyphen, an identifier), or a bare library code
# ("YST"); hyphens only between parts, never in a run or at an end, as zero bits read as ISIL
# give them.
_ISIL_SHAPE = re.compile(r"(?=.{1,20}\Z)[A-Za-z0-9:/]+(?:-[A-Za-z0-9:/]+)*")


def is_precursor(byte: int) -> bool:
    """Whether ``byte`` can open an ISO 28560-2 tag: a precursor for relative OID 1."""
    return byte & 0x0F == 1


def element_name(oid: int) -> str:
    return ELEMENTS.get(oid, f"oid_{oid}")


def decode(
    memory: bytes,
    *,
    block_size: int = 4,
    try_reversed: bool = True,
    item_id_first: bool = True,
    strict: bool = False,
) -> TagData:
    """Decode ISO 28560-2 objects, trying each block reversed only when the order as read fails.

    Without a CRC the order cannot be proven: a reversed tag that also parses as read is taken
    as read. Readers that know their block order say so (``decode(..., block_order=...)``).
    While guessing the order (``try_reversed``), an item id with control characters or longer
    than ``MAX_GUESSED_ITEM_ID`` counts as a misreading (reader status bytes mixed into the
    data, a wrong block size), not as data.
    ``item_id_first=False`` (used when the DSFID says ISO 28560-2) accepts a tag whose item id
    is not the first object, as some encoders write it; ``extra["item_id_not_first"]`` says so.

    ``strict`` (autodetection, where nothing else vouches for the model) accepts only a
    complete, unambiguous structure: nothing but erased bytes after the data, no reserved or
    repeated element, every element named in the content parameter, and (while the block
    order is guessed) no second reading in the other order.
    """
    swap = try_reversed and block_size > 1 and len(memory) >= block_size
    try:
        tag = _decode(memory, "normal", item_id_first, plausible=try_reversed, strict=strict)
    except TagFormatError as first:
        if swap and strict and (_opens_right(memory) or len(memory) % block_size):
            # The first object as delivered is sound, so the order is: the damage is later in
            # the memory, and reading it the other way would only find something else. A read
            # of part of a block cannot have been reversed block by block either.
            raise
        if swap:
            swapped = reorder(memory, block_size)
            if is_precursor(swapped[0]) or not item_id_first:
                try:
                    return _decode(
                        swapped, "reversed", item_id_first, plausible=True, strict=strict
                    )
                except TagFormatError:
                    pass
        raise first
    if strict and swap:
        try:
            other = _decode(
                reorder(memory, block_size), "reversed", item_id_first, plausible=True, strict=True
            )
        except TagFormatError:
            return tag
        if other.item_id != tag.item_id:
            raise TagFormatError(
                f"ISO 28560-2: the memory reads as item id {tag.item_id!r} as delivered and "
                f"{other.item_id!r} with each block reversed; the reader must say its block order"
            )
    return tag


def _opens_right(mem: bytes) -> bool:
    """Whether ``mem`` opens with a sound item id object (a plausible barcode), which proves
    the block order it was read in."""
    if not mem or not is_precursor(mem[0]):
        return False
    pre, i = mem[0], 1
    oid = pre & 0x0F
    if oid == 0x0F:
        if i >= len(mem):
            return False
        oid, i = 15 + mem[i], i + 1
    if pre & 0x80:
        i += 1
    if i >= len(mem) or i + 1 + mem[i] > len(mem) or oid == 0:
        return False
    data, scheme = mem[i + 1 : i + 1 + mem[i]], (pre >> 4) & 0x07
    if oid != 1 or not data or scheme == c.APPLICATION_DEFINED:
        return False
    try:
        return _barcode_like(_expand(oid, scheme, data))
    except ValueError:
        return False


def _decode(
    mem: bytes,
    order: str,
    item_id_first: bool = True,
    *,
    plausible: bool = False,
    strict: bool = False,
) -> TagData:
    if not mem:
        raise TagFormatError("ISO 28560-2: no tag memory")
    if item_id_first and not is_precursor(mem[0]):
        raise TagFormatError(
            f"ISO 28560-2: first object must be the item id (OID 1); precursor is 0x{mem[0]:02X}"
        )
    values: dict[int, str] = {}
    extra: dict[str, Any] = {}
    app_defined: list[str] = []
    duplicates: list[int] = []
    schemes: dict[int, int] = {}
    i = 0
    while i < len(mem) and mem[i] != 0x00:
        if not mem[i:].strip(b"\xff"):
            break  # unwritten (erased) memory after the last object, as some tags ship
        start = i
        pre = mem[i]
        i += 1
        offset_flag, scheme, oid = pre & 0x80, (pre >> 4) & 0x07, pre & 0x0F
        if oid == 0:
            raise TagFormatError(f"ISO 28560-2: object at byte {start} has relative OID 0")
        if oid == 0x0F:
            if i >= len(mem):
                raise TagFormatError(
                    f"ISO 28560-2: object at byte {start} truncated after precursor"
                )
            oid = 15 + mem[i]
            i += 1
        pad = 0
        if offset_flag:
            if i >= len(mem):
                raise TagFormatError(
                    f"ISO 28560-2: object at byte {start} truncated before pad count"
                )
            pad = mem[i]
            i += 1
            if strict and pad >= _MAX_STRICT_PAD:
                raise TagFormatError(
                    f"ISO 28560-2: {pad} pad bytes after the object at byte {start}; padding "
                    "only reaches the next block boundary"
                )
        if i >= len(mem):
            raise TagFormatError(f"ISO 28560-2: object at byte {start} truncated before its length")
        length = mem[i]
        i += 1
        if i + length > len(mem):
            raise TagFormatError(
                f"ISO 28560-2: {element_name(oid)} (byte {start}) announces {length} bytes, "
                f"only {len(mem) - i} left"
            )
        data = mem[i : i + length]
        i += length
        if i + pad > len(mem):
            if pad >= _MAX_BLOCK_SIZE:
                # Padding aligns to a block boundary; more than a block of it is no padding.
                raise TagFormatError(
                    f"ISO 28560-2: {element_name(oid)} (byte {start}) announces {pad} pad bytes "
                    f"past the end of memory; wrong block size or byte order?"
                )
            # Trailing padding may be cut short by the end of memory (docs/protocols/rfid.md §4.1).
            extra["padding_missing"] = i + pad - len(mem)
        i = min(i + pad, len(mem))
        if oid == 1 and 1 in values:
            # Two item ids cannot both be right; a misread memory produces this.
            raise TagFormatError(f"ISO 28560-2: a second item id (OID 1) at byte {start}")
        if oid in values or (oid == 2 and "content_parameter" in extra):
            duplicates.append(oid)
            continue
        name = element_name(oid)
        if oid == 2:
            extra["content_parameter"] = _content_parameter(data)
            continue
        if not data:
            if oid == 1 or strict:
                # Refused here, not just skipped: a later object must not become the item id,
                # and no encoder writes an empty object (zero bytes misread as one do).
                raise TagFormatError(f"ISO 28560-2: the {name} object at byte {start} is empty")
            continue  # an empty element says nothing
        if oid == 1 and scheme == c.APPLICATION_DEFINED:
            # ISO 28560-2 defines no application-specific form of the item id; seen when
            # reader status bytes (0x01 = block locked) are mixed into the memory image.
            raise TagFormatError(
                f"ISO 28560-2: item id (byte {start}) marked application-defined, which the "
                "standard does not allow for the primary item identifier"
            )
        try:
            values[oid] = _expand(oid, scheme, data)
        except ValueError as exc:
            raise TagFormatError(
                f"ISO 28560-2: {name} (byte {start}, {c.SCHEME_NAMES[scheme]} compaction): {exc}"
            ) from None
        schemes[oid] = scheme
        if scheme == c.APPLICATION_DEFINED and oid not in _ISIL_READ_OIDS:
            app_defined.append(name)
    if 1 not in values or not values[1]:
        raise TagFormatError("ISO 28560-2: the primary item identifier (OID 1) is missing or empty")
    if strict:
        _check_complete(mem, i, values, schemes, extra, duplicates, plausible)
    if plausible and any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in values[1]):
        raise TagFormatError(
            f"ISO 28560-2: item id {values[1][:20]!r} has control characters; the memory is "
            f"misread ({order} block order)"
        )
    if plausible and len(values[1]) > MAX_GUESSED_ITEM_ID:
        raise TagFormatError(
            f"ISO 28560-2: item id of {len(values[1])} characters ({values[1][:20]!r}...) is "
            f"longer than any library barcode; the memory is misread ({order} block order)"
        )
    if not is_precursor(mem[0]):
        extra["item_id_not_first"] = True
    parts, part = 1, 1
    if 4 in values:
        parts, part = _set_information(values[4])
        part, parts = read_set(part, parts, extra)
    for oid, value in values.items():
        if oid not in _FIELD_OIDS:
            extra[element_name(oid)] = value
    if 4 in values:
        extra["set_information"] = values[4]
    if app_defined:
        extra["application_defined"] = app_defined
    if duplicates:
        extra["duplicate_oids"] = duplicates
    return TagData(
        model=MODEL,
        item_id=values[1],
        part_number=part,
        parts_in_set=parts,
        owner_institution=values.get(3, ""),
        type_of_usage=values.get(5, ""),
        crc_ok=None,
        block_order=order,
        extra=extra,
    )


def _check_complete(
    mem: bytes,
    end: int,
    values: dict[int, str],
    schemes: dict[int, int],
    extra: dict[str, Any],
    duplicates: list[int],
    guessing: bool,
) -> None:
    """Refuse a parse that only half fits (see ``decode``'s ``strict``): each rule is one a
    written tag keeps and a misread memory (another model, a damaged or shifted read) breaks.
    While the block order is guessed, garbled text (control characters, runs of zero symbols
    from a 5/6-bit code, an item id no barcode has) counts as misread too."""
    rest = mem[end + 1 :] if end < len(mem) and mem[end] == 0 else mem[end:]
    problems: list[str] = []
    if rest.rstrip(b"\xff").strip(b"\x00"):
        problems.append(f"data continues after the end of the objects (byte {end})")
    unknown = sorted(oid for oid in values if oid > len(ELEMENTS))
    if unknown or duplicates:
        problems.append(f"reserved OID(s) {unknown} or repeated OID(s) {duplicates}")
    for oid, value in values.items():
        name, scheme = element_name(oid), schemes.get(oid)
        isil = oid in _ISIL_OIDS or (oid in _ISIL_READ_OIDS and scheme == c.APPLICATION_DEFINED)
        if scheme == c.APPLICATION_DEFINED and oid not in _APP_DEFINED_OIDS:
            problems.append(f"{name} in the application-defined compaction")
        elif oid in _CODE_OIDS and len(value) != 2:
            problems.append(f"{name} is not one byte")
        elif isil and not _ISIL_SHAPE.fullmatch(value):
            problems.append(f"{name} {value[:20]!r} is no ISIL")
        elif guessing and oid not in _CODE_OIDS and not isil and _garbled(value, scheme):
            problems.append(f"{name} {value[:20]!r} is garbled")
    if guessing and not _barcode_like(values.get(1, "")):
        problems.append(f"item id {values.get(1, '')[:20]!r} has characters no barcode has")
    if 4 in values:
        digits = values[4]
        parts, part = _set_information(digits)
        if len(digits) > 8 or not set_ok(part, parts):
            problems.append(f"set information {digits!r} is no part of a set")
    declared = extra.get("content_parameter")
    if declared is not None:
        # An encoder writes a content parameter only to name elements: an empty one is misread.
        present = {oid for oid in values if oid >= 3}
        if (
            not declared
            or any(oid > len(ELEMENTS) for oid in declared)
            or not present <= set(declared)
        ):
            problems.append(f"content parameter {declared} against OIDs {sorted(present)}")
    if problems:
        raise TagFormatError(
            "ISO 28560-2: not one complete structure (" + "; ".join(problems) + "); the memory "
            "is misread"
        )


def _barcode_like(text: str) -> bool:
    """Letters and digits (any script), with spaces and ``./:_-`` between them: what library
    barcodes are made of, for a memory read without knowing its block order."""
    return bool(text) and text[0].isalnum() and all(ch.isalnum() or ch in " ./:_-" for ch in text)


def _garbled(value: str, scheme: int | None) -> bool:
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        return True
    if scheme in (c.INTEGER, c.NUMERIC):
        return len(value) > MAX_DIGITS  # a long run of bytes read as one number
    return scheme in (c.FIVE_BIT, c.SIX_BIT) and "@@" in value  # zero bytes read as text


def declares_exactly(tag: TagData) -> bool:
    """Whether the tag's content parameter names exactly the elements it holds (OIDs 3-26):
    a complete tag's own account of itself, which a misread memory matches only by chance."""
    declared = tag.extra.get("content_parameter")
    if declared is None:
        return False
    present = {OIDS[name] for name in tag.extra if name in OIDS and OIDS[name] >= 6}
    present |= {oid for oid, value in ((3, tag.owner_institution), (5, tag.type_of_usage)) if value}
    if "set_information" in tag.extra:
        present.add(4)
    return set(declared) == present


def _expand(oid: int, scheme: int, data: bytes) -> str:
    if scheme == c.APPLICATION_DEFINED:
        if oid in _ISIL_READ_OIDS:
            return c.expand_isil(data)
        return data.hex().upper()
    if oid in _CODE_OIDS and scheme in (c.INTEGER, c.OCTET):
        return data.hex().upper()
    return c.EXPAND[scheme](data)


def _content_parameter(data: bytes) -> list[int]:
    """OIDs marked present: MSB of byte 0 = OID 3, then OID 4 ..."""
    return [3 + i for i in range(len(data) * 8) if data[i // 8] & (0x80 >> (i % 8))]


def _set_information(text: str) -> tuple[int, int]:
    digits = text if len(text) % 2 == 0 else "0" + text  # an integer compaction drops a leading 0
    if not digits.isdigit() or not digits:
        raise TagFormatError(f"ISO 28560-2: set information {text!r} is not an even digit string")
    half = len(digits) // 2
    return int(digits[:half]), int(digits[half:])


# --- encoding ------------------------------------------------------------------------------


def encode(data: TagData, *, block_size: int = 4, block_order: str = "normal") -> bytes:
    """ISO 28560-2 objects for ``data``: item id, content parameter, then the other elements by OID.

    ``extra["aligned"]`` lists elements (e.g. ``["item_id"]``) whose objects must end on a block
    boundary, so their blocks can be locked.
    """
    extra: Mapping[str, Any] = data.extra or {}
    if not data.item_id:
        raise TagFormatError("ISO 28560-2 needs a non-empty item id")
    elements: dict[int, tuple[int, bytes]] = {1: _compact_text(1, data.item_id)}
    if data.owner_institution:
        elements[3] = _compact_isil(3, data.owner_institution)
    if not 1 <= data.parts_in_set <= 9999 or not 1 <= data.part_number <= data.parts_in_set:
        raise TagFormatError(
            f"ISO 28560-2 set information out of range: part {data.part_number} of {data.parts_in_set}"
        )
    if data.parts_in_set != 1 or data.part_number != 1:
        width = len(str(data.parts_in_set))
        elements[4] = _compact_text(4, f"{data.parts_in_set:0{width}d}{data.part_number:0{width}d}")
    if data.type_of_usage:
        elements[5] = _compact_code(5, data.type_of_usage)
    app_defined_value = extra.get("application_defined") or ()
    if isinstance(app_defined_value, str):
        app_defined_value = (app_defined_value,)
    if not isinstance(app_defined_value, list | tuple | set | frozenset):
        raise TagFormatError("ISO 28560-2: 'application_defined' lists element names")
    app_defined = {str(name) for name in app_defined_value}
    for key, value in extra.items():
        if key in _INFO_KEYS or key == "set_information" or value is None or value == "":
            continue
        oid = OIDS.get(key)
        if oid is None and key.startswith("oid_") and key[4:].isdigit():
            oid = int(key[4:])
        if oid is None or oid in _FIELD_OIDS:
            continue  # not an ISO 28560-2 element (e.g. a field of another model)
        if not 1 <= oid <= _MAX_OID:
            raise TagFormatError(f"ISO 28560-2 relative OID {oid} out of range 1..{_MAX_OID}")
        text = str(value)
        if key in app_defined:
            elements[oid] = (c.APPLICATION_DEFINED, _hex(key, text))
        elif oid in _ISIL_OIDS:
            elements[oid] = _compact_isil(oid, text)
        elif oid in _CODE_OIDS:
            elements[oid] = _compact_code(oid, text)
        else:
            elements[oid] = _compact_text(oid, text)
    present = [oid for oid in elements if 3 <= oid <= 26]
    if len(elements) > 1:
        bitmap = bytearray(3)
        for oid in present:
            bitmap[(oid - 3) // 8] |= 0x80 >> ((oid - 3) % 8)
        elements[2] = (c.APPLICATION_DEFINED, bytes(bitmap).rstrip(b"\x00") or b"\x00")
    aligned = _aligned_oids(extra.get("aligned") or ())
    memory = b""
    for oid in sorted(elements):
        # An aligned object ends on a block boundary (offset flag + pad bytes), so the blocks
        # holding it can be locked without locking its neighbours (docs/protocols/rfid.md §4.1).
        memory += _object(
            oid, *elements[oid], start=len(memory), align=block_size if oid in aligned else 0
        )
    memory += b"\x00"
    return order_blocks(pad_blocks(memory, block_size), block_size, block_order)


def _object(oid: int, scheme: int, data: bytes, *, start: int = 0, align: int = 0) -> bytes:
    if len(data) > 255:
        raise TagFormatError(
            f"ISO 28560-2: {element_name(oid)} is {len(data)} bytes compacted; at most 255 fit"
        )
    offset = 0x80 if align else 0
    if oid < 15:
        head = bytes([offset | scheme << 4 | oid])
    else:
        head = bytes([offset | scheme << 4 | 0x0F, oid - 15])
    if not align:
        return head + bytes([len(data)]) + data
    size = len(head) + 2 + len(data)
    pad = -(start + size) % align
    return head + bytes([pad, len(data)]) + data + bytes(pad)


def _aligned_oids(names: object) -> set[int]:
    if isinstance(names, str) or not isinstance(names, list | tuple | set | frozenset):
        raise TagFormatError("ISO 28560-2: 'aligned' lists element names, e.g. ['item_id']")
    oids = set()
    for name in names:
        oid = OIDS.get(str(name))
        if oid is None:
            raise TagFormatError(f"ISO 28560-2: cannot align unknown element {name!r}")
        oids.add(oid)
    return oids


def _compact_text(oid: int, text: str) -> tuple[int, bytes]:
    return c.best_compaction(text)


def _compact_isil(oid: int, text: str) -> tuple[int, bytes]:
    try:
        return c.APPLICATION_DEFINED, c.compact_isil(text)
    except ValueError as exc:
        raise TagFormatError(f"ISO 28560-2: {element_name(oid)} {text!r}: {exc}") from None


def _compact_code(oid: int, text: str) -> tuple[int, bytes]:
    # One hex digit is a class without sub-class: "1" is written as 0x10.
    return c.OCTET, _hex(element_name(oid), text + "0" if len(text) == 1 else text, size=1)


def _hex(name: str, text: str, size: int | None = None) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if not raw or (size is not None and len(raw) != size):
        what = f"{size} byte(s)" if size else "bytes"
        raise TagFormatError(f"ISO 28560-2: {name} must be given as hex {what}, not {text!r}")
    return raw
