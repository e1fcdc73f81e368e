"""Returns without login: check-in, re-secure, routing, hold slips, offline policy and each exception."""

from __future__ import annotations

import pytest

from kiosk.core.domain import AlertType, ItemTag, Routing
from kiosk.core.events import TagsChanged
from kiosk.core.ports import ManualClock, SecurityResult
from kiosk.core.receipt import ReceiptKind
from kiosk.core.returns import ReturnItem, ReturnSettings, ReturnState, ReturnStation
from kiosk.core.routing import Instruction, ReturnOutcome, RoutingTable
from kiosk.devices.errors import DeviceError
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import FakeCirculation, FakePrinter, FakeSecurity, Recorder, bad_tag, tag


def pad(*tags: ItemTag) -> TagsChanged:
    return TagsChanged(present=tags, added=tags)


@pytest.fixture
def station(
    circ: FakeCirculation,
    security: FakeSecurity,
    clock: ManualClock,
    printer: FakePrinter,
    recorder: Recorder,
) -> ReturnStation:
    for item_id in ("30000001", "30000002", "30000003", "30000005", "30000010"):
        circ.items[item_id].on_loan_to = "LV0001"
    settings = ReturnSettings(library_name="Demo bibliotēka", owners=("LV-DEMO",))
    return ReturnStation(
        circ,
        security,
        clock,
        RoutingTable(default_bin=1, exception_bin=0),
        settings,
        recorder=recorder,
        staff_printer=printer,
    )


def test_plain_return_checked_in_and_secured(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity, recorder: Recorder
) -> None:
    t = tag("30000001", owner="LV-DEMO")
    st = station.handle_tags(pad(t))
    item = st.items[0]
    assert item.outcome is ReturnOutcome.CHECKED_IN
    assert item.secured
    assert security.state[t.uid] is True
    assert (item.bin, item.instruction) == (1, Instruction.DONE)
    assert item.title == "Zaļā grāmata"
    assert circ.items["30000001"].on_loan_to == ""
    assert recorder.events == []


