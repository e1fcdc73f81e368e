"""Tag memories from real libraries and public sources (tests/devices/data/real_tags.json).

Each vector holds a memory image as its source published it and the decoding the source
documents (item id, owner ISIL, set, type of usage ...). The tests check that our decoder and
``kiosk tag decode`` give those values, and that the reader quirks seen in the field (trailing
0x00/0xFF blocks, 4- and 8-byte blocks, partial reads, blocks delivered reversed, per-block
status bytes mixed into the data) give the right answer or a TagFormatError, never another
item id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kiosk.cli import main
from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import TagData, decode
from kiosk.devices.tags.iso28560_3 import crc16, crc_input

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "real_tags.json").read_text(encoding="utf-8")
)
DECODED = [v for v in VECTORS if "error" not in v["expect"]]
REFUSED = [v for v in VECTORS if "error" in v["expect"]]
_FIELDS = ("model", "item_id", "owner_institution", "parts_in_set", "part_number", "type_of_usage")


def memory_of(vector: dict[str, Any]) -> bytes:
    return bytes.fromhex(vector["hex"].replace(" ", ""))


def dsfid_of(vector: dict[str, Any]) -> int | None:
    return int(vector["dsfid"], 16) if "dsfid" in vector else None


def ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["id"] for v in vectors]


def reverse_blocks(memory: bytes, size: int) -> bytes:
    """Each block's bytes in reverse order (written independently of the code under test)."""
    padded = memory + bytes(-len(memory) % size)
    return b"".join(padded[i : i + size][::-1] for i in range(0, len(padded), size))


def with_status_bytes(memory: bytes, size: int, status: int) -> bytes:
    """A memory image with a reader's per-block status byte (lock/error) left in front of
    every block, as FEIG [0xB0 0x23] with SEC and 3M 'read blocks' responses carry them."""
    padded = memory + bytes(-len(memory) % size)
    return b"".join(bytes([status]) + padded[i : i + size] for i in range(0, len(padded), size))


def assert_documented(tag: TagData, expect: dict[str, Any], memory: bytes) -> None:
    for key, value in expect.items():
        if key == "crc":
            # The source's CRC must be what the basic block holds and what our CRC computes.
            assert tag.crc_ok is True
            assert crc16(crc_input(memory)) == int(value, 16)
            assert memory[19] | memory[20] << 8 == int(value, 16)
        elif key in _FIELDS:
            assert getattr(tag, key) == value, key
        else:
            assert tag.extra[key] == value, key


def decode_or_refuse(memory: bytes, **kwargs: Any) -> TagData | None:
    try:
        return decode(memory, **kwargs)
    except TagFormatError as exc:
        assert str(exc), "a refusal must say why"
        return None


# --- the collection itself --------------------------------------------------------------------


def test_vectors_are_complete() -> None:
    assert len(VECTORS) >= 20
    assert len({v["id"] for v in VECTORS}) == len(VECTORS)
    for vector in VECTORS:
        assert vector["source"]
        assert vector["origin"]
        assert vector["expect"]
        assert vector["block_size"] in (3, 4, 8)
        assert memory_of(vector)
    models = {v["expect"]["model"] for v in DECODED}
    assert models == {"iso28560-3", "iso28560-2", "rfid501"}


# --- documented decodings ---------------------------------------------------------------------


@pytest.mark.parametrize("vector", DECODED, ids=ids(DECODED))
def test_real_tag_decodes_as_its_source_documents(vector: dict[str, Any]) -> None:
    memory = memory_of(vector)
    tag = decode(memory, block_size=vector["block_size"], dsfid=dsfid_of(vector))
    assert_documented(tag, vector["expect"], memory)
    assert tag.block_order == "normal"


@pytest.mark.parametrize("vector", DECODED, ids=ids(DECODED))
def test_real_tag_decodes_without_the_dsfid_hint(vector: dict[str, Any]) -> None:
    memory = memory_of(vector)
    tag = decode(memory, block_size=vector["block_size"])
    assert (tag.model, tag.item_id) == (vector["expect"]["model"], vector["expect"]["item_id"])


