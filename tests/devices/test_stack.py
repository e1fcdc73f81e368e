"""Stack reading on the simulated pad: stability rounds, entering and leaving tags, read misses,
unreadable and undecodable tags reported with a reason, and the background thread."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from kiosk.config import SecuritySection
from kiosk.devices.readers.sim import SimReader, SimulatedPad, VirtualTag, demo_tag
from kiosk.devices.stack import StackReader


@pytest.fixture
def pad():
    return SimulatedPad()


def make(pad, **kw):
    events = []
    stack = StackReader(SimReader(pad), on_change=lambda p, a, r: events.append((p, a, r)), **kw)
    return stack, events


def test_a_set_counts_only_after_stable_rounds(pad):
    stack, events = make(pad, stable_rounds=2)
    tags = [pad.place(demo_tag(i)) for i in ("30000001", "30000002")]
    first = stack.poll_once()
    assert not first.stable
    assert first.present == ()
    assert events == []
    second = stack.poll_once()
    assert second.stable
    assert {t.item_id for t in second.added} == {"30000001", "30000002"}
    assert len(events) == 1
    t = next(t for t in second.added if t.item_id == "30000001")
    assert (t.uid, t.afi, t.model, t.owner_institution, t.error) == (
        tags[0].uid,
        0x07,
        "iso28560-3",
        "LV-DEMO",
        "",
    )
    third = stack.poll_once()
    assert not third.changed
    assert len(events) == 1
    assert {t.item_id for t in stack.current()} == {"30000001", "30000002"}


def test_leaving_tag_is_reported_after_stable_rounds(pad):
    stack, events = make(pad, stable_rounds=2)
    a = pad.place(demo_tag("30000001"))
    pad.place(demo_tag("30000002"))
    stack.poll_once(), stack.poll_once()
    pad.remove(a.uid)
    assert not stack.poll_once().changed
    change = stack.poll_once()
    assert [t.item_id for t in change.removed] == ["30000001"]
    assert [t.item_id for t in change.present] == ["30000002"]
    assert events[-1][2] == change.removed


def test_a_tag_missing_from_one_round_does_not_flicker(pad):
    stack, events = make(pad, stable_rounds=2)
    tags = [pad.place(demo_tag(f"3000000{i}")) for i in range(1, 4)]
    stack.poll_once(), stack.poll_once()
    assert len(events) == 1
    pad.miss_inventory(tags[1].uid, rounds=1)
    for _ in range(4):
        stack.poll_once()
    assert len(events) == 1
    assert len(stack.current()) == 3


def test_each_tag_is_read_once_while_it_stays(pad):
    stack, _ = make(pad, stable_rounds=1)
    t = pad.place(demo_tag("30000003"))
    for _ in range(5):
        stack.poll_once()
    assert sum(1 for op, uid in pad.operations if op == "read" and uid == t.uid) == 1
    pad.remove(t.uid)
    stack.poll_once()
    pad.place(t)
    stack.poll_once()
    assert sum(1 for op, uid in pad.operations if op == "read" and uid == t.uid) == 2


def test_read_miss_is_retried(pad):
    stack, _ = make(pad, stable_rounds=1, read_retries=2)
    t = pad.place(demo_tag("30000004"))
    pad.fail_reads(t.uid, 2)
    change = stack.poll_once()
    assert change.added[0].item_id == "30000004"
    assert change.added[0].readable


def test_unreadable_tag_is_reported_with_error_not_dropped(pad):
    stack, events = make(pad, stable_rounds=1, read_retries=1)
    t = pad.place(demo_tag("30000004"))
    pad.fail_reads(t.uid, 10)
    change = stack.poll_once()
    (tag,) = change.added
    assert tag.uid == t.uid
    assert not tag.readable
    assert "could not be read after 2 attempts" in tag.error
    assert events[0][1] == (tag,)
    stack.forget(t.uid)  # staff or the workflow asks for another try
    pad.fail_reads(t.uid, 0)
    assert stack.poll_once().added[0].item_id == "30000004"


def test_undecodable_tag_has_the_reason(pad):
    stack, _ = make(pad, stable_rounds=1)
    blank = pad.place(
        VirtualTag("E004010000000099", memory=bytearray(b"\x11\x01\x01" + b"\xff" * 40))
    )
    (tag,) = stack.poll_once().added
    assert tag.uid == blank.uid
    assert tag.item_id == ""
    assert tag.error.startswith("tag data not understood")


def test_multi_part_set(pad):
    stack, _ = make(pad, stable_rounds=1)
    for part in (1, 2, 3):
        pad.place(demo_tag("30000005", part=part))
    added = stack.poll_once().added
    assert sorted((t.item_id, t.part_number, t.parts_in_set) for t in added) == [
        ("30000005", p, 3) for p in (1, 2, 3)
    ]


def test_eas_is_read_when_security_uses_it(pad):
    pad.place(demo_tag("30000001", secured=False))
    stack, _ = make(pad, stable_rounds=1, security=SecuritySection(method="eas"))
    assert stack.poll_once().added[0].eas is False
    stack2, _ = make(SimulatedPad(), stable_rounds=1, security=SecuritySection(method="afi"))
    stack2.reader.pad.place(demo_tag("30000001"))
    assert stack2.poll_once().added[0].eas is None


def test_inventory_failures_reopen_the_reader(pad):
    class CountingReader(SimReader):
        reopened = 0

        def reopen(self):
            type(self).reopened += 1
            super().reopen()

    reader = CountingReader(pad)
    stack = StackReader(reader, stable_rounds=1, reopen_after_failures=3)
    pad.place(demo_tag("30000001"))
    stack.poll_once()
    pad.disconnect()
    results = [stack.poll_once() for _ in range(3)]
    assert all(not r.stable and "disconnected" in r.error for r in results)
    assert [t.item_id for t in results[-1].present] == ["30000001"]  # last stable set is kept
    assert CountingReader.reopened == 1
    pad.reconnect()
    assert stack.poll_once().stable


def test_background_thread_posts_changes(pad):
    got = threading.Event()
    seen = []

    def on_change(present, added, removed):
        seen.append(tuple(t.item_id for t in added))
        if added:
            got.set()

    stack = StackReader(SimReader(pad), stable_rounds=2, on_change=on_change)
    stack.start(interval_s=0.005)
    try:
        pad.place(demo_tag("30000010"))
        assert got.wait(5), "the stack thread reported nothing"
    finally:
        stack.stop()
    assert ("30000010",) in seen


class _NoNotice:
    """The simulated pad's reader without its change notices (as a serial reader has none)."""

    def __init__(self, pad: SimulatedPad) -> None:
        inner = SimReader(pad)
        self.inventory = inner.inventory
        self.read_blocks = inner.read_blocks
        self.read_system_info = inner.read_system_info
        self.eas = inner.eas
        self.reopen = inner.reopen
        self.close = inner.close


