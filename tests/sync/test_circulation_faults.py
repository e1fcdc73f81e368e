"""Fault tests: garbage, a disconnect in the middle of a reply, a stall, a refused connection.

Whatever the library system does, the journal keeps exactly one row per transaction in the
right state, and reconciliation never applies anything twice.
"""

from __future__ import annotations

import socket
from datetime import datetime

import pytest

from kiosk.config import OfflineSection
from kiosk.core.domain import Mode, Operation, Refusal
from kiosk.core.ports import ManualClock
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import decode, message
from tests.sync.fake_acs import FakeAcs

T0 = datetime(2026, 11, 25, 10, 0, 0)


def make(tmp_path, acs: FakeAcs, **overrides) -> CirculationService:
    s = acs.settings(retries=1, **overrides)
    clock = ManualClock(T0)
    return CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite", clock=clock),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        clock=clock,
    )


def scripted(bad_command: str, misbehave, *, item_status: str = "03"):
    """A script answering normally, except `misbehave(conn, frame, req)` for the first `bad_command`."""

    def script(conn, frame: bytes) -> None:
        req = decode(frame)
        if req.command == bad_command and not conn.acs.state.get("done"):
            conn.acs.state["done"] = True
            misbehave(conn, frame, req)
            return
        if req.command == "97":
            conn.send(conn.state.get("last") or b"96AZFEF6\r")
            return
        ans = FakeAcs.answer(req)
        if req.command == "17":
            now = datetime.now().strftime("%Y%m%d    %H%M%S")
            ans = message(
                "18",
                circulation_status=item_status,
                security_marker="01",
                fee_type="01",
                transaction_date=now,
                fields=[("AB", req.get("AB")), ("AJ", "Zaļā grāmata")],
            )
        if ans is not None:
            conn.state["last"] = conn.reply(ans, req, checksum=req.checksum is not None)

    return script


@pytest.fixture
def fake():
    acs = FakeAcs()
    acs.state = {}
    yield acs
    acs.close()


def only_row(svc: CirculationService):
    rows = svc.journal.entries()
    assert len(rows) == 1, rows
    return rows[0]


def test_garbage_answer_leaves_one_in_doubt_row_then_settled_as_the_patron_was_told(tmp_path, fake):
    fake.script = scripted(
        "11", lambda conn, frame, req: [conn.send(b"12\xff\xfe garbage AZ0000\r") for _ in range(1)]
    )
    svc = make(tmp_path, fake)
    res = svc.checkout("LV0001", "30000001")
    assert res.in_doubt
    assert not res.ok
    assert res.refusal is Refusal.LINK_DOWN
    assert "not borrowed" in res.message
    row = only_row(svc)
    assert row.state is EntryState.IN_DOUBT
    assert row.attempts == 1
    # The ACS shows the item on the shelf (status 03): not applied, which is what the patron was
    # told ("not borrowed", tag still secured). Nothing is sent again.
    report = svc.forward_offline()
    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    assert len(fake.frames("11")) == 1
    row = only_row(svc)
    assert row.state is EntryState.REFUSED
    assert row.attempts == 1
    assert row.result["reconciled"] is True
    svc.close()


def test_disconnect_mid_reply_then_reconciled_without_resend(tmp_path, fake):
    def half_reply(conn, frame, req):
        conn.send(b"101YNN20261125    1015")  # half a checkin response, then the line drops
        conn.close()

    fake.script = scripted("09", half_reply, item_status="03")
    svc = make(tmp_path, fake)
    res = svc.checkin("30000008")
    assert res.in_doubt
    assert only_row(svc).state is EntryState.IN_DOUBT
    # Status 03: the ACS has the item checked in, so the checkin was applied: do not send it again.
    assert svc.forward_offline().forwarded == 1
    assert len(fake.frames("09")) == 1
    row = only_row(svc)
    assert row.state is EntryState.DONE
    assert row.result["reconciled"] is True
    svc.close()


