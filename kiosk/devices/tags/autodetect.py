"""Model autodetection and dispatch to the ISO 28560-3, ISO 28560-2 and 3M RFID 501 codecs."""

from __future__ import annotations

import logging
from dataclasses import replace

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import iso28560_2, iso28560_3, rfid501
from kiosk.devices.tags.data import DSFID_ISO28560_2, DSFID_ISO28560_3, MODELS, TagData

log = logging.getLogger(__name__)

# Every Bibliotheca "DM11" tag image known (libdanrfid DM11DataTest) starts with this byte.
DM11_FIRST_BYTE = 0x0B

_CODECS = {
    iso28560_3.MODEL: iso28560_3,
    iso28560_2.MODEL: iso28560_2,
    rfid501.MODEL: rfid501,
}


# The most a SIP2 field holds (in UTF-8, the widest encoding a library system may use): a longer
# item id could only reach the library system shortened, that is as another item.
MAX_ITEM_ID_BYTES = 255


def decode(
    memory: bytes, *, model: str, block_size: int, dsfid: int | None, block_order: str = "auto"
) -> TagData:
    if block_size < 1:
        raise TagFormatError(f"block size must be at least 1, not {block_size}")
    if block_order == "reversed":
        tag = _decode(iso28560_3.reorder(memory, block_size), model, block_size, dsfid, False)
        tag = replace(tag, block_order="reversed")
    elif block_order in ("auto", "normal"):
        tag = _decode(memory, model, block_size, dsfid, block_order == "auto")
    else:
        raise TagFormatError(f"block order must be auto, normal or reversed, not {block_order!r}")
    size = len(tag.item_id.encode("utf-8", errors="surrogatepass"))
    if size > MAX_ITEM_ID_BYTES:
        raise TagFormatError(
            f"{tag.model} item id of {size} bytes ({tag.item_id[:20]!r}...): a library system "
            f"takes at most {MAX_ITEM_ID_BYTES}, so the tag cannot be used as it is"
        )
    return tag


def _decode(
    memory: bytes, model: str, block_size: int, dsfid: int | None, try_reversed: bool
) -> TagData:
    if model != "auto":
        codec = _CODECS.get(model)
        if codec is None:
            raise TagFormatError(f"unknown tag data model {model!r}; known: {', '.join(MODELS)}")
        return codec.decode(memory, block_size=block_size, try_reversed=try_reversed)
    if not memory:
        raise TagFormatError("no tag memory read (0 bytes)")
    if not any(memory):
        raise TagFormatError("blank tag: user memory is all 0x00")
    if all(b == 0xFF for b in memory):
        raise TagFormatError("blank tag: user memory is all 0xFF")

    crc_order = (
        iso28560_3.find_order(memory, block_size, try_reversed) if len(memory) >= 32 else None
    )
    swapped = iso28560_3.reorder(memory, block_size) if try_reversed else memory
    if crc_order:
        crc_mem = memory if crc_order == "normal" else swapped
        if not iso28560_3.first_byte_ok(crc_mem[0]) and any(crc_mem[3:19]):
            # A CRC match without a basic block's byte 0 (3M's 0x04, say) is a coincidence:
            # the model is told by the evidence below, as for any memory without a CRC.
            crc_order = None
    if crc_order and dsfid == DSFID_ISO28560_2 and iso28560_2.is_precursor(memory[0]):
        try:
            tag = iso28560_2.decode(
                memory, block_size=block_size, try_reversed=try_reversed, strict=True
            )
            _refuse_basic_block_start(tag, memory, block_size, "matches")
        except TagFormatError:
            pass
        else:
            log.debug("DSFID 0x06: read as ISO 28560-2 although the ISO 28560-3 CRC matches")
            return tag
    if crc_order:
        try:
            return iso28560_3.decode(memory, block_size=block_size, try_reversed=try_reversed)
        except iso28560_3.CrcCoincidence as coincidence:
            # As for byte 0 above: the model is told by the evidence, as for any memory without
            # a CRC; a memory the evidence does not read whole keeps the CRC's reason.
            try:
                return _decode_without_crc(memory, block_size, dsfid, try_reversed, swapped)
            except TagFormatError:
                raise coincidence from None
    return _decode_without_crc(memory, block_size, dsfid, try_reversed, swapped)


