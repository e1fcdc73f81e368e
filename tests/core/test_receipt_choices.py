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


def _time_out(s: PatronSession, clock: ManualClock):
    for _ in range(3):  # the warning, then the logout
        clock.advance(s.settings.idle_timeout_s)
        st = s.tick()
    return st


@pytest.mark.parametrize(
    ("policy", "card", "printed", "mailed", "told"),
    [
        ("print", "LV0002", 1, 0, ReceiptChoice.PRINT),
        ("email", "LV0001", 0, 1, ReceiptChoice.EMAIL),
        ("email", "LV0002", 0, 0, None),  # no address: nothing is sent, nothing is claimed
        ("none", "LV0001", 0, 0, None),
    ],
)
def test_receipt_at_timeout(
    circ: FakeCirculation,
    clock: ManualClock,
    policy: str,
    card: str,
    printed: int,
    mailed: int,
    told: ReceiptChoice | None,
) -> None:
    sent: list[tuple[object, str]] = []
    printer = FakePrinter()
    settings = SessionSettings(
        card_pattern=CARD_RE, pin_policy="none", email_receipts=True, timeout_receipt=policy
    )
    s = PatronSession(
        circ,
        clock,
        settings,
        security=FakeSecurity(),
        printer=printer,
        mailer=lambda r, to: sent.append((r, to)),
    )
    s.handle(CardPresented(card))
    s.handle(BarcodeScanned("30000001"))
    st = _time_out(s, clock)
    assert st.stage is Stage.WELCOME
    assert st.patron is None
    assert (len(printer.printed), len(sent)) == (printed, mailed)
    assert st.timeout_receipt is told
    assert not st.receipt_failed
    # Told once: the next patron's touch moves on.
    assert s.handle(Tapped(Action.LANGUAGE, "en")).timeout_receipt is None


def test_a_failed_print_at_timeout_is_told(circ: FakeCirculation, clock: ManualClock) -> None:
    printer = FakePrinter()
    printer.error = DeviceError("paper out")
    settings = SessionSettings(card_pattern=CARD_RE, pin_policy="none", timeout_receipt="print")
    s = PatronSession(circ, clock, settings, security=FakeSecurity(), printer=printer)
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    st = _time_out(s, clock)
    assert st.timeout_receipt is ReceiptChoice.PRINT
    assert st.receipt_failed
