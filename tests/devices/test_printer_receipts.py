"""Receipts rendered from the core's Receipt data in the patron's language, printed through a
python-escpos Dummy and read back from the bytes: Latvian and Russian survive the code pages, the
card number is masked, and no PIN or full card number appears."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from escpos.printer import Dummy
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.core.domain import Fee, Hold, Loan, Refusal, Routing
from kiosk.core.receipt import ReceiptLine, account_receipt, checkout_receipt, hold_slip
from kiosk.devices.escpos_transcript import decode, render_png
from kiosk.devices.printer import PrintLine, encode_document, open_printer
from kiosk.screens.receipts import RenderingPrinter, render_receipt

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "receipts"
WHEN = datetime(2026, 11, 25, 14, 30)
PIN = "1234"
CARD = "LV0001"

ITEMS = (
    ReceiptLine("30000002", "Dvēseļu putenis", due_date="20261216    235959"),
    ReceiptLine("30000010", "Война и мир", due_date="20261216    235959", offline=True),
    ReceiptLine("30000006", "Mērnieku laiki", ok=False, refusal=Refusal.ON_HOLD_FOR_OTHER),
    ReceiptLine(
        "30000005", "Latviešu valodas kurss (3 CD)", ok=False, refusal=Refusal.SET_INCOMPLETE
    ),
)


def _print(language: str, name: str) -> str:
    receipt = checkout_receipt(
        "Demo bibliotēka",
        WHEN,
        CARD,
        language,
        ITEMS,
        fees=(Fee("Kavējuma nauda", "2.50"),),
        fee_total="2.50",
    )
    data = encode_document(render_receipt(receipt, width=42))
    text = decode(data).render(42)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.txt").write_text(text, encoding="utf-8")
    (ARTIFACTS / f"{name}.bin").write_bytes(data)
    render_png(data, ARTIFACTS / f"{name}.png")
    return text


def test_latvian_receipt_survives_the_code_pages() -> None:
    text = _print("lv", "checkout-lv")
    assert "Demo bibliotēka" in text
    assert "Izsniegšanas kvīts" in text
    assert "25.11.2026 14:30" in text
    assert "Dvēseļu putenis" in text and "Война и мир" in text
    assert "Atdot līdz: 16.12.2026" in text
    assert "Rezervēts citam lasītājam" in text  # the refusal, in words
    assert "Kopā: 2,50 EUR" in text
    assert "provizoriski" in text  # the offline notice
    assert "Karte: **0001" in text


def test_russian_receipt_survives_the_code_pages() -> None:
    text = _print("ru", "checkout-ru")
    assert "Квитанция о выдаче" in text
    assert "Вернуть до: 16.12.2026" in text
    assert "Забронировано другим читателем" in text
    assert "Карта: **0001" in text
    assert "Demo bibliotēka" in text  # a Latvian name on a Russian receipt still prints


@pytest.mark.parametrize("language", ["lv", "ru", "en"])
def test_no_pin_and_no_full_card_number(language: str) -> None:
    text = _print(language, f"privacy-{language}")
    assert CARD not in text
    assert PIN not in text
    assert "Anna" not in text  # no patron name by default


def test_fresh_dummy_per_receipt_starts_with_a_code_page_switch() -> None:
    document = render_receipt(checkout_receipt("Demo bibliotēka", WHEN, CARD, "ru", ITEMS[:2]))
    first, second = encode_document(document), encode_document(document)
    assert first == second  # no code-page state carried from one receipt to the next
    assert b"\x1bt\x11" in first  # CP866 for Cyrillic (TM-T88V profile)


def test_receipt_lines_fit_the_paper() -> None:
    receipt = checkout_receipt(
        "Demo bibliotēka",
        WHEN,
        CARD,
        "lv",
        (
            ReceiptLine(
                "30000001", "Ļoti gara grāmatas nosaukuma rinda " * 3, due_date="2026-12-16"
            ),
        ),
    )
    document = render_receipt(receipt, width=32)
    assert all(len(line.text) <= (16 if line.large else 32) for line in document.lines)
    assert any("Ļoti gara" in line.text for line in document.lines)


def test_account_receipt_and_hold_slip() -> None:
    account = account_receipt(
        "Demo bibliotēka",
        WHEN,
        CARD,
        "lv",
        loans=(Loan("30000009", "Sprīdītis", "2026-11-20", overdue=True),),
        holds=(Hold("30000003", "The Hobbit", ready=True),),
    )
    text = decode(encode_document(render_receipt(account))).text
    assert "Sprīdītis" in text and "20.11.2026 - nokavēts" in text and "Gatavs saņemšanai" in text
    slip = hold_slip(
        "Demo bibliotēka",
        WHEN,
        "lv",
        "30000006",
        "Mērnieku laiki",
        Routing(hold_patron_id="LV0004", destination="Pieaugušo nodaļa"),
    )
    slip_text = decode(encode_document(render_receipt(slip))).text
    assert "Rezervēts lasītājam: **0004" in slip_text and "LV0004" not in slip_text
    assert "<barcode 30000006>" in slip_text


def test_rendering_printer_prints_a_receipt_to_a_folder(tmp_path: Path) -> None:
    printer = RenderingPrinter(open_printer(f"file:{tmp_path}"))
    printer.print_receipt(checkout_receipt("Demo bibliotēka", WHEN, CARD, "lv", ITEMS))
    (transcript,) = tmp_path.glob("*.txt")
    assert "Izsniegšanas kvīts" in transcript.read_text(encoding="utf-8")


def test_dummy_is_what_the_transports_send() -> None:
    document = render_receipt(checkout_receipt("Demo bibliotēka", WHEN, CARD, "lv", ITEMS))
    dummy = Dummy(profile="TM-T88V")
    dummy._raw(encode_document(document))
    assert decode(bytes(dummy.output)).text == decode(encode_document(document)).text


# -- nothing from data reaches the printer or the mail raw --------------------------------------

ALLOWED_COMMANDS = {
    "ESC @",
    "ESC a",
    "ESC !",
    "ESC t",
    "ESC d",
    "GS V",
    "GS v",
    "GS h",
    "GS w",
    "GS H",
    "GS k",
}


def _hostile_receipt(text: str, language: str = "lv"):
    items = (
        ReceiptLine(f"3000{text}", f"Grāmata {text}", due_date="20261216    235959"),
        ReceiptLine("30000003", text, ok=False, refusal=Refusal.OTHER, message=text),
        ReceiptLine("30000004", f"Война {text}", due_date="20261216    235959", renewal=True),
    )
    return checkout_receipt(
        f"Demo {text}",
        WHEN,
        CARD,
        language,
        items,
        patron_name=f"Anna {text}",
        fees=(Fee(text, "1.00"),),
        fee_total="1.00",
        acs_lines=(text, f"AG {text}"),
    )


def _assert_only_our_commands(data: bytes, profile: str) -> None:
    transcript = decode(data, profile)
    assert set(transcript.commands) <= ALLOWED_COMMANDS, set(transcript.commands) - ALLOWED_COMMANDS
    assert transcript.commands.count("GS V") == 1 and transcript.lines[-1].marker == "<cut>"
    # Stray control bytes and unknown commands would be listed as commands ("0x1b", "ESC p").


SETUPS = [("TM-T88V", "text"), ("TM-T88V", "raster"), ("TM-T88IV", "auto"), ("POS-5890", "text")]


@pytest.mark.parametrize(("profile", "render"), SETUPS)
def test_every_byte_value_in_every_field_prints_only_as_text(profile: str, render: str) -> None:
    from kiosk.devices.printer import printer_setup

    setup = printer_setup(profile, render=render)  # type: ignore[arg-type]
    hostile = "".join(chr(b) for b in range(256)) + "\u202e\u200b\ufeff\U0001f4da東"
    document = render_receipt(_hostile_receipt(hostile), width=setup.columns)
    _assert_only_our_commands(encode_document(document, setup), profile)
    # Each byte value alone, as a whole title, also with the cash-drawer and cut sequences.
    for b in range(256):
        for text in (chr(b), f"\x1bp\x00{chr(b)}\x1dV\x00"):
            lines = (PrintLine(text), PrintLine(f"x{text}y", bold=True, large=True))
            from kiosk.devices.printer import PrintDocument

            _assert_only_our_commands(
                encode_document(PrintDocument(lines, barcode=text), setup), profile
            )


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40), st.sampled_from(["lv", "ru", "en"]))
def test_generated_text_never_adds_a_command(text: str, language: str) -> None:
    from kiosk.devices.printer import printer_setup

    document = render_receipt(_hostile_receipt(text, language), width=42)
    _assert_only_our_commands(
        encode_document(document, printer_setup("TM-T88V", render="text")), "TM-T88V"
    )


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40))
def test_email_carries_no_control_character_and_no_extra_header(text: str) -> None:
    import email
    import email.policy
    import unicodedata

    from kiosk.screens.receipts import ReceiptMailer

    mailer = ReceiptMailer("file:outbox", "kiosk@library.lv")
    mail = email.message_from_bytes(
        bytes(mailer.message(_hostile_receipt(text + "\x00\x1b\r\nBcc: x@y"), "anna@example.lv")),
        policy=email.policy.default,
    )
    assert sorted(mail.keys()) == sorted(
        ["From", "To", "Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    )
    body = mail.get_content()
    assert all(
        ch == "\n" or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp") for ch in body
    )
    assert all(unicodedata.category(ch) not in ("Cc", "Cf") for ch in str(mail["Subject"]))


def test_email_lists_renewals_apart_and_refuses_a_bad_address() -> None:
    from kiosk.screens.receipts import MailError, ReceiptMailer

    mailer = ReceiptMailer("file:outbox", "kiosk@library.lv")
    receipt = _hostile_receipt("")
    body = mailer.message(receipt, "anna@example.lv").get_content()
    assert (
        "Izsniegtie izdevumi (1)" in body
        and "Pagarinātie izdevumi (1)" in body
        and "Nav izsniegti (1)" in body
    )
    with pytest.raises(MailError):
        mailer.message(receipt, "anna@example.lv\r\nBcc: all@example.lv")
