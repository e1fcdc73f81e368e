"""Wire-log masking: no password or PIN survives, card numbers keep only their last four characters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.masking import mask_card
from kiosk.sync.sip2.codec import decode, encode, message
from kiosk.sync.sip2.wirelog import mask, mask_message

D = "20261125    101500"


def test_login_password_is_blanked_and_trailer_kept():
    assert mask("9300CNkiosk|COs3cret|CPDEMO|AY0AZF00A\r") == "9300CNkiosk|CO|CPDEMO|AY0AZF00A\r"


def test_patron_pin_terminal_password_and_card_number():
    wire = f"23000{D}AODEMO|AALV000123|ACterm|AD1234|AY1AZABCD\r\n"
    assert mask(wire) == f"23000{D}AODEMO|AA****0123|AC|AD|AY1AZABCD\r\n"


def test_unterminated_last_field_before_the_trailer_is_still_masked():
    assert mask(f"35{D}AODEMO|AALV0001|AD9999AY2AZ1234") == f"35{D}AODEMO|AA**0001|ADAY2AZ1234"


def test_fixed_part_is_never_mistaken_for_fields():
    # "AD" inside a fixed part (here an odd 63 summary) must not be touched
    wire = f"63000{D}ADADADADADAOx|AAcard9876|"
    assert mask(wire) == f"63000{D}ADADADADADAOx|AA****9876|"


def test_short_card_numbers_are_masked_entirely():
    assert mask_card("1234") == "****"
    assert mask_card("LV0001") == "**0001"
    assert mask_card("") == ""


def test_mask_message_for_the_journal():
    msg = decode(
        encode(
            message(
                "11",
                sc_renewal_policy="N",
                no_block="N",
                transaction_date=D,
                nb_due_date=D,
                fields=[
                    ("AO", "DEMO"),
                    ("AA", "LV0001"),
                    ("AB", "1"),
                    ("AC", "pw"),
                    ("AD", "1234"),
                ],
            )
        )
    )
    masked = mask_message(msg)
    assert masked.get("AA") == "**0001"
    assert masked.get("AC") == ""
    assert masked.get("AD") == ""
    assert msg.get("AD") == "1234"  # the original is untouched
    assert masked.fixed == msg.fixed
    assert masked.checksum == msg.checksum


def test_text_without_fields_or_with_unknown_command_passes_through():
    assert mask("941AY0AZFDFD") == "941AY0AZFDFD"
    assert mask("XXADsecret|") == "XXAD|"
    assert mask("") == ""


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_mask_never_raises_and_never_leaks_a_marked_pin(text):
    out = mask(text)
    assert isinstance(out, str)
    wire = f"23000{D}AODEMO|AA{text[:10].replace('|', '')}X|AD{'PIN' + text[:5].replace('|', '')}|"
    assert "|ADPIN" not in mask(wire)
