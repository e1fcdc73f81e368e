"""Receipt choices at the end of a visit: the masked address an e-mailed receipt goes to, and a
receipt printed and e-mailed at once (each delivery failing on its own is reported)."""

from __future__ import annotations

import pytest

from kiosk.core.events import Action, BarcodeScanned, CardPresented, PinEntered, Tapped
from kiosk.core.masking import mask_email
from kiosk.core.ports import ManualClock
from kiosk.core.session import PatronSession, ReceiptChoice, SessionSettings, Stage
from kiosk.devices.errors import DeviceError
from tests.core.fakes import FakeCirculation, FakePrinter, FakeSecurity

CARD_RE = r"^LV[0-9]{4}$"


@pytest.mark.parametrize(
    ("address", "masked"),
    [
        ("janis@epasts.lv", "j***@e***.lv"),
        ("anna.berzina@mail.example.lv", "a***@m***.lv"),
        ("x@localhost", "x***@l***"),
        ("  ", ""),
        ("not-an-address", "***"),
        ("@example.lv", "***"),
    ],
)
def test_mask_email(address: str, masked: str) -> None:
    assert mask_email(address) == masked


def _finishing(circ: FakeCirculation, clock: ManualClock, printer: FakePrinter, mailer):
    settings = SessionSettings(card_pattern=CARD_RE, pin_policy="mandatory", email_receipts=True)
    s = PatronSession(
        circ, clock, settings, security=FakeSecurity(), printer=printer, mailer=mailer
    )
    s.handle(CardPresented("LV0001"))
    st = s.handle(PinEntered("1234"))
    assert st.patron is not None
    assert st.patron.email_masked == "a***@e***.lv"
    assert "anna@example.lv" not in repr(st)  # the screens get the masked address only
    s.handle(BarcodeScanned("30000001"))
    receipt = s.handle(Tapped(Action.FINISH)).receipt
    assert receipt is not None
    return s, receipt


def test_print_and_email(circ: FakeCirculation, clock: ManualClock) -> None:
    sent: list[tuple[object, str]] = []
    printer = FakePrinter()
    s, receipt = _finishing(circ, clock, printer, lambda r, to: sent.append((r, to)))
    st = s.handle(Tapped(Action.RECEIPT_BOTH))
    assert st.stage is Stage.GOODBYE
    assert st.receipt_choice is ReceiptChoice.BOTH
    assert not st.receipt_failed
    assert printer.printed == [receipt]
    assert sent == [(receipt, "anna@example.lv")]


def test_print_and_email_with_the_printer_failing_still_mails(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    sent: list[tuple[object, str]] = []
    printer = FakePrinter()
    printer.error = DeviceError("paper out")
    s, receipt = _finishing(circ, clock, printer, lambda r, to: sent.append((r, to)))
    st = s.handle(Tapped(Action.RECEIPT_BOTH))
    assert st.receipt_failed
    assert sent == [(receipt, "anna@example.lv")]
