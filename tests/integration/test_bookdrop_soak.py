"""Book-drop soak: 2,000 returns through the real circulation service, the embedded demo library
system (SIP2 on loopback, SQLite), the simulated pad with the stack reader and verified tag
security, and the simulated sorter, with reader misses, read and write failures, reader
disconnects, link drops and outages, sorter and printer outages injected along the way.

Every return must end in exactly one known state (checked in and secured, queued offline and
secured, or in the exception bin with a reason that matches the fault), and at the end the
library system, the journal, the tags and the sorter's bins must agree item by item.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from kiosk.config import parse
from kiosk.core.bookdrop import BookDrop, Component, FinalState
from kiosk.core.domain import Operation
from kiosk.core.events import TagsChanged
from kiosk.core.ports import ManualClock
from kiosk.core.returns import ReturnSettings
from kiosk.core.routing import ReturnOutcome, RoutingTable
from kiosk.devices import tags as tagcodec
from kiosk.devices.errors import DeviceError
from kiosk.devices.readers.sim import SimReader, SimulatedPad, VirtualTag, demo_tag, demo_uid
from kiosk.devices.security import TagSecurityService
from kiosk.devices.sorter import SimulatedSorter
from kiosk.devices.stack import StackReader
from kiosk.sync.acs import models
from kiosk.sync.acs.server import start_embedded
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client

pytestmark = pytest.mark.slow

RETURNS = int(os.environ.get("SOAK_RETURNS", "2000"))
SECURED, UNSECURED = 0x07, 0xC2
BORROWER, HOLDER = "LV0002", "LV0004"
MAX_POLLS = 40

SITE = """
[kiosk]
mode = "bookdrop"
owner_institutions = ["LV-DEMO"]

