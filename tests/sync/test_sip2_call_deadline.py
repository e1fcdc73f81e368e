"""Every circulation call has one overall deadline: queueing for the link, reconnecting and
retries all count against it, so a call queued behind another thread's ends on its own bound.

Against the strict demo library system on loopback; the proofs are structural (the call ended
while the link was still held, nothing was sent), never a measured duration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime

import pytest

from kiosk.config import OfflineSection, Sip2Section
from kiosk.core.domain import Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.acs import models
from kiosk.sync.acs.server import RunningAcs, start_embedded
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import Journal
from kiosk.sync.sip2.client import SC_TO_ACS, LinkLock, Sip2Client, Sip2LinkBusy
from kiosk.sync.sip2.codec import Message, Sip2LinkError, message
from tests.sync.demo_link import in_thread, settings_for

D = "20261125    100000"
WAIT_S = 20.0


@pytest.fixture
def acs(tmp_path) -> Iterator[RunningAcs]:
    running = start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True)
    yield running
    running.faults.stall_s = 0.0
    running.stop()


def settings(acs: RunningAcs, **overrides) -> Sip2Section:
    return settings_for(acs, **{"retries": 1, **overrides})


def item_info(item: str) -> Message:
    return message("17", transaction_date=D, fields=[("AO", "DEMO"), ("AB", item), ("AC", "")])


def test_a_checkout_queued_behind_another_call_ends_within_its_own_deadline(tmp_path, acs) -> None:
    s = settings(acs)
    clock = ManualClock(datetime.now().replace(microsecond=0))
    svc = CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite", clock=clock),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        clock=clock,
    )
    assert svc.identify_patron("LV0001", pin="1234").ok  # the link is up
    holding, release = threading.Event(), threading.Event()

    def other_call() -> None:
        with svc._lock:  # another thread's call owns the link (a stalled ACS, a long reconcile)
            holding.set()
            release.wait(WAIT_S)

    other = threading.Thread(target=other_call, daemon=True)
    other.start()
    assert holding.wait(WAIT_S)
    try:
        queued, box = in_thread(lambda: svc.checkout("LV0001", "30000001"))
        queued.join(WAIT_S)
        assert not queued.is_alive(), "the queued checkout waited past its deadline"
        assert not release.is_set(), "it ended while the link was held"
        assert other.is_alive(), "it ended while the link was held"
    finally:
        release.set()
        other.join(WAIT_S)
    assert len(box) == 1
    error = box[0]
    assert isinstance(error, Sip2LinkBusy), error
    assert error.maybe_delivered is False, error
    assert acs.library.applications("30000001", models.CHECKOUT) == 0, "nothing was sent"
    assert [e for e in svc.journal.entries() if e.operation is Operation.CHECKOUT] == []
    # The link is free again: the next call goes through.
    assert svc.checkout("LV0001", "30000001").ok
    svc.close()


def test_a_request_queued_behind_a_stalled_one_is_not_sent_after_its_deadline(acs) -> None:
    client = Sip2Client(settings(acs, timeout_s=30.0, retries=0))
    client.connect()
    acs.faults.stall_s, acs.faults.stall_commands = 600.0, frozenset({"17"})
    first, first_box = in_thread(lambda: client.request(item_info("30000002")))
    assert acs.faults.reply_held.wait(WAIT_S)  # the first call now owns the link
    try:
        with client.call(budget_s=0.2):
            with pytest.raises(Sip2LinkBusy) as info:
                client.request(item_info("30000003"))
        assert info.value.maybe_delivered is False
        assert "busy" in str(info.value)
    finally:
        acs.faults.stall_s = 0.0
        first.join(WAIT_S)
    assert isinstance(first_box[0], Message)
    assert first_box[0].get("AB") == "30000002"
    sent = [t for _, d, t in client.exchanges if d == SC_TO_ACS and t.startswith("17")]
    assert len(sent) == 1
    assert "AB30000003" not in sent[0]
    client.close()


def test_a_spent_deadline_sends_nothing(acs) -> None:
    client = Sip2Client(settings(acs))
    client.connect()
    before = acs.frames_handled
    with client.call(budget_s=0.0):
        with pytest.raises(Sip2LinkError) as info:
            client.request(
                message(
                    "11",
                    sc_renewal_policy="Y",
                    no_block="N",
                    transaction_date=D,
                    nb_due_date=D,
                    fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AB", "30000001")],
                )
            )
    assert info.value.maybe_delivered is False
    assert acs.frames_handled == before
    client.close()


def test_nested_calls_share_the_outer_deadline(acs) -> None:
    client = Sip2Client(settings(acs))
    with client.call(budget_s=5.0) as outer:
        with client.call(budget_s=100.0) as inner:
            assert inner == outer
    assert client.call_budget_s == 0.5 * (2 + 1)


def test_the_link_lock_is_reentrant_and_shares_one_deadline(acs) -> None:
    client = Sip2Client(settings(acs))
    lock = LinkLock(client)
    with lock:
        with client.call() as outer:
            with lock:
                with client.call() as inner:
                    assert inner == outer
    assert lock.acquire(timeout=0)  # free again
    lock.release()


def test_a_changing_request_is_not_written_without_a_whole_timeout_left(acs) -> None:
    client = Sip2Client(settings(acs, timeout_s=5.0))
    client.connect()
    before = acs.frames_handled
    with client.call(budget_s=1.0):  # less than timeout_s: an answer could not be waited for
        with pytest.raises(Sip2LinkBusy) as info:
            client.request(
                message(
                    "09",
                    no_block="N",
                    transaction_date=D,
                    return_date=D,
                    fields=[("AP", "DEMO"), ("AO", "DEMO"), ("AB", "30000009"), ("AC", "")],
                )
            )
        assert info.value.maybe_delivered is False
        assert client.request(item_info("30000009")).command == "18", "a read may still go"
    assert acs.frames_handled == before + 1
    assert acs.library.applications("30000009", models.CHECKIN) == 0
    client.close()
