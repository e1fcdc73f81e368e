"""kiosk.sync.answers, called directly: how the library system's text, flags and routing fields are read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kiosk.config import Sip2Section
from kiosk.core.domain import PATRON_STATUS_FLAGS, AlertType, BlockReason, Fee, Refusal, Routing
from kiosk.sync import answers
from kiosk.sync.answers import (
    blocks_from_status,
    fee_from_text,
    patron_name,
    refusal_from_text,
)
from kiosk.sync.sip2.codec import decode


def test_only_y_is_true_in_patron_status():
    assert blocks_from_status("NNNNNNNNNNNNNN") == ()  # edge-sip2 style "N" means not blocked
    assert blocks_from_status("    Y     Y   ") == (
        BlockReason.CARD_LOST,
        BlockReason.EXCESSIVE_FINES,
    )
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
    over = answers.over_limit
    assert over("20.00", "15.00")
    assert over("10,01", "10.")
    assert over("5.5", "5")
    assert not over("15.00", "15.00")
    assert not over("0", "15.00")
    assert not over("9.99", "0.00")
    assert not over("9.99", "")
    assert not over("", "5")
    assert not over("NaN", "5")
    assert not over("9", "Infinity")
    assert not over("USD 9", "5")


@given(st.text(max_size=12), st.text(max_size=12))
def test_fee_over_limit_of_any_text_is_a_yes_or_no(fee, limit):
    assert answers.over_limit(fee, limit) in (True, False)


def test_fee_lines():
    assert fee_from_text("Kavējuma nauda 2.50") == Fee("Kavējuma nauda", "2.50")
    assert fee_from_text("Bojāts vāks: 1,00 EUR") == Fee("Bojāts vāks", "1.00")
    assert fee_from_text("Штраф") == Fee("Штраф", "")


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
    assert (
        refusal_from_text("This item is for use in the library only (not for loan)")
        is Refusal.NOT_FOR_LOAN
    )
    assert refusal_from_text("Превышен лимит выдачи") is Refusal.LIMIT_REACHED
    assert refusal_from_text("Eksemplārs nav atrasts") is Refusal.UNKNOWN_ITEM
    assert refusal_from_text("Something else entirely") is Refusal.OTHER


@given(st.text(max_size=200))
def test_refusal_of_any_text_is_a_refusal(text):
    assert isinstance(refusal_from_text(text), Refusal)


def test_checkin_routing_reads_the_sort_bin_alert_and_3m_fields():
    resp = decode(
        "101YNY20261201    120000AOLIB|AB30000006|AQMAIN|CL3|CV02|CTBRANCH2|CYLV0004|DAIvan|"
    )
    routing = answers.checkin_routing(resp)
    assert routing.sort_bin == "3"
    assert routing.alert
    assert routing.alert_type is AlertType.HOLD_OTHER_BRANCH
    assert routing.destination == "BRANCH2"
    assert routing.hold_patron_id == "LV0004"
    assert answers.routing_json(routing) == {
        "sort_bin": "3",
        "alert": True,
        "alert_type": "02",
        "destination": "BRANCH2",
    }  # no hold patron in what the journal keeps


def test_an_unknown_alert_type_is_other_not_an_error():
    resp = decode("101YNY20261201    120000AOLIB|AB30000006|CV77|")
    assert answers.checkin_routing(resp).alert_type is AlertType.OTHER


def test_hold_trapped_is_a_refused_checkin_with_a_hold_alert():
    hold = Routing(alert=True, alert_type=AlertType.HOLD_HERE)
    assert answers.hold_trapped(False, hold)
    assert not answers.hold_trapped(True, hold)
    assert not answers.hold_trapped(False, Routing(alert=True, alert_type=AlertType.OTHER))


def test_pin_accepted_and_refuses():
    ok = decode(
        "64              00120261201    120000000000000000000000000000AOLIB|AALV0001|AEAnna|BLY|CQY|"
    )
    wrong = decode(
        "64              00120261201    120000000000000000000000000000AOLIB|AALV0001|AEAnna|BLY|CQN|"
    )
    unknown = decode(
        "64              00120261201    120000000000000000000000000000AOLIB|AALV0009|AE|BLN|"
    )
    assert answers.pin_accepted(ok, "1234") is True
    assert answers.pin_accepted(wrong, "1234") is False
    assert answers.pin_accepted(wrong, None) is False  # the library system wants a PIN
    assert answers.pin_accepted(unknown, None) is None  # no CQ: nothing said
    assert not answers.refuses(ok, "1234")
    assert answers.refuses(wrong, "1234")
    assert answers.refuses(unknown, None)


def test_unsendable_identifiers():
    s = Sip2Section(encoding="cp1257")
    assert answers.unsendable("30000001", s) == ""
    assert "empty" in answers.unsendable("  ", s)
    assert "'|'" in answers.unsendable("300|01", s)
    assert "cp1257" in answers.unsendable("3000Ж", s)