@pytest.mark.parametrize("vector", REFUSED, ids=ids(REFUSED))
def test_unreadable_real_tag_is_refused_with_its_reason(vector: dict[str, Any]) -> None:
    memory = memory_of(vector)
    for dsfid in (dsfid_of(vector), None, 0x06, 0x3E):
        with pytest.raises(TagFormatError, match=vector["expect"]["error"]):
            decode(memory, block_size=vector["block_size"], dsfid=dsfid)


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_kiosk_tag_decode_prints_the_documented_values(
    vector: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["tag", "decode", "--block-size", str(vector["block_size"])]
    if "dsfid" in vector:
        argv += ["--dsfid", vector["dsfid"]]
    code = main([*argv, *vector["hex"].split()])
    printed = json.loads(capsys.readouterr().out)
    expect = vector["expect"]
    if "error" in expect:
        assert code == 2
        assert expect["error"] in printed["error"]
        return
    assert code == 0
    for key, value in expect.items():
        if key == "crc":
            assert printed["crc_ok"] is True
        elif key in _FIELDS:
            assert printed[key] == value, key
        else:
            assert printed["extra"][key] == value, key


# --- reader quirks on real tags ----------------------------------------------------------------


@pytest.mark.parametrize("vector", DECODED, ids=ids(DECODED))
@pytest.mark.parametrize("filler", [0x00, 0xFF], ids=["zeros", "erased"])
def test_trailing_unused_blocks_change_nothing(vector: dict[str, Any], filler: int) -> None:
    memory = memory_of(vector)
    padded = memory + bytes(-len(memory) % 4) + bytes([filler]) * 64
    tag = decode(padded, block_size=4, dsfid=dsfid_of(vector))
    expect = {k: v for k, v in vector["expect"].items() if k != "crc"}
    assert_documented(tag, expect, padded)
    assert "extension_error" not in tag.extra


@pytest.mark.parametrize("vector", DECODED, ids=ids(DECODED))
@pytest.mark.parametrize("block_size", [4, 8])
def test_same_tag_read_in_4_and_8_byte_blocks(vector: dict[str, Any], block_size: int) -> None:
    memory = memory_of(vector)
    tag = decode(memory, block_size=block_size, dsfid=dsfid_of(vector))
    assert tag.item_id == vector["expect"]["item_id"]
    assert tag.block_order == "normal"


_REVERSED = [(v, size) for v in DECODED for size in sorted({4, 8, v["block_size"]})]


@pytest.mark.parametrize(
    ("vector", "block_size"), _REVERSED, ids=[f"{v['id']}-{size}" for v, size in _REVERSED]
)
def test_blocks_delivered_reversed(vector: dict[str, Any], block_size: int) -> None:
    memory = reverse_blocks(memory_of(vector), block_size)
    tag = decode(memory, block_size=block_size, dsfid=dsfid_of(vector))
    assert tag.item_id == vector["expect"]["item_id"]
    assert tag.owner_institution == vector["expect"].get("owner_institution", "")
    assert tag.block_order == "reversed"
    assert decode(memory, block_size=block_size, block_order="reversed").item_id == tag.item_id


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_only_the_first_32_bytes_read(vector: dict[str, Any]) -> None:
    memory = memory_of(vector)
    want = vector["expect"].get("item_id")
    for head in (memory[:32], reverse_blocks(memory, 4)[:32]):
        tag = decode_or_refuse(head, block_size=4, dsfid=dsfid_of(vector))
        assert tag is None or tag.item_id == want
    if vector["expect"].get("model") == "iso28560-3" and memory[32:34] in (b"", b"\0\0"):
        # Nothing of the basic block is missing: the CRC of the 32 bytes read still matches.
        assert decode(memory[:32]).item_id == want


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
@pytest.mark.parametrize("status", [0x00, 0x01, 0x80])
def test_status_bytes_mixed_into_the_data_never_give_another_item(
    vector: dict[str, Any], status: int
) -> None:
    want = vector["expect"].get("item_id")
    for block_size in (4, 8):
        memory = with_status_bytes(memory_of(vector), block_size, status)
        for dsfid in (dsfid_of(vector), None):
            tag = decode_or_refuse(memory, block_size=block_size, dsfid=dsfid)
            assert tag is None or tag.item_id == want


@pytest.mark.parametrize("vector", VECTORS, ids=ids(VECTORS))
def test_any_whole_block_prefix_gives_the_right_item_or_a_reason(vector: dict[str, Any]) -> None:
    """A read that stops early, in either byte order, with or without erased memory after it."""
    want = vector["expect"].get("item_id")
    for block_size in (4, 8):
        for tail in (b"", b"\xff" * 16):
            full = memory_of(vector) + bytes(-len(memory_of(vector)) % block_size) + tail
            for memory in (full, reverse_blocks(full, block_size)):
                for end in range(block_size, len(memory) + 1, block_size):
                    for dsfid in (dsfid_of(vector), None):
                        tag = decode_or_refuse(memory[:end], block_size=block_size, dsfid=dsfid)
                        assert tag is None or tag.item_id == want, (block_size, end, dsfid)


# --- focused tests of what the real tags taught ------------------------------------------------


def test_status_byte_0x01_is_not_an_application_defined_item_id() -> None:
    # RFID 501 tag with a 'locked' status byte before each block: 01 04 11 00 01 01 31 33 ...
    # reads as an ISO 28560-2 object 0x01 (OID 1, application-defined, 4 bytes).
    memory = bytes.fromhex("01 04 11 00 01 01 31 33 30 32 00 00 00 00 00")
    with pytest.raises(TagFormatError, match="application-defined"):
        decode(memory, model="iso28560-2", block_order="normal")


def test_a_second_or_an_empty_item_id_is_refused() -> None:
    # ISO 28560-3 '11 01 01' then item id text '1...' reads as item id 1, then item id again.
    with pytest.raises(TagFormatError, match="second item id"):
        decode(bytes.fromhex("11 01 01 31 01 31 00 00"), model="iso28560-2")
    # An empty item id object must not let a later object become the item id.
    with pytest.raises(TagFormatError, match="empty"):
        decode(bytes.fromhex("01 00 11 04 32 30 33 31 00"), model="iso28560-2")


def test_five_bit_data_after_its_padding_is_refused() -> None:
    # 'FH' then zero padding then more 5-bit symbols: not one 5-bit string.
    with pytest.raises(TagFormatError, match="5-bit"):
        decode(bytes.fromhex("31 04 32 00 32 33 00"), model="iso28560-2")


def test_padding_longer_than_a_block_past_the_end_is_refused() -> None:
    # Mikkeli's ISO 28560-2 tag read in 8-byte blocks reversed but decoded with 4-byte blocks.
    mikkeli = next(v for v in VECTORS if v["id"] == "mikkeli-fi-mamk-m-iso28560-2")
    memory = reverse_blocks(memory_of(mikkeli), 8)
    with pytest.raises(TagFormatError):
        decode(memory, block_size=4)
    with pytest.raises(TagFormatError, match="pad bytes"):
        decode(bytes.fromhex("91 CE 04 60 91 CE 43"), model="iso28560-2")
    # A few pad bytes cut off by the end of memory are still fine (docs/protocols/rfid.md 4.1).
    assert decode(bytes.fromhex("91 03 04 60 91 CE 43 00"), model="iso28560-2").item_id == (
        "1620168259"
    )


def test_erased_memory_ends_the_data() -> None:
    dp2 = next(v for v in VECTORS if v["id"] == "dp2-layout-locked-title")
    tag = decode(memory_of(dp2) + b"\xff" * 8, block_size=4)  # no end marker before 0xFF
    assert (tag.item_id, tag.extra["title"]) == ("123456789012", "test")
    oslo = next(v for v in VECTORS if v["id"] == "deichman-oslo-no-02030000")
    tag = decode(memory_of(oslo)[:34] + b"\xff" * 30)
    assert tag.item_id == "03010034815003"
    assert "extension_error" not in tag.extra


def test_a_basic_block_start_is_not_read_as_item_id_1() -> None:
    empty = next(v for v in VECTORS if v["id"] == "libdanrfid-empty-barcode")
    memory = memory_of(empty)
    for head in (memory[:4], memory[:16], memory[:28]):  # partial reads: no CRC to check
        with pytest.raises(TagFormatError, match="basic block"):
            decode(head)
    with pytest.raises(TagFormatError, match="no item id"):
        decode(memory, dsfid=0x06)  # the CRC matches; the DSFID hint must not make it '1'
    # A real ISO 28560-2 tag whose item id is 1 and which says more is still read.
    assert decode(bytes.fromhex("11 01 01 02 01 80 03 07 AC C0 9E BA A0 6F 6B 00")).item_id == "1"


def test_garbage_item_id_is_refused_only_while_guessing_the_order() -> None:
    # 7-bit item id with control characters (a 0x1F byte in it), readable when the order is known.
    memory = bytes.fromhex("51 01 3F 00")
    with pytest.raises(TagFormatError, match="garbled|control characters"):
        decode(memory)
    assert decode(memory, block_order="normal").item_id == "\x1f"
    # An integer item id of 40 bytes is no barcode.
    huge = bytes([0x11, 40]) + bytes([0x9A]) * 40 + b"\x00"
    with pytest.raises(TagFormatError, match="longer than any library barcode|basic block|garbled"):
        decode(huge)
    assert len(decode(huge, block_order="normal").item_id) > 32


def test_dm11_refusal_names_the_model() -> None:
    dm11 = REFUSED[-1]
    with pytest.raises(TagFormatError, match="Bibliotheca 'DM11'"):
        decode(memory_of(dm11))
