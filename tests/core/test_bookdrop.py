"""Book drop: each item ends in exactly one final state; outages are recorded at start and end."""

from __future__ import annotations

import pytest

from kiosk.core.bookdrop import BookDrop, Component, FinalState
from kiosk.core.domain import AlertType, ItemTag, Routing
from kiosk.core.events import TagsChanged
from kiosk.core.ports import ManualClock
from kiosk.core.returns import ReturnSettings
from kiosk.core.routing import ReturnOutcome, RoutingTable
from kiosk.devices.errors import DeviceError
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import (
    FakeCirculation,
    FakePrinter,
    FakeSecurity,
    FakeSorter,
    Recorder,
    bad_tag,
    tag,
)


@pytest.fixture
def drop(
    circ: FakeCirculation,
    security: FakeSecurity,
    sorter: FakeSorter,
    clock: ManualClock,
    printer: FakePrinter,
    recorder: Recorder,
) -> BookDrop:
    for item_id in ("30000001", "30000002", "30000003", "30000005", "30000010"):
        circ.items[item_id].on_loan_to = "LV0001"
    circ.offline_policy = "checkin-only"
    return BookDrop(
        circ,
        security,
        sorter,
        clock,
        RoutingTable(default_bin=1, exception_bin=0),
        ReturnSettings(owners=("LV-DEMO",)),
        recorder=recorder,
        staff_printer=printer,
        show_result_s=5.0,
    )


def drop_in(d: BookDrop, *tags: ItemTag) -> None:
    d.handle_tags(TagsChanged(present=tags, added=tags))
    d.handle_tags(TagsChanged(present=(), removed=tags))  # it falls through


def test_checked_in_secured_and_sorted(
    drop: BookDrop, sorter: FakeSorter, security: FakeSecurity
) -> None:
    t = tag("30000010")
    drop_in(drop, t)
    last = drop.history[-1]
    assert last.final is FinalState.CHECKED_IN_SECURED
    assert last.bin == 2
    assert last.title == "Война и мир"
    assert sorter.routed == [("30000010", 2)]
    assert security.state[t.uid] is True
    assert drop.state.count(FinalState.CHECKED_IN_SECURED) == 1


def test_big_result_clears_after_a_while(drop: BookDrop, clock: ManualClock) -> None:
    drop_in(drop, tag("30000001"))
    assert drop.state.last is not None
    assert drop.state.last.item_id == "30000001"
    clock.advance(4)
    assert drop.tick().last is not None
    clock.advance(1)
    assert drop.tick().last is None


def test_offline_queued_secured_and_outage_recorded(
    drop: BookDrop, circ: FakeCirculation, recorder: Recorder, clock: ManualClock
) -> None:
    circ.online = False
    drop_in(drop, tag("30000001"))
    drop_in(drop, tag("30000002"))
    assert [i.final for i in drop.history] == [FinalState.QUEUED_OFFLINE_SECURED] * 2
    assert Component.LIBRARY_SYSTEM in drop.state.outages
    clock.advance(30)
    circ.online = True
    drop_in(drop, tag("30000003"))
    assert drop.history[-1].final is FinalState.CHECKED_IN_SECURED
    assert [k for k in recorder.kinds() if k.startswith("outage")] == ["outage_start", "outage_end"]
    assert recorder.events[-1] == ("outage_end", "library_system: after 30 s")
    assert not drop.state.outages


def test_sorter_down_goes_to_exception_bin_and_recovers(
    drop: BookDrop, sorter: FakeSorter, recorder: Recorder
) -> None:
    sorter.down = True
    drop_in(drop, tag("30000001"))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.outcome is ReturnOutcome.SORTER_FAILED
    assert last.bin == 0
    assert not last.sorted
    assert Component.SORTER in drop.state.outages
    drop_in(drop, bad_tag("E004BEEF"))  # an exception while the sorter is down keeps its own reason
    assert drop.history[-1].outcome is ReturnOutcome.UNREADABLE_TAG
    assert not drop.history[-1].sorted
    assert recorder.events[0][0] == "outage_start"
    assert recorder.events[0][1].startswith("sorter")
    sorter.down = False
    drop_in(drop, tag("30000002"))
    assert drop.history[-1].final is FinalState.CHECKED_IN_SECURED
    assert "outage_end" in recorder.kinds()
    assert not drop.state.outages