def _decode_without_crc(
    memory: bytes, block_size: int, dsfid: int | None, try_reversed: bool, swapped: bytes
) -> TagData:
    """The model of a memory without a valid basic-block CRC, told by evidence, never by
    trying the models in turn until one parses.

    A DSFID of 0x3E, or bytes shaped exactly like a basic block, mean a damaged or partly read
    ISO 28560-3 tag: refused. Otherwise each model the memory opens like (the 3M marker, an
    ISO 28560-2 item-id precursor, in either block order) is read strictly, as one complete
    structure. A memory that reads completely as two models is refused; so is one shaped like
    a basic block with one region out of shape, unless it reads as a complete ISO 28560-2
    structure that something vouches for: a DSFID of 0x06, or a content parameter naming
    exactly the elements present.
    """
    reasons: list[str] = []
    if len(memory) >= 32:
        reasons.append(iso28560_3.crc_mismatch(memory, block_size, try_reversed))
    else:
        reasons.append(f"too short for ISO 28560-3 ({len(memory)} bytes)")

    if memory[0] == DM11_FIRST_BYTE:
        raise TagFormatError(
            "not a known library tag: byte 0 = 0x0B as on Bibliotheca 'DM11' tags, a model the "
            "kiosk does not read (its CRC is unknown, so a misread could not be detected)"
        )
    if dsfid == DSFID_ISO28560_3:
        raise TagFormatError(
            "not a known library tag: DSFID 0x3E says ISO 28560-3 and the basic block fails its "
            f"check, so the tag is damaged or badly read ({reasons[0]})"
        )
    if memory[:24] == rfid501.FACTORY_BLANK:
        raise TagFormatError("3M factory-blank tag (0x55 filler): no item data written")
    shaped = (
        "exactly"
        if iso28560_3.looks_like_basic_block(memory, block_size, try_reversed, exactly=True)
        else "nearly"
        if iso28560_3.looks_like_basic_block(memory, block_size, try_reversed)
        else ""
    )

    readings: dict[str, TagData] = {}
    marker = bytes([rfid501.MARKER])
    if memory[:1] == marker or swapped[:1] == marker:
        try:
            readings[rfid501.MODEL] = rfid501.decode(
                memory, block_size=block_size, try_reversed=try_reversed, strict=True
            )
        except TagFormatError as exc:
            reasons.append(str(exc))
    dsfid_says_iso2 = dsfid == DSFID_ISO28560_2
    if iso28560_2.is_precursor(memory[0]) or iso28560_2.is_precursor(swapped[0]) or dsfid_says_iso2:
        try:
            tag = iso28560_2.decode(
                memory,
                block_size=block_size,
                try_reversed=try_reversed,
                item_id_first=not dsfid_says_iso2,
                strict=True,
            )
            _refuse_basic_block_start(
                tag, memory, block_size, "does not match" if len(memory) >= 32 else "is not read"
            )
            readings[iso28560_2.MODEL] = tag
        except TagFormatError as exc:
            reasons.append(str(exc))
    elif memory[0] != rfid501.MARKER:
        reasons.append(
            f"first byte 0x{memory[0]:02X} is neither an ISO 28560-2 item-id precursor nor the "
            "3M RFID 501 marker 0x04"
        )
    iso2 = readings.get(iso28560_2.MODEL)
    vouched = iso2 is not None and (dsfid_says_iso2 or iso28560_2.declares_exactly(iso2))
    if shaped and (shaped == "exactly" or len(readings) > 1 or not vouched):
        raise TagFormatError(
            f"not a known library tag: bytes shaped {shaped} like an ISO 28560-3 basic block "
            f"whose CRC {'does not match' if len(memory) >= 32 else 'cannot be checked'}: a "
            f"damaged or partly read tag, refused rather than read as another model ({reasons[0]})"
        )
    if len(readings) > 1:
        ids = ", ".join(f"{model} {tag.item_id!r}" for model, tag in readings.items())
        raise TagFormatError(f"not a known library tag: the memory reads completely as {ids}")
    if readings:
        return next(iter(readings.values()))
    if dsfid is not None:
        reasons.append(f"DSFID 0x{dsfid:02X}")
    raise TagFormatError("not a known library tag: " + "; ".join(reasons))


def _refuse_basic_block_start(tag: TagData, memory: bytes, block_size: int, crc: str) -> None:
    """Refuse an ISO 28560-2 reading of bytes that open like an ISO 28560-3 basic block.

    ``11 01 01`` (version 1, circulating, part 1 of 1) is also a valid ISO 28560-2 object: the
    integer item id "1"; ``11 02 0N`` reads as an item id of 256-767. When the ISO 28560-2
    reading holds nothing after that item id (as a basic block with an empty item id reads) and
    there is no basic-block CRC to tell the models apart (too few bytes read, a damaged tag, or a
    CRC that matches but a DSFID saying ISO 28560-2), the tiny item id is far likelier a
    misreading than a real one.
    """
    read = memory if tag.block_order != "reversed" else iso28560_3.reorder(memory, block_size)
    if len(read) < 3 or read[0] != 0x11 or read[1] not in (1, 2) or not 1 <= read[2] <= read[1]:
        return
    after = read[2 + read[1] : 3 + read[1]]
    if after in (b"", b"\x00"):  # nothing but that item id: a -2 tag would say more
        raise TagFormatError(
            f"bytes 0-2 ({read[:3].hex(' ').upper()}) open an ISO 28560-3 basic block whose "
            f"CRC {crc} ({len(memory)} bytes read); read as ISO 28560-2 they would give item "
            f"id {tag.item_id!r}, which is not trusted: read the whole tag"
        )


def encode(data: TagData, *, model: str | None, block_size: int, block_order: str) -> bytes:
    name = model or data.model
    codec = _CODECS.get(name)
    if codec is None:
        raise TagFormatError(f"unknown tag data model {name!r}; known: {', '.join(MODELS)}")
    if block_order == "normal" and data.block_order == "reversed" and name == data.model:
        # Write back in the order the tag was found in (docs/protocols/rfid.md §3.4).
        block_order = "reversed"
    return codec.encode(data, block_size=block_size, block_order=block_order)