def _reported(stack_reader_args, place, pad):
    got = threading.Event()
    stack = StackReader(
        *stack_reader_args, stable_rounds=2, on_change=lambda p, a, r: a and got.set()
    )
    stack.start(interval_s=3600)  # a tick that never comes within the test
    try:
        place()
        return got.wait(5), stack
    finally:
        stack.stop()


def test_a_tag_placed_is_reported_without_waiting_for_the_next_tick(pad):
    # The pad wakes the poll loop and the confirming round runs at once.
    ok, _ = _reported((SimReader(pad),), lambda: pad.place(demo_tag("30000010")), pad)
    assert ok, "the tag waited for the next poll tick"


def test_confirming_rounds_run_back_to_back_without_a_change_notice(pad):
    # First round at start sees the tag; the second, confirming round must not wait an interval.
    pad.place(demo_tag("30000010"))
    ok, _ = _reported((_NoNotice(pad),), lambda: None, pad)
    assert ok, "the confirming inventory waited for the next poll tick"


def test_wake_runs_an_inventory_now(pad):
    reader = _NoNotice(pad)
    got = threading.Event()
    stack = StackReader(reader, stable_rounds=1, on_change=lambda p, a, r: a and got.set())
    stack.start(interval_s=3600)
    try:
        pad.place(demo_tag("30000001"))
        assert not got.wait(0.2)  # nothing tells this reader's loop about the tag...
        stack.wake()  # ...until a caller does
        assert got.wait(5)
    finally:
        stack.stop()


def test_a_failing_listener_does_not_stop_reading(pad, unexpected_faults):
    def boom(*_):
        raise RuntimeError("listener bug")

    stack = StackReader(SimReader(pad), stable_rounds=1, on_change=boom)
    pad.place(demo_tag("30000001"))
    assert stack.poll_once().added
    assert len(stack.current()) == 1
    assert [str(e) for e in unexpected_faults()] == ["listener bug"]  # logged, and a bug


