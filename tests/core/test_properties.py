"""Property tests: random pads, scans and taps never break the workflows' promises."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.checkout import ItemStatus, StackCheckout
from kiosk.core.domain import AlertType, Routing
from kiosk.core.events import Action, BarcodeScanned, CardPresented, PinEntered, TagsChanged, Tapped
from kiosk.core.ports import ManualClock
from kiosk.core.routing import ReturnOutcome, RoutingTable
from kiosk.core.session import PatronSession, SessionSettings, Stage
from tests.core.fakes import FakeCirculation, FakeSecurity, bad_tag, tag

ITEMS = ["30000001", "30000002", "30000006", "30000007", "39999999", "30000011", "30000012"]
TAGS = (
    [tag(i) for i in ITEMS]
    + [tag("30000020", part=p, parts=3) for p in (1, 2, 3)]
    + [bad_tag("E004BAD1")]
)


def world() -> tuple[FakeCirculation, FakeSecurity]:
    clock = ManualClock()
    circ = FakeCirculation(clock)
    circ.add_patron("LV0002")
    circ.add_patron("LV0009")
    for item_id in ITEMS[:2] + ["30000011", "30000012", "30000020"]:
        circ.add_item(item_id, title=item_id)
    circ.add_item("30000006", hold_for="LV0009")
    circ.add_item("30000007", loanable=False)
    circ.items["30000012"].fee = "0.50"
    return circ, FakeSecurity()


step = st.one_of(
    st.tuples(st.just("pad"), st.sets(st.sampled_from(range(len(TAGS))))),
    st.tuples(st.just("scan"), st.sampled_from(ITEMS + ["bad|id", ""])),
    st.tuples(st.just("fee"), st.sampled_from(ITEMS)),
    st.tuples(st.just("fail_unsecure"), st.sampled_from(range(len(TAGS)))),
    st.tuples(st.just("fail_checkin"), st.booleans()),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, max_size=25))
def test_stack_checkout_invariants(steps: list[tuple[str, object]]) -> None:
    circ, security = world()
    co = StackCheckout(circ, security, "LV0002")
    present: tuple = ()
    for kind, arg in steps:
        if kind == "pad":
            new = tuple(TAGS[i] for i in sorted(arg))  # type: ignore[union-attr]
            old = {t.uid for t in present}
            co.handle_tags(
                TagsChanged(
                    present=new,
                    added=tuple(t for t in new if t.uid not in old),
                    removed=tuple(t for t in present if t.uid not in {n.uid for n in new}),
                )
            )
            present = new
        elif kind == "scan":
            co.handle_barcode(arg)  # type: ignore[arg-type]
        elif kind == "fee":
            co.confirm_fee(arg)  # type: ignore[arg-type]
        elif kind == "fail_unsecure":
            security.fail_unsecure.add(TAGS[arg].uid)  # type: ignore[index]
        elif kind == "fail_checkin":
            circ.online = not arg  # a failed reversal: the library system is gone
        state = co.state
        assert not state.pending, "every item gets an answer within the call"
        for item in state.items:
            if item.status is ItemStatus.WAITING:
                assert item.parts_present < item.parts_in_set
            if item.status is ItemStatus.CHECKED_OUT and item.unsecured:
                assert circ.items[item.item_id].on_loan_to == "LV0002"
        # Never checked out twice: at most one plain and one fee-acknowledged request per item.
        for item_id in ITEMS + ["30000020"]:
            calls = [c for c in circ.ops("checkout") if c[1] == item_id]
            assert sum(1 for c in calls if not c[3]) <= 1
            assert sum(1 for c in calls if c[3]) <= 1
        # A tag is off only when its item is on loan to this patron (security follows the ACS).
        for t in TAGS:
            if security.state.get(t.uid) is False:
                loan = circ.items.get(t.item_id)
                item = state.item(t.item_id)
                assert (loan is not None and loan.on_loan_to == "LV0002") or (
                    item is not None and item.status is ItemStatus.TO_DESK
                ), t.item_id


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.builds(
                CardPresented, st.sampled_from(["LV0001", "LV0002", "LV0003", "LV9999", "X|Y", ""])
            ),
            st.builds(PinEntered, st.sampled_from(["7Q4Z", "Z9Z9", "", "7Q|Z"])),
            st.builds(
                Tapped, st.sampled_from(list(Action)), st.sampled_from(["", "en", "30000001", "xx"])
            ),
            st.builds(BarcodeScanned, st.sampled_from(["30000001", "LV0002", "bad"])),
            st.builds(TagsChanged, st.just((tag("30000001"),)), st.just((tag("30000001"),))),
            st.floats(min_value=0, max_value=200),
        ),
        max_size=30,
    ),
    st.sampled_from(["none", "optional", "mandatory"]),
)
def test_session_never_leaks_a_pin_and_welcome_holds_no_patron(
    events: list[object], policy: str
) -> None:
    clock = ManualClock()
    circ = FakeCirculation(clock)
    # Letters in the PINs: digits could occur by chance in a float such as seconds_left.
    circ.add_patron("LV0001", name="Anna", pin="7Q4Z")
    circ.add_patron("LV0002", name="John")
    circ.add_item("30000001")
    s = PatronSession(circ, clock, SessionSettings(card_pattern=r"^LV[0-9]{4}$", pin_policy=policy))
    for ev in events:
        if isinstance(ev, float):
            clock.advance(ev)
            st_ = s.tick()
        else:
            st_ = s.handle(ev)  # type: ignore[arg-type]
        text = repr(st_)
        assert "7Q4Z" not in text
        assert "Z9Z9" not in text
        if st_.stage in (Stage.WELCOME, Stage.GOODBYE):
            assert st_.patron is None
            assert st_.checkout is None
            assert st_.account is None
            assert "Anna" not in text
        if st_.idle_warning:
            assert st_.seconds_left is not None
            assert st_.seconds_left <= s.settings.idle_warning_s


@given(
    st.sampled_from(list(ReturnOutcome)),
    st.builds(
        Routing,
        sort_bin=st.sampled_from(["", "1", "7", "A"]),
        alert=st.booleans(),
        alert_type=st.sampled_from(list(AlertType)),
        hold_patron_id=st.sampled_from(["", "LV0004"]),
    ),
)
def test_routing_always_decides_and_exceptions_go_to_staff(
    outcome: ReturnOutcome, routing: Routing
) -> None:
    d = RoutingTable(default_bin=1, exception_bin=0).decide(outcome, routing)
    assert isinstance(d.bin, int)
    assert d.instruction
    if outcome.is_exception:
        assert d.bin == 0
        assert d.exception
        assert not d.hold_slip
