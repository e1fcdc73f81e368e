"""Library RFID tag data models: decode tag user memory into TagData and encode it back.

Three models are known: ISO 28560-3 (DS/INF 163, the fixed basic block with a CRC), ISO 28560-2
(precursor / relative-OID / compaction objects) and 3M's legacy "RFID 501" layout.

Autodetection (rfid.md §1, §3.4, §4.1, §5), in this order:

1. A valid ISO 28560-3 CRC over the basic block, as read or with every block reversed, means
   ISO 28560-3 (checked first: a first byte of 0x11 is plausible in both ISO models, and a CRC
   match is the stronger evidence).
2. A first byte that is an ISO 28560-2 precursor for relative OID 1 (low nibble 1, e.g. 0x91,
   0xA1, 0xC1, 0x11) and a memory that parses completely as ISO 28560-2 objects means
   ISO 28560-2.
3. A first byte of 0x04 with a readable barcode in bytes 4-19 means 3M RFID 501.

Anything else raises TagFormatError saying why (blank, bad CRC, malformed objects, unknown).
Without a CRC a misread memory can still parse as ISO 28560-2, so a reading is refused rather
than trusted when it holds an application-defined, empty or second item id, padding beyond a
block, bits after a 5/6/7-bit string's padding, or (while the block order is guessed) an item
id with control characters or longer than any barcode; bytes opening like a basic block
(``11 01 01``) are never read as the ISO 28560-2 item id "1". Erased (0xFF) memory after the
data ends it, like 0x00.

Block byte order (rfid.md §3.4): an ISO 28560-3 tag's order is proven by its CRC. ISO 28560-2
and RFID 501 tags have no CRC, so they are read as delivered and each block is reversed only
when that reading fails; a reader that knows its order passes ``block_order``.
The DSFID is only a hint: with ``dsfid=0x06`` an ISO 28560-2 parse is preferred over a
(coincidental) ISO 28560-3 CRC match, and an ISO 28560-2 tag whose item id is not the first
object is accepted; it never makes a damaged tag decode.
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
    from kiosk.devices.tags import autodetect as _detect

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
    from kiosk.devices.tags import autodetect as _detect

    return _detect.encode(data, model=model, block_size=block_size, block_order=block_order)


def detect(
    memory: bytes, *, block_size: int = 4, dsfid: int | None = None, block_order: str = "auto"
) -> str | None:
    """Which data model ``memory`` holds ("iso28560-3", "iso28560-2", "rfid501"), or None."""
    try:
        return decode(memory, block_size=block_size, dsfid=dsfid, block_order=block_order).model
    except TagFormatError:
        return None
