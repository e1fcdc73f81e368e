"""Damaged tags are refused, never misread: the named cases in tests/devices/data/damaged_tags.json
and a generated corpus of every model under bit flips, truncation, block reversal and reader
status bytes (tag_damage.py; ``python tests/devices/tag_damage.py`` prints the whole table).

The default run decodes a bounded corpus; `pytest -m slow` runs 100,000 damaged tags per model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import TagData, decode
from tests.devices.tag_damage import KINDS, MODELS, measure, table

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "damaged_tags.json").read_text(encoding="utf-8")
)


def _memory(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["hex"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_damaged_tag_is_refused_or_read_right(vector: dict[str, Any]) -> None:
    memory, expect = _memory(vector), vector["expect"]
    dsfid = int(vector["dsfid"], 16) if "dsfid" in vector else None
    if "error" in expect:
        with pytest.raises(TagFormatError, match=expect["error"]):
            decode(memory, block_size=vector["block_size"], dsfid=dsfid)
    else:
        tag = decode(memory, block_size=vector["block_size"], dsfid=dsfid)
        assert (tag.model, tag.item_id) == (expect["model"], expect["item_id"])
    # Without the DSFID hint, and with every DSFID a library might give, never another id.
    for hint in (None, 0x06, 0x3E, 0x00):
        try:
            tag = decode(memory, block_size=vector["block_size"], dsfid=hint)
        except TagFormatError as exc:
            assert "not a known library tag" in str(exc) or "ISO 28560-3" in str(exc)
        else:
            assert tag.item_id == vector["written_item_id"], hint


def test_each_named_case_was_misread_before() -> None:
    """The collection keeps the cases that decoded to a wrong id (and what they decoded to)."""
    misread = [v for v in VECTORS if "old_misread" in v]
    assert len(misread) >= 10
    assert all(v["old_misread"] != v["written_item_id"] for v in misread)
    assert {v["id"].split("-")[0] for v in misread} == {"iso28560", "rfid501"}


def test_an_rfid501_barcode_that_passes_the_iso28560_3_crc_stays_rfid501() -> None:
    from kiosk.devices.tags.iso28560_3 import crc_matches

    vector = next(v for v in VECTORS if v["id"] == "rfid501-barcode-passes-iso28560-3-crc")
    memory = _memory(vector)
    assert crc_matches(memory)  # the coincidence the case is about
    tag = decode(memory)
    assert (tag.model, tag.item_id) == ("rfid501", "1302006483")
    with pytest.raises(TagFormatError, match="content parameter"):
        decode(memory, model="iso28560-3")


def test_bounded_corpus_has_no_misread() -> None:
    counts, misread = measure(per_model=1500, seed=7)
    assert not misread, table(counts)
    for (model, kind), c in counts.items():
        assert sum(c.values()) == 300, (model, kind)
        if kind == "intact":
            assert c["read"] >= 295, (model, c)  # good tags are read
        if kind == "status-bytes":
            assert c["read"] == 0  # a status byte in the data leaves nothing readable
    assert set(model for model, _ in counts) == set(MODELS)
    assert set(kind for _, kind in counts) == set(KINDS)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_100000_damaged_tags_per_model_have_no_misread() -> None:
    counts, misread = measure(per_model=100_000, seed=1)
    print(table(counts))
    assert not misread, table(counts)


def test_usage_class_of_a_type_of_usage_that_is_not_hex() -> None:
    # A type of usage stored in a text compaction (7-bit 0x00 here) decodes to a non-hex string.
    tag = decode(bytes.fromhex("11020255550100"), model="iso28560-2")
    assert (tag.item_id, tag.type_of_usage) == ("597", "\x00")
    assert tag.usage_class is None
    assert TagData("iso28560-2", "1", type_of_usage="ZZ").usage_class is None
    assert TagData("iso28560-2", "1", type_of_usage="12").usage_class == 1
    assert TagData("iso28560-3", "1", type_of_usage="7").usage_class == 7


def test_item_id_longer_than_a_sip2_field_is_refused_not_shortened() -> None:
    from kiosk.devices.tags import encode

    fits = TagData("iso28560-2", "A" * 255)
    assert decode(encode(fits), model="iso28560-2", block_order="normal").item_id == "A" * 255
    # 408 characters in 255 bytes of 5-bit code: no library system could receive it.
    too_long = encode(TagData("iso28560-2", "A" * 400))
    with pytest.raises(TagFormatError, match="400 bytes"):
        decode(too_long, model="iso28560-2", block_order="normal")
    # ISO 28560-3 keeps up to 250 Latin-1 bytes; in UTF-8 they can be twice as long.
    latin = encode(TagData("iso28560-3", "Å" * 200))
    with pytest.raises(TagFormatError, match="400 bytes"):
        decode(latin)