[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
timeout_s = 0.5
retries = 0

[offline]
policy = "checkin-only"

[security]
method = "afi"
afi_secured = 0x07
afi_unsecured = 0xC2
write_retries = 2

[sorter]
url = "sim:"
default_bin = 1
exception_bin = 0

[[routing]]
alert_type = "hold_here"
bin = 3
hold_slip = true

[[routing]]
media_type = "006"
bin = 2
"""


class StaffPrinter:
    """The staff slip printer: fails while `error` is set."""

    def __init__(self) -> None:
        self.printed: list[object] = []
        self.error: Exception | None = None

    def print_receipt(self, receipt: object) -> None:
        if self.error is not None:
            raise self.error
        self.printed.append(receipt)


@dataclass
class Expect:
    """What the test knows about one return: which fault it injected and what must follow."""

    item_id: str
    fault: str = ""
    checked_in: bool = False  # the library system got the check-in (now or by forwarding)


@dataclass
class World:
    tags: dict[str, list[VirtualTag]] = field(default_factory=dict)  # item id -> its parts' tags
    checkins: Counter[str] = field(default_factory=Counter)
    lends: Counter[str] = field(default_factory=Counter)


def _add_items(acs_engine: object) -> tuple[list[str], list[str]]:
    singles = [f"3200{n:04d}" for n in range(1, 101)]
    sets = [f"3300{n:04d}" for n in range(1, 11)]
    with Session(acs_engine) as s, s.begin():  # type: ignore[arg-type]
        for n, item_id in enumerate(singles):
            s.add(
                models.ItemRow(
                    id=item_id,
                    title=f"Soak book {n}",
                    media_type="006" if n % 7 == 0 else "001",
                    owner="LV-DEMO",
                    sort_bin="",
                    permanent_location="Soak",
                )
            )
        for n, item_id in enumerate(sets):
            s.add(
                models.ItemRow(
                    id=item_id,
                    title=f"Soak set {n}",
                    media_type="006",
                    parts_in_set=2,
                    owner="LV-DEMO",
                    permanent_location="Soak",
                )
            )
    return singles, sets


def _foreign_tag(item_id: str) -> VirtualTag:
    data = tagcodec.TagData(
        model="iso28560-3",
        item_id=item_id,
        part_number=1,
        parts_in_set=1,
        owner_institution="LV-OTHER",
    )
    memory = bytearray(tagcodec.encode(data, model="iso28560-3"))
    memory += bytes(max(0, 112 - len(memory)))
    return VirtualTag(uid=demo_uid(item_id), memory=memory, afi=UNSECURED, eas=False, label=item_id)


@pytest.mark.timeout(240)
def test_two_thousand_returns_each_end_in_one_known_state(tmp_path: Path) -> None:
    # Memory-backed files when the machine has them: the soak tests the logic, not the disk's fsync.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tmp_path = Path(tempfile.mkdtemp(prefix="kiosk-soak-", dir=shm))
    try:
        _run(tmp_path)
    finally:
        if str(tmp_path).startswith("/dev/shm/"):
            shutil.rmtree(tmp_path, ignore_errors=True)


def _run(tmp_path: Path) -> None:
    rng = random.Random(20261125)
    clock = ManualClock()
    acs = start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}",
        port=0,
        fresh=True,
        max_loans=1_000_000,
        fee_limit="1000",
    )
    try:
        _soak(tmp_path, rng, clock, acs)
    finally:
        acs.stop()


def _soak(tmp_path: Path, rng: random.Random, clock: ManualClock, acs: object) -> None:  # noqa: C901 (one scenario, read top to bottom)
    library = acs.library  # type: ignore[attr-defined]
    faults = acs.faults  # type: ignore[attr-defined]
    cfg = parse(SITE.format(port=acs.port), "soak.toml")  # type: ignore[attr-defined]
    singles, sets = _add_items(library.engine)
    foreign = [f"3900{n:04d}" for n in range(1, 4)]

    journal = Journal(tmp_path / "journal.sqlite", clock=clock)
    circulation = CirculationService(
        Sip2Client(cfg.sip2, clock=clock),
        journal,
        sip2=cfg.sip2,
        offline=cfg.offline,
        location="DEMO",
        clock=clock,
        reconnect_after_s=3.0,
    )
    pad = SimulatedPad(seed=7)
    reader = SimReader(pad, "soak")
    security = TagSecurityService(reader, cfg.security, retry_delay_s=0.0, sleep=lambda _s: None)
    stack = StackReader(reader, stable_rounds=2, security=cfg.security, read_retries=2)
    sorter = SimulatedSorter()
    printer = StaffPrinter()
    drop = BookDrop(
        circulation,
        security,
        sorter,
        clock,
        RoutingTable.from_config(cfg),
        ReturnSettings.from_config(cfg),
        recorder=journal.record_event,
        staff_printer=printer,
    )

    world = World()
    for item_id in singles:
        world.tags[item_id] = [demo_tag(item_id, parts=1, secured=False)]
    for item_id in sets:
        world.tags[item_id] = [demo_tag(item_id, part=p, parts=2, secured=False) for p in (1, 2)]
    for item_id in foreign:
        world.tags[item_id] = [_foreign_tag(item_id)]

    def poll_until(predicate: object) -> None:
        for _ in range(MAX_POLLS):
            change = stack.poll_once()
            if change.error:
                drop.reader_failed(change.error)
                continue
            drop.reader_ok()
            if change.changed:
                drop.handle_tags(
                    TagsChanged(present=change.present, added=change.added, removed=change.removed)
                )
            if predicate(change):  # type: ignore[operator]
                return
        raise AssertionError("the stack reader never reported the change")

    def lend(item_id: str) -> None:
        holder = [h for h in library.holds(item_id=item_id) if h.patron_id == HOLDER]
        outcome = library.checkout(HOLDER if holder else BORROWER, item_id)
        assert outcome.ok, outcome
        world.lends[item_id] += 1
        for t in world.tags[item_id]:
            t.afi = UNSECURED

    link_down_until = sorter_down_until = printer_down_until = -1
    expectations: list[Expect] = []
    for n in range(RETURNS):
        clock.advance(1.0)
        # Outage stretches: the library system, the sorter and the staff printer.
        if n % 400 == 150:
            faults.refuse_connections = True
            faults.drop_connections()
            link_down_until = n + 25
        if n == link_down_until:
            faults.refuse_connections = False
        if n % 500 == 320:
            sorter.set_down("jam at the conveyor")
            sorter_down_until = n + 12
        if n == sorter_down_until:
            sorter.clear_faults()
        if n % 600 == 77:
            printer.error = DeviceError("staff printer out of paper")
            printer_down_until = n + 60
        if n == printer_down_until:
            printer.error = None

        roll = rng.random()
        if roll < 0.01:
            item_id, fault = rng.choice(foreign), "foreign"
        else:
            pool = sets if roll < 0.12 else singles
            item_id = rng.choice(pool)
            if journal.pending_count(item_id):
                item_id = rng.choice([i for i in pool if not journal.pending_count(i)])
            fault = ""
            r = rng.random()
            if pool is sets and r < 0.25:
                fault = "partial_set"
            elif r < 0.03:
                fault = "unreadable"
            elif r < 0.06:
                fault = "write_fails"
            elif r < 0.12:
                fault = "read_flaky"
            elif r < 0.18:
                fault = "write_flaky"
            elif r < 0.24:
                fault = "inventory_miss"
            elif r < 0.26:
                fault = "reader_unplugged"
            elif r < 0.28:
                fault = "link_drop"
            elif r < 0.30:
                fault = "hold"
            if item_id not in foreign and library.loan(item_id) is None:
                lend(item_id)
        if fault == "hold":
            library.place_hold(item_id, HOLDER)

        placed = world.tags[item_id][:1] if fault == "partial_set" else world.tags[item_id]
        first = placed[0].uid
        if fault == "unreadable":
            pad.fail_reads(first, count=50)
        elif fault == "read_flaky":
            pad.fail_reads(first, count=rng.randint(1, 2))
        elif fault == "write_fails":
            pad.fail_writes(first, count=50)
        elif fault == "write_flaky":
            pad.fail_writes(first, count=rng.randint(1, 2), silent=rng.random() < 0.5)
        elif fault == "inventory_miss":
            pad.miss_inventory(first, rounds=rng.randint(1, 3))
        elif fault == "link_drop":
            faults.drop_connections()
        if fault == "reader_unplugged":
            pad.disconnect()
            for _ in range(3):
                change = stack.poll_once()
                assert change.error
                drop.reader_failed(change.error)
            pad.reconnect()

        before = len(drop.history)
        for t in placed:
            pad.place(t)
        uids = {t.uid for t in placed}
        poll_until(lambda c, uids=uids: uids <= {t.uid for t in c.present})
        assert len(drop.history) == before + 1, (
            f"return {n} of {item_id} gave {len(drop.history) - before} results"
        )
        result = drop.history[-1]
        exp = Expect(item_id, fault)
        expectations.append(exp)
        _check_one(
            n,
            result,
            exp,
            fault,
            library,
            journal,
            world,
            sorter_down=sorter.down_reason != "",
            since=clock.now(),
        )
        if exp.checked_in:
            world.checkins[item_id] += 1

        for t in placed:
            pad.remove(t.uid)
        poll_until(lambda c, uids=uids: not (uids & {t.uid for t in c.present}))
        pad.reset_faults()
        drop.tick()
        if n % 50 == 49 and not faults.refuse_connections:
            circulation.forward_offline()

    # Everything back: forward what is left, then the whole picture must agree.
    faults.refuse_connections = False
    sorter.clear_faults()
    printer.error = None
    for _ in range(20):
        clock.advance(5.0)
        drop.tick()
        circulation.forward_offline()
        if journal.pending_count() == 0:
            break
    assert journal.pending_count() == 0

    finals = Counter(r.final for r in drop.history)
    assert sum(finals.values()) == RETURNS == len(expectations)
    assert set(finals) <= set(FinalState)
    assert finals[FinalState.CHECKED_IN_SECURED] > RETURNS // 2
    assert finals[FinalState.QUEUED_OFFLINE_SECURED] > 0
    assert finals[FinalState.EXCEPTION_BIN] > 0
    reasons = Counter(r.outcome for r in drop.history if r.final is FinalState.EXCEPTION_BIN)
    assert set(reasons) <= {
        ReturnOutcome.UNREADABLE_TAG,
        ReturnOutcome.SECURITY_FAILED,
        ReturnOutcome.SORTER_FAILED,
        ReturnOutcome.SET_INCOMPLETE,
        ReturnOutcome.OTHER_LIBRARY,
    }, reasons

    entries = [e for e in journal.entries() if e.operation is Operation.CHECKIN]
    print("soak:", dict(finals), dict(reasons), Counter(e.mode.value for e in entries))
    journal_done = Counter(
        e.item_id for e in entries if e.state in (EntryState.DONE, EntryState.FORWARDED)
    )
    assert not [e for e in entries if e.state not in (EntryState.DONE, EntryState.FORWARDED)], (
        "a check-in was refused or left open"
    )
    for item_id in [*singles, *sets]:
        applied = library.applied(item_id, "checkin")
        assert applied == world.checkins[item_id] == journal_done[item_id], (
            item_id,
            applied,
            world.checkins[item_id],
            journal_done[item_id],
        )
        on_loan = library.loan(item_id) is not None
        assert on_loan == (world.lends[item_id] > world.checkins[item_id]), item_id
        assert library.applied(item_id, "checkout") == world.lends[item_id]
    for item_id in foreign:
        assert journal_done[item_id] == 0

    # The sorter's bins hold exactly the items the drop said it sorted, each in its bin.
    # (While the sorter was down nothing reached a bin; those items fell into the exception bin.)
    routed = Counter(sorter.routed)
    expected_bins = Counter((r.item_id or r.key, r.bin) for r in drop.history if r.sorted)
    assert all(not r.sorted for r in drop.history if r.outcome is ReturnOutcome.SORTER_FAILED)
    assert routed == expected_bins

    # Every outage was recorded when it started and when it ended.
    events = journal.events()
    for component in Component:
        starts = [
            e for e in events if e.kind == "outage_start" and e.detail.startswith(component.value)
        ]
        ends = [
            e for e in events if e.kind == "outage_end" and e.detail.startswith(component.value)
        ]
        assert len(starts) == len(ends) >= 1, (component, len(starts), len(ends))
    assert not drop.state.outages
    slips = sum(1 for r in drop.history if r.hold_slip_printed is not None)
    assert slips > 0, "every hold slip printed, late or not"
    assert len(printer.printed) == slips, "every hold slip printed, late or not"
    assert drop.slips_waiting == 0, "every hold slip printed, late or not"


def _check_one(
    n: int,
    result: object,
    exp: Expect,
    fault: str,
    library: object,
    journal: Journal,
    world: World,
    *,
    sorter_down: bool,
    since: object,
) -> None:
    """Right after the return: its final state must match the fault, the ACS, the journal and the tags."""
    r = result
    final, outcome = r.final, r.outcome  # type: ignore[attr-defined]
    tags_now = world.tags[exp.item_id]
    where = f"return {n} of {exp.item_id} ({fault or 'no fault'}): {final.value}/{outcome.value} {r.message}"  # type: ignore[attr-defined]
    expected_reason = {
        "foreign": ReturnOutcome.OTHER_LIBRARY,
        "partial_set": ReturnOutcome.SET_INCOMPLETE,
        "unreadable": ReturnOutcome.UNREADABLE_TAG,
        "write_fails": ReturnOutcome.SECURITY_FAILED,
    }.get(fault)
    if expected_reason is not None:
        assert final is FinalState.EXCEPTION_BIN, where
        assert outcome is expected_reason, where
        assert r.bin == 0, where  # type: ignore[attr-defined]
    elif sorter_down:
        assert final is FinalState.EXCEPTION_BIN, where
        assert outcome is ReturnOutcome.SORTER_FAILED, where
    else:
        assert final in (FinalState.CHECKED_IN_SECURED, FinalState.QUEUED_OFFLINE_SECURED), where
    reached_acs = outcome in (
        ReturnOutcome.CHECKED_IN,
        ReturnOutcome.QUEUED_OFFLINE,
        ReturnOutcome.SECURITY_FAILED,
    ) or (outcome is ReturnOutcome.SORTER_FAILED)
    exp.checked_in = reached_acs
    # The manual clock moved on one second for this return: these are its journal entries.
    latest = [
        e
        for e in journal.entries(since=since)
        if e.item_id == exp.item_id and e.operation is Operation.CHECKIN
    ]
    if final is FinalState.CHECKED_IN_SECURED:
        assert library.loan(exp.item_id) is None, where  # type: ignore[attr-defined]
        assert latest, where
        assert latest[-1].state is EntryState.DONE, where
    if final is FinalState.QUEUED_OFFLINE_SECURED:
        assert latest, where
        assert latest[-1].state in (
            EntryState.QUEUED,
            EntryState.IN_DOUBT,
            EntryState.DONE,
            EntryState.FORWARDED,
        ), where
    if (
        final in (FinalState.CHECKED_IN_SECURED, FinalState.QUEUED_OFFLINE_SECURED)
        or outcome is ReturnOutcome.SORTER_FAILED
    ):
        assert all(t.afi == SECURED for t in tags_now), where
    if outcome in (
        ReturnOutcome.UNREADABLE_TAG,
        ReturnOutcome.SET_INCOMPLETE,
        ReturnOutcome.OTHER_LIBRARY,
    ):
        assert not latest, where  # never sent to the library system
        assert all(t.afi == UNSECURED for t in tags_now), where
    if outcome is ReturnOutcome.SECURITY_FAILED:
        assert any(t.afi != SECURED for t in tags_now), where
