"""ISO 28560-2 tags: ISO/IEC 15962 objects (precursor, relative OID, compaction) (in progress)."""

from __future__ import annotations

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags.data import TagData

MODEL = "iso28560-2"


def is_precursor(byte: int) -> bool:
    """Whether ``byte`` can open an ISO 28560-2 tag: a precursor for relative OID 1."""
    return byte & 0x0F == 1


def decode(memory: bytes, *, block_size: int = 4) -> TagData:
    raise TagFormatError("ISO 28560-2 decoding is not available yet")


def encode(data: TagData, *, block_size: int = 4, block_order: str = "normal") -> bytes:
    raise TagFormatError("ISO 28560-2 encoding is not available yet")