def test_block_count_one_too_many_is_tolerated(pad):
    class OffByOne(SimReader):
        def read_system_info(self, uid):
            info = super().read_system_info(uid)
            return type(info)(info.uid, info.dsfid, info.afi, info.block_size, info.block_count + 1)

    pad.place(demo_tag("30000002"))
    (tag,) = StackReader(OffByOne(pad), stable_rounds=1).poll_once().added
    assert tag.item_id == "30000002"


def test_unknown_size_is_read_in_chunks(pad):
    from kiosk.devices.readers import NotSupported

    class NoSystemInfo(SimReader):
        def read_system_info(self, uid):
            raise NotSupported("no system information on this reader")

    t = pad.place(
        VirtualTag("E004010000000077", memory=bytearray(demo_tag("30000003").memory[:40]))
    )
    (tag,) = StackReader(NoSystemInfo(pad), stable_rounds=1).poll_once().added
    assert tag.item_id == "30000003"
    assert tag.uid == t.uid


def test_from_config():
    from kiosk.config import Config, ReaderSection

    cfg = Config(
        reader=ReaderSection(stable_rounds=3, data_model="iso28560-3", retries=1),
        security=SecuritySection(method="both"),
    )
    stack = StackReader.from_config(SimReader(SimulatedPad()), cfg)
    assert (stack.stable_rounds, stack.data_model, stack.read_retries, stack.read_eas) == (
        3,
        "iso28560-3",
        1,
        True,
    )


class RecordingReader(SimReader):
    def __init__(self, pad):
        super().__init__(pad)
        self.reads = []

    def read_blocks(self, uid, first, count):
        self.reads.append((first, count))
        return super().read_blocks(uid, first, count)


def test_quick_read_stops_after_a_complete_basic_block(pad):
    reader = RecordingReader(pad)
    pad.place(demo_tag("30000001"))
    (tag,) = StackReader(reader, stable_rounds=1).poll_once().added
    assert tag.item_id == "30000001"
    assert reader.reads == [(0, 9)]


def test_quick_read_reads_on_for_extension_blocks_and_iso28560_2(pad):
    reader = RecordingReader(pad)
    t = demo_tag("30000002")
    t.memory[34:40] = bytes(
        [6, 1, 0, 0x41, 0x42, 0x06 ^ 0x01 ^ 0x41 ^ 0x42]
    )  # an extension block follows
    pad.place(t)
    pad.place(demo_tag("30000003", model="iso28560-2"))
    added = StackReader(reader, stable_rounds=1).poll_once().added
    assert sorted(t.item_id for t in added) == ["30000002", "30000003"]
    assert reader.reads == [(0, 9), (9, 19), (0, 9), (9, 19)]


def test_quick_read_can_be_switched_off(pad):
    reader = RecordingReader(pad)
    pad.place(demo_tag("30000001"))
    StackReader(reader, stable_rounds=1, quick_read=False).poll_once()
    assert reader.reads == [(0, 28)]


def test_quick_read_with_reversed_block_order(pad):
    from kiosk.devices import tags

    data = tags.TagData(model="iso28560-3", item_id="30000004", owner_institution="LV-DEMO")
    memory = bytearray(tags.encode(data, block_order="reversed")).ljust(112, b"\x00")
    pad.place(VirtualTag("E004010000000042", memory=memory))
    reader = RecordingReader(pad)
    (tag,) = StackReader(reader, stable_rounds=1).poll_once().added
    assert tag.item_id == "30000004"
    assert reader.reads == [(0, 9)]


def test_update_records_a_verified_security_write(pad):
    from kiosk.devices.security import TagSecurityService

    events = []
    stack = StackReader(SimReader(pad), stable_rounds=1, on_change=lambda *e: events.append(e))
    t = pad.place(demo_tag("30000001"))
    stack.poll_once()
    result = TagSecurityService(SimReader(pad), SecuritySection(), retry_delay_s=0).unsecure(t.uid)
    assert result.ok
    updated = stack.update(t.uid, afi=0xC2)
    assert updated.afi == 0xC2
    assert updated.item_id == "30000001"
    assert stack.current()[0].afi == 0xC2
    assert len(events) == 1
    assert stack.update("E0040100000000FF", afi=0x07) is None


