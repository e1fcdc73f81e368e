"""ISO 28560-3 / DS/INF 163 ("Danish data model"): the fixed 34-byte basic block with its CRC,
its 32-byte truncated form, the per-block byte-order variant and optional extension blocks.

Layout (docs/protocols/rfid.md §3): byte 0 content parameter (high nibble, value 1) and type of usage (low
nibble); byte 1 parts in set; byte 2 part number; bytes 3-18 item id (ISO 8859-1, NUL-padded);
bytes 19-20 CRC-16/CCITT-FALSE over bytes 0-18 + 21-33, low byte first; bytes 21-22 ISIL
country; bytes 23-33 the rest of the ISIL without its hyphen; extension blocks from byte 34.

Extension blocks are kept byte for byte in ``extra["extension_blocks"]`` and their elements are
also given by name (``title``, ``shelf_location``, ``order_number``, ``media_format`` ...); on
encoding, a block is written anew only when its elements changed. A damaged extension block
is noted in ``extra["extension_error"]`` and never costs the item id.
"""

from __future__ import annotations

import binascii
import logging
from collections.abc import Mapping
from functools import reduce
from operator import xor
from typing import Any

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags.data import TagData, int_field, read_set, set_ok

log = logging.getLogger(__name__)

MODEL = "iso28560-3"
BASIC_SIZE = 34
TRUNCATED_SIZE = 32
_PII = slice(3, 19)
_LONG_PII_MARK = 0x01
LIBRARY_EXTENSION_ID = 1
# Extension blocks and the ISO 28560-1 elements they hold, in order (BibliothekTHWildau/ISO28560).
# Names match the ISO 28560-2 element names, so a tag converts between the models.
BLOCK_FIELDS: dict[int, tuple[str, ...]] = {
    2: (
        "supplier_identifier",
        "product_identifier_local",
        "order_number",
        "supplier_invoice_number",
        "gs1_product_identifier",
        "supply_chain_stage",
    ),
    3: (
        "shelf_location",
        "marc_media_format",
        "onix_media_format",
        "subsidiary_of_owner_institution",
    ),
    4: ("title",),
    5: (
        "ill_borrowing_institution",
        "ill_borrowing_transaction_number",
        "alternative_ill_borrowing_institution",
    ),
}


