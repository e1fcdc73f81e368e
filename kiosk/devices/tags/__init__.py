"""Library RFID tag data models: decode tag user memory into TagData and encode it back.

Three models are known: ISO 28560-3 (DS/INF 163, the fixed basic block with a CRC), ISO 28560-2
(precursor / relative-OID / compaction objects) and 3M's legacy "RFID 501" layout.

Autodetection weighs evidence; it never tries the models in turn until one parses
(what it refuses and misreads is measured by tests/devices/tag_damage.py):

1. A valid ISO 28560-3 CRC over the basic block, as read or with every block reversed, and a
   byte 0 with content parameter 1 mean ISO 28560-3 (a 3M tag, byte 0 = 0x04, whose bytes
   happen to pass the CRC stays RFID 501). With DSFID 0x06 a complete ISO 28560-2 reading is
   preferred over the CRC match.
2. Without a valid CRC, a DSFID of 0x3E, or bytes shaped like a basic block (byte 0, the set,
   an ASCII item id, the ISIL, with at most a damaged byte or a cut read between them), mean a
   damaged ISO 28560-3 tag: refused, never read as another model.
3. Otherwise the 3M marker 0x04 is read as RFID 501 and an ISO 28560-2 item-id precursor as
   ISO 28560-2, each strictly: RFID 501 with its fixed bytes, ISO 28560-2 only as one complete
   structure (erased memory after the data, known OIDs, a content parameter that names what is
   there, codes of one byte, ISILs and barcodes that look like them, and a block order its
   first object proves or that reads no other way). A memory readable as two models is refused.

Anything else raises TagFormatError saying why (blank, bad CRC, malformed objects, unknown).
Bytes opening like a basic block (``11 01 01``) are never read as the ISO 28560-2 item id "1".
Erased (0xFF) memory after the data ends it, like 0x00.

Block byte order (docs/protocols/rfid.md §3.4): an ISO 28560-3 tag's order is proven by its CRC. ISO 28560-2
and RFID 501 tags have no CRC, so they are read as delivered and each block is reversed only
when that reading fails; a reader that knows its order passes ``block_order``.
The DSFID is only a hint: it never makes a damaged tag decode. A model named explicitly
(``model=...``) is read without the strict checks of autodetection.
"""

from __future__ import annotations

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags.data import (
    BLOCK_ORDERS,
    DSFID_ISO28560_2,
    DSFID_ISO28560_3,
    MODELS,
    TagData,
)

__all__ = [
    "BLOCK_ORDERS",
    "DSFID_ISO28560_2",
    "DSFID_ISO28560_3",
    "MODELS",
    "TagData",
    "TagFormatError",
    "decode",
    "detect",
    "encode",
]


def decode(
    memory: bytes,
    *,
    model: str = "auto",
    block_size: int = 4,
    dsfid: int | None = None,
    block_order: str = "auto",
) -> TagData:
    """Decode tag user memory (block 0 first, as the reader delivered it).

    ``block_order="auto"`` finds an ISO 28560-3 tag's order by its CRC and reads the models
    without a CRC as delivered, reversing each block only if that fails; a reader that knows
    it delivers blocks reversed passes ``"reversed"`` (or ``"normal"`` to forbid reversing).
    Raises TagFormatError with the reason (bad CRC, unknown model, truncated, malformed).
    """
    # autodetect imports this package's models at load time
    from kiosk.devices.tags import autodetect as _detect  # lazy: autodetect imports this package

    return _detect.decode(
        bytes(memory), model=model, block_size=block_size, dsfid=dsfid, block_order=block_order
    )


def encode(
    data: TagData, *, model: str | None = None, block_size: int = 4, block_order: str = "normal"
) -> bytes:
    """Tag user memory for ``data`` in ``model`` (default ``data.model``), padded to whole blocks.

    ``block_order`` matters for ISO 28560-3, whose tags must be written back in the order they
    were found (``data.block_order`` is used when the caller passes the default).
    Raises TagFormatError when the data does not fit the model (it never truncates).
    """
    # autodetect imports this package's models at load time
    from kiosk.devices.tags import autodetect as _detect  # lazy: autodetect imports this package

    return _detect.encode(data, model=model, block_size=block_size, block_order=block_order)


def detect(
    memory: bytes, *, block_size: int = 4, dsfid: int | None = None, block_order: str = "auto"
) -> str | None:
    """Which data model ``memory`` holds ("iso28560-3", "iso28560-2", "rfid501"), or None."""
    try:
        return decode(memory, block_size=block_size, dsfid=dsfid, block_order=block_order).model
    except TagFormatError:
        return None