def test_sorter_refusal_sends_to_exception_bin(drop: BookDrop, sorter: FakeSorter) -> None:
    sorter.bins = 2  # bin 2 does not exist
    drop_in(drop, tag("30000010"))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.outcome is ReturnOutcome.SORTER_FAILED
    assert sorter.routed == [("30000010", 0)]


def test_sorter_refusal_then_exception_bin_confirmed_is_sorted(
    drop: BookDrop, sorter: FakeSorter
) -> None:
    sorter.bins = 2  # bin 2 refused, bin 0 confirmed
    drop_in(drop, tag("30000010"))
    assert drop.history[-1].bin == 0
    assert drop.history[-1].sorted
    sorter.refuse = True  # refuses the exception bin as well: it falls in unsorted
    drop_in(drop, tag("30000001"))
    assert drop.history[-1].bin == 0
    assert not drop.history[-1].sorted


def test_incomplete_set_to_exception_bin_with_alert(
    drop: BookDrop, circ: FakeCirculation, recorder: Recorder
) -> None:
    drop_in(drop, tag("30000005", part=1, parts=3), tag("30000005", part=2, parts=3))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.outcome is ReturnOutcome.SET_INCOMPLETE
    assert circ.ops("checkin") == []
    assert recorder.kinds() == ["bookdrop_set_incomplete"]


@pytest.mark.parametrize(
    ("tags", "outcome"),
    [
        ((bad_tag("E004DEAD"),), ReturnOutcome.UNREADABLE_TAG),
        ((tag("39999999"),), ReturnOutcome.UNKNOWN_ITEM),
        ((tag("30000001", owner="LV-OTHER"),), ReturnOutcome.OTHER_LIBRARY),
        ((tag("30000004"),), ReturnOutcome.NOT_ON_LOAN),
    ],
)
def test_exceptions_each_with_reason(
    drop: BookDrop,
    recorder: Recorder,
    sorter: FakeSorter,
    tags: tuple[ItemTag, ...],
    outcome: ReturnOutcome,
) -> None:
    drop_in(drop, *tags)
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.outcome is outcome
    assert last.bin == 0
    assert sorter.routed[-1][1] == 0
    assert recorder.kinds() == [f"bookdrop_{outcome.value}"]


def test_security_write_failure_to_exception_bin(drop: BookDrop, security: FakeSecurity) -> None:
    t = tag("30000001")
    security.fail_secure.add(t.uid)
    drop_in(drop, t)
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.outcome is ReturnOutcome.SECURITY_FAILED


def test_hold_slip_printer_outage(
    drop: BookDrop, circ: FakeCirculation, printer: FakePrinter, recorder: Recorder
) -> None:
    circ.items["30000002"].routing = Routing(
        alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004"
    )
    circ.items["30000003"].routing = Routing(
        alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004"
    )
    printer.error = DeviceError("paper out")
    drop_in(drop, tag("30000002"))
    assert drop.history[-1].final is FinalState.CHECKED_IN_SECURED
    assert drop.history[-1].hold_slip_printed is False
    assert Component.PRINTER in drop.state.outages
    assert drop.slips_waiting == 1
    drop.tick()  # still out of paper: the slip waits
    assert drop.slips_waiting == 1
    assert [k for k in recorder.kinds() if k.startswith("outage")] == ["outage_start"]
    printer.error = None
    drop_in(drop, tag("30000003"))
    assert drop.history[-1].hold_slip_printed is True
    assert [r.lines[0].item_id for r in printer.printed] == [
        "30000002",
        "30000003",
    ]  # the waiting one first
    assert [k for k in recorder.kinds() if k.startswith("outage")] == ["outage_start", "outage_end"]


