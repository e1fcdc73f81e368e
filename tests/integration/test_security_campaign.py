"""Security-state campaign: checkouts with their security writes and undos on the FEIG and 3M
frame-level emulators over real pseudo-terminals, while the stack reader polls the same reader
from its own thread, against the embedded demo library system over SIP2 on loopback.

Faults are injected on the tags at random: read-backs that fail (a few times, or every time),
writes that fail or are lost silently, tags lifted right after a write landed, tags without an
EAS bit under method "both". After every checkout, and again at the end, each item's tag must be
in the state its loan calls for (on loan: unsecured; not on loan: secured) - or the item is on
the staff list. The default run is bounded; `-m slow` runs hundreds of rounds per reader.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from kiosk.config import SecuritySection, Sip2Section
from kiosk.core.checkout import ItemStatus, StackCheckout
from kiosk.core.events import TagsChanged
from kiosk.core.ports import ManualClock
from kiosk.devices.readers import open_reader
from kiosk.devices.readers.emulators import FeigEmulator, FrameEmulator, ThreeMEmulator
from kiosk.devices.readers.sim import SimulatedPad, VirtualTag, demo_tag
from kiosk.devices.security import TagSecurityService
from kiosk.devices.stack import StackReader
from kiosk.sync.acs import models
from kiosk.sync.acs.server import start_embedded
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client

SECURED, UNSECURED = 0x07, 0xC2
PATRONS = (("LV0001", "1234"), ("LV0002", None))
ITEMS = [f"3400{n:04d}" for n in range(1, 25)]
FAULTS = (
    "none",
    "none",
    "read_back_flaky",
    "read_back_lost",
    "write_fails",
    "write_lost",
    "lifted",
    "frames_lost",
)
# How long the stack reader may take to show a change on the pad is counted in its own answered
# inventories, not in seconds: the round under way when the pad changed may still report the old
# set, so `stable_rounds` more must show the change. Wall time bounds only a reader thread that
# stopped or never got the CPU (on a loaded machine a reader's answers can take seconds).
WALL_S = 60.0

SECURITY = SecuritySection(
    method="both", afi_secured=SECURED, afi_unsecured=UNSECURED, write_retries=2
)


def _add_items(engine: object) -> None:
    with Session(engine) as s, s.begin():  # type: ignore[arg-type]
        for n, item_id in enumerate(ITEMS):
            s.add(models.ItemRow(id=item_id, title=f"Campaign book {n}", owner="LV-DEMO"))


def _secured(tag: VirtualTag) -> bool | None:
    """True / False when AFI (and EAS, where the tag has it) agree; None when they disagree."""
    afi = {SECURED: True, UNSECURED: False}.get(tag.afi)
    if afi is None or (tag.eas_supported and tag.eas is not afi):
        return None
    return afi


def _wait(predicate: object, what: str, rig: Rig, uids: set[str]) -> None:
    stack = rig.stack
    rounds = stack.stable_rounds + 1
    first_answered, first_failed = stack.rounds_answered, stack.rounds_failed
    deadline = time.monotonic() + WALL_S
    while True:
        # Counted before the check: a round that ends after it has not been looked at.
        answered = stack.rounds_answered - first_answered
        if predicate():  # type: ignore[operator]
            return
        failed = stack.rounds_failed - first_failed
        if answered >= rounds:
            raise AssertionError(
                f"the stack reader never reported {what} in {answered} answered inventories "
                f"({failed} failed)\n{_diagnosis(rig, uids)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the stack reader ran {answered} answered and {failed} failed inventories in "
                f"{WALL_S:g} s and never reported {what}\n{_diagnosis(rig, uids)}"
            )
        time.sleep(0.005)


def _diagnosis(rig: Rig, uids: set[str]) -> str:
    """What the stack reader holds, what lies on the pad and what the reader last answered."""
    stack, emu = rig.stack, rig.emu
    held = sorted(t.uid for t in stack.current())
    lines = [
        f"round's uids: {sorted(uids)}",
        f"stack reader holds: {held} (of the round's: {sorted(uids & set(held))})",
        f"pad holds: {sorted(t.uid for t in rig.pad.tags)}",
        f"stack reader rounds: {stack.rounds_answered} answered, {stack.rounds_failed} failed",
        f"its last round: {stack.last_change}",
        f"emulator faults still queued: {list(emu.pending_faults)}",
        "last exchanges (request -> answer [fault]):",
    ]
    for request, answer, fault in list(emu.exchanges)[-30:]:
        lines.append(f"  {request.hex(' ')} -> {answer.hex(' ') or '-'} {fault}")
    return "\n".join(lines)


def _emulator(kind: str, pad: SimulatedPad) -> FrameEmulator:
    # Three tags per FEIG inventory answer, so a pad of several items needs MORE frames.
    return FeigEmulator(pad, max_data_sets=3) if kind == "feig" else ThreeMEmulator(pad)


def campaign(kind: str, tmp_path: Path, rounds: int, seed: int) -> Counter[str]:
    rng = random.Random(seed)
    clock = ManualClock()
    acs = start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}", port=0, fresh=True, max_loans=10_000, strict=True
    )
    tally: Counter[str] = Counter()
    try:
        library = acs.library
        _add_items(library.engine)
        sip2 = Sip2Section(
            port=acs.port,
            username="kiosk",
            password="demo",
            location_code="DEMO",
            institution_id="DEMO",
            timeout_s=2.0,
            retries=0,
        )
        journal = Journal(tmp_path / "journal.sqlite", clock=clock)
        circulation = CirculationService(
            Sip2Client(sip2, clock=clock),
            journal,
            sip2=sip2,
            location="DEMO",
            clock=clock,
        )
        tags = {item_id: demo_tag(item_id, parts=1, secured=True) for item_id in ITEMS}
        for t in list(tags.values())[::5]:
            t.eas_supported, t.eas = False, False  # TI Tag-it style: AFI alone decides
        pad = SimulatedPad()
        emu = _emulator(kind, pad)
        with emu.serve_pty(link_dir=tmp_path) as port:
            reader = open_reader(f"{kind}:{port.path}", timeout_s=0.3, retries=1)
            security = TagSecurityService(reader, SECURITY, retry_delay_s=0)
            stack = StackReader(reader, stable_rounds=1, security=SECURITY, read_retries=2)
            stack.start(interval_s=0.002)
            try:
                for n in range(rounds):
                    rig = Rig(
                        rng, clock, tags, pad, emu, stack, security, circulation, journal, library
                    )
                    _round(n, rig, tally)
            finally:
                stack.stop()
                reader.close()
        staff = _staff_items(journal)
        for item_id, t in tags.items():
            on_loan = library.loan(item_id) is not None
            if _secured(t) is not (not on_loan):
                assert item_id in staff, (item_id, on_loan, hex(t.afi), t.eas)
        tally["staff_list"] = len(staff)
        # The strict library system applied each journaled checkout and check-in exactly once.
        done = Counter(
            (e.item_id, e.operation.value) for e in journal.entries() if e.state is EntryState.DONE
        )
        for item_id in ITEMS:
            for op in ("checkout", "checkin"):
                applied = library.applications(item_id, op)
                assert applied == done[(item_id, op)], (item_id, op, applied)
                tally[f"applied_{op}"] += applied
        circulation.close()
    finally:
        acs.stop()
    print(f"{kind} campaign:", dict(sorted(tally.items())))
    return tally


def security_calls_for(pad: SimulatedPad, uid: str) -> list[str]:
    """The AFI writes the pad saw for this tag since the round's checkout began (method "both"
    writes the AFI first, so every security write attempt shows here)."""
    return [op for op, u in pad.operations if u == uid and op == "afi"]


def _staff_items(journal: Journal) -> set[str]:
    return {
        e.detail.split()[1].rstrip(":") for e in journal.events() if e.kind == "security_to_desk"
    }


@dataclass
class Rig:
    """Everything one campaign round works with."""

    rng: random.Random
    clock: ManualClock
    tags: dict[str, VirtualTag]
    pad: SimulatedPad
    emu: FrameEmulator
    stack: StackReader
    security: TagSecurityService
    circulation: CirculationService
    journal: Journal
    library: Any


def _round(n: int, rig: Rig, tally: Counter[str]) -> None:
    rng, clock, tags, pad, emu, stack = rig.rng, rig.clock, rig.tags, rig.pad, rig.emu, rig.stack
    security, circulation, journal, library = (
        rig.security,
        rig.circulation,
        rig.journal,
        rig.library,
    )
    clock.advance(60.0)
    patron, pin = PATRONS[n % len(PATRONS)]
    placed = rng.sample(sorted(tags), rng.randint(1, 4))
    for item_id in placed:
        pad.place(tags[item_id])
    uids = {tags[i].uid for i in placed}
    # A tag the stack reader could not read (a lost answer hit its reads) is shown as unreadable
    # and gets no security write; it is taken away with the rest.
    _wait(lambda: uids <= {t.uid for t in stack.current()}, "the placed items", rig, uids)
    present = tuple(t for t in stack.current() if t.uid in uids)
    pad.operations.clear()
    # Faults on the tags now that the stack reader has read them: they hit the security writes.
    faults = {item_id: rng.choice(FAULTS) for item_id in placed}
    for item_id, fault in faults.items():
        uid = tags[item_id].uid
        if fault == "read_back_flaky":
            pad.fail_reads(uid, rng.randint(1, 2))
        elif fault == "read_back_lost":
            pad.fail_reads(uid, 40)
        elif fault == "write_fails":
            pad.fail_writes(uid, rng.randint(1, 8))
        elif fault == "write_lost":
            pad.fail_writes(uid, rng.randint(1, 8), silent=True)
        elif fault == "lifted":
            pad.lift_after_write(uid)
        elif fault == "frames_lost":
            # The next answers on the wire are lost, whichever thread's request they answer: a
            # write that landed without its answer, a read-back that timed out, a failed poll.
            emu.inject("silent", rng.randint(1, 3))
        tally[f"fault_{fault}"] += 1
    before = {item_id: library.loan(item_id) for item_id in placed}
    co = StackCheckout(circulation, security, patron, pin=pin, recorder=journal.record_event)
    state = co.handle_tags(TagsChanged(present=present, added=present))
    staff = _staff_items(journal)
    for item in state.items:
        tally[item.status.value] += 1
        tally["undone"] += item.undone
        if item.status is ItemStatus.UNREADABLE:
            assert not security_calls_for(pad, item.key.removeprefix("uid:")), item
            continue
        t = tags[item.item_id]
        loan = library.loan(item.item_id)
        told = (
            n,
            item.item_id,
            item.status,
            item.undone,
            item.message,
            faults[item.item_id],
            hex(t.afi),
            t.eas,
            [
                (x.kind, x.patron_id, x.transaction_date, x.renewal)
                for x in library.transactions(item.item_id)
            ],
            [
                (e.operation.value, e.state.value, e.error)
                for e in journal.entries()
                if e.item_id == item.item_id
            ],
            before[item.item_id],
        )
        if item.status is ItemStatus.CHECKED_OUT:
            assert loan is not None, str(told)
            assert loan.patron_id == patron, str(told)
            assert _secured(t) is False, str(told)
        elif item.status is ItemStatus.REFUSED:
            # Not borrowed now: the loan is as it was and the tag matches it.
            was = before[item.item_id]
            assert (loan is None) == (was is None), str(told)
            assert _secured(t) is (loan is None), str(told)
        else:
            assert item.status is ItemStatus.TO_DESK, str(told)
            assert item.item_id in staff, str(told)
    # The patron takes the items away (lifted ones are gone already); staff set the desk items right.
    pad.reset_faults()
    for item_id in placed:
        pad.remove(tags[item_id].uid)
    _wait(lambda: not uids & {t.uid for t in stack.current()}, "the items taken away", rig, uids)
    for item in state.items:
        if item.status is ItemStatus.TO_DESK:
            on_loan = library.loan(item.item_id) is not None
            t = tags[item.item_id]
            t.afi = UNSECURED if on_loan else SECURED
            t.eas = t.eas_supported and not on_loan
            tally["fixed_at_desk"] += 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["feig", "3m"])
def test_every_tag_matches_its_loan_or_is_on_the_staff_list(kind: str, tmp_path: Path) -> None:
    tally = campaign(kind, tmp_path, rounds=10, seed=20261207)
    assert tally["checked_out"] > 0
    assert tally["undone"] > 0
    assert tally["to_desk"] > 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("kind", ["feig", "3m"])
def test_security_campaign_long(kind: str, tmp_path: Path) -> None:
    tally = campaign(kind, tmp_path, rounds=400, seed=7)
    assert tally["checked_out"] > 0
    assert tally["undone"] > 0
    assert tally["to_desk"] > 0
