"""Stack checkout: seen-then-answered items, refusals, sets, security write failures, offline, fees."""

from __future__ import annotations

import threading

from kiosk.core.checkout import (
    CheckoutItem,
    CheckoutState,
    ItemSource,
    ItemStatus,
    StackCheckout,
)
from kiosk.core.domain import CirculationResult, ItemTag, Mode, Operation, Refusal
from kiosk.core.events import TagsChanged
from kiosk.core.ports import SecurityResult
from kiosk.sync.sip2.codec import Sip2LinkError
from tests.core.fakes import FakeCirculation, FakeSecurity, bad_tag, tag


def pad(*tags: ItemTag, before: tuple[ItemTag, ...] = ()) -> TagsChanged:
    old = {t.uid for t in before}
    new = {t.uid for t in tags}
    return TagsChanged(
        present=tags,
        added=tuple(t for t in tags if t.uid not in old),
        removed=tuple(t for t in before if t.uid not in new),
    )


def make(
    circ: FakeCirculation, security: FakeSecurity, patron: str = "LV0002"
) -> tuple[StackCheckout, list[CheckoutState]]:
    seen: list[CheckoutState] = []
    return StackCheckout(circ, security, patron, listener=seen.append), seen


def test_items_show_as_seen_before_the_answer(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, seen = make(circ, security)
    a, b = tag("30000001"), tag("30000002")
    st = co.handle_tags(pad(a, b))
    first = seen[0]
    assert [i.status for i in first.items] == [ItemStatus.SEEN, ItemStatus.SEEN]
    assert [i.status for i in st.items] == [ItemStatus.CHECKED_OUT, ItemStatus.CHECKED_OUT]
    assert all(i.due_date for i in st.items)
    assert st.items[0].title == "Zaļā grāmata"
    assert security.state == {a.uid: False, b.uid: False}
    # Unsecure happens only after the library system agreed.
    assert [c for c in circ.calls if c[0] == "checkout"][0][1][1] == "30000001"


def test_the_title_is_shown_before_the_tag_write_and_the_loan_only_after_it(
    circ: FakeCirculation,
) -> None:
    """A tag write and its read-back take their air time after the library system's answer:
    the title it names is published at once, the item still "checking" (no due date, not
    borrowed) until its tag is unsecured and verified. One item, and a stack whose writes are
    pipelined with the next item's request."""
    seen: list[CheckoutState] = []
    at_write: dict[str, CheckoutItem | None] = {}

    class WatchedSecurity(FakeSecurity):
        def unsecure(self, uid: str) -> SecurityResult:
            item_id = next(i for i, t in tags.items() if t.uid == uid)
            at_write[item_id] = seen[-1].item(item_id)  # what the patron sees as it is written
            return super().unsecure(uid)

    for ids in (("30000001",), ("30000001", "30000002", "30000003")):
        seen.clear()
        at_write.clear()
        for item in circ.items.values():
            item.on_loan_to = ""
        tags = {i: tag(i) for i in ids}
        security = WatchedSecurity()
        co = StackCheckout(circ, security, "LV0002", listener=seen.append)
        st = co.handle_tags(pad(*tags.values()))
        for item_id in ids:
            shown = at_write[item_id]
            assert shown is not None
            assert shown.title == circ.items[item_id].title
            assert shown.status is ItemStatus.SEEN
            assert not shown.due_date
            final = st.item(item_id)
            assert final is not None and final.status is ItemStatus.CHECKED_OUT
            assert final.title == circ.items[item_id].title


def test_refused_item_keeps_the_acs_message_and_stays_secured(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    ok, hold, ref = tag("30000001"), tag("30000006"), tag("30000007")
    st = co.handle_tags(pad(ok, hold, ref))
    by = {i.item_id: i for i in st.items}
    assert by["30000001"].status is ItemStatus.CHECKED_OUT
    assert by["30000006"].refusal is Refusal.ON_HOLD_FOR_OTHER
    assert by["30000006"].message == "Reserved for another patron"
    assert by["30000007"].refusal is Refusal.NOT_FOR_LOAN
    assert hold.uid not in security.state
    assert ref.uid not in security.state
    assert {i.item_id for i in st.problems} == {"30000006", "30000007"}


def test_incomplete_set_waits_then_completes(circ: FakeCirculation, security: FakeSecurity) -> None:
    co, _ = make(circ, security)
    p1, p2, p3 = (tag("30000005", part=n, parts=3) for n in (1, 2, 3))
    st = co.handle_tags(pad(p1, p2))
    item = st.item("30000005")
    assert item is not None
    assert item.status is ItemStatus.WAITING
    assert item.refusal is Refusal.SET_INCOMPLETE
    assert (item.parts_present, item.parts_in_set) == (2, 3)
    assert circ.ops("checkout") == []
    assert security.calls == []
    st = co.handle_tags(pad(p1, p2, p3, before=(p1, p2)))
    item = st.item("30000005")
    assert item is not None
    assert item.status is ItemStatus.CHECKED_OUT
    assert item.parts_present == 3
    assert security.state == {p1.uid: False, p2.uid: False, p3.uid: False}
    assert len(circ.ops("checkout")) == 1


def test_waiting_set_gets_its_title_asked_once(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    p1, p2, p3 = (tag("30000005", part=n, parts=3) for n in (1, 2, 3))
    item = co.handle_tags(pad(p1)).item("30000005")
    assert item is not None
    assert item.status is ItemStatus.WAITING
    assert item.title == "Latviešu valodas kurss (3 CD)"
    co.handle_tags(pad(p1, p2, before=(p1,)))
    co.handle_tags(pad(p2, before=(p1, p2)))
    assert circ.ops("item_information") == [("30000005",)]  # once, however often the pad changes
    item = co.handle_tags(pad(p1, p2, p3, before=(p2,))).item("30000005")
    assert item is not None
    assert item.status is ItemStatus.CHECKED_OUT
    assert item.title == "Latviešu valodas kurss (3 CD)"


def test_waiting_set_title_lookup_failing_leaves_it_empty(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    circ.item_information_error = Sip2LinkError("no answer")
    p1 = tag("30000005", part=1, parts=3)
    item = co.handle_tags(pad(p1)).item("30000005")
    assert item is not None
    assert item.status is ItemStatus.WAITING
    assert item.title == ""
    assert item.refusal is Refusal.SET_INCOMPLETE
    assert circ.ops("item_information") == [("30000005",)]


def test_set_with_a_part_twice_and_one_missing_waits(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    p1, p2 = tag("30000005", part=1, parts=3), tag("30000005", part=2, parts=3)
    twin = tag("30000005", uid="E0040150AA55AA55", part=1, parts=3)  # a second "part 1 of 3"
    item = co.handle_tags(pad(p1, twin, p2)).item("30000005")
    assert item is not None
    assert item.status is ItemStatus.WAITING
    assert item.parts_present == 2
    assert circ.ops("checkout") == []
    assert security.calls == []


def test_removing_a_part_of_a_waiting_set_updates_the_count(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    p1, p2 = tag("30000005", part=1, parts=3), tag("30000005", part=2, parts=3)
    co.handle_tags(pad(p1, p2))
    st = co.handle_tags(pad(p1, before=(p1, p2)))
    item = st.item("30000005")
    assert item is not None
    assert item.parts_present == 1
    assert item.status is ItemStatus.WAITING


def test_write_failure_is_undone_and_resecured(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    p1, p2 = tag("30000005", part=1, parts=2), tag("30000005", part=2, parts=2)
    security.fail_unsecure.add(p2.uid)
    st = co.handle_tags(pad(p1, p2))
    item = st.item("30000005")
    assert item is not None
    assert item.status is ItemStatus.REFUSED
    assert item.undone
    assert item.refusal is Refusal.SECURITY_WRITE_FAILED
    assert not item.due_date
    assert circ.ops("checkin") == [("30000005",)]
    assert circ.items["30000005"].on_loan_to == ""  # the loan was reversed
    assert security.state[p1.uid] is True  # the part already switched off was re-secured


def test_write_failure_with_failed_reversal_goes_to_the_desk(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    t = tag("30000001")
    security.fail_unsecure.add(t.uid)
    circ.script[("checkin", "30000001")] = lambda item_id: CirculationResult(
        Operation.CHECKIN, ok=False, mode=Mode.ONLINE, refusal=Refusal.LINK_DOWN
    )
    st = co.handle_tags(pad(t))
    item = st.items[0]
    assert item.status is ItemStatus.TO_DESK
    assert item.refusal is Refusal.SECURITY_WRITE_FAILED
    assert not item.undone
    assert circ.items["30000001"].on_loan_to == "LV0002"


def test_reader_exception_during_write_counts_as_failure(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    t = tag("30000003")
    security.raise_on.add(t.uid)
    st = co.handle_tags(pad(t))
    assert st.items[0].status is ItemStatus.TO_DESK or st.items[0].undone
    assert st.items[0].refusal is Refusal.SECURITY_WRITE_FAILED


def test_removed_before_answer_keeps_its_result_and_is_not_redone(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    t = tag("30000001")
    co.handle_tags(pad(t))
    st = co.handle_tags(pad(before=(t,)))
    assert st.items[0].status is ItemStatus.CHECKED_OUT
    assert not st.items[0].on_pad
    st = co.handle_tags(pad(t))  # put back
    assert st.items[0].on_pad
    assert len(circ.ops("checkout")) == 1
    assert len(st.items) == 1


def test_same_item_by_barcode_and_tag_is_one_item(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    co.handle_barcode("30000002")
    co.handle_barcode("30000002")
    st = co.handle_tags(pad(tag("30000002")))
    assert len(st.items) == 1
    assert len(circ.ops("checkout")) == 1
    assert st.items[0].source is ItemSource.BARCODE
    assert security.calls == []  # barcode checkouts do not touch tags


def test_bad_barcodes_are_not_sent(circ: FakeCirculation, security: FakeSecurity) -> None:
    co, _ = make(circ, security)
    st = co.handle_barcode("3000|AB1")
    co.handle_barcode("3000\r1")
    assert circ.calls == []
    assert st.items[0].status is ItemStatus.UNREADABLE
    assert st.items[0].item_id == ""


def test_unreadable_tag_shown_with_reason(circ: FakeCirculation, security: FakeSecurity) -> None:
    co, _ = make(circ, security)
    st = co.handle_tags(pad(bad_tag("E0040000DEAD", "CRC mismatch"), tag("30000001")))
    bad = st.item("uid:E0040000DEAD")
    assert bad is not None
    assert bad.status is ItemStatus.UNREADABLE
    assert bad.message == "CRC mismatch"
    assert bad.refusal is Refusal.UNREADABLE_TAG
    assert len(circ.ops("checkout")) == 1


def test_offline_checkout_is_marked_and_limited(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    circ.online = False
    circ.max_offline_checkouts = 1
    co, _ = make(circ, security)
    st = co.handle_tags(pad(tag("30000001"), tag("30000002")))
    first, second = st.items
    assert first.status is ItemStatus.CHECKED_OUT
    assert first.offline
    assert first.queued
    assert second.status is ItemStatus.REFUSED
    assert second.refusal is Refusal.OFFLINE_LIMIT
    assert second.offline


def test_fee_confirmation_resends_with_acknowledgement(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    circ.items["30000004"].fee = "1.00"
    co, _ = make(circ, security)
    t = tag("30000004")
    st = co.handle_tags(pad(t))
    assert st.fee_pending
    assert st.items[0].fee_amount == "1.00"
    assert t.uid not in security.state
    st = co.confirm_fee("30000004")
    assert st.items[0].status is ItemStatus.CHECKED_OUT
    assert security.state[t.uid] is False
    assert [c[3] for c in circ.ops("checkout")] == [False, True]


def test_fee_declined_stays_refused(circ: FakeCirculation, security: FakeSecurity) -> None:
    circ.items["30000004"].fee = "1.00"
    co, _ = make(circ, security)
    co.handle_tags(pad(tag("30000004")))
    st = co.decline_fee("30000004")
    assert not st.fee_pending
    assert st.items[0].status is ItemStatus.REFUSED
    assert co.confirm_fee("30000004").items[0].status is ItemStatus.REFUSED
    assert len(circ.ops("checkout")) == 1


def test_no_desensitize_means_tag_untouched(circ: FakeCirculation, security: FakeSecurity) -> None:
    circ.script[("checkout", "30000001")] = lambda p, i, ack: CirculationResult(
        Operation.CHECKOUT, ok=True, mode=Mode.ONLINE, item_id=i, due_date="x", desensitize=False
    )
    co, _ = make(circ, security)
    st = co.handle_tags(pad(tag("30000001")))
    assert st.items[0].status is ItemStatus.CHECKED_OUT
    assert not st.items[0].unsecured
    assert security.calls == []


def test_circulation_exception_becomes_link_down_refusal(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    circ.fail_next["checkout"] = Sip2LinkError("no answer")
    co, _ = make(circ, security)
    st = co.handle_tags(pad(tag("30000001")))
    assert st.items[0].refusal is Refusal.LINK_DOWN
    assert security.calls == []


def test_own_loan_rescanned_is_a_renewal(circ: FakeCirculation, security: FakeSecurity) -> None:
    co, _ = make(circ, security, patron="LV0002")
    st = co.handle_tags(pad(tag("30000008")))
    assert st.items[0].status is ItemStatus.CHECKED_OUT
    assert st.items[0].renewal


def test_receipt_lines_cover_done_and_refused(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    co, _ = make(circ, security)
    co.handle_tags(pad(tag("30000001"), tag("30000007"), bad_tag("E004FFFF")))
    lines = co.receipt_lines()
    assert [(line.item_id, line.ok) for line in lines] == [("30000001", True), ("30000007", False)]
    co.wipe()
    assert co.state.items == ()


class _Overlap(FakeSecurity):
    """The write of a tag waits until the library system has been asked about the next item:
    it can only finish when the two overlap. Bounded, so a sequential checkout fails the write
    (and the test) instead of hanging."""

    def __init__(self, circ: FakeCirculation, order: list[str]) -> None:
        super().__init__()
        self.circ, self.order = circ, order
        self.asked = threading.Condition()

    def unsecure(self, uid: str) -> SecurityResult:
        n = self.order.index(uid)
        if n + 1 < len(self.order):
            nxt = self.order[n + 1][4:12]
            with self.asked:
                if not self.asked.wait_for(lambda: ("checkout", nxt) in self._asked(), timeout=5):
                    return SecurityResult(uid, ok=False, secured=True, message="no overlap")
        return super().unsecure(uid)

    def _asked(self) -> set[tuple[str, str]]:
        return {(c[0], str(c[1][1])) for c in self.circ.calls if c[0] == "checkout"}


def test_tag_write_of_one_item_overlaps_the_request_for_the_next(circ: FakeCirculation) -> None:
    tags = [tag(f"3000000{n}") for n in (1, 2, 3, 4)]
    security = _Overlap(circ, [t.uid for t in tags])
    script_checkout = circ.checkout

    def checkout(*args: object, **kw: object) -> CirculationResult:
        result = script_checkout(*args, **kw)  # type: ignore[arg-type]
        with security.asked:
            security.asked.notify_all()
        return result

    circ.checkout = checkout  # type: ignore[method-assign]
    co, _ = make(circ, security)
    st = co.handle_tags(pad(*tags))
    assert [i.status for i in st.items] == [ItemStatus.CHECKED_OUT] * 4
    assert all(i.unsecured for i in st.items)
    assert security.state == {t.uid: False for t in tags}


def test_a_failed_write_in_a_pipelined_stack_is_reversed_in_order(
    circ: FakeCirculation, security: FakeSecurity
) -> None:
    tags = [tag(f"3000000{n}") for n in (1, 2, 3)]
    security.fail_unsecure.add(tags[1].uid)
    co, _ = make(circ, security)
    st = co.handle_tags(pad(*tags))
    assert [i.status for i in st.items] == [
        ItemStatus.CHECKED_OUT,
        ItemStatus.REFUSED,
        ItemStatus.CHECKED_OUT,
    ]
    assert st.items[1].undone
    assert circ.items["30000002"].on_loan_to == ""
    # The reversal goes over the link after the next item's checkout and before the one after.
    ops = [
        (c[0], c[1][1] if c[0] == "checkout" else c[1][0])
        for c in circ.calls
        if c[0] in ("checkout", "checkin")
    ]
    assert ops == [
        ("checkout", "30000001"),
        ("checkout", "30000002"),
        ("checkout", "30000003"),
        ("checkin", "30000002"),
    ]
    assert security.state == {tags[0].uid: False, tags[1].uid: True, tags[2].uid: False}
