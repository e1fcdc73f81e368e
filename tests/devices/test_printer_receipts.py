"""Receipts rendered from the core's Receipt data in the patron's language, printed through a
python-escpos Dummy and read back from the bytes: Latvian and Russian survive the code pages, the
card number is masked, and no PIN or full card number appears."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from escpos.printer import Dummy

from kiosk.core.domain import Fee, Hold, Loan, Refusal, Routing
from kiosk.core.receipt import ReceiptLine, account_receipt, checkout_receipt, hold_slip
from kiosk.devices.escpos_transcript import decode, render_png
from kiosk.devices.printer import encode_document, open_printer
from kiosk.screens.receipts import RenderingPrinter, render_receipt

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "receipts"
WHEN = datetime(2026, 11, 25, 14, 30)
PIN = "1234"
CARD = "LV0001"

ITEMS = (
    ReceiptLine("30000002", "Dvēseļu putenis", due_date="20261216    235959"),
    ReceiptLine("30000010", "Война и мир", due_date="20261216    235959", offline=True),
    ReceiptLine("30000006", "Mērnieku laiki", ok=False, refusal=Refusal.ON_HOLD_FOR_OTHER),
    ReceiptLine("30000005", "Latviešu valodas kurss (3 CD)", ok=False, refusal=Refusal.SET_INCOMPLETE),
)


def _print(language: str, name: str) -> str:
    receipt = checkout_receipt(
        "Demo bibliotēka", WHEN, CARD, language, ITEMS,
        fees=(Fee("Kavējuma nauda", "2.50"),), fee_total="2.50",
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
    receipt = checkout_receipt("Demo bibliotēka", WHEN, CARD, "lv", (ReceiptLine("30000001", "Ļoti gara grāmatas nosaukuma rinda " * 3, due_date="2026-12-16"),))
    document = render_receipt(receipt, width=32)
    assert all(len(line.text) <= (16 if line.large else 32) for line in document.lines)
    assert any("Ļoti gara" in line.text for line in document.lines)


def test_account_receipt_and_hold_slip() -> None:
    account = account_receipt(
        "Demo bibliotēka", WHEN, CARD, "lv",
        loans=(Loan("30000009", "Sprīdītis", "2026-11-20", overdue=True),),
        holds=(Hold("30000003", "The Hobbit", ready=True),),
    )
    text = decode(encode_document(render_receipt(account))).text
    assert "Sprīdītis" in text and "20.11.2026 - nokavēts" in text and "Gatavs saņemšanai" in text
    slip = hold_slip("Demo bibliotēka", WHEN, "lv", "30000006", "Mērnieku laiki", Routing(hold_patron_id="LV0004", destination="Pieaugušo nodaļa"))
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
