"""Identifiers the link cannot carry, and rows that keep failing: refused up front, held back per
item, on the staff list after N failures; never a queue stopped for everyone."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fake_acs import FakeAcs

from kiosk.config import OfflineSection
from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.circulation import CirculationService, unsendable
from kiosk.sync.forwarder import Forwarder
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import decode

T0 = datetime(2026, 11, 25, 10, 0, 0)
CYRILLIC_ID = "3000Ж001"  # a tag written at a Russian-speaking branch; cp1257 has no Ж


@pytest.fixture
def fake():
    acs = FakeAcs(encoding="cp1257")
    yield acs
    acs.close()


def service(tmp_path, fake, **overrides) -> CirculationService:
    s = fake.settings(**overrides)
    clock = ManualClock(T0)
    journal = Journal(tmp_path / "j.sqlite", clock=clock)
    return CirculationService(
        Sip2Client(s),
        journal,
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        clock=clock,
    )


def test_unsendable_says_why(fake):
    s = fake.settings()
    assert unsendable("30000001", s) == ""
    assert "cp1257" in unsendable(CYRILLIC_ID, s) and "'Ж'" in unsendable(CYRILLIC_ID, s)
    assert "SIP2 cannot carry" in unsendable("3000|001", s)
    assert "empty" in unsendable("  ", s)
    assert unsendable("LV0001", s, "patron id") == ""


@pytest.mark.parametrize("operation", ["checkout", "checkin"])
def test_an_item_id_the_charset_cannot_carry_is_refused_before_journaling(
    tmp_path, fake, operation
):
    svc = service(tmp_path, fake)
    res = (
        svc.checkout("LV0001", CYRILLIC_ID) if operation == "checkout" else svc.checkin(CYRILLIC_ID)
    )
    assert not res.ok and not res.in_doubt and not res.queued
    assert "item id cannot be sent to the library system" in res.message
    assert fake.frames("11") == [] and fake.frames("09") == []
    (row,) = svc.journal.entries()
    assert row.state is EntryState.REFUSED and "cp1257" in row.error and "never sent" in row.error
    assert svc.journal.pending_count() == 0  # nothing for the forwarder to trip over
    ok = svc.checkout("LV0001", "30000001")  # the next item goes through at once
    assert ok.ok and ok.mode is Mode.ONLINE
    svc.close()


def test_the_forwarder_holds_back_only_the_item_that_cannot_be_sent(tmp_path, fake):
    """A row an older kiosk queued with such an id goes to the staff list; the rest is forwarded."""
    journal = Journal(tmp_path / "j.sqlite")
    bad = journal.begin(
        Operation.CHECKIN,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        item_id=CYRILLIC_ID,
        created=T0,
    )
    doubt = journal.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.IN_DOUBT,
        patron_id="LV0001",
        item_id="3000Ж002",
        created=T0,
    )
    good = [
        journal.begin(
            Operation.CHECKIN,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            item_id=f"3000000{n}",
            created=T0 + timedelta(minutes=n),
        )
        for n in (2, 3)
    ]
    s = fake.settings()
    report = Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO").forward_once()
    assert report.to_json() == {"forwarded": 2, "refused": 2, "pending": 0}
    assert [journal.get(i).state for i in good] == [EntryState.FORWARDED] * 2
    staff = {e.id: e for e in journal.refusals()}
    assert set(staff) == {bad, doubt}
    assert all("cannot carry" in e.error and e.to_json()["staff_list"] for e in staff.values())
    assert [decode(f, encoding="cp1257").get("AB") for f in fake.frames("09")] == [
        "30000002",
        "30000003",
    ]


def test_a_row_that_keeps_failing_holds_back_its_item_only_and_goes_to_staff_after_n(
    tmp_path, fake
):
    def script(conn, frame):
        req = decode(frame, encoding="cp1257")
        if req.command == "11" and req.get("AB") == "30000005":
            conn.close()  # the library system drops the line on this one request, every time
            return
        fake.default_script(conn, frame)

    fake.script = script
    journal = Journal(tmp_path / "j.sqlite")
    checkout = journal.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="30000005",
        created=T0,
        promised_due_date="2026-12-09",
    )
    other = journal.begin(
        Operation.CHECKIN,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        item_id="30000006",
        created=T0 + timedelta(minutes=1),
    )
    later = journal.begin(
        Operation.CHECKIN,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        item_id="30000005",
        created=T0 + timedelta(minutes=2),
    )
    s = fake.settings(retries=0)
    fw = Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO", max_failures=3)

    first = fw.forward_once()
    assert journal.get(other).state is EntryState.FORWARDED  # the queue did not stop
    assert first.to_json() == {"forwarded": 1, "refused": 0, "pending": 2}
    assert (
        journal.get(checkout).state is EntryState.IN_DOUBT and journal.get(checkout).failures == 1
    )
    assert journal.get(later).state is EntryState.QUEUED  # its item's later entry waits, in order
    fw.forward_once()
    assert journal.get(checkout).failures == 2 and journal.get(later).state is EntryState.QUEUED
    fw.forward_once()
    staff = journal.get(checkout)
    assert (
        staff.state is EntryState.STAFF and staff.failures == 3 and "failed 3 times" in staff.error
    )
    assert [e.id for e in journal.refusals()] == [checkout]
    last = fw.forward_once()
    assert journal.get(later).state is EntryState.FORWARDED
    assert last.pending == 0
    assert len(fake.frames("11")) == 3  # each send of the failing row was counted