class CrcCoincidence(TagFormatError):
    """The basic block's CRC matches, but what it guards is no ISO 28560-3 basic block (no
    content parameter in byte 0, control characters in the item id): the match is one of the
    1 in 65,536 a memory of another model has by chance."""


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final XOR)."""
    # binascii.crc_hqx is exactly this CRC when started from 0xFFFF.
    return binascii.crc_hqx(data, 0xFFFF)


def crc_input(basic: bytes) -> bytes:
    """The 32 bytes the basic-block CRC covers; a 32-byte tag counts as if bytes 32-33 were 0x00."""
    body = basic[:19] + basic[21:BASIC_SIZE]
    return body.ljust(32, b"\x00")


def reorder(memory: bytes, block_size: int) -> bytes:
    """Reverse the bytes inside every block (the same function maps either order to the other)."""
    if block_size < 1:
        raise TagFormatError(f"block size must be at least 1, not {block_size}")
    return b"".join(memory[i : i + block_size][::-1] for i in range(0, len(memory), block_size))


def basic_size(memory: bytes) -> int | None:
    """34 or 32 when ``memory`` (in tag order) starts with a basic block of that size whose CRC
    is right, else None. A 32-byte block written on a bigger tag may leave old bytes at 32-33."""
    if len(memory) < TRUNCATED_SIZE:
        return None
    stored = memory[19] | (memory[20] << 8)
    if crc16(crc_input(memory)) == stored:
        return BASIC_SIZE if len(memory) >= BASIC_SIZE else TRUNCATED_SIZE
    if len(memory) >= BASIC_SIZE and crc16(crc_input(memory[:TRUNCATED_SIZE])) == stored:
        return TRUNCATED_SIZE
    return None


def crc_matches(memory: bytes) -> bool:
    """Whether ``memory`` (in tag order) starts with a basic block whose CRC is right."""
    return basic_size(memory) is not None


def find_order(memory: bytes, block_size: int, try_reversed: bool = True) -> str | None:
    """'normal' or 'reversed': the block byte order in which the basic-block CRC matches."""
    if crc_matches(memory):
        return "normal"
    if try_reversed and block_size > 1 and crc_matches(reorder(memory, block_size)):
        return "reversed"
    return None


def first_byte_ok(byte: int) -> bool:
    """Whether ``byte`` can open a basic block: content parameter 1 in either nibble (some
    Bibliotheca tags swap the nibbles). A 3M RFID 501 tag opens with 0x04, so its barcode can
    never be read as an ISO 28560-3 item id, even when its bytes happen to pass the CRC."""
    return byte >> 4 == 1 or byte & 0x0F == 1


def basic_block_shape(mem: bytes) -> tuple[int, int]:
    """How a memory compares with a basic block: the regions holding what a basic block holds
    there (byte 0 with content parameter 1, a set, and as text of two characters or more the
    item id and the ISIL's country and library part), and the bytes no basic block holds where
    they are (a non-text byte in a string, a non-NUL byte in its padding, a wrong byte 0 or
    set). A damaged byte costs one of either; another model's data costs many bytes."""
    shaped = odd = 0
    if mem[0] >> 4 == 1:
        shaped += 1
    elif not first_byte_ok(mem[0]):
        odd += 1  # (nibbles swapped, as a few tags have them, counts for neither)
    if len(mem) >= 3 and not (mem[1] == 0 and mem[2] in (0, 1)):  # 0/0: legacy single item
        if set_ok(mem[2], mem[1]):
            shaped += 1
        else:
            odd += 1
    for raw, allowed in (
        (mem[3:19], _ASCII_TEXT),
        (mem[21:23], _COUNTRY),
        (mem[23:BASIC_SIZE], _ISIL_TEXT),
    ):
        text = raw.split(b"\x00", 1)[0]
        bad = sum(b not in allowed for b in text) + sum(b != 0 for b in raw[len(text) + 1 :])
        if len(text) >= 2 and not bad:
            shaped += 1
        odd += bad
    return shaped, odd


# What the strings of a basic block are made of: the item id as barcodes write it (ISO 8859-1
# allows more, but compacted ISO 28560-2 data passes for Latin-1 text too easily).
_ASCII_TEXT = frozenset(range(0x20, 0x7F))
_COUNTRY = frozenset(range(0x41, 0x5B))
_ISIL_TEXT = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-:/")


def looks_like_basic_block(
    memory: bytes, block_size: int, try_reversed: bool = True, *, exactly: bool = False
) -> bool:
    """Whether ``memory`` is shaped like an ISO 28560-3 basic block (whatever its CRC says).

    "Nearly" (the default): at least two regions shaped and at most one odd byte, or three and
    up to three odd bytes, so a few damaged bytes or a read cut short never make a -3 tag look
    like another model; "exactly": at least three regions shaped and no odd byte.
    """
    if len(memory) < 4:
        return False
    orders = [memory]
    if try_reversed and block_size > 1:
        orders.append(reorder(memory, block_size))
    for mem in orders:
        shaped, odd = basic_block_shape(mem)
        if exactly:
            if shaped >= 3 and odd == 0:
                return True
        elif (shaped >= 2 and odd <= 1) or (shaped >= 3 and odd <= 3):
            return True
            return True
    return False


def crc_mismatch(memory: bytes, block_size: int, try_reversed: bool = True) -> str:
    """What a technician needs to see about a basic block whose CRC does not match."""
    stored = memory[19] | (memory[20] << 8)
    message = (
        f"ISO 28560-3 CRC mismatch: stored 0x{stored:04X}, computed "
        f"0x{crc16(crc_input(memory)):04X} (block byte order as read)"
    )
    if try_reversed and block_size > 1:
        swapped = reorder(memory, block_size)
        message += (
            f"; each {block_size}-byte block reversed: stored 0x{swapped[19] | swapped[20] << 8:04X},"
            f" computed 0x{crc16(crc_input(swapped)):04X}"
        )
    return message


def decode(memory: bytes, *, block_size: int = 4, try_reversed: bool = True) -> TagData:
    """Decode an ISO 28560-3 tag read in either block byte order; a bad CRC raises TagFormatError."""
    if len(memory) < TRUNCATED_SIZE:
        raise TagFormatError(
            f"ISO 28560-3 basic block truncated: {len(memory)} bytes read, at least 32 needed"
        )
    order = find_order(memory, block_size, try_reversed)
    if order is None:
        raise TagFormatError(crc_mismatch(memory, block_size, try_reversed))
    mem = memory if order == "normal" else reorder(memory, block_size)
    extra: dict[str, Any] = {}
    high, low = mem[0] >> 4, mem[0] & 0x0F
    if high != 1 and low == 1:
        # Some Bibliotheca tags swap the nibbles (0x71 = discarded, 0x21); docs/protocols/rfid.md P2.
        usage, version = high, low
        extra["nibbles_swapped"] = True
    else:
        usage, version = low, high
    extra["content_parameter"] = version
    size = basic_size(mem) or TRUNCATED_SIZE
    extra["basic_block_size"] = size
    pii_raw = mem[_PII]
    blocks, ext_error = _extension_blocks(mem) if size == BASIC_SIZE else ([], None)
    if blocks:
        extra["extension_blocks"] = blocks
        named = _named_fields(blocks)
        ext_owner = named.pop("owner_institution", "")
        extra.update(named)
    if ext_error:
        extra["extension_error"] = ext_error
    if pii_raw[0] == _LONG_PII_MARK and not any(pii_raw[1:]):
        item_id = _long_pii(blocks)
        if not item_id:
            raise TagFormatError(
                "ISO 28560-3 tag announces an item id longer than 16 bytes (byte 3 = 0x01) "
                "but has no readable library extension block holding it"
            )
        extra["long_item_id"] = True
    else:
        item_id = _text(pii_raw)
    if not item_id:
        raise TagFormatError(
            "ISO 28560-3 tag (CRC valid) holds no item id: bytes 3-18 are empty; re-tag the item"
        )
    if not first_byte_ok(mem[0]):
        raise CrcCoincidence(
            f"byte 0 = 0x{mem[0]:02X} has no content parameter 1, so this is no ISO 28560-3 basic "
            "block although its CRC matches (a coincidence of 1 in 65,536)"
        )
    if any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in item_id):
        raise CrcCoincidence(
            f"ISO 28560-3 item id {item_id[:20]!r} has control characters; no encoder writes them "
            "(a CRC that matches by coincidence)"
        )
    country = _text(mem[21:23])
    library = _text(mem[23:size])
    extra["country"] = country
    extra["library"] = library
    # Some encoders store the ISIL's hyphen in the library part; never show it twice.
    joiner = "" if library.startswith("-") else "-"
    owner = f"{country}{joiner}{library}" if country and library else country or library
    if blocks and ext_owner and ext_owner != owner:
        # An ISIL too long for the basic block is written in full in the library extension block.
        extra["basic_owner_institution"] = owner
        owner = ext_owner
    part, parts = read_set(mem[2], mem[1], extra)
    return TagData(
        model=MODEL,
        item_id=item_id,
        part_number=part,
        parts_in_set=parts,
        owner_institution=owner,
        type_of_usage=f"{usage:X}",
        crc_ok=True,
        block_order=order,
        extra=extra,
    )


