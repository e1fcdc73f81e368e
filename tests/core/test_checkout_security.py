"""Checkout undo against the real tag security service on the simulated pad: every tag on which a
write was attempted is re-secured and verified; a tag whose state stays unknown goes to the desk
and to staff."""

from __future__ import annotations

import pytest

from kiosk.config import SecuritySection
from kiosk.core.checkout import ItemStatus, StackCheckout
from kiosk.core.domain import ItemTag, Refusal
from kiosk.core.events import TagsChanged
from kiosk.devices.readers.sim import SimReader, SimulatedPad, VirtualTag, demo_tag
from kiosk.devices.security import TagSecurityService

from .fakes import FakeCirculation, Recorder


def item_tag(t: VirtualTag, part: int = 1, parts: int = 1) -> ItemTag:
    return ItemTag(uid=t.uid, item_id=t.item_id, part_number=part, parts_in_set=parts)


@pytest.fixture
def pad() -> SimulatedPad:
    return SimulatedPad()


def checkout(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder, method: str = "afi"
) -> StackCheckout:
    svc = TagSecurityService(
        SimReader(pad), SecuritySection(method=method, write_retries=2), retry_delay_s=0
    )
    return StackCheckout(circ, svc, "LV0002", recorder=recorder)


def place(co: StackCheckout, *tags: ItemTag) -> None:
    co.handle_tags(TagsChanged(present=tags, added=tags))


def test_read_back_lost_write_is_re_secured_by_the_undo(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    t = pad.place(demo_tag("30000001"))
    pad.fail_reads(t.uid, 3)  # every read-back of the unsecure write is lost; the write lands
    co = checkout(circ, pad, recorder)
    place(co, item_tag(t))
    item = co.state.item("30000001")
    assert item is not None and item.status is ItemStatus.REFUSED and item.undone
    assert item.refusal is Refusal.SECURITY_WRITE_FAILED
    assert circ.items["30000001"].on_loan_to == ""
    assert t.afi == 0x07  # not borrowed, so secured again - verified
    assert recorder.events == []


def test_lifted_tag_with_unknown_state_goes_to_the_desk_and_to_staff(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    t = pad.place(demo_tag("30000001"))
    pad.lift_after_write(t.uid)
    co = checkout(circ, pad, recorder)
    place(co, item_tag(t))
    item = co.state.item("30000001")
    assert item is not None and item.status is ItemStatus.TO_DESK and item.undone
    assert circ.items["30000001"].on_loan_to == ""
    assert recorder.kinds() == ["security_to_desk"]
    assert "30000001" in recorder.events[0][1] and t.uid in recorder.events[0][1]


def test_set_with_the_second_part_unconfirmed_re_secures_both(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    p1 = pad.place(demo_tag("30000005", 1, 2))
    p2 = pad.place(demo_tag("30000005", 2, 2))
    pad.fail_reads(p2.uid, 3)
    co = checkout(circ, pad, recorder)
    place(co, item_tag(p1, 1, 2), item_tag(p2, 2, 2))
    item = co.state.item("30000005")
    assert item is not None and item.status is ItemStatus.REFUSED and item.undone
    assert (p1.afi, p2.afi) == (0x07, 0x07)


def test_reversal_refused_sends_the_item_to_the_desk_and_to_staff(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    t = pad.place(demo_tag("30000001"))
    pad.fail_writes(t.uid, 10)
    circ.fail_next["checkin"] = ConnectionError("link down")
    co = checkout(circ, pad, recorder)
    place(co, item_tag(t))
    item = co.state.item("30000001")
    assert item is not None and item.status is ItemStatus.TO_DESK and not item.undone
    assert circ.items["30000001"].on_loan_to == "LV0002"
    assert recorder.kinds() == ["security_to_desk"]


def test_method_both_checks_out_a_tag_without_eas(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    t = pad.place(demo_tag("30000001"))
    t.eas_supported = False
    co = checkout(circ, pad, recorder, method="both")
    place(co, item_tag(t))
    item = co.state.item("30000001")
    assert item is not None and item.status is ItemStatus.CHECKED_OUT and item.unsecured
    assert t.afi == 0xC2 and circ.items["30000001"].on_loan_to == "LV0002"


def test_renewal_whose_tag_cannot_be_unsecured_is_reported_not_silently_returned(
    circ: FakeCirculation, pad: SimulatedPad, recorder: Recorder
) -> None:
    t = pad.place(demo_tag("30000001", secured=False))
    circ.items["30000001"].on_loan_to = "LV0002"  # the patron already has it: this is a renewal
    pad.fail_writes(t.uid, 3)  # every unsecure attempt fails; securing it again works
    co = checkout(circ, pad, recorder)
    place(co, item_tag(t))
    item = co.state.item("30000001")
    assert item is not None and item.status is ItemStatus.TO_DESK and item.undone
    assert circ.items["30000001"].on_loan_to == "" and t.afi == 0x07
    assert recorder.kinds() == ["security_to_desk"] and "already had" in recorder.events[0][1]
