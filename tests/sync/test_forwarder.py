"""The forwarder on its own: one connection, link loss mid-run, the background thread, ordering."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
from fake_acs import D, FakeAcs

from kiosk.config import OfflineSection
from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.circulation import CirculationService
from kiosk.sync.forwarder import Forwarder, ForwardReport
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import decode, message

T0 = datetime(2026, 11, 25, 10, 0, 0)


@pytest.fixture
def fake():
    acs = FakeAcs()
    yield acs
    acs.close()


def queue_checkins(journal: Journal, items: list[str]) -> list[int]:
    return [
        journal.begin(
            Operation.CHECKIN,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            item_id=item,
            created=T0 + timedelta(minutes=n),
        )
        for n, item in enumerate(items)
    ]


def wait_until(predicate, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_report_json():
    assert ForwardReport(3, 1, 2).to_json() == {"forwarded": 3, "refused": 1, "pending": 2}
    assert ForwardReport(1, 0, 0).to_json_text() == '{"forwarded": 1, "refused": 0, "pending": 0}'


def test_one_connection_one_login_for_the_whole_queue(tmp_path, fake):
    journal = Journal(tmp_path / "j.sqlite")
    items = [f"3000{n:04d}" for n in range(20)]
    queue_checkins(journal, items)
    s = fake.settings()
    report = Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO").forward_once()
    assert report.to_json() == {"forwarded": 20, "refused": 0, "pending": 0}
    assert len(fake.connections) == 1 and len(fake.frames("93")) == 1
    checkins = [decode(f) for f in fake.frames("09")]
    assert [c.get("AB") for c in checkins] == items  # original order
    assert all(
        c.fixed["no_block"] == "Y" and c.fixed["return_date"] == c.fixed["transaction_date"]
        for c in checkins
    )
    assert checkins[5].fixed["transaction_date"] == "20261125    100500"
    assert [e.state for e in journal.entries()] == [EntryState.FORWARDED] * 20


def test_link_lost_mid_run_keeps_the_rest_queued_and_never_doubles(tmp_path, fake):
    def script(conn, frame):
        req = decode(frame)
        if req.command == "09" and req.get("AB") == "30000003" and not fake.state.get("dropped"):
            fake.state["dropped"] = True
            conn.close()  # the checkin arrived; the line drops before the answer
            return
        if req.command == "17":  # after the drop, the ACS shows 30000003 checked in
            fake.default_script(conn, frame)
            return
        fake.default_script(conn, frame)

    fake.state = {}
    fake.script = script
    journal = Journal(tmp_path / "j.sqlite")
    ids = queue_checkins(journal, ["30000001", "30000002", "30000003", "30000004", "30000005"])
    s = fake.settings(retries=0)
    fw = Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO")
    first = fw.forward_once()
    # Only the item whose answer was lost waits; the others go on over a new connection.
    assert first.forwarded == 4 and first.pending == 1
    assert journal.get(ids[2]).state is EntryState.IN_DOUBT
    assert len(fake.connections) == 2
    second = fw.forward_once()
    assert second.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    sent = [decode(f).get("AB") for f in fake.frames("09")]
    assert sent == [
        "30000001",
        "30000002",
        "30000003",
        "30000004",
        "30000005",
    ]  # 30000003 reconciled, not re-sent
    assert journal.get(ids[2]).result["reconciled"] is True


def test_background_thread_forwards_and_stops(tmp_path, fake):
    journal = Journal(tmp_path / "j.sqlite")
    queue_checkins(journal, ["30000001", "30000002"])
    s = fake.settings()
    fw = Forwarder(journal, lambda: Sip2Client(s), settings=s)
    fw.start(0.02)
    try:
        assert wait_until(lambda: journal.pending_count() == 0)
    finally:
        fw.stop()
    assert fw._thread is None
    queue_checkins(journal, ["30000003"])
    assert journal.pending_count() == 1  # stopped: nothing forwards any more
    assert len(fake.frames("09")) == 2


def test_online_request_waits_for_background_forwarding_of_the_same_item(tmp_path, fake):
    """A background run and an online request for a queued item: no deadlock, queued work first."""
    gate = threading.Event()

    def script(conn, frame):
        if frame[:2] == b"09" and b"AB30000150|" in frame:
            gate.wait(5)  # hold the background run in the middle of the queue
        fake.default_script(conn, frame)

    fake.script = script
    clock = ManualClock(T0)
    s = fake.settings(timeout_s=5)
    journal = Journal(tmp_path / "j.sqlite", clock=clock)
    items = [f"30000{n:03d}" for n in range(100, 200)]
    queue_checkins(journal, items)
    svc = CirculationService(
        Sip2Client(s), journal, sip2=s, offline=OfflineSection(), location="DEMO", clock=clock
    )
    svc.forwarder.start(0.01)
    try:
        assert fake.wait_for(lambda: any(b"AB30000150|" in f for f in fake.frames("09")))
        result: dict = {}
        worker = threading.Thread(
            target=lambda: result.update(r=svc.checkout("LV0001", "30000190"))
        )
        worker.start()
        gate.set()
        worker.join(20)
        assert not worker.is_alive()
        assert result["r"].ok and result["r"].mode is Mode.ONLINE
        assert wait_until(lambda: journal.pending_count() == 0)
    finally:
        svc.close()
    wire = [(f[:2], decode(f).get("AB")) for f in fake.frames() if f[:2] in (b"09", b"11")]
    assert wire.index((b"09", "30000190")) < wire.index((b"11", "30000190"))
    assert sorted(i for c, i in wire if c == b"09") == items  # each queued checkin exactly once


def checkin_answer(req, ok: str = "1", alert: str = "N", fields=()):
    return message(
        "10",
        ok=ok,
        resensitize="Y",
        magnetic_media="N",
        alert=alert,
        transaction_date=D,
        fields=[("AO", "DEMO"), ("AB", req.get("AB")), ("AJ", "Zaļā grāmata"), *fields],
    )


@pytest.mark.parametrize(
    ("fields", "instruction"),
    [
        ([("CL", "3"), ("CV", "01"), ("CY", "LV0004"), ("DA", "Ivan Petrov")], "to the hold shelf"),
        (
            [("CV", "02"), ("CT", "Filiāle Teika"), ("CY", "LV0004"), ("DA", "Ivan Petrov")],
            "send it to Filiāle Teika for the hold",
        ),
    ],
    ids=["hold here", "hold at another branch"],
)
def test_forwarded_return_routed_by_the_library_system_is_kept_and_told_to_staff(
    tmp_path, fake, fields, instruction
):
    def script(conn, frame):
        req = decode(frame)
        if req.command == "09":
            conn.reply(checkin_answer(req, alert="Y", fields=fields), req)
        else:
            fake.default_script(conn, frame)

    fake.script = script
    journal = Journal(tmp_path / "j.sqlite")
    (eid,) = queue_checkins(journal, ["30000003"])
    s = fake.settings()

    report = Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO").forward_once()

    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    entry = journal.get(eid)
    assert entry.state is EntryState.FORWARDED and journal.refusals() == []
    cv = dict(fields)["CV"]
    assert entry.result["routing"] == {
        "sort_bin": dict(fields).get("CL", ""),
        "alert": True,
        "alert_type": cv,
        "destination": dict(fields).get("CT", ""),
    }
    (detail,) = [e.detail for e in journal.events() if e.kind == "forward_routing"]
    assert "item 30000003 (Zaļā grāmata)" in detail and instruction in detail
    assert "**0004" in detail and "LV0004" not in detail and "Ivan" not in detail
    assert "LV0004" not in journal.to_json_lines()


def test_forwarded_plain_return_records_no_staff_event(tmp_path, fake):
    # Koha may send CV 00 with every successful check-in: no alert, nothing for staff to do.
    def script(conn, frame):
        req = decode(frame)
        if req.command == "09":
            conn.reply(checkin_answer(req, fields=[("CV", "00"), ("CL", "1")]), req)
        else:
            fake.default_script(conn, frame)

    fake.script = script
    journal = Journal(tmp_path / "j.sqlite")
    (eid,) = queue_checkins(journal, ["30000001"])
    s = fake.settings()

    Forwarder(journal, lambda: Sip2Client(s), settings=s, location="DEMO").forward_once()

    entry = journal.get(eid)
    assert entry.state is EntryState.FORWARDED
    assert entry.result["routing"] == {
        "sort_bin": "1",
        "alert": False,
        "alert_type": "00",
        "destination": "",
    }
    assert [e.kind for e in journal.events() if e.kind == "forward_routing"] == []
