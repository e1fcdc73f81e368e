"""A renewal that leaves the due date where it was is told apart from one that moves it, and
only where both dates are known: the one before (the patron's loan list) and the one after (the
renewal's answer, or the lists fetched after a renew-all)."""

from __future__ import annotations

from kiosk.core.account import AccountView
from kiosk.core.ports import ManualClock
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import FakeCirculation


def _view(circ: FakeCirculation, patron_id: str, clock: ManualClock) -> AccountView:
    patron = circ.identify_patron(patron_id).patron
    assert patron is not None
    return AccountView(circ, patron, patron_id, clock=clock)


def test_a_renewal_that_keeps_the_due_date(circ: FakeCirculation, clock: ManualClock) -> None:
    circ.add_item("30000021", title="Same day", on_loan_to="LV0002", due_date=circ._due(28))
    circ.add_item("30000022", title="Moves", on_loan_to="LV0002", due_date=circ._due(3))
    circ.add_item("30000023", title="Unknown before", on_loan_to="LV0002", due_date="")
    acc = _view(circ, "LV0002", clock)
    for item_id in ("30000021", "30000022", "30000023"):
        acc.renew(item_id)
    by = {loan.item_id: loan for loan in acc.state.loans}
    assert by["30000021"].renewed
    assert by["30000021"].due_unchanged
    assert by["30000022"].renewed
    assert not by["30000022"].due_unchanged
    assert by["30000023"].renewed
    assert not by["30000023"].due_unchanged  # nothing known to compare with: nothing said


def test_renew_all_compares_with_the_fresh_lists(circ: FakeCirculation, clock: ManualClock) -> None:
    circ.add_item("30000021", title="Same day", on_loan_to="LV0002", due_date=circ._due(28))
    circ.add_item("30000022", title="Moves", on_loan_to="LV0002", due_date=circ._due(3))
    acc = _view(circ, "LV0002", clock)
    acc.renew_all()
    by = {loan.item_id: loan for loan in acc.state.loans}
    assert by["30000021"].due_unchanged
    assert not by["30000022"].due_unchanged


def test_renew_all_without_fresh_lists_says_nothing(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    circ.add_item("30000021", title="Moves", on_loan_to="LV0002", due_date=circ._due(3))
    acc = _view(circ, "LV0002", clock)
    circ.fail_next["identify_patron"] = Sip2LinkError("link lost after the renew-all")
    acc.renew_all()
    (line,) = [loan for loan in acc.state.loans if loan.item_id == "30000021"]
    assert line.renewed
    # The old date is all the kiosk has: it must not claim the renewal left it unchanged.
    assert not line.due_unchanged


def test_a_loan_renewed_on_the_pad(circ: FakeCirculation, clock: ManualClock) -> None:
    """An item the patron already has, placed on the pad, is renewed by the checkout: compared
    with its due date in the patron's loan list from the login."""
    from kiosk.core.events import BarcodeScanned, CardPresented
    from kiosk.core.session import PatronSession, SessionSettings

    circ.add_item("30000021", title="Same day", on_loan_to="LV0002", due_date=circ._due(21))
    circ.add_item("30000022", title="Moves", on_loan_to="LV0002", due_date=circ._due(3))
    circ.add_item("30000024", title="New loan")
    s = PatronSession(circ, clock, SessionSettings(card_pattern=r"^LV[0-9]{4}$", pin_policy="none"))
    s.handle(CardPresented("LV0002"))
    for item_id in ("30000021", "30000022", "30000024"):
        s.handle(BarcodeScanned(item_id))
    checkout = s.state.checkout
    assert checkout is not None
    by = {i.item_id: i for i in checkout.items}
    assert by["30000021"].renewal
    assert by["30000021"].due_unchanged
    assert by["30000022"].renewal
    assert not by["30000022"].due_unchanged
    assert not by["30000024"].renewal
    assert not by["30000024"].due_unchanged