def test_a_hanging_reader_does_not_block_current_or_update(pad):
    # The UI thread asks for the stable set (entering returns) while the reader thread hangs.
    tag = pad.place(demo_tag("30000001"))
    stack = StackReader(SimReader(pad), stable_rounds=1)
    stack.poll_once()
    entered, release = threading.Event(), threading.Event()

    def hang(_seconds: float) -> None:
        entered.set()
        release.wait(20)

    pad._sleep = hang
    pad.set_delay("inventory", 1.0)
    poller = threading.Thread(target=stack.poll_once, daemon=True)
    poller.start()
    try:
        assert entered.wait(5)
        answered = threading.Event()
        got: list[object] = []

        def ask() -> None:
            got.append(stack.current())
            got.append(stack.update(tag.uid, afi=0xC2))
            answered.set()

        threading.Thread(target=ask, daemon=True).start()
        assert answered.wait(5), "current() waited for the hanging inventory"
        assert [t.item_id for t in got[0]] == ["30000001"]
        assert got[1] is not None
    finally:
        release.set()
        poller.join(5)


def test_a_stack_reader_that_reopened_its_reader_still_sees_items_taken_away(tmp_path):
    """Inventories that fail in a row (answers lost on a loaded machine) make the stack reader
    re-open its reader; after that it must still see the pad, or it keeps showing the last
    patron's items to the next one."""
    from kiosk.devices.readers import open_reader
    from kiosk.devices.readers.emulators import FeigEmulator

    pad = SimulatedPad()
    tags = [demo_tag(f"3000000{n}") for n in (1, 2, 3, 4)]
    for t in tags:
        pad.place(t)
    emu = FeigEmulator(pad, max_data_sets=3)
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = open_reader(f"feig:{port.path}", timeout_s=0.1, retries=1)
        try:
            stack = StackReader(reader, stable_rounds=1, reopen_after_failures=3)
            assert {t.uid for t in stack.poll_once().added} == {t.uid for t in tags}
            for t in tags:
                pad.remove(t.uid)
            # every request and every resynchronisation of three inventories goes unanswered
            emu.inject("silent", 6)
            failed = [stack.poll_once() for _ in range(3)]
            assert all(c.error for c in failed), failed
            changes = [stack.poll_once() for _ in range(3)]
            assert stack.current() == (), changes
            assert {t.uid for c in changes for t in c.removed} == {t.uid for t in tags}
            assert reader.link.opens == 2  # re-opened after the third failure
        finally:
            reader.close()


def sighting(pad, **kw):
    """A stack reader that also tells of sightings: (sighted item ids, withdrawn item ids)."""
    stack, events = make(pad, **kw)
    sightings: list[tuple[list[str], list[str]]] = []
    stack.on_sighted = lambda seen, gone: sightings.append(
        ([t.item_id for t in seen], [t.item_id for t in gone])
    )
    return stack, events, sightings


def reads_of(pad, uid):
    return sum(1 for op, u in pad.operations if op == "read" and u == uid)


def test_a_tag_is_sighted_after_one_inventory_and_not_read_again_when_stable(pad):
    stack, events, sightings = sighting(pad, stable_rounds=2)
    t = pad.place(demo_tag("30000001"))
    first = stack.poll_once()
    assert not first.stable and first.present == ()
    assert sightings == [(["30000001"], [])], "shown as soon as one inventory saw it, with its id"
    assert events == [], "nothing is done with it before the set is stable"
    reads = reads_of(pad, t.uid)
    assert reads >= 1
    second = stack.poll_once()
    assert [x.item_id for x in second.added] == ["30000001"]
    assert len(events) == 1
    assert reads_of(pad, t.uid) == reads, "the sighting's read is the one the stable set uses"
    assert sightings == [(["30000001"], [])], "not sighted twice, nothing withdrawn"
    for _ in range(3):
        stack.poll_once()
    assert sightings == [(["30000001"], [])] and len(events) == 1


def test_a_sighted_tag_the_stable_set_does_not_hold_is_withdrawn(pad):
    stack, events, sightings = sighting(pad, stable_rounds=2)
    a = pad.place(demo_tag("30000001"))
    stack.poll_once(), stack.poll_once()
    assert len(events) == 1
    flicker = pad.place(demo_tag("30000002"))
    stack.poll_once()  # seen once: sighted
    assert sightings[-1] == (["30000002"], [])
    pad.miss_inventory(flicker.uid, rounds=3)  # a detuned tag, gone again
    stack.poll_once()  # the set is back to what it was, once: not yet stable
    assert sightings[-1] == (["30000002"], [])
    stack.poll_once()  # twice: stable, nothing added, the sighting withdrawn
    assert sightings[-1] == ([], ["30000002"])
    assert len(events) == 1, "never reported as on the pad"
    assert [t.uid for t in stack.current()] == [a.uid]


