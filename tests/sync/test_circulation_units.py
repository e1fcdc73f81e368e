"""Pure helpers of the circulation service that read the library system's text and flags."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiosk.core.domain import PATRON_STATUS_FLAGS, BlockReason, Refusal
from kiosk.sync import circulation
from kiosk.sync.circulation import (
    blocks_from_status,
    fee_from_text,
    patron_name,
    refusal_from_text,
)


def test_only_y_is_true_in_patron_status():
    assert blocks_from_status("NNNNNNNNNNNNNN") == ()  # edge-sip2 style "N" means not blocked
    assert blocks_from_status("    Y     Y   ") == (BlockReason.CARD_LOST, BlockReason.EXCESSIVE_FINES)
    assert blocks_from_status("y") == (BlockReason.CHARGE_DENIED,)
    assert blocks_from_status("") == ()


@given(st.text(max_size=30))
def test_patron_status_of_any_text_gives_only_flagged_positions(status):
    blocks = blocks_from_status(status)
    assert all(status[PATRON_STATUS_FLAGS.index(b)].upper() == "Y" for b in blocks)
    assert len(blocks) == sum(1 for ch in status[:14] if ch.upper() == "Y")


def test_a_name_of_punctuation_and_blanks_is_no_name():
    assert patron_name(", ") == ""
    assert patron_name(" . - ") == ""
    assert patron_name("\u3000,") == ""  # ideographic space
    assert patron_name("") == ""
    assert patron_name("Ozols, Pēteris") == "Ozols, Pēteris"
    assert patron_name("李") == "李"
    assert patron_name("R2") == "R2"


@given(st.text(max_size=30))
def test_a_name_is_kept_whole_or_dropped(text):
    name = patron_name(text)
    assert name in (text, "")
    if any(c.isalnum() for c in text):
        assert name == text  # a letter or digit anywhere keeps the whole name


def test_fee_over_limit():
    over = circulation._over_limit
    assert over("20.00", "15.00") and over("10,01", "10.") and over("5.5", "5")
    assert not over("15.00", "15.00") and not over("0", "15.00")
    assert not over("9.99", "0.00") and not over("9.99", "") and not over("", "5")
    assert not over("NaN", "5") and not over("9", "Infinity") and not over("USD 9", "5")


@given(st.text(max_size=12), st.text(max_size=12))
def test_fee_over_limit_of_any_text_is_a_yes_or_no(fee, limit):
    assert circulation._over_limit(fee, limit) in (True, False)


def test_fee_lines():
    assert fee_from_text("Kavējuma nauda 2.50") == circulation.Fee("Kavējuma nauda", "2.50")
    assert fee_from_text("Bojāts vāks: 1,00 EUR") == circulation.Fee("Bojāts vāks", "1.00")
    assert fee_from_text("Штраф") == circulation.Fee("Штраф", "")


@given(st.text(max_size=80))
def test_fee_of_any_text_never_fails_and_keeps_the_words(text):
    fee = fee_from_text(text)
    assert isinstance(fee.description, str)
    if fee.amount:
        float(fee.amount)
    if text.strip() and not fee.amount:
        assert fee.description == text.strip()


def test_refusal_keywords_in_three_languages():
    assert refusal_from_text("Eksemplārs rezervēts citam lasītājam") is Refusal.ON_HOLD_FOR_OTHER
    assert refusal_from_text("This item is for use in the library only (not for loan)") is Refusal.NOT_FOR_LOAN
    assert refusal_from_text("Превышен лимит выдачи") is Refusal.LIMIT_REACHED
    assert refusal_from_text("Eksemplārs nav atrasts") is Refusal.UNKNOWN_ITEM
    assert refusal_from_text("Something else entirely") is Refusal.OTHER


@given(st.text(max_size=200))
def test_refusal_of_any_text_is_a_refusal(text):
    assert isinstance(refusal_from_text(text), Refusal)