def test_stall_once_is_recovered_by_a_byte_identical_resend(tmp_path, fake):
    fake.script = scripted("11", lambda conn, frame, req: None)  # the first 11 gets no answer
    svc = make(tmp_path, fake, duplicate_rule=True)  # the fake ACS honours the rule
    res = svc.checkout("LV0001", "30000001")
    assert res.ok
    assert not res.in_doubt
    frames = fake.frames("11")
    assert len(frames) == 2
    assert frames[0] == frames[1]  # the idempotency hook: same AY, same AZ
    row = only_row(svc)
    assert row.state is EntryState.DONE
    assert row.attempts == 1
    svc.close()


def test_stall_forever_leaves_one_in_doubt_row(tmp_path, fake):
    base = scripted("", lambda conn, frame, req: None)

    def script(conn, frame):
        if frame[:2] != b"11":
            base(conn, frame)

    fake.script = script
    svc = make(tmp_path, fake, duplicate_rule=True)
    res = svc.checkout("LV0001", "30000001")
    assert res.in_doubt
    assert res.mode is Mode.ONLINE
    frames = fake.frames("11")
    assert len(frames) == 2
    assert frames[0] == frames[1]
    row = only_row(svc)
    assert row.state is EntryState.IN_DOUBT
    assert row.operation is Operation.CHECKOUT
    assert [e.kind for e in svc.journal.events()].count("in_doubt") == 1
    svc.close()


def test_checkout_after_an_idle_close_and_an_unanswered_relogin_is_recorded_offline(tmp_path, fake):
    # The ACS drops the idle link and never answers the login on the new one: the 11 never
    # leaves the kiosk, so the loan is recorded offline, not left in doubt.
    def script(conn, frame: bytes) -> None:
        if conn.index > 0 and frame[:2] == b"93":
            return
        fake.default_script(conn, frame)

    fake.script = script
    svc = make(tmp_path, fake, timeout_s=0.2)
    assert svc.identify_patron("LV0001").ok
    fake.connections[0].close()
    fake.wait_for(lambda: fake.connections[0].closed)

    res = svc.checkout("LV0001", "30000001")

    assert res.ok
    assert res.queued
    assert res.mode is Mode.OFFLINE
    assert not res.in_doubt
    row = only_row_of(svc, Operation.CHECKOUT)
    assert (row.mode, row.state) == (Mode.OFFLINE, EntryState.QUEUED)
    assert [e.kind for e in svc.journal.events()].count("in_doubt") == 0
    assert fake.frames("11") == []
    svc.close()


def only_row_of(svc: CirculationService, op: Operation):
    rows = [r for r in svc.journal.entries() if r.operation is op]
    assert len(rows) == 1, rows
    return rows[0]


def test_refused_connection_queues_offline_in_one_row(tmp_path, fake):
    held = socket.socket()
    held.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    s = fake.settings(port=held.getsockname()[1])
    svc = CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite"),
        sip2=s,
        offline=OfflineSection(policy="checkin-only"),
    )
    ci = svc.checkin("30000008")
    co = svc.checkout("LV0001", "30000001")
    assert ci.queued
    assert ci.mode is Mode.OFFLINE
    assert not co.ok
    assert co.refusal is Refusal.OFFLINE_NOT_ALLOWED
    rows = svc.journal.entries()
    assert [(r.operation, r.state) for r in rows] == [
        (Operation.CHECKIN, EntryState.QUEUED),
        (Operation.CHECKOUT, EntryState.REFUSED),
    ]
    svc.close()
    held.close()


def test_garbage_patron_answer_falls_back_to_offline_identification(tmp_path, fake):
    fake.script = scripted("63", lambda conn, frame, req: conn.send(b"64 this is not a patron\r"))
    svc = make(tmp_path, fake)
    res = svc.identify_patron("LV0001")
    assert res.mode is Mode.OFFLINE
    assert res.patron.loans == ()
    assert "unavailable" in res.patron.screen_message
    assert "link_down" in [e.kind for e in svc.journal.events()]
    assert svc.journal.entries() == []  # identification offline changes nothing
    svc.close()
