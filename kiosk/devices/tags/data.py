"""The decoded contents of a library RFID tag, shared by every on-tag data model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiosk.devices.errors import TagFormatError

MODELS = ("iso28560-3", "iso28560-2", "rfid501")
BLOCK_ORDERS = ("normal", "reversed")
# DSFIDs libraries commonly give their tags (docs/protocols/rfid.md §4.4, §6): hints, never proof.
DSFID_ISO28560_2 = 0x06
DSFID_ISO28560_3 = 0x3E


@dataclass(frozen=True)
class TagData:
    """What a library tag says about its item, independent of the data model it was read from.

    ``type_of_usage`` is written as the model defines it:

    * ``iso28560-3``: one hex digit, the type-of-usage nibble (``"1"`` = item for circulation,
      ``"2"`` = not for circulation, ``"7"`` = discarded, ``"8"`` = patron card ...).
    * ``iso28560-2``: two hex digits, the type-of-usage byte, class in the high nibble and
      sub-class in the low one (``"10"`` circulating, ``"12"`` circulating but not for
      automatic sorting, ``"81"`` adult patron card). Empty when the tag has no such element.
      When encoding, one hex digit is taken as the class with sub-class 0 (``"1"`` → ``"10"``).
    * ``rfid501``: the 3M item type by name (``"book"``, ``"magazine"``, ``"cd"`` ... or
      ``"type-N"`` for a number without a name).

    In every ISO model the first hex digit is the usage class of ISO 28560-1.
    ``extra`` holds every other decoded element by name, JSON-serialisable.
    """

    model: str
    item_id: str
    part_number: int = 1
    parts_in_set: int = 1
    owner_institution: str = ""
    type_of_usage: str = ""
    crc_ok: bool | None = None
    block_order: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # A private copy, so a caller mutating its dict cannot change a decoded tag.
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def usage_class(self) -> int | None:
        """ISO 28560-1 usage class (0 acquisition, 1 circulating, 2 not for circulation ...).

        None when the tag has no type of usage or one that is not hex (an ISO 28560-2 tag may
        store the element in a text compaction, so it can hold any character).
        """
        if self.model in ("iso28560-3", "iso28560-2") and self.type_of_usage:
            digit = self.type_of_usage[0]
            if digit in "0123456789ABCDEFabcdef":
                return int(digit, 16)
        return None

    def to_json(self) -> dict[str, Any]:
        """A plain dict for JSON output: the fixed fields, then ``extra`` under its own names."""
        out: dict[str, Any] = {
            "model": self.model,
            "item_id": self.item_id,
            "part_number": self.part_number,
            "parts_in_set": self.parts_in_set,
            "owner_institution": self.owner_institution,
            "type_of_usage": self.type_of_usage,
            "crc_ok": self.crc_ok,
            "block_order": self.block_order,
        }
        out["extra"] = _plain(self.extra)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def int_field(extra: Mapping[str, Any], key: str, default: int) -> int:
    """An integer element of ``extra`` (given as a number or decimal text), else TagFormatError."""

    value = extra.get(key, default)
    if isinstance(value, bool):
        raise TagFormatError(f"{key} must be a number, not {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise TagFormatError(f"{key} must be a number, not {value!r}") from None


def set_ok(part: int, parts: int) -> bool:
    """Whether a part number and a parts count as stored make a set (0/0 and 1/0 are the single
    item some encoders write, see ``read_set``)."""
    return 1 <= part <= parts or (parts == 0 and part in (0, 1))


def read_set(part: int, parts: int, extra: dict[str, Any]) -> tuple[int, int]:
    """Part number and parts in set as the kiosk uses them.

    Some encoders leave the set bytes at 0 for a single item; that reads as part 1 of 1, with
    the bytes as found kept in ``extra["set_as_read"]`` for diagnostics.
    """
    if parts == 0 and part in (0, 1):
        extra["set_as_read"] = f"{part}/{parts}"
        return 1, 1
    return part, parts
