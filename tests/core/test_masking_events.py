"""Card masking and event values."""

from __future__ import annotations

from kiosk.core.events import CardPresented, PinEntered, TagsChanged
from kiosk.core.masking import mask_card
from tests.core.fakes import tag


def test_mask_keeps_last_four_ascii() -> None:
    assert mask_card("LV0001") == "**0001"
    assert mask_card("1234567890123") == "*********0123"
    assert mask_card(" LV0001 ") == "**0001"


def test_mask_short_numbers_entirely_and_empty() -> None:
    assert mask_card("1234") == "****"
    assert mask_card("12") == "**"
    assert mask_card("") == ""


def test_mask_custom_character_and_keep() -> None:
    assert mask_card("LV0001", keep=3, mask_char="•") == "•••001"


def test_pin_and_card_never_in_event_repr() -> None:
    assert "4321" not in repr(PinEntered("4321"))
    assert "LV0001" not in repr(CardPresented("LV0001", "rfid"))


def test_tags_changed_holds_tags() -> None:
    t = tag("30000001")
    ev = TagsChanged(present=(t,), added=(t,))
    assert ev.present[0].item_id == "30000001"
    assert ev.removed == ()
