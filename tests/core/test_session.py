"""The patron session: PIN policies, lockout, block reasons, idle timeout, language and receipts."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from kiosk.core.domain import BlockReason, ItemTag, Mode, PatronResult, Refusal
from kiosk.core.events import Action, BarcodeScanned, CardPresented, PinEntered, TagsChanged, Tapped
from kiosk.core.ports import ManualClock
from kiosk.core.receipt import ReceiptKind
from kiosk.core.session import (
    LoginProblem,
    PatronSession,
    ReceiptChoice,
    SessionSettings,
    SessionState,
    Stage,
    View,
)
from kiosk.devices.errors import DeviceError
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import FakeCirculation, FakePrinter, FakeSecurity, tag

CARD_RE = r"^LV[0-9]{4,12}$"


def make(
    circ: FakeCirculation,
    clock: ManualClock,
    security: FakeSecurity | None = None,
    printer: FakePrinter | None = None,
    **kw: object,
) -> tuple[PatronSession, list[SessionState]]:
    settings = dataclasses.replace(
        SessionSettings(library_name="Demo bibliotēka", card_pattern=CARD_RE), **kw
    )  # type: ignore[arg-type]
    seen: list[SessionState] = []
    s = PatronSession(
        circ,
        clock,
        settings,
        security=security or FakeSecurity(),
        printer=printer,
        listener=seen.append,
    )
    return s, seen


# -- PIN policies ------------------------------------------------------------------------------


def test_policy_none_logs_in_with_card_alone(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    st = s.handle(CardPresented("LV0002"))
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0002"
    assert st.patron.name == "John Smith"
    assert circ.ops("identify_patron") == [("LV0002", False)]


def test_policy_none_ignores_a_pin_the_library_would_want(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    assert s.handle(CardPresented("LV0001")).stage is Stage.ACTIVE


def test_policy_mandatory_asks_pin_before_the_library_system(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="mandatory")
    st = s.handle(CardPresented("LV0001"))
    assert st.stage is Stage.PIN
    assert circ.ops("identify_patron") == []
    st = s.handle(PinEntered("1234"))
    assert st.stage is Stage.ACTIVE
    assert circ.ops("identify_patron") == [("LV0001", True)]


def test_policy_optional_asks_pin_only_when_the_library_wants_one(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="optional")
    assert s.handle(CardPresented("LV0002")).stage is Stage.ACTIVE  # no PIN on this patron
    s.handle(Tapped(Action.LOGOUT))
    st = s.handle(CardPresented("LV0001"))  # the library says CQ=N without a PIN
    assert st.stage is Stage.PIN
    assert st.problem is None
    assert not st.pin_retry
    st = s.handle(PinEntered("1234"))
    assert st.stage is Stage.ACTIVE
    assert circ.ops("identify_patron")[-2:] == [("LV0001", False), ("LV0001", True)]


def test_wrong_pin_retries_then_locks_out_the_card(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="mandatory", max_login_failures=3, lockout_s=60.0)
    s.handle(CardPresented("LV0001"))
    st = s.handle(PinEntered("0000"))
    assert st.stage is Stage.PIN
    assert st.problem is LoginProblem.WRONG_PIN
    assert st.pin_retry
    assert st.attempts_left == 2
    s.handle(PinEntered("1111"))
    st = s.handle(PinEntered("2222"))
    assert st.stage is Stage.WELCOME
    assert st.problem is LoginProblem.LOCKED_OUT
    assert st.locked_for_s == pytest.approx(60.0)
    calls = len(circ.calls)
    st = s.handle(CardPresented("LV0001"))
    assert st.problem is LoginProblem.LOCKED_OUT
    assert st.stage is Stage.WELCOME
    assert len(circ.calls) == calls
    # Another card still works: only this card is locked.
    assert s.handle(CardPresented("LV0002")).stage is Stage.PIN
    s.handle(Tapped(Action.CANCEL))
    clock.advance(61)
    s.handle(CardPresented("LV0001"))
    assert s.handle(PinEntered("1234")).stage is Stage.ACTIVE


def test_optional_policy_counts_wrong_pins(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="optional", max_login_failures=2)
    s.handle(CardPresented("LV0001"))
    assert s.handle(PinEntered("9999")).problem is LoginProblem.WRONG_PIN
    st = s.handle(PinEntered("8888"))
    assert st.problem is LoginProblem.LOCKED_OUT
    assert st.stage is Stage.WELCOME


def test_unknown_cards_count_and_lock(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none", max_login_failures=3)
    assert s.handle(CardPresented("LV9999")).problem is LoginProblem.UNKNOWN_PATRON
    s.handle(CardPresented("LV9999"))
    assert s.handle(CardPresented("LV9999")).problem is LoginProblem.LOCKED_OUT


def test_terminal_lockout_across_cards(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(
        circ,
        clock,
        pin_policy="none",
        max_login_failures=3,
        terminal_max_failures=4,
        lockout_s=120.0,
    )
    for card in ("LV9001", "LV9002", "LV9003"):
        assert s.handle(CardPresented(card)).problem is LoginProblem.UNKNOWN_PATRON
    assert s.handle(CardPresented("LV9004")).problem is LoginProblem.LOCKED_OUT
    calls = len(circ.calls)
    st = s.handle(CardPresented("LV0002"))  # a good card on a locked terminal
    assert st.problem is LoginProblem.LOCKED_OUT
    assert len(circ.calls) == calls
    clock.advance(121)
    assert s.handle(CardPresented("LV0002")).stage is Stage.ACTIVE


def test_failures_outside_the_window_are_forgotten(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none", max_login_failures=2, login_window_s=60.0)
    s.handle(CardPresented("LV9999"))
    clock.advance(61)
    assert s.handle(CardPresented("LV9999")).problem is LoginProblem.UNKNOWN_PATRON


@pytest.mark.parametrize("text", ["12345", "LV0001|AD1234", "", "lv"])
def test_bad_card_numbers_are_not_sent(
    circ: FakeCirculation, clock: ManualClock, text: str
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    st = s.handle(CardPresented(text))
    assert st.problem is LoginProblem.BAD_CARD
    assert st.stage is Stage.WELCOME
    assert circ.calls == []


# -- block reasons -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("card", "reason"), [("LV0003", BlockReason.CARD_LOST), ("LV0005", BlockReason.CARD_EXPIRED)]
)
def test_lost_or_expired_card_refused_at_login(
    circ: FakeCirculation, clock: ManualClock, card: str, reason: BlockReason
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    st = s.handle(CardPresented(card))
    assert st.stage is Stage.WELCOME
    assert st.problem is LoginProblem.BLOCKED
    assert st.blocks == (reason,)
    assert st.patron is None
    assert circ.ops("end_session") == [(card,)]


@pytest.mark.parametrize(
    ("card", "reason"),
    [("LV0004", BlockReason.EXCESSIVE_FEES), ("LV0006", BlockReason.TOO_MANY_OVERDUE)],
)
def test_other_blocks_let_the_patron_in_but_not_borrow(
    circ: FakeCirculation, clock: ManualClock, card: str, reason: BlockReason
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    st = s.handle(CardPresented(card))
    assert st.stage is Stage.ACTIVE
    assert st.blocks == (reason,)
    assert st.patron is not None
    assert not st.patron.may_borrow
    assert not st.capabilities.can_checkout
    st = s.handle(TagsChanged(present=(tag("30000001"),), added=(tag("30000001"),)))
    assert st.checkout is not None
    assert st.checkout.items[0].refusal is Refusal.PATRON_BLOCKED
    assert circ.ops("checkout") == []


def test_fees_are_summed_for_the_screen(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    st = s.handle(CardPresented("LV0004"))
    assert st.patron is not None
    assert st.patron.fee_total == "3.50"
    assert st.account is not None
    assert len(st.account.fees) == 2


def test_unknown_patron_without_record_and_unusable_answer(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none", max_login_failures=5)
    circ.script_identify = PatronResult(ok=False, mode=Mode.ONLINE, refusal=Refusal.PATRON_BLOCKED)
    assert s.handle(CardPresented("LV0002")).problem is LoginProblem.UNKNOWN_PATRON
    circ.script_identify = PatronResult(
        ok=False, mode=Mode.ONLINE, refusal=Refusal.OTHER, message="unusable answer"
    )
    st = s.handle(CardPresented("LV0002"))
    assert st.problem is LoginProblem.LINK_DOWN
    assert st.message == "unusable answer"
    assert s._limiter.attempts_left("LV0002") == 4  # only the unknown patron counted


def test_unknown_patron_answer_not_ok_and_link_down(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    circ.fail_next["identify_patron"] = Sip2LinkError("refused")
    st = s.handle(CardPresented("LV0002"))
    assert st.problem is LoginProblem.LINK_DOWN
    assert st.stage is Stage.WELCOME


def test_a_bug_while_identifying_keeps_its_traceback_and_is_not_taken_for_an_outage(
    circ: FakeCirculation,
    clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    unexpected_faults,
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    circ.fail_next["identify_patron"] = TypeError("a bug in the circulation service")
    with caplog.at_level(logging.ERROR, logger="kiosk.core.session"):
        st = s.handle(CardPresented("LV0002"))
    assert st.stage is Stage.WELCOME  # the patron still gets a clear screen
    assert [type(e) for e in unexpected_faults()] == [TypeError]  # and the test would fail
    records = [r for r in caplog.records if "identifying patron" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert "LV0002" not in caplog.text


def test_a_link_fault_while_identifying_is_one_line(
    circ: FakeCirculation, clock: ManualClock, caplog: pytest.LogCaptureFixture, unexpected_faults
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    circ.fail_next["identify_patron"] = Sip2LinkError("refused")
    with caplog.at_level(logging.ERROR, logger="kiosk.core.session"):
        s.handle(CardPresented("LV0002"))
    records = [r for r in caplog.records if "identifying patron" in r.getMessage()]
    assert len(records) == 1
    assert records[0].exc_info is None
    assert "refused" in records[0].getMessage()
    assert unexpected_faults() == []


# -- offline -----------------------------------------------------------------------------------


def test_offline_login_allows_checkout_only_by_policy(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    circ.online = False
    s, _ = make(circ, clock, security, pin_policy="none", offline_policy="checkin-and-checkout")
    st = s.handle(CardPresented("LV0002"))
    assert st.stage is Stage.ACTIVE
    assert not st.capabilities.online
    assert st.capabilities.can_checkout
    assert not st.capabilities.can_view_account
    assert not st.capabilities.can_renew
    t = tag("30000001")
    st = s.handle(TagsChanged(present=(t,), added=(t,)))
    assert st.checkout is not None
    item = st.checkout.items[0]
    assert item.offline
    assert item.queued
    assert item.due_date
    assert security.state[t.uid] is False


def test_offline_login_refused_when_policy_forbids(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    circ.online = False
    circ.offline_policy = "checkin-only"
    s, _ = make(circ, clock, pin_policy="none", offline_policy="checkin-only")
    st = s.handle(CardPresented("LV0002"))
    assert st.problem is LoginProblem.LINK_DOWN
    assert st.stage is Stage.WELCOME
    assert st.capabilities.can_return


# -- idle timeout, reset, privacy --------------------------------------------------------------


def test_idle_warning_at_least_twenty_seconds_and_extend(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none", idle_timeout_s=90.0, idle_warning_s=25.0)
    s.handle(CardPresented("LV0002"))
    clock.advance(64)
    assert not s.tick().idle_warning
    clock.advance(1)
    st = s.tick()
    assert st.idle_warning
    assert st.seconds_left == pytest.approx(25.0)
    assert st.seconds_left >= 20
    st = s.handle(Tapped(Action.EXTEND))
    assert not st.idle_warning
    assert st.stage is Stage.ACTIVE
    for _ in range(10):  # extendable again and again
        clock.advance(70)
        assert s.tick().idle_warning
        s.handle(Tapped(Action.EXTEND))
    assert s.state.stage is Stage.ACTIVE


def test_late_tick_still_gives_full_warning(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none", idle_timeout_s=90.0, idle_warning_s=25.0)
    s.handle(CardPresented("LV0002"))
    clock.advance(200)  # the UI was frozen: no tick for a long time
    st = s.tick()
    assert st.stage is Stage.ACTIVE
    assert st.idle_warning
    assert st.seconds_left == pytest.approx(25.0)
    clock.advance(24.9)
    assert s.tick().stage is Stage.ACTIVE
    clock.advance(0.1)
    assert s.tick().stage is Stage.WELCOME


def test_timeout_resets_language_accessibility_and_wipes_the_patron(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    s, seen = make(
        circ, clock, security, pin_policy="mandatory", idle_timeout_s=60.0, idle_warning_s=20.0
    )
    s.handle(Tapped(Action.LANGUAGE, "ru"))
    s.handle(Tapped(Action.LARGE_TEXT))
    s.handle(Tapped(Action.HIGH_CONTRAST))
    s.handle(CardPresented("LV0001"))
    st = s.handle(PinEntered("1234"))
    assert (st.language, st.large_text, st.high_contrast) == ("ru", True, True)
    s.handle(TagsChanged(present=(tag("30000001"),), added=(tag("30000001"),)))
    s.handle(Tapped(Action.SHOW_ACCOUNT))
    circ.end_session_error = Sip2LinkError("link gone")  # ignored
    clock.advance(40)
    assert s.tick().idle_warning
    clock.advance(20)
    st = s.tick()
    assert st.stage is Stage.WELCOME
    assert (st.language, st.large_text, st.high_contrast) == ("lv", False, False)
    assert st.patron is None
    assert st.checkout is None
    assert st.account is None
    assert st.receipt is None
    assert circ.ops("end_session") == [("LV0001",)]
    assert s._pin is None
    assert s._card_number is None
    assert s._patron is None
    for text in ("LV0001", "Anna", "Zaļā", "30000001"):
        assert text not in repr(st)
    # The PIN never appeared in any snapshot of the whole session.
    assert seen
    assert all("1234" not in repr(x) for x in seen)


def test_pin_never_in_any_state_repr_even_with_retries(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, seen = make(circ, clock, pin_policy="mandatory")
    s.handle(CardPresented("LV0001"))
    s.handle(PinEntered("9876"))
    s.handle(PinEntered("1234"))
    s.handle(TagsChanged(present=(tag("30000002"),), added=(tag("30000002"),)))
    s.handle(Tapped(Action.FINISH))
    s.handle(Tapped(Action.RECEIPT_NONE))
    assert len(seen) > 5
    assert all("9876" not in repr(x) and "1234" not in repr(x) for x in seen)


def test_welcome_choices_reset_after_idle(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, idle_timeout_s=90.0)
    s.handle(Tapped(Action.LANGUAGE, "en"))
    s.handle(Tapped(Action.LANGUAGE, "de"))  # not offered here: ignored
    assert s.state.language == "en"
    clock.advance(91)
    assert s.tick().language == "lv"


def test_patron_language_used_unless_chosen(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    assert s.handle(CardPresented("LV0002")).language == "en"


def test_a_language_tapped_before_the_card_wins_even_the_default(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    """Tapping Latvian (the kiosk's default) is a choice too: the library system's English for
    this patron does not override it; after the visit the next patron gets theirs again."""
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(Tapped(Action.LANGUAGE, "lv"))
    assert s.handle(CardPresented("LV0002")).language == "lv"
    s.handle(Tapped(Action.LANGUAGE, "ru"))  # and a choice during the visit is kept
    assert s.state.language == "ru"
    for _ in range(4):  # the idle warning, the logout, the welcome's own reset
        clock.advance(1_000)
        s.tick()
    assert s.state.language == "lv"
    assert s.handle(CardPresented("LV0002")).language == "en"


# -- checkout inside the session, finishing, receipts ------------------------------------------


def test_items_on_pad_before_login_are_checked_out(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    s, _ = make(circ, clock, security, pin_policy="none")
    t = tag("30000003")
    s.handle(TagsChanged(present=(t,), added=(t,)))
    assert circ.ops("checkout") == []
    st = s.handle(CardPresented("LV0002"))
    assert st.checkout is not None
    assert st.checkout.checked_out[0].item_id == "30000003"


def test_barcode_on_welcome_is_a_card(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    assert s.handle(BarcodeScanned("LV0002")).stage is Stage.ACTIVE
    st = s.handle(BarcodeScanned("30000004"))
    assert len(circ.ops("checkout")) == 1
    assert st.view is View.CHECKOUT
    assert st.checkout is not None
    assert st.checkout.checked_out[0].item_id == "30000004"


def test_finish_print_receipt_goodbye_then_welcome(
    circ: FakeCirculation, clock: ManualClock, printer: FakePrinter
) -> None:
    s, _ = make(circ, clock, printer=printer, pin_policy="none", goodbye_s=5.0)
    s.handle(CardPresented("LV0002"))
    s.handle(
        TagsChanged(
            present=(tag("30000001"), tag("30000007")), added=(tag("30000001"), tag("30000007"))
        )
    )
    st = s.handle(Tapped(Action.FINISH))
    assert st.stage is Stage.FINISHING
    assert st.receipt is not None
    r = st.receipt
    assert r.kind is ReceiptKind.CHECKOUT
    assert r.card_masked == "**0002"
    assert r.patron_name == ""
    assert [line.item_id for line in r.lines] == ["30000001"]
    assert r.lines[0].due_date
    assert [(line.item_id, line.refusal) for line in r.refused] == [
        ("30000007", Refusal.NOT_FOR_LOAN)
    ]
    st = s.handle(Tapped(Action.RECEIPT_PRINT))
    assert printer.printed == [r]
    assert st.stage is Stage.GOODBYE
    assert st.items_done == 1
    assert st.patron is None
    assert not st.receipt_failed
    assert "John" not in repr(st)
    assert "30000001" not in repr(st)
    assert circ.ops("end_session") == [("LV0002",)]
    clock.advance(5)
    st = s.tick()
    assert st.stage is Stage.WELCOME
    assert st.language == "lv"


def test_printer_failure_is_reported_not_fatal(
    circ: FakeCirculation, clock: ManualClock, printer: FakePrinter
) -> None:
    printer.error = DeviceError("paper out")
    s, _ = make(circ, clock, printer=printer, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    s.handle(Tapped(Action.FINISH))
    st = s.handle(Tapped(Action.RECEIPT_PRINT))
    assert st.stage is Stage.GOODBYE
    assert st.receipt_failed


def test_finish_with_nothing_done_skips_the_receipt(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    st = s.handle(Tapped(Action.FINISH))
    assert st.stage is Stage.GOODBYE
    assert st.receipt_choice is None


def test_patron_name_on_receipt_only_when_configured(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none", show_patron_name=True)
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    st = s.handle(Tapped(Action.FINISH))
    assert st.receipt is not None
    assert st.receipt.patron_name == "John Smith"


def test_the_same_card_again_during_a_session_changes_nothing(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    st = s.handle(CardPresented("lv0002"))
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0002"
    assert len(circ.ops("identify_patron")) == 1


def test_another_card_with_nothing_done_ends_the_session_and_starts_the_next(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    s, _ = make(circ, clock, security, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    s.handle(Tapped(Action.LANGUAGE, "en"))
    st = s.handle(CardPresented("LV0001"))
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0001"
    assert circ.ops("end_session") == [("LV0002",)]
    assert st.language == "lv"  # the first patron's choices went with them
    t = tag("30000003")
    s.handle(TagsChanged(present=(t,), added=(t,)))
    assert circ.items["30000003"].on_loan_to == "LV0001"


def test_another_card_after_loans_offers_the_first_receipt_then_starts_the_next(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity, printer: FakePrinter
) -> None:
    s, _ = make(circ, clock, security, printer, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    a = tag("30000001")
    s.handle(TagsChanged(present=(a,), added=(a,)))
    st = s.handle(CardPresented("LV0001"))
    # The first patron's session is closed for borrowing: only the receipt choice is left.
    assert st.stage is Stage.FINISHING
    assert st.next_patron_waiting
    assert st.patron is not None
    assert st.patron.card_masked == "**0002"
    assert st.receipt is not None
    assert [line.item_id for line in st.receipt.lines] == ["30000001"]
    b = tag("30000003")
    s.handle(TagsChanged(present=(a, b), added=(b,)))
    assert s.handle(Tapped(Action.SHOW_CHECKOUT)).stage is Stage.FINISHING
    s.handle(BarcodeScanned("30000004"))
    assert circ.ops("checkout") == [("LV0002", "30000001", False, False)]
    st = s.handle(Tapped(Action.RECEIPT_PRINT))
    assert printer.printed
    assert printer.printed[0].card_masked == "**0002"
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0001"
    assert circ.ops("end_session") == [("LV0002",)]
    # What lies on the pad now is the second patron's: item 30000001 is already on loan to the
    # first, 30000003 goes to the second; nothing lands on the first patron's account.
    assert circ.items["30000003"].on_loan_to == "LV0001"
    assert [i for i, x in circ.items.items() if x.on_loan_to == "LV0002"] == [
        "30000001",
        "30000008",
    ]


def test_another_card_at_the_pin_prompt_starts_over_with_it(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="mandatory")
    assert s.handle(CardPresented("LV0001")).stage is Stage.PIN
    assert s.handle(CardPresented("LV0002")).stage is Stage.PIN
    st = s.handle(PinEntered("0000"))
    assert circ.ops("identify_patron") == [("LV0002", True)]
    assert st.patron is not None
    assert st.patron.card_masked == "**0002"


def test_a_card_scanned_mid_session_is_the_next_patron_not_an_item(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(BarcodeScanned("LV0002"))
    st = s.handle(BarcodeScanned("LV0007"))
    assert st.patron is not None
    assert st.patron.card_masked == "**0007"
    assert circ.ops("checkout") == []


def test_pad_is_read_fresh_at_login_not_replayed_from_before_returns(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    class Pad:
        tags: tuple[ItemTag, ...] = ()

        def current(self) -> tuple[ItemTag, ...]:
            return self.tags

    pad = Pad()
    settings = SessionSettings(library_name="Demo", card_pattern=CARD_RE, pin_policy="none")
    s = PatronSession(circ, clock, settings, security=security, pad=pad)
    returned, fresh = tag("30000009"), tag("30000003")
    # Placed at the welcome screen, then returned on the return screen (whose tag events the
    # session never sees) and taken away; another item is on the pad when the next patron logs in.
    pad.tags = (returned,)
    s.handle(TagsChanged(present=(returned,), added=(returned,)))
    circ.checkin("30000009")
    pad.tags = (fresh,)
    st = s.handle(CardPresented("LV0002"))
    assert [i.item_id for i in st.checkout.items] == ["30000003"] if st.checkout else False
    assert circ.ops("checkout") == [("LV0002", "30000003", False, False)]
    assert circ.items["30000009"].on_loan_to == ""


def test_renew_through_the_session(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    st = s.handle(Tapped(Action.SHOW_ACCOUNT))
    assert st.view is View.ACCOUNT
    assert st.capabilities.can_renew
    st = s.handle(Tapped(Action.RENEW, "30000008"))
    assert st.account is not None
    assert st.account.loans[0].renewed is True
    assert not st.account.loans[0].overdue
    st = s.handle(Tapped(Action.FINISH))
    assert st.receipt is not None
    assert st.receipt.lines[0].renewal


def test_lockouts_are_recorded_with_masked_card(circ: FakeCirculation, clock: ManualClock) -> None:
    events: list[tuple[str, str]] = []
    settings = SessionSettings(card_pattern=CARD_RE, pin_policy="mandatory", max_login_failures=2)
    s = PatronSession(circ, clock, settings, recorder=lambda k, d: events.append((k, d)))
    s.handle(CardPresented("LV0001"))
    s.handle(PinEntered("0000"))
    assert events == []
    s.handle(PinEntered("1111"))
    assert events == [
        ("login_lockout", "card locked after repeated failures (wrong PIN), card **0001")
    ]
    assert "0000" not in events[0][1]
    assert "1111" not in events[0][1]


def test_welcome_tracks_the_link_state(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock)
    circ.online = False
    clock.advance(11)
    s.tick()
    assert not s.link.online
    assert not s.state.capabilities.online
    circ.online = True
    assert s.refresh_link().capabilities.online


def test_settings_from_the_embedded_default_config() -> None:
    from kiosk.config import DEFAULT_CONFIG, load

    cfg = load(DEFAULT_CONFIG)
    st = SessionSettings.from_config(cfg)
    assert st.languages == cfg.kiosk.languages
    assert st.default_language == cfg.kiosk.default_language
    assert st.pin_policy == cfg.patron.pin_policy
    assert st.idle_warning_s >= 20
    assert st.card_pattern == cfg.patron.card_pattern
    assert st.offline_policy == cfg.offline.policy
    from kiosk.core.returns import ReturnSettings
    from kiosk.core.routing import RoutingTable

    assert ReturnSettings.from_config(cfg).library_name == cfg.kiosk.library_name
    assert RoutingTable.from_config(cfg).exception_bin == cfg.sorter.exception_bin


def test_renewals_only_make_a_renewal_receipt(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    s.handle(Tapped(Action.SHOW_ACCOUNT))
    s.handle(Tapped(Action.RENEW_ALL))
    st = s.handle(Tapped(Action.FINISH))
    assert st.receipt is not None
    assert st.receipt.kind is ReceiptKind.RENEWAL
    assert [line.item_id for line in st.receipt.lines] == ["30000008"]
    assert st.receipt.lines[0].due_date


def test_email_receipt_goes_to_the_patrons_address(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    sent: list[tuple[object, str]] = []
    settings = SessionSettings(card_pattern=CARD_RE, pin_policy="mandatory", email_receipts=True)
    s = PatronSession(circ, clock, settings, mailer=lambda r, to: sent.append((r, to)))
    s.handle(CardPresented("LV0001"))
    st = s.handle(PinEntered("1234"))
    assert st.capabilities.can_email
    s.handle(BarcodeScanned("30000001"))
    receipt = s.handle(Tapped(Action.FINISH)).receipt
    st = s.handle(Tapped(Action.RECEIPT_EMAIL))
    assert sent == [(receipt, "anna@example.lv")]
    assert st.stage is Stage.GOODBYE
    assert not st.receipt_failed
    assert st.receipt_choice is ReceiptChoice.EMAIL


def test_email_not_offered_without_mailer_and_failure_reported(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none", email_receipts=True)
    st = s.handle(CardPresented("LV0002"))
    assert not st.capabilities.can_email
    s.handle(BarcodeScanned("30000001"))
    s.handle(Tapped(Action.FINISH))
    assert s.handle(Tapped(Action.RECEIPT_EMAIL)).receipt_failed


def test_back_from_receipt_choice_and_next_patron_during_goodbye(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    assert s.handle(Tapped(Action.FINISH)).stage is Stage.FINISHING
    st = s.handle(Tapped(Action.SHOW_CHECKOUT))
    assert st.stage is Stage.ACTIVE
    assert st.checkout is not None
    assert len(st.checkout.items) == 1
    s.handle(Tapped(Action.FINISH))
    s.handle(Tapped(Action.LANGUAGE, "en"))
    assert s.handle(Tapped(Action.RECEIPT_NONE)).stage is Stage.GOODBYE
    st = s.handle(CardPresented("LV0004"))  # the next patron does not wait for the goodbye screen
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0004"
    assert st.language == "lv"
    assert st.checkout is not None
    assert st.checkout.items == ()


def test_start_clears_a_login_problem(circ: FakeCirculation, clock: ManualClock) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    assert s.handle(CardPresented("LV9999")).problem is LoginProblem.UNKNOWN_PATRON
    st = s.handle(Tapped(Action.START))
    assert st.problem is None
    assert st.stage is Stage.WELCOME


def test_a_waiting_card_is_dropped_when_the_receipt_offer_times_out(
    circ: FakeCirculation, clock: ManualClock, security: FakeSecurity
) -> None:
    s, _ = make(circ, clock, security, pin_policy="none", idle_timeout_s=60, idle_warning_s=20)
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    assert s.handle(CardPresented("LV0001")).next_patron_waiting
    clock.advance(61)
    s.tick()
    clock.advance(21)
    st = s.tick()
    assert st.stage is Stage.WELCOME
    assert not st.next_patron_waiting
    assert st.patron is None
    # The second card was only asked about (is it a patron?); it never logged in.
    assert [args[0] for args in circ.ops("identify_patron")] == ["LV0002", "LV0001"]


def test_an_item_number_that_looks_like_a_card_is_checked_out_not_a_new_patron(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    # Card and item numbers share a pattern here, as with all-digit numbers at many libraries.
    s, _ = make(circ, clock, pin_policy="none", card_pattern=r"^[0-9A-Z]{4,20}$")
    s.handle(CardPresented("LV0002"))
    st = s.handle(BarcodeScanned("30000004"))
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.card_masked == "**0002"
    assert st.checkout is not None
    assert [i.item_id for i in st.checkout.checked_out] == ["30000004"]
    st = s.handle(CardPresented("LV0001"))  # a real patron's card still ends the session
    assert st.stage is Stage.FINISHING
    assert st.next_patron_waiting


def test_another_card_while_the_library_system_is_unreachable_still_ends_the_session(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, _ = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    s.handle(BarcodeScanned("30000001"))
    circ.fail_next["identify_patron"] = Sip2LinkError("link down")
    st = s.handle(CardPresented("LV0001"))
    assert st.stage is Stage.FINISHING
    assert st.next_patron_waiting


def test_the_account_shown_before_its_fresh_lists_holds_this_visits_loans(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    """The account screen comes up at once with the lists read at login while the library
    system is asked again; those lists must not leave out what the patron has just borrowed
    (the count jumped from "1 loan" to "2 loans" as the answer came)."""
    s, seen = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))  # at login: Harry Potter (30000008) on loan
    s.handle(TagsChanged(present=(tag("30000001"),), added=(tag("30000001"),)))
    borrowed = s.state.checkout.checked_out if s.state.checkout else ()
    assert [i.item_id for i in borrowed] == ["30000001"]
    due = borrowed[0].due_date
    assert due
    seen.clear()
    s.handle(Tapped(Action.SHOW_ACCOUNT))
    first = next(st for st in seen if st.view is View.ACCOUNT)
    assert first.account is not None
    shown = {loan.item_id: loan for loan in first.account.loans}
    assert set(shown) == {"30000008", "30000001"}
    assert (shown["30000001"].title, shown["30000001"].due_date) == ("Zaļā grāmata", due)
    assert circ.calls[-1][0] == "identify_patron"  # and the fresh lists were asked for
    assert s.state.account is not None
    assert {loan.item_id for loan in s.state.account.loans} == {"30000008", "30000001"}


def test_an_item_renewed_on_the_pad_shows_its_new_due_date_before_the_fresh_lists(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s, seen = make(circ, clock, pin_policy="none")
    s.handle(CardPresented("LV0002"))
    before = s.state.account.loans[0] if s.state.account else None
    assert before is not None and before.item_id == "30000008" and before.overdue
    s.handle(TagsChanged(present=(tag("30000008"),), added=(tag("30000008"),)))
    (item,) = s.state.checkout.checked_out if s.state.checkout else ()
    assert item.renewal and item.due_date and item.due_date != before.due_date
    circ.online = False  # the fresh lists do not come: what is shown is the kiosk's own
    seen.clear()
    s.handle(Tapped(Action.SHOW_ACCOUNT))
    first = next(st for st in seen if st.view is View.ACCOUNT)
    assert first.account is not None
    (loan,) = first.account.loans
    assert (loan.item_id, loan.due_date, loan.overdue) == ("30000008", item.due_date, False)