def test_a_tag_that_does_not_read_is_not_sighted_and_read_again_only_when_stable(pad):
    stack, events, sightings = sighting(pad, stable_rounds=3, read_retries=0)
    t = pad.place(demo_tag("30000004"))
    pad.fail_reads(t.uid, 1)
    stack.poll_once()
    assert sightings == []
    failed = reads_of(pad, t.uid)
    stack.poll_once()  # still unstable: not read at every round
    assert reads_of(pad, t.uid) == failed
    change = stack.poll_once()  # stable: read again, and this time it answers
    assert [x.item_id for x in change.added] == ["30000004"]
    assert change.added[0].readable
    assert sightings == [], "reported by the stable set, not sighted"


def test_without_a_sighting_listener_nothing_is_read_before_the_set_is_stable(pad):
    stack, _ = make(pad, stable_rounds=2)
    t = pad.place(demo_tag("30000001"))
    stack.poll_once()
    assert reads_of(pad, t.uid) == 0
    stack.poll_once()
    assert reads_of(pad, t.uid) >= 1


def finding(pad, **kw):
    """A stack reader that also tells of tags found: (found uids, lost uids), and for each found
    uid how many times the pad had read it when the stack reader told of it."""
    stack, events = make(pad, **kw)
    findings: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
    reads_when_found: dict[str, int] = {}

    def on_found(found, lost):
        findings.append((found, lost))
        reads_when_found.update({uid: reads_of(pad, uid) for uid in found})

    stack.on_found = on_found
    return stack, events, findings, reads_when_found


@pytest.mark.parametrize("stable_rounds", [1, 2])
def test_a_tag_is_found_by_its_uid_before_its_memory_is_read(pad, stable_rounds):
    stack, events, findings, reads_when_found = finding(pad, stable_rounds=stable_rounds)
    t = pad.place(demo_tag("30000001"))
    stack.poll_once()
    assert findings == [((t.uid,), ())], "told of the tag in the round that found it"
    assert reads_when_found[t.uid] == 0, "before its memory is read"
    assert reads_of(pad, t.uid) >= 1, "and read in the same round"
    for _ in range(3):
        stack.poll_once()
    assert findings == [((t.uid,), ())], "found once, kept by the stable set: nothing withdrawn"
    assert [x.item_id for _, added, _ in events for x in added] == ["30000001"]


def test_a_found_tag_the_stable_set_does_not_hold_is_withdrawn_by_uid(pad):
    stack, events, findings, _ = finding(pad, stable_rounds=2)
    a = pad.place(demo_tag("30000001"))
    stack.poll_once(), stack.poll_once()
    flicker = pad.place(demo_tag("30000002"))
    stack.poll_once()  # found once
    assert findings[-1] == ((flicker.uid,), ())
    pad.miss_inventory(flicker.uid, rounds=3)  # a detuned tag, gone again
    stack.poll_once()
    assert findings[-1] == ((flicker.uid,), ()), "not withdrawn before the set is stable"
    stack.poll_once()  # stable without it: withdrawn
    assert findings[-1] == ((), (flicker.uid,))
    assert [t.uid for t in stack.current()] == [a.uid]
    assert len(events) == 1, "never reported as on the pad"


def test_a_found_tag_that_does_not_read_stays_found_and_joins_the_set_unreadable(pad):
    """A damaged tag: found (a row for it at once), not sighted, not withdrawn; the stable set
    reports it with its error, so its row becomes the unreadable item's and never vanishes."""
    stack, events, findings, _ = finding(pad, stable_rounds=3, read_retries=0)
    sightings: list[object] = []
    stack.on_sighted = lambda seen, gone: sightings.append((seen, gone))
    t = pad.place(demo_tag("30000004"))
    pad.fail_reads(t.uid, 10)
    for _ in range(4):
        stack.poll_once()
    assert findings == [((t.uid,), ())], "found once, never withdrawn while it lies there"
    assert sightings == []
    (added,) = [a for _, a, _ in events]
    assert [(x.uid, x.readable, bool(x.error)) for x in added] == [(t.uid, False, True)]