def test_waiting_slips_printed_on_tick(
    drop: BookDrop, circ: FakeCirculation, printer: FakePrinter
) -> None:
    circ.items["30000002"].routing = Routing(
        alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004"
    )
    printer.error = DeviceError("paper out")
    drop_in(drop, tag("30000002"))
    printer.error = None
    drop.tick()
    assert drop.slips_waiting == 0
    assert len(printer.printed) == 1
    assert Component.PRINTER not in drop.state.outages


def test_reader_outage_reported(drop: BookDrop, recorder: Recorder) -> None:
    drop.reader_failed("no answer on /dev/ttyUSB0")
    drop.reader_failed("still nothing")
    assert Component.READER in drop.state.outages
    drop.reader_ok()
    assert recorder.events == [
        ("outage_start", "reader: no answer on /dev/ttyUSB0"),
        ("outage_end", "reader: after 0 s"),
    ]


def test_items_dropped_together_processed_one_by_one(drop: BookDrop, sorter: FakeSorter) -> None:
    drop_in(drop, tag("30000001"), tag("30000002"))
    assert [i.item_id for i in drop.history] == ["30000001", "30000002"]
    assert [i.sequence for i in drop.history] == [1, 2]
    assert len(sorter.routed) == 2


def test_tag_lingering_on_reader_is_not_processed_twice_but_a_later_drop_is(
    drop: BookDrop, circ: FakeCirculation
) -> None:
    t = tag("30000001")
    drop.handle_tags(TagsChanged(present=(t,), added=(t,)))
    drop.handle_tags(TagsChanged(present=(t,)))
    assert len(drop.history) == 1
    drop.handle_tags(TagsChanged(present=()))
    circ.items["30000001"].on_loan_to = "LV0002"
    drop.handle_tags(TagsChanged(present=(t,), added=(t,)))
    assert len(drop.history) == 2
    assert drop.history[-1].final is FinalState.CHECKED_IN_SECURED


def _link_gone(item_id: str) -> None:
    raise Sip2LinkError("no answer")


def test_library_system_exception_ends_in_exception_bin(
    drop: BookDrop, circ: FakeCirculation
) -> None:
    circ.script[("checkin", "30000001")] = _link_gone
    drop_in(drop, tag("30000001"))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.bin == 0


def test_a_bug_in_the_circulation_service_ends_in_exception_bin_and_fails_strict_mode(
    drop: BookDrop, circ: FakeCirculation, unexpected_faults
) -> None:
    circ.script[("checkin", "30000001")] = lambda item_id: 1 / 0
    drop_in(drop, tag("30000001"))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert last.bin == 0
    assert "library system" not in last.message  # a bug is not blamed on the library system
    assert [type(e) for e in unexpected_faults()] == [ZeroDivisionError]


def test_listener_sees_busy_then_result(drop: BookDrop) -> None:
    seen = []
    drop.set_listener(seen.append)
    drop.handle_tags(TagsChanged(present=(tag("30000001"),), added=(tag("30000001"),)))
    assert seen[0].busy
    assert not seen[-1].busy
    assert seen[-1].last is not None


def test_internal_error_still_ends_in_exception_bin(
    drop: BookDrop, monkeypatch: pytest.MonkeyPatch, sorter: FakeSorter, unexpected_faults
) -> None:
    import kiosk.core.bookdrop as module

    def broken(*args: object, **kw: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(module, "check_in", broken)
    drop_in(drop, tag("30000001"))
    last = drop.history[-1]
    assert last.final is FinalState.EXCEPTION_BIN
    assert "bug" in last.message
    assert sorter.routed == [("30000001", 0)]
    assert [str(e) for e in unexpected_faults()] == ["bug"]


def test_handle_dispatches_events(drop: BookDrop, clock: ManualClock) -> None:
    from kiosk.core.events import BarcodeScanned, Tick

    drop.handle(BarcodeScanned("30000001"))
    assert drop.state.last is not None
    assert drop.state.last.final is FinalState.CHECKED_IN_SECURED
    clock.advance(5)
    assert drop.handle(Tick()).last is None
