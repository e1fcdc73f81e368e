"""Property tests: every decoder takes any bytes to TagData or TagFormatError, and encode→decode
is the identity on valid item data for each model, block order and block size."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from kiosk.devices.errors import TagFormatError
from kiosk.devices.tags import TagData, decode, detect, encode
from kiosk.devices.tags import compaction as c
from kiosk.devices.tags.iso28560_2 import ELEMENTS
from kiosk.devices.tags.iso28560_3 import BLOCK_FIELDS
from kiosk.devices.tags.rfid501 import ITEM_TYPES

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND = settings(max_examples=200, deadline=None)


def _decodes_or_refuses(memory: bytes, **kwargs: Any) -> None:
    try:
        tag = decode(memory, **kwargs)
    except TagFormatError as exc:
        assert str(exc)
        if kwargs.get("model", "auto") == "auto":
            assert detect(memory, **{k: v for k, v in kwargs.items() if k != "model"}) is None
        return
    assert isinstance(tag, TagData)
    assert tag.item_id
    json.dumps(tag.to_json())
    if kwargs.get("model", "auto") == "auto":
        assert detect(memory, **{k: v for k, v in kwargs.items() if k != "model"}) == tag.model


@FUZZ
@given(
    st.binary(max_size=128),
    st.sampled_from(["auto", "iso28560-3", "iso28560-2", "rfid501"]),
    st.sampled_from([1, 4, 8]),
    st.one_of(st.none(), st.sampled_from([0x06, 0x3E, 0x00])),
    st.sampled_from(["auto", "normal", "reversed"]),
)
def test_any_bytes_decode_or_refuse(
    memory: bytes, model: str, block_size: int, dsfid: int | None, order: str
) -> None:
    _decodes_or_refuses(memory, model=model, block_size=block_size, dsfid=dsfid, block_order=order)


@st.composite
def iso2_like(draw: st.DrawFn) -> bytes:
    """Byte strings shaped like ISO 28560-2 objects, so the fuzzer reaches the inner decoders."""
    out = bytearray()
    for index in range(draw(st.integers(1, 6))):
        oid = 1 if index == 0 else draw(st.integers(1, 40))
        scheme = draw(st.integers(0, 7))
        offset = draw(st.booleans())
        out.append((0x80 if offset else 0) | scheme << 4 | min(oid, 15))
        if oid >= 15:
            out.append(oid - 15)
        data = draw(st.binary(max_size=12))
        if offset:
            out.append(draw(st.integers(0, 4)))
        out.append(draw(st.sampled_from([len(data), len(data) + 1, max(0, len(data) - 1)])))
        out += data
    if draw(st.booleans()):
        out.append(0)
    return bytes(out)


@FUZZ
@given(iso2_like())
def test_structured_iso2_fuzz(memory: bytes) -> None:
    _decodes_or_refuses(memory)
    _decodes_or_refuses(memory, model="iso28560-2")


@FUZZ
@given(st.binary(min_size=1, max_size=24))
def test_isil_expansion_never_crashes(data: bytes) -> None:
    try:
        text = c.expand_isil(data)
    except ValueError:
        return
    assert all(ch.isalnum() or ch in "-:/" for ch in text)


@FUZZ
@given(st.binary(min_size=34, max_size=80), st.booleans())
def test_iso28560_3_with_valid_crc_and_random_extensions(tail: bytes, reverse: bool) -> None:
    """Random bytes given a valid CRC exercise the extension-block parser."""
    from kiosk.devices.tags.iso28560_3 import crc16, crc_input, reorder

    memory = bytearray(tail)
    crc = crc16(crc_input(bytes(memory)))
    memory[19], memory[20] = crc & 0xFF, crc >> 8
    raw = reorder(bytes(memory), 4) if reverse else bytes(memory)
    try:
        tag = decode(raw)
    except TagFormatError:
        return
    assert tag.model in ("iso28560-3", "iso28560-2")
    json.dumps(tag.to_json())


# --- round trips ----------------------------------------------------------------------------

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# An ISIL's library part starts with a letter or digit.
_ISIL_LIBRARY = st.builds(
    str.__add__, st.sampled_from(_ALNUM), st.text(alphabet=_ALNUM + "-:/", max_size=8)
)
_COUNTRY = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)


@st.composite
def parts(draw: st.DrawFn, limit: int) -> tuple[int, int]:
    total = draw(st.integers(1, limit))
    return draw(st.integers(1, total)), total


@ROUND
@given(
    st.text(
        alphabet=st.characters(
            min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",)
        ),
        min_size=1,
        max_size=30,
    ),
    parts(255),
    st.one_of(st.just(""), st.builds(lambda a, b: f"{a}-{b}", _COUNTRY, _ISIL_LIBRARY)),
    st.sampled_from("0123456789ABCDEF"),
    st.sampled_from(["normal", "reversed"]),
    st.sampled_from([4, 8]),
    st.booleans(),
)
def test_iso28560_3_round_trip(
    item_id: str,
    set_info: tuple[int, int],
    owner: str,
    usage: str,
    order: str,
    block_size: int,
    short: bool,
) -> None:
    if len(item_id.encode("latin-1")) > 16:
        short = False  # long item ids need the extension block of a full basic block
    data = TagData(
        "iso28560-3",
        item_id,
        *set_info,
        owner,
        usage,
        extra={"basic_block_size": 32} if short else {},
    )
    memory = encode(data, block_size=block_size, block_order=order)
    assert len(memory) % block_size == 0
    tag = decode(memory, block_size=block_size)
    assert (
        tag.model,
        tag.item_id,
        tag.part_number,
        tag.parts_in_set,
        tag.owner_institution,
        tag.type_of_usage,
    ) == (data.model, item_id, *set_info, owner, usage)
    assert tag.crc_ok is True
    assert tag.block_order == order or memory == encode(data, block_size=block_size)
    assert encode(tag, block_size=block_size) == memory


_ELEMENT_NAMES = sorted(name for oid, name in ELEMENTS.items() if oid > 5)
_CODE = {"media_format_other", "supply_chain_stage"}
_ISIL_ELEMENTS = {"ill_borrowing_institution"}


@st.composite
def iso2_extra(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(st.sampled_from(_ELEMENT_NAMES), unique=True, max_size=6))
    extra = {}
    for name in names:
        if name in _CODE:
            extra[name] = draw(st.integers(0, 255)).__format__("02X")
        elif name in _ISIL_ELEMENTS:
            extra[name] = draw(st.builds(lambda a, b: f"{a}-{b}", _COUNTRY, _ISIL_LIBRARY))
        else:
            extra[name] = draw(st.text(min_size=1, max_size=20))
    return extra


@ROUND
@given(
    st.one_of(
        st.text(min_size=1, max_size=24),
        st.integers(0, 10**20).map(str),
        st.text(alphabet="0123456789", min_size=1, max_size=20),
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_", min_size=1, max_size=20),
        st.text(
            alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x5F), min_size=1, max_size=20
        ),
        st.text(
            alphabet=st.characters(min_codepoint=0x00, max_codepoint=0x7F), min_size=1, max_size=20
        ),
    ),
    parts(99),
    st.one_of(st.just(""), st.builds(lambda a, b: f"{a}-{b}", _COUNTRY, _ISIL_LIBRARY)),
    st.one_of(st.just(""), st.integers(0, 255).map(lambda v: f"{v:02X}")),
    iso2_extra(),
    st.sampled_from(["normal", "reversed"]),
)
# Its memory has a matching ISO 28560-3 CRC by chance (with a basic block's byte 0): read as
# ISO 28560-3 it holds control characters, which auto-detection took for the answer.
@example(
    "118",
    (1, 54),
    "KI-fj:0iaOSa",
    "",
    {
        "alternative_item_identifier": "0",
        "alternative_owner_institution": "0",
        "alternative_unique_item_identifier": "\U000efc1cµÀ0",
    },
    "normal",
)
def test_iso28560_2_round_trip(
    item_id: str,
    set_info: tuple[int, int],
    owner: str,
    usage: str,
    extra: dict[str, str],
    order: str,
) -> None:
    data = TagData("iso28560-2", item_id, *set_info, owner, usage, extra=extra)
    try:
        memory = encode(data, block_order=order)
    except TagFormatError as exc:
        assert "255" in str(exc)  # only an element too long to compact is refused
        return
    # Without a CRC the block order is the reader's to say (auto could read either way).
    tag = decode(memory, model="iso28560-2", block_order=order)
    assert (
        tag.item_id,
        tag.part_number,
        tag.parts_in_set,
        tag.owner_institution,
        tag.type_of_usage,
    ) == (item_id, *set_info, owner, usage)
    for key, value in extra.items():
        assert tag.extra[key] == value
    assert tag.block_order == order
    # Auto-detection has no CRC to go by: it may refuse a tag whose structure is not plainly
    # ISO 28560-2 (a tiny integer item id opens like a basic block, an item id no barcode
    # has, an ISIL of hyphens), but what it reads is the item id written.
    try:
        auto = decode(memory, block_order=order)
    except TagFormatError as exc:
        assert "not a known library tag" in str(exc)
    else:
        assert auto.item_id == item_id


@ROUND
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=16
    ),
    parts(15),
    st.sampled_from(sorted(ITEM_TYPES.values()) + ["type-200"]),
    st.integers(0, 4095),
    st.integers(0, 0xFFFFF),
    st.integers(-(2**31), 2**31 - 1),
)
def test_rfid501_round_trip(
    barcode: str, set_info: tuple[int, int], item_type: str, branch: int, library: int, custom: int
) -> None:
    data = TagData(
        "rfid501",
        barcode,
        *set_info,
        "",
        item_type,
        extra={"branch": branch, "library": library, "custom": custom},
    )
    memory = encode(data)
    assert len(memory) == 32
    tag = decode(memory, model="rfid501")
    assert (tag.item_id, tag.part_number, tag.parts_in_set, tag.type_of_usage) == (
        barcode,
        *set_info,
        item_type,
    )
    assert (tag.extra["branch"], tag.extra["library"], tag.extra["custom"]) == (
        branch,
        library,
        custom,
    )


@ROUND
@given(st.text(min_size=1, max_size=40))
def test_best_compaction_round_trip(text: str) -> None:
    scheme, raw = c.best_compaction(text)
    assert c.EXPAND[scheme](raw) == text


@ROUND
@given(
    st.builds(
        lambda a, b: f"{a}-{b}",
        st.text(
            alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-:/",
            min_size=1,
            max_size=6,
        ),
        _ISIL_LIBRARY,
    )
)
def test_isil_round_trip(isil: str) -> None:
    assert c.expand_isil(c.compact_isil(isil)) == isil


_EXTRA_KEYS = sorted(
    {
        *ELEMENTS.values(),
        "content_parameter",
        "basic_block_size",
        "nibbles_swapped",
        "branch",
        "library",
        "custom",
        "extension_blocks",
        "application_defined",
        "aligned",
        "oid_40",
        "oid_300",
    }
)


@FUZZ
@given(
    st.sampled_from(["iso28560-3", "iso28560-2", "rfid501"]),
    st.one_of(st.text(max_size=40), st.text(alphabet="AB1", min_size=15, max_size=18)),
    st.integers(-2, 300),
    st.integers(-2, 300),
    st.text(max_size=20),
    st.text(max_size=4),
    st.dictionaries(
        st.sampled_from(_EXTRA_KEYS),
        st.one_of(
            st.none(),
            st.text(max_size=12),
            st.integers(-(2**40), 2**40),
            st.booleans(),
            st.lists(st.text(max_size=6), max_size=3),
            st.lists(
                st.fixed_dictionaries({"raw": st.binary(max_size=8).map(bytes.hex)}), max_size=2
            ),
            st.lists(st.sampled_from(_EXTRA_KEYS), max_size=3),
        ),
        max_size=4,
    ),
    st.sampled_from(["normal", "reversed"]),
)
def test_encoder_takes_any_input_to_bytes_or_tag_format_error(
    model: str,
    item_id: str,
    part: int,
    parts: int,
    owner: str,
    usage: str,
    extra: dict[str, Any],
    order: str,
) -> None:
    data = TagData(model, item_id, part, parts, owner, usage, extra=extra)
    try:
        memory = encode(data, block_order=order)
    except TagFormatError as exc:
        assert str(exc)
        return
    tag = decode(memory, model=model, block_order=order)
    assert tag.item_id == item_id
    assert (tag.part_number, tag.parts_in_set) == (part, parts)


_LATIN1_TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_categories=("Cc",)),
    min_size=1,
    max_size=24,
)


@ROUND
@given(
    st.dictionaries(
        st.sampled_from(sorted(n for names in BLOCK_FIELDS.values() for n in names)),
        _LATIN1_TEXT,
        max_size=5,
    ),
    st.integers(0, 6),
    st.one_of(st.just("30000001"), st.text(alphabet="0123456789ABC", min_size=17, max_size=40)),
    st.sampled_from(["normal", "reversed"]),
)
def test_iso28560_3_extension_elements_round_trip(
    elements: dict[str, str], media_format: int, item_id: str, order: str
) -> None:
    data = TagData(
        "iso28560-3",
        item_id,
        owner_institution="DK-718500",
        extra={**elements, "media_format": media_format},
    )
    memory = encode(data, block_order=order)
    tag = decode(memory)
    assert tag.item_id == item_id
    assert tag.block_order == order
    for name, value in elements.items():
        assert tag.extra[name] == value
    assert tag.extra.get("media_format", 0) == media_format
    assert encode(tag) == memory