def test_a_faulty_finding_listener_does_not_stop_the_reading(pad, caplog, unexpected_faults):
    stack, events = make(pad, stable_rounds=2)

    def broken(found, lost):
        raise RuntimeError("listener bug")

    stack.on_found = broken
    pad.place(demo_tag("30000001"))
    with caplog.at_level("ERROR", logger="kiosk.devices.stack"):
        stack.poll_once(), stack.poll_once()
    assert [x.item_id for _, added, _ in events for x in added] == ["30000001"]
    assert "stack finding listener failed (unexpected RuntimeError)" in caplog.text
    assert [type(e) for e in unexpected_faults()] == [RuntimeError]


@pytest.mark.parametrize("seed", range(12))
def test_every_sighting_ends_borrowable_or_withdrawn_under_random_faults(pad, seed):
    """Tags placed and lifted at random, with missed inventories, failed reads and flickering
    tags: a sighting is always followed by the tag joining the believed set or by its
    withdrawal, nothing joins the set with another tag's data, and once the pad is left alone
    the believed set is what lies on the pad, every sighting settled."""
    import random

    rng = random.Random(seed)
    stack, _events, _ = sighting(pad, stable_rounds=rng.choice((2, 3)), read_retries=1)
    # (what, uid, item id), what: "sighted", "withdrawn", "added" or "removed"
    told: list[tuple[str, str, str]] = []

    def on_sighted(seen, gone):
        told.extend(("sighted", t.uid, t.item_id) for t in seen)
        told.extend(("withdrawn", t.uid, t.item_id) for t in gone)

    def on_change(_present, added, removed):
        told.extend(("added", t.uid, t.item_id) for t in added)
        told.extend(("removed", t.uid, t.item_id) for t in removed)

    def on_found(found, lost):
        told.extend(("found", uid, "") for uid in found)
        told.extend(("lost", uid, "") for uid in lost)

    stack.on_sighted, stack.on_change, stack.on_found = on_sighted, on_change, on_found
    tags = [demo_tag(f"3000{n:04d}") for n in range(8)]
    pad.miss_probability = rng.choice((0.0, 0.1, 0.3))
    for _ in range(120):
        roll = rng.random()
        tag = rng.choice(tags)
        if roll < 0.25:
            pad.place(tag)
        elif roll < 0.4:
            pad.remove(tag.uid)
        elif roll < 0.5:
            pad.miss_inventory(tag.uid, rounds=rng.randint(1, 3))
        elif roll < 0.6:
            pad.fail_reads(tag.uid, rng.randint(1, 4))
        stack.poll_once()
    pad.reset_faults()
    for _ in range(3 * stack.stable_rounds + 2):  # left alone: the set settles
        stack.poll_once()

    by_uid = {t.uid: t.item_id for t in tags}
    open_sightings: dict[str, str] = {}
    believed: set[str] = set()
    found: set[str] = set()  # found by an inventory, not yet believed nor withdrawn
    for what, uid, item_id in told:
        if what == "found":
            assert uid not in found and uid not in believed, ("found twice", uid)
            found.add(uid)
        elif what == "lost":
            assert uid in found, ("withdrawn, never found", uid)
            found.discard(uid)
        elif what in ("sighted", "added"):
            assert uid in found, ("read before it was found", what, uid)
        if what == "added":
            found.discard(uid)
        if what in ("sighted", "added") and item_id:
            assert item_id == by_uid[uid], ("another tag's data", what, uid, item_id)
        if what == "sighted":
            assert uid not in believed, ("sighted while already believed", uid)
            assert uid not in open_sightings, ("sighted twice without an outcome", uid)
            open_sightings[uid] = item_id
        elif what == "withdrawn":
            assert open_sightings.pop(uid, None) is not None, ("withdrawn, never sighted", uid)
        elif what == "added":
            open_sightings.pop(uid, None)
            assert uid not in believed
            believed.add(uid)
        else:
            believed.discard(uid)
    assert open_sightings == {}, "every sighting ends in the set or withdrawn"
    assert found == set(), "every tag found ends in the set or withdrawn"
    on_pad = {t.uid for t in pad.tags}
    assert believed == on_pad == {t.uid for t in stack.current()}
    for t in stack.current():  # unreadable ones are kept as they were read (until forget())
        assert t.item_id == by_uid[t.uid] if t.readable else t.error


