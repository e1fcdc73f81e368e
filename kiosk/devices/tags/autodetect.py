"""Model autodetection and dispatch to the ISO 28560-3, ISO 28560-2 and 3M RFID 501 codecs."""

from __future__ import annotations

import logging
from dataclasses import replace

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import iso28560_2, iso28560_3, rfid501
from kiosk.devices.tags.data import DSFID_ISO28560_2, MODELS, TagData

log = logging.getLogger(__name__)

_CODECS = {
    iso28560_3.MODEL: iso28560_3,
    iso28560_2.MODEL: iso28560_2,
    rfid501.MODEL: rfid501,
}


def decode(
    memory: bytes, *, model: str, block_size: int, dsfid: int | None, block_order: str = "auto"
) -> TagData:
    if block_size < 1:
        raise TagFormatError(f"block size must be at least 1, not {block_size}")
    if block_order == "reversed":
        tag = _decode(iso28560_3.reorder(memory, block_size), model, block_size, dsfid, False)
        return replace(tag, block_order="reversed")
    if block_order not in ("auto", "normal"):
        raise TagFormatError(f"block order must be auto, normal or reversed, not {block_order!r}")
    return _decode(memory, model, block_size, dsfid, block_order == "auto")


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
    if crc_order and dsfid == DSFID_ISO28560_2 and iso28560_2.is_precursor(memory[0]):
        try:
            tag = iso28560_2.decode(memory, block_size=block_size, try_reversed=try_reversed)
        except TagFormatError:
            pass
        else:
            log.debug("DSFID 0x06: read as ISO 28560-2 although the ISO 28560-3 CRC matches")
            return tag
    if crc_order:
        return iso28560_3.decode(memory, block_size=block_size, try_reversed=try_reversed)

    reasons: list[str] = []
    if len(memory) >= 32:
        reasons.append(iso28560_3.crc_mismatch(memory, block_size, try_reversed))
    else:
        reasons.append(f"too short for ISO 28560-3 ({len(memory)} bytes)")

    marker = bytes([rfid501.MARKER])
    if memory[:1] == marker or swapped[:1] == marker:
        try:
            return rfid501.decode(memory, block_size=block_size, try_reversed=try_reversed)
        except TagFormatError as exc:
            reasons.append(str(exc))
    if memory[:24] == rfid501.FACTORY_BLANK:
        raise TagFormatError("3M factory-blank tag (0x55 filler): no item data written")
    dsfid_says_iso2 = dsfid == DSFID_ISO28560_2
    if iso28560_2.is_precursor(memory[0]) or iso28560_2.is_precursor(swapped[0]) or dsfid_says_iso2:
        try:
            return iso28560_2.decode(
                memory,
                block_size=block_size,
                try_reversed=try_reversed,
                item_id_first=not dsfid_says_iso2,
            )
        except TagFormatError as exc:
            reasons.append(str(exc))
    elif memory[0] != rfid501.MARKER:
        reasons.append(
            f"first byte 0x{memory[0]:02X} is neither an ISO 28560-2 item-id precursor nor the "
            "3M RFID 501 marker 0x04"
        )
    if dsfid is not None:
        reasons.append(f"DSFID 0x{dsfid:02X}")
    raise TagFormatError("not a known library tag: " + "; ".join(reasons))


def encode(data: TagData, *, model: str | None, block_size: int, block_order: str) -> bytes:
    name = model or data.model
    codec = _CODECS.get(name)
    if codec is None:
        raise TagFormatError(f"unknown tag data model {name!r}; known: {', '.join(MODELS)}")
    if block_order == "normal" and data.block_order == "reversed" and name == data.model:
        # Write back in the order the tag was found in (rfid.md §3.4).
        block_order = "reversed"
    return codec.encode(data, block_size=block_size, block_order=block_order)