def _text(raw: bytes) -> str:
    return raw.split(b"\x00", 1)[0].decode("latin-1")


def _extension_blocks(mem: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """Parse the extension blocks after the basic block; a damaged one ends the list, with a note."""
    blocks: list[dict[str, Any]] = []
    i = BASIC_SIZE
    while i < len(mem):
        length = mem[i]
        if length == 0 or not mem[i:].strip(b"\xff"):
            return blocks, None  # end marker, or unwritten (erased) memory
        if length == 1:  # DS/INF 163 filler byte
            i += 1
            continue
        if length < 4:
            return blocks, f"extension block at byte {i} too short ({length} bytes)"
        if i + length > len(mem):
            return blocks, f"extension block at byte {i} runs past the end of memory"
        raw = mem[i : i + length]
        if reduce(xor, raw, 0) != 0:
            return blocks, f"extension block at byte {i} fails its XOR checksum"
        block_id = raw[1] | (raw[2] << 8)
        media_format, fields = _fields(raw)
        entry: dict[str, Any] = {
            "id": block_id,
            "fields": fields,
            "layout": block_layout(raw),
            "raw": raw.hex(),
        }
        if media_format is not None:
            entry["media_format"] = media_format
        blocks.append(entry)
        i += length
    return blocks, None


ISO_LAYOUT, DSINF_LAYOUT, AMBIGUOUS_LAYOUT = "iso28560-3", "ds-inf-163", "ambiguous"


def block_layout(raw: bytes) -> str:
    """Where an extension block keeps its XOR checksum: byte 3 (ISO 28560-3, as
    BibliothekTHWildau/ISO28560 writes it) or the last byte (DS/INF 163), docs/protocols/rfid.md §3.3.

    The XOR over the whole block is 0 either way, so only the payload tells: each reading must
    leave text, a NUL at byte 3 is an empty first field (DS/INF) and a NUL at the end a field
    terminator (ISO). When both readings fit, the block is ambiguous and read the ISO way.
    """
    if raw[1] | raw[2] << 8 == LIBRARY_EXTENSION_ID:
        # Its payload opens with the media-format byte, 0..6 where defined.
        iso_ok = len(raw) > 4 and raw[4] <= 6 and _is_text(raw[5:])
        dsinf_ok = raw[3] <= 6 and _is_text(raw[4:-1])
        if iso_ok and dsinf_ok:
            return AMBIGUOUS_LAYOUT
        return DSINF_LAYOUT if dsinf_ok else ISO_LAYOUT
    iso_ok = _is_text(raw[4:])
    dsinf_ok = len(raw) > 4 and _is_text(raw[3:-1])
    if iso_ok and dsinf_ok:
        if raw[-1] == 0 and raw[3] != 0:
            return ISO_LAYOUT
        if raw[3] == 0 and raw[-1] != 0:
            return DSINF_LAYOUT
        return AMBIGUOUS_LAYOUT
    return DSINF_LAYOUT if dsinf_ok else ISO_LAYOUT


def _fields(raw: bytes) -> tuple[int | None, list[str]]:
    """The media-format byte (library extension block only) and the NUL-separated strings of an
    extension block's payload, read in the layout ``block_layout`` finds."""
    skip = 1 if raw[1] | raw[2] << 8 == LIBRARY_EXTENSION_ID else 0
    payload = raw[3:-1] if block_layout(raw) == DSINF_LAYOUT else raw[4:]
    media_format = payload[0] if skip and payload else None
    payload = payload[skip:]
    if not payload.strip(b"\x00"):
        return media_format, []
    return media_format, [part.decode("latin-1") for part in payload.rstrip(b"\x00").split(b"\x00")]


def _named_fields(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The elements held in known extension blocks, by name (the first block of an ID wins)."""
    named: dict[str, Any] = {}
    for block in blocks:
        if block["id"] == LIBRARY_EXTENSION_ID:
            if block.get("media_format"):
                named.setdefault("media_format", block["media_format"])
            if len(block["fields"]) > 1 and block["fields"][1]:
                named.setdefault("owner_institution", block["fields"][1])
            continue
        for name, value in zip(BLOCK_FIELDS.get(block["id"], ()), block["fields"], strict=False):
            if value:
                named.setdefault(name, value)
    return named


def _build_block(block_id: int, payload: bytes) -> bytes:
    # The closing NUL ends the last field and tells this layout from DS/INF 163's on reading.
    body = bytearray([0, block_id & 0xFF, block_id >> 8, 0]) + payload + b"\x00"
    if len(body) > 255:
        raise TagFormatError(
            f"ISO 28560-3 extension block {block_id} would be {len(body)} bytes; at most 255 fit"
        )
    body[0] = len(body)
    body[3] = reduce(xor, body, 0)
    return bytes(body)


def _latin1(name: str, value: object) -> bytes:
    try:
        raw = str(value).encode("latin-1")
    except UnicodeEncodeError:
        raise TagFormatError(
            f"ISO 28560-3 {name} {value!r} has characters outside ISO 8859-1"
        ) from None
    if any(b < 0x20 or 0x7F <= b < 0xA0 for b in raw):
        raise TagFormatError(f"ISO 28560-3 {name} {value!r} must not contain control characters")
    return raw


def _is_text(data: bytes) -> bool:
    return all(b == 0 or 0x20 <= b < 0x7F or b >= 0xA0 for b in data)


def _long_pii(blocks: list[dict[str, Any]]) -> str:
    for block in blocks:
        if block["id"] == LIBRARY_EXTENSION_ID and block["fields"] and block["fields"][0]:
            return str(block["fields"][0])
    return ""


def encode(data: TagData, *, block_size: int = 4, block_order: str = "normal") -> bytes:
    """Tag user memory for ``data`` in the given block byte order, padded to whole blocks."""
    extra: Mapping[str, Any] = data.extra or {}
    try:
        pii = data.item_id.encode("latin-1")
    except UnicodeEncodeError:
        raise TagFormatError(
            f"ISO 28560-3 item id {data.item_id!r} has characters outside ISO 8859-1"
        ) from None
    if not pii or any(b < 0x20 or 0x7F <= b < 0xA0 for b in pii):
        # Control characters are refused; 0x01 alone would read back as the long-item-id mark.
        raise TagFormatError("ISO 28560-3 needs a non-empty item id without control characters")
    long_pii = len(pii) > 16
    if long_pii and (len(pii) > 250 or extra.get("basic_block_size") == TRUNCATED_SIZE):
        raise TagFormatError(
            f"ISO 28560-3 item id {data.item_id!r} is {len(pii)} bytes: too long for a library "
            "extension block on this tag"
        )
    if not 1 <= data.parts_in_set <= 255 or not 1 <= data.part_number <= data.parts_in_set:
        raise TagFormatError(
            f"ISO 28560-3 set information out of range: part {data.part_number} of "
            f"{data.parts_in_set} (parts 1..255, part 1..parts)"
        )
    usage = _usage_nibble(data.type_of_usage)
    version = int_field(extra, "content_parameter", 1)
    if not 0 <= version <= 15:
        raise TagFormatError(f"ISO 28560-3 content parameter {version} does not fit a nibble")
    first = (usage << 4 | version) if extra.get("nibbles_swapped") else (version << 4 | usage)
    size = int_field(extra, "basic_block_size", BASIC_SIZE)
    if size not in (BASIC_SIZE, TRUNCATED_SIZE):
        raise TagFormatError(f"ISO 28560-3 basic block is 32 or 34 bytes, not {size}")
    # A decoded tag whose full ISIL lives in the library extension block keeps that split.
    basic_owner = str(extra.get("basic_owner_institution", data.owner_institution))
    country, library = _split_isil(basic_owner, size - 23)
    long_owner = (
        _latin1("owner institution", data.owner_institution)
        if basic_owner != data.owner_institution
        else b""
    )
    body = bytearray(BASIC_SIZE)
    body[0] = first
    body[1] = data.parts_in_set
    body[2] = data.part_number
    if long_pii:
        body[3] = _LONG_PII_MARK
    else:
        body[3 : 3 + len(pii)] = pii
    body[21 : 21 + len(country)] = country
    body[23 : 23 + len(library)] = library
    crc = crc16(crc_input(bytes(body)))
    body[19] = crc & 0xFF
    body[20] = crc >> 8
    memory = bytes(body[:size])
    blocks = _encode_blocks(extra, pii if long_pii else b"", long_owner)
    if blocks:
        if size != BASIC_SIZE:
            raise TagFormatError("extension blocks need the full 34-byte ISO 28560-3 basic block")
        memory += b"".join(blocks) + b"\x00"
    return order_blocks(pad_blocks(memory, block_size), block_size, block_order)


def _encode_blocks(extra: Mapping[str, Any], long_pii: bytes, long_owner: bytes) -> list[bytes]:
    """Extension blocks for ``extra``: raw blocks kept byte for byte unless the elements they
    hold were changed, then blocks for elements that have none yet."""
    wanted: dict[int, list[bytes]] = {}
    for block_id, names in BLOCK_FIELDS.items():
        values = [_latin1(name, extra.get(name) or "") for name in names]
        if any(values):
            wanted[block_id] = values
    media_format = int_field(extra, "media_format", 0)
    if not 0 <= media_format <= 6:
        raise TagFormatError(
            f"ISO 28560-3 media format {media_format} unknown: 0 not given, 1 book, 2 CD/DVD, "
            "3 magnetic tape, 4 other, 5 other with careful handling, 6 very small item"
        )
    library: bytes | None = None
    if long_pii or long_owner or media_format:
        library = bytes([media_format]) + long_pii + (b"\x00" + long_owner if long_owner else b"")
    out: list[bytes] = []
    for raw in _extension_raw(extra.get("extension_blocks")):
        block_id = raw[1] | raw[2] << 8
        if block_id == LIBRARY_EXTENSION_ID:
            old_format, fields = _fields(raw)
            fields += ["", ""]
            same = (old_format or 0, fields[0].encode("latin-1"), fields[1].encode("latin-1")) == (
                media_format,
                long_pii,
                long_owner,
            )
            if same:
                out.append(raw)
            elif library is not None:
                out.append(_build_block(LIBRARY_EXTENSION_ID, library))
            library = None
            continue
        if block_id not in BLOCK_FIELDS:
            out.append(raw)
            continue
        names = BLOCK_FIELDS[block_id]
        values = wanted.pop(block_id, [b""] * len(names))
        stored = [f.encode("latin-1") for f in _fields(raw)[1]]
        stored += [b""] * (len(names) - len(stored))
        if stored[: len(names)] == values:
            out.append(raw)
        elif any(values):
            out.append(_build_block(block_id, b"\x00".join(values).rstrip(b"\x00")))
    if library is not None:
        out.insert(0, _build_block(LIBRARY_EXTENSION_ID, library))
    for block_id, values in wanted.items():
        out.append(_build_block(block_id, b"\x00".join(values).rstrip(b"\x00")))
    return out


def _extension_raw(value: object) -> list[bytes]:
    """The raw bytes of each extension block in ``extra["extension_blocks"]``, checked."""
    if not value:
        return []
    if not isinstance(value, list | tuple):
        raise TagFormatError("extension_blocks must be a list of blocks with their raw hex")
    blocks = []
    for block in value:
        try:
            raw = bytes.fromhex(str(block["raw"]))
        except (KeyError, TypeError, ValueError):
            raise TagFormatError(f"extension block {block!r} has no valid raw hex") from None
        if len(raw) < 4 or raw[0] != len(raw) or reduce(xor, raw, 0) != 0:
            raise TagFormatError(
                f"extension block {raw.hex()} is malformed (length byte or XOR checksum wrong)"
            )
        blocks.append(raw)
    return blocks


def pad_blocks(memory: bytes, block_size: int) -> bytes:
    if block_size < 1:
        raise TagFormatError(f"block size must be at least 1, not {block_size}")
    return memory + b"\x00" * (-len(memory) % block_size)


def order_blocks(memory: bytes, block_size: int, block_order: str) -> bytes:
    if block_order == "normal":
        return memory
    if block_order == "reversed":
        return reorder(memory, block_size)
    raise TagFormatError(f"block order must be 'normal' or 'reversed', not {block_order!r}")


def _usage_nibble(text: str) -> int:
    if not text:
        return 1
    try:
        value = int(text, 16)
    except ValueError:
        value = -1
    if not 0 <= value <= 15 or len(text) != 1:
        raise TagFormatError(
            f"ISO 28560-3 type of usage is one hex digit (1 = circulating), not {text!r}"
        )
    return value


def _split_isil(isil: str, max_library: int) -> tuple[bytes, bytes]:
    if not isil:
        return b"", b""
    if "-" in isil:
        country, library = isil.split("-", 1)
    else:
        country, library = isil[:2], isil[2:]
    if len(country) != 2:
        raise TagFormatError(
            f"ISO 28560-3 stores a two-letter ISIL prefix; {isil!r} has prefix {country!r}"
        )
    try:
        raw_country, raw_library = country.encode("ascii"), library.encode("ascii")
    except UnicodeEncodeError:
        raise TagFormatError(f"ISIL {isil!r} has non-ASCII characters") from None
    if len(raw_library) > max_library or b"\x00" in raw_library + raw_country:
        raise TagFormatError(
            f"ISIL {isil!r}: the library part {library!r} exceeds the {max_library} bytes this "
            "ISO 28560-3 basic block holds"
        )
    return raw_country, raw_library