@pytest.mark.parametrize("kind", ["feig", "3m"])
def test_a_tag_is_sighted_over_a_serial_readers_own_frames(tmp_path, kind):
    """The sighting on the FEIG and 3M frame protocols over a real pseudo-terminal: the tag's
    memory read once, at the sighting, and taken as it is when two inventories agree."""
    from kiosk.devices.readers import open_reader
    from kiosk.devices.readers.emulators import FeigEmulator, ThreeMEmulator

    pad = SimulatedPad()
    emu = FeigEmulator(pad) if kind == "feig" else ThreeMEmulator(pad)
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = open_reader(f"{kind}:{port.path}", timeout_s=0.5, retries=1)
        try:
            events: list[tuple[str, ...]] = []
            sightings: list[tuple[str, ...]] = []
            stack = StackReader(
                reader,
                stable_rounds=2,
                on_change=lambda _p, added, _r: events.append(tuple(t.item_id for t in added)),
                on_sighted=lambda seen, _gone: sightings.append(tuple(t.item_id for t in seen)),
            )
            t = pad.place(demo_tag("30000007"))
            assert not stack.poll_once().stable
            assert sightings == [("30000007",)] and events == []
            reads = reads_of(pad, t.uid)
            assert reads >= 1
            change = stack.poll_once()
            assert [x.item_id for x in change.added] == ["30000007"]
            assert change.added[0].owner_institution == "LV-DEMO"
            assert events == [("30000007",)]
            assert reads_of(pad, t.uid) == reads, "not read again when the set is believed"
        finally:
            reader.close()


def test_forget_while_the_tag_is_being_read_is_not_undone_by_that_read(pad):
    """forget() asks for a fresh read; a read of the same tag already under way when it came
    must not be kept in its place (a failed read would stand for good)."""
    stack, events = make(pad, stable_rounds=1, read_retries=0)
    t = pad.place(demo_tag("30000004"))
    pad.fail_reads(t.uid, 1)  # the read under way fails
    entered, release = threading.Event(), threading.Event()
    sleep = pad._sleep

    def gate(_seconds: float) -> None:
        entered.set()
        release.wait(5)

    pad._sleep = gate
    pad.set_delay("read", 0.001)
    try:
        poll = threading.Thread(target=stack.poll_once)
        poll.start()
        assert entered.wait(5), "the read never started"
        stack.forget(t.uid)  # staff ask for another try while the reader is still at it
        release.set()
        poll.join(5)
    finally:
        pad._sleep = sleep
        pad.set_delay("read", 0.0)
    assert stack.current() == (), "the read begun before forget() is not kept"
    assert events == []
    change = stack.poll_once()
    assert [x.item_id for x in change.added] == ["30000004"]
    assert change.added[0].readable


def test_a_forgotten_sighting_is_read_again_and_still_withdrawn_if_the_tag_goes(pad):
    stack, events, sightings = sighting(pad, stable_rounds=2)
    stays = pad.place(demo_tag("30000001"))
    goes = pad.place(demo_tag("30000002"))
    stack.poll_once()
    assert sorted(sightings[-1][0]) == ["30000001", "30000002"]
    reads = reads_of(pad, stays.uid)
    stack.forget(stays.uid)  # read it afresh
    stack.forget(goes.uid)
    pad.remove(goes.uid)
    for _ in range(3):
        stack.poll_once()
    assert reads_of(pad, stays.uid) > reads, "the forgotten sighting was read again"
    assert [t.item_id for t in stack.current()] == ["30000001"]
    assert [a.item_id for _p, added, _r in events for a in added] == ["30000001"]
    withdrawn = [i for _seen, gone in sightings for i in gone]
    assert withdrawn == ["30000002"], "a sighting of a tag that went is withdrawn, forgotten or not"


# -- the head first (docs/protocols/rfid.md §7.7) -----------------------------------------------


class _InventoryWithoutDsfid(SimReader):
    """A reader whose inventory does not give the DSFID (3M pads, PC/SC): every tag is read
    the way all tags were before the head-first read, system information first."""

    def inventory(self):
        return [dataclasses.replace(e, dsfid=None) for e in super().inventory()]


def _ops_for(pad, uid):
    return [op for op, u in pad.operations if u == uid]


def test_a_tag_whose_first_nine_blocks_hold_it_is_read_without_its_system_information(pad):
    t = pad.place(demo_tag("30000001"))
    (tag,) = StackReader(SimReader(pad), stable_rounds=1).poll_once().added
    assert (tag.item_id, tag.error) == ("30000001", "")
    assert _ops_for(pad, t.uid) == ["read"], "one air exchange: the head, nothing before it"


