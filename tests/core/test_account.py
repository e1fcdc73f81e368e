"""Account view: loans with overdue flags, holds ready first, fees, renew one and all."""

from __future__ import annotations

from datetime import datetime

from kiosk.core.account import AccountView, parse_due_date, renewal_supported
from kiosk.core.domain import BlockReason, LinkStatus, Refusal
from kiosk.core.ports import ManualClock
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import FakeCirculation


def view(circ: FakeCirculation, clock: ManualClock, patron_id: str, **kw: object) -> AccountView:
    patron = circ.identify_patron(patron_id).patron
    assert patron is not None
    return AccountView(circ, patron, patron_id, clock=clock, **kw)  # type: ignore[arg-type]


def test_loans_overdue_flagged_from_flag_and_date(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    circ.add_item(
        "30000020", title="Late by date", on_loan_to="LV0001", due_date="20261120    235959"
    )
    st = view(circ, clock, "LV0001").state
    by = {loan.item_id: loan for loan in st.loans}
    assert by["30000009"].due_date == "20261210    235959"
    assert not by["30000009"].overdue
    assert by["30000020"].overdue  # due 20.11, today is 25.11
    assert st.overdue_count == 1


def test_holds_ready_first_and_fees(circ: FakeCirculation, clock: ManualClock) -> None:
    st = view(circ, clock, "LV0007").state
    assert [h.ready for h in st.holds] == [True, False]
    assert st.holds_ready[0].title == "Dvēseļu putenis"
    st = view(circ, clock, "LV0004").state
    assert st.fee_total == "3.50"
    assert [f.amount for f in st.fees] == ["2.50", "1.00"]


def test_renew_one_shows_new_due_date(circ: FakeCirculation, clock: ManualClock) -> None:
    acc = view(circ, clock, "LV0002")
    st = acc.renew("30000008")
    loan = st.loans[0]
    assert loan.renewed is True
    assert loan.due_date == circ.items["30000008"].due_date
    assert not loan.overdue
    assert acc.renewal_lines()[0].ok
    assert acc.renewal_lines()[0].renewal


def test_renew_refused_carries_reason(circ: FakeCirculation, clock: ManualClock) -> None:
    circ.items["30000008"].renewals_left = 0
    acc = view(circ, clock, "LV0002")
    st = acc.renew("30000008")
    assert st.loans[0].renewed is False
    assert st.loans[0].refusal is Refusal.RENEWAL_LIMIT
    assert st.loans[0].message == "No more renewals"
    assert st.loans[0].overdue


def test_renew_all_each_with_result_and_refreshed_dates(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    circ.add_item(
        "30000021",
        title="Wanted",
        on_loan_to="LV0001",
        due_date="20261201    235959",
        hold_for="LV0004",
    )
    acc = view(circ, clock, "LV0001")
    st = acc.renew_all()
    by = {loan.item_id: loan for loan in st.loans}
    assert by["30000009"].renewed is True
    assert by["30000009"].due_date == circ.items["30000009"].due_date
    assert by["30000021"].renewed is False
    assert by["30000021"].refusal is Refusal.RENEWAL_LIMIT
    lines = {line.item_id: line for line in acc.renewal_lines()}
    assert lines["30000009"].ok
    assert lines["30000009"].due_date == circ.items["30000009"].due_date
    assert not lines["30000021"].ok


def test_renew_not_offered_when_unsupported_or_denied(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    acc = view(circ, clock, "LV0002", renew_supported=False)
    assert not acc.state.renew_available
    st = acc.renew("30000008")
    assert st.loans[0].renewed is None
    assert circ.ops("renew") == []
    circ.patrons["LV0002"].blocks = (BlockReason.RENEWAL_DENIED,)
    assert not view(circ, clock, "LV0002").state.renew_available


def test_renewal_supported_reads_link_status() -> None:
    assert renewal_supported(LinkStatus(online=True))
    assert not renewal_supported(LinkStatus(online=True, renewal_ok=False))
    assert not renewal_supported(LinkStatus(online=False))
    assert renewal_supported(LinkStatus(online=True, supported=frozenset({"renew", "checkout"})))
    assert not renewal_supported(LinkStatus(online=True, supported=frozenset({"checkout"})))


def test_renew_exception_is_a_refusal_not_a_crash(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    acc = view(circ, clock, "LV0002")
    circ.fail_next["renew"] = Sip2LinkError("gone")
    st = acc.renew("30000008")
    assert st.loans[0].renewed is False
    assert st.loans[0].refusal is Refusal.LINK_DOWN


def test_parse_due_date_formats() -> None:
    assert parse_due_date("20261210    120000") == datetime(2026, 12, 10, 23, 59, 59)
    assert parse_due_date("2026-12-10") == datetime(2026, 12, 10, 23, 59, 59)
    assert parse_due_date("10.12.2026.") == datetime(2026, 12, 10, 23, 59, 59)
    assert parse_due_date("soon") is None
    assert parse_due_date("20261310") is None


def test_renew_all_failures_mark_every_loan(circ: FakeCirculation, clock: ManualClock) -> None:
    from kiosk.core.domain import Mode, RenewAllResult

    acc = view(circ, clock, "LV0002")
    circ.fail_next["renew_all"] = Sip2LinkError("gone")
    st = acc.renew_all()
    assert [(loan.renewed, loan.refusal) for loan in st.loans] == [(False, Refusal.LINK_DOWN)]

    def refuse(patron_id: str, pin: str | None = None) -> RenewAllResult:
        return RenewAllResult(ok=False, mode=Mode.ONLINE, message="Renewals are closed today")

    circ.renew_all = refuse  # type: ignore[method-assign]
    st = acc.renew_all()
    assert st.loans[0].renewed is False
    assert st.loans[0].message == "Renewals are closed today"