def test_the_title_is_shown_while_the_tag_is_secured_and_the_return_only_after(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    """The check-in answer names the title before the tag is re-secured (a write and its
    read-back): the return list shows it at once, the item still pending, then returned."""
    circ.items["30000001"].on_loan_to = "LV0001"
    seen: list[ReturnState] = []
    at_write: list[ReturnItem | None] = []

    class WatchedSecurity(FakeSecurity):
        def secure(self, uid: str) -> SecurityResult:
            at_write.append(seen[-1].item("30000001"))  # what the patron sees as it is written
            return super().secure(uid)

    station = ReturnStation(
        circ,
        WatchedSecurity(),
        clock,
        RoutingTable(default_bin=1, exception_bin=0),
        ReturnSettings(library_name="Demo bibliotēka", owners=("LV-DEMO",)),
        listener=seen.append,
    )
    st = station.handle_tags(pad(tag("30000001", owner="LV-DEMO")))
    assert len(at_write) == 1
    shown = at_write[0]
    assert shown is not None
    assert (shown.title, shown.pending, shown.outcome) == ("Zaļā grāmata", True, None)
    returned = st.items[0]
    assert (returned.outcome, returned.title, returned.secured) == (
        ReturnOutcome.CHECKED_IN,
        "Zaļā grāmata",
        True,
    )


def test_acs_sort_bin_is_used(station: ReturnStation) -> None:
    assert station.handle_tags(pad(tag("30000010"))).items[0].bin == 2


def test_hold_for_another_patron_prints_a_masked_slip(
    station: ReturnStation, circ: FakeCirculation, printer: FakePrinter
) -> None:
    circ.items["30000002"].routing = Routing(
        alert=True,
        alert_type=AlertType.HOLD_HERE,
        hold_patron_id="LV0004",
        hold_patron_name="Иван Петров",
    )
    item = station.handle_tags(pad(tag("30000002"))).items[0]
    assert item.outcome is ReturnOutcome.CHECKED_IN
    assert item.instruction == Instruction.HOLD_SHELF
    assert item.hold_slip
    assert item.hold_slip_printed
    slip = printer.printed[0]
    assert slip.kind is ReceiptKind.HOLD_SLIP
    assert slip.hold_slip.patron_masked == "**0004"
    assert slip.hold_slip.patron_name == ""
    assert "LV0004" not in repr(slip)
    assert slip.lines[0].item_id == "30000002"


@pytest.mark.parametrize(
    ("alert", "instruction"),
    [
        (AlertType.HOLD_OTHER_BRANCH, Instruction.OTHER_BRANCH),
        (AlertType.TRANSIT, Instruction.TRANSIT),
        (AlertType.OTHER, Instruction.SPECIAL),
    ],
)
def test_alert_types_map_to_instructions(
    station: ReturnStation, circ: FakeCirculation, alert: AlertType, instruction: Instruction
) -> None:
    circ.items["30000003"].routing = Routing(alert=True, alert_type=alert, destination="Filiāle")
    item = station.handle_tags(pad(tag("30000003"))).items[0]
    assert item.instruction == instruction
    assert item.bin == 0


def test_hold_slip_printer_failure_is_recorded(
    station: ReturnStation, circ: FakeCirculation, printer: FakePrinter, recorder: Recorder
) -> None:
    printer.error = DeviceError("paper out")
    circ.items["30000002"].routing = Routing(
        alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004"
    )
    item = station.handle_tags(pad(tag("30000002"))).items[0]
    assert item.outcome is ReturnOutcome.CHECKED_IN
    assert item.hold_slip_printed is False
    assert recorder.kinds() == ["printer_failed"]


def test_offline_return_is_queued_and_secured(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity
) -> None:
    circ.online = False
    circ.offline_policy = "checkin-only"
    t = tag("30000001")
    item = station.handle_tags(pad(t)).items[0]
    assert item.outcome is ReturnOutcome.QUEUED_OFFLINE
    assert item.offline
    assert item.secured
    assert circ.queue == [("checkin", "", "30000001")]
    assert security.state[t.uid] is True


def test_offline_disabled_sends_to_desk_and_leaves_tag(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity, recorder: Recorder
) -> None:
    circ.online = False
    circ.offline_policy = "disabled"
    item = station.handle_tags(pad(tag("30000001"))).items[0]
    assert item.outcome is ReturnOutcome.LINK_DOWN
    assert item.instruction == Instruction.TAKE_TO_DESK
    assert security.calls == []
    assert recorder.kinds() == ["return_link_down"]


def test_unreadable_tag_recorded(
    station: ReturnStation, circ: FakeCirculation, recorder: Recorder
) -> None:
    st = station.handle_tags(pad(bad_tag("E004BAD0", "bad CRC")))
    item = st.items[0]
    assert item.outcome is ReturnOutcome.UNREADABLE_TAG
    assert item.bin == 0
    assert item.message == "bad CRC"
    assert circ.calls == []
    assert recorder.events == [("return_unreadable_tag", "uid E004BAD0: bad CRC")]


def test_unknown_item_recorded(station: ReturnStation, recorder: Recorder) -> None:
    item = station.handle_tags(pad(tag("39999999"))).items[0]
    assert item.outcome is ReturnOutcome.UNKNOWN_ITEM
    assert item.instruction == Instruction.TAKE_TO_DESK
    assert recorder.kinds() == ["return_unknown_item"]


def test_other_library_not_checked_in(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity, recorder: Recorder
) -> None:
    item = station.handle_tags(pad(tag("30000001", owner="LV-OTHER"))).items[0]
    assert item.outcome is ReturnOutcome.OTHER_LIBRARY
    assert item.bin == 0
    assert circ.ops("checkin") == []
    assert security.calls == []
    assert recorder.kinds() == ["return_other_library"]


def test_not_on_loan_is_secured_and_recorded(
    station: ReturnStation, security: FakeSecurity, recorder: Recorder
) -> None:
    t = tag("30000004")
    item = station.handle_tags(pad(t)).items[0]
    assert item.outcome is ReturnOutcome.NOT_ON_LOAN
    assert item.secured
    assert security.state[t.uid] is True
    assert recorder.kinds() == ["return_not_on_loan"]


def test_hold_trapped_on_an_item_not_on_loan_is_routed_with_a_slip(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity, printer: FakePrinter
) -> None:
    # Koha answers ok=0 for an item that was not on loan even as it traps a hold; the service
    # passes that on as not done, not refused, with the routing.
    from kiosk.core.domain import CirculationResult, Mode, Operation, Refusal

    hold = Routing(alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004")
    circ.script[("checkin", "30000004")] = lambda item_id: CirculationResult(
        Operation.CHECKIN, ok=False, mode=Mode.ONLINE, item_id=item_id, routing=hold
    )
    t = tag("30000004")
    item = station.handle_tags(pad(t)).items[0]
    assert item.outcome is ReturnOutcome.CHECKED_IN
    assert item.instruction == Instruction.HOLD_SHELF
    assert item.hold_slip
    assert item.hold_slip_printed
    assert printer.printed
    assert item.secured
    assert security.state[t.uid] is True
    # The same routing on a "not on loan" refusal still goes to the desk.
    circ.script[("checkin", "30000001")] = lambda item_id: CirculationResult(
        Operation.CHECKIN,
        ok=False,
        mode=Mode.ONLINE,
        item_id=item_id,
        routing=hold,
        refusal=Refusal.NOT_ON_LOAN,
    )
    other = station.handle_tags(pad(t, tag("30000001"))).item("30000001")
    assert other is not None
    assert other.outcome is ReturnOutcome.NOT_ON_LOAN


def test_security_failure_recorded(
    station: ReturnStation, security: FakeSecurity, recorder: Recorder, circ: FakeCirculation
) -> None:
    t = tag("30000001")
    security.fail_secure.add(t.uid)
    item = station.handle_tags(pad(t)).items[0]
    assert item.outcome is ReturnOutcome.SECURITY_FAILED
    assert not item.secured
    assert item.instruction == Instruction.TAKE_TO_DESK
    assert circ.items["30000001"].on_loan_to == ""
    assert recorder.kinds() == ["return_security_failed"]


def test_incomplete_set_asks_for_all_parts_then_returns(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity
) -> None:
    p1, p2, p3 = (tag("30000005", part=n, parts=3) for n in (1, 2, 3))
    item = station.handle_tags(pad(p1, p2)).items[0]
    assert item.outcome is ReturnOutcome.SET_INCOMPLETE
    assert item.instruction == Instruction.PLACE_ALL_PARTS
    assert (item.parts_present, item.parts_in_set) == (2, 3)
    assert circ.ops("checkin") == []
    item = station.handle_tags(TagsChanged(present=(p1, p2, p3), added=(p3,))).items[0]
    assert item.outcome is ReturnOutcome.CHECKED_IN
    assert all(security.state[t.uid] for t in (p1, p2, p3))


def test_set_with_a_part_twice_and_one_missing_is_incomplete(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity
) -> None:
    p1, p2 = tag("30000005", part=1, parts=3), tag("30000005", part=2, parts=3)
    twin = tag("30000005", uid="E0040150AA55AA55", part=1, parts=3)  # a second "part 1 of 3"
    item = station.handle_tags(pad(p1, twin, p2)).items[0]
    assert item.outcome is ReturnOutcome.SET_INCOMPLETE
    assert item.parts_present == 2
    assert circ.ops("checkin") == []
    assert not security.state


def test_item_left_on_pad_not_returned_twice(station: ReturnStation, circ: FakeCirculation) -> None:
    t = tag("30000001")
    station.handle_tags(pad(t))
    station.handle_tags(TagsChanged(present=(t, tag("30000002")), added=(tag("30000002"),)))
    assert circ.ops("checkin") == [("30000001",), ("30000002",)]


def test_barcode_return_and_receipt(
    station: ReturnStation, security: FakeSecurity, clock: ManualClock
) -> None:
    station.handle_barcode("30000003")
    station.handle_barcode("bad|id")
    st = station.handle_tags(pad(tag("39999999")))
    assert st.item("30000003") is not None
    assert security.calls == []
    r = station.receipt()
    assert r is not None
    assert r.kind is ReceiptKind.RETURN
    assert r.when == clock.now()
    assert [line.item_id for line in r.lines] == ["30000003"]
    assert [line.item_id for line in r.refused] == ["39999999"]
    assert r.card_masked == ""


def test_clear_keeps_items_still_on_the_pad(station: ReturnStation) -> None:
    t = tag("30000001")
    station.handle_tags(pad(t))
    station.handle_barcode("30000002")
    assert [i.key for i in station.clear().items] == ["30000001"]


def test_circulation_exception_is_link_down(station: ReturnStation, circ: FakeCirculation) -> None:
    circ.fail_next["checkin"] = Sip2LinkError("no answer")
    assert station.handle_tags(pad(tag("30000001"))).items[0].outcome is ReturnOutcome.LINK_DOWN


def test_in_doubt_checkin_counts_as_queued_and_is_secured(
    station: ReturnStation, circ: FakeCirculation, security: FakeSecurity
) -> None:
    from kiosk.core.domain import CirculationResult, Mode, Operation, Refusal

    circ.script[("checkin", "30000001")] = lambda item_id: CirculationResult(
        Operation.CHECKIN,
        ok=False,
        mode=Mode.ONLINE,
        item_id=item_id,
        refusal=Refusal.LINK_DOWN,
        in_doubt=True,
    )
    t = tag("30000001")
    item = station.handle_tags(pad(t)).items[0]
    assert item.outcome is ReturnOutcome.QUEUED_OFFLINE
    assert item.secured
    assert security.state[t.uid] is True


def test_handle_dispatches_pad_and_scanner_events(station: ReturnStation) -> None:
    from kiosk.core.events import BarcodeScanned, Tick

    station.handle(BarcodeScanned("30000002"))
    station.handle(pad(tag("30000001")))
    st = station.handle(Tick())  # type: ignore[arg-type]
    assert [i.key for i in st.items] == ["30000002", "30000001"]
    assert all(i.outcome is ReturnOutcome.CHECKED_IN for i in st.items)


def test_every_part_is_secured_even_after_one_fails(security: FakeSecurity) -> None:
    from kiosk.core.returns import secure_all

    parts = (
        tag("30000005", part=1, parts=3),
        tag("30000005", part=2, parts=3),
        tag("30000005", part=3, parts=3),
    )
    security.fail_secure.add(parts[0].uid)
    ok, failure = secure_all(security, parts)
    assert not ok
    assert failure
    assert [uid for call, uid in security.calls if call == "secure"] == [p.uid for p in parts]
    assert security.state == {parts[1].uid: True, parts[2].uid: True}