def test_the_head_first_saves_the_system_information_exchange_on_the_air():
    def air_time(read) -> float:  # noqa: ANN001 (a step on a pad of its own)
        pad = SimulatedPad(timing="iso15693", sleep=lambda _s: None)  # air time counted
        read(pad, pad.place(demo_tag("30000001")))
        return pad.air_time_s

    head_first = air_time(lambda pad, _t: StackReader(SimReader(pad), stable_rounds=1).poll_once())
    before = air_time(
        lambda pad, _t: StackReader(_InventoryWithoutDsfid(pad), stable_rounds=1).poll_once()
    )
    system_information = air_time(lambda pad, t: pad.system_info(t.uid))
    # nine 4-byte blocks, against system information and the same nine blocks
    assert before - head_first == pytest.approx(system_information)


def test_a_head_that_does_not_hold_the_tag_is_kept_and_the_rest_read_after_system_information(
    pad,
):
    reader = RecordingReader(pad)
    t = pad.place(demo_tag("30000003", model="iso28560-2"))
    (tag,) = StackReader(reader, stable_rounds=1).poll_once().added
    assert tag.item_id == "30000003"
    assert reader.reads == [(0, 9), (9, 19)], "the head is not read twice"
    assert _ops_for(pad, t.uid) == ["read", "system_info", "read"]


@pytest.mark.parametrize(
    ("memory_bytes", "block_size"),
    [(32, 4), (16, 4), (112, 8), (64, 8)],
    ids=["eight-4-byte-blocks", "four-4-byte-blocks", "8-byte-blocks", "8-byte-blocks-short"],
)
def test_a_tag_with_fewer_or_larger_blocks_is_read_as_before(pad, memory_bytes, block_size):
    """A tag with fewer than nine blocks refuses the head; one with 8-byte blocks gives 72 bytes
    for it. Both are read the way they were before, system information first."""
    from kiosk.devices import tags

    data = tags.TagData(model="iso28560-3", item_id="30000005", owner_institution="LV-DEMO")
    memory = bytearray(tags.encode(data))[:memory_bytes].ljust(memory_bytes, b"\x00")
    t = pad.place(VirtualTag("E004010000000055", memory=memory, block_size=block_size))
    (got,) = StackReader(SimReader(pad), stable_rounds=1).poll_once().added
    pad.remove(t.uid)
    pad.operations.clear()
    pad.place(VirtualTag("E004010000000055", memory=memory, block_size=block_size))
    (before,) = StackReader(_InventoryWithoutDsfid(pad), stable_rounds=1).poll_once().added
    assert got == before
    if memory_bytes >= 32:
        assert got.item_id == "30000005"


def _read_both_ways(pad, memory: bytes, dsfid: int) -> tuple[object, object]:
    uid = "E004010000000066"
    got = []
    for reader_cls in (SimReader, _InventoryWithoutDsfid):
        pad.place(VirtualTag(uid, memory=bytearray(memory), dsfid=dsfid, afi=0x07))
        (tag,) = StackReader(reader_cls(pad), stable_rounds=1).poll_once().added
        pad.remove(uid)
        got.append(tag)
    return got[0], got[1]


def test_damaged_tags_read_head_first_come_out_as_they_did_system_information_first(pad):
    """Whatever a damaged tag decodes to, or why it is refused, does not depend on whether its
    system information was read first (tests/devices/tag_damage.py's corpus of damage kinds)."""
    from tests.devices.tag_damage import corpus

    compared = skipped = 0
    for damaged in corpus(per_model=60, seed=7):
        if not damaged.memory:
            skipped += 1
            continue
        dsfid = damaged.tag.dsfid if damaged.tag.dsfid is not None else 0
        head_first, before = _read_both_ways(pad, damaged.memory, dsfid)
        assert head_first == before, (damaged.kind, damaged.tag.model, damaged.memory.hex())
        compared += 1
    assert compared > 150 and skipped < 30


def test_real_world_tag_memories_read_head_first_come_out_as_they_did_before(pad):
    from tests.devices.test_tags_realworld import VECTORS, dsfid_of, memory_of

    vectors = [v for v in VECTORS if v.get("block_size", 4) == 4]
    assert len(vectors) >= 20
    for vector in vectors:
        dsfid = dsfid_of(vector)
        head_first, before = _read_both_ways(pad, memory_of(vector), dsfid or 0)
        assert head_first == before, vector["id"]
