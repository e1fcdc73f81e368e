"""Unanswered transactions end as the patron was told, against the strict demo library system.

The answer is lost on a loopback proxy in front of the demo library system (strict: every request
it receives is applied and counted); the kiosk's forwarder then settles the journal row over a
direct connection. Each case counts the applications at the library system.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from kiosk.config import OfflineSection, Sip2Section
from kiosk.core.domain import Mode, Operation, Refusal
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from tests.sync.test_powercut import AnswerEater

server = pytest.importorskip("kiosk.sync.acs.server")


@pytest.fixture
def acs(tmp_path):
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, strict=True)
    yield running
    running.stop()


def settings(port: int, **kw) -> Sip2Section:
    base = {
        "host": "127.0.0.1",
        "port": port,
        "username": "kiosk",
        "password": "demo",
        "institution_id": "DEMO",
        "location_code": "DEMO",
        "timeout_s": 1.5,
        "retries": 0,
    }
    base.update(kw)
    return Sip2Section(**base)


def service(tmp_path, port: int) -> CirculationService:
    s = settings(port)
    return CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite"),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
    )


def unanswered(tmp_path, acs, prefix: bytes, do, *, eat_requests: bool = False):
    """Run `do(service)` with answers (or requests) starting with `prefix` lost on the line."""
    proxy = AnswerEater(acs.port, prefix, eat_requests=eat_requests)
    svc = service(tmp_path, proxy.port)
    try:
        res = do(svc)
    finally:
        svc.close()
        proxy.close()
    return res


def forward(tmp_path, acs):
    svc = service(tmp_path, acs.port)
    try:
        return svc.forward_offline(), svc.journal.entries()
    finally:
        svc.close()


# --- defect 3: an unanswered checkout is reversed, not completed --------------------------------


def test_unanswered_checkout_applied_by_the_library_is_reversed_with_its_own_date(tmp_path, acs):
    lib = acs.library
    res = unanswered(tmp_path, acs, b"12", lambda svc: svc.checkout("LV0001", "30000001"))
    assert res.in_doubt
    assert not res.ok
    assert "not borrowed" in res.message
    assert not res.desensitize
    assert lib.applications("30000001", "checkout") == 1
    assert "30000001" in lib.loans_of("LV0001")
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    assert "30000001" not in lib.loans_of("LV0001")  # as the patron was told
    assert lib.applications("30000001", "checkout") == 1  # never sent again
    assert lib.applications("30000001", "checkin") == 1  # undone once
    original, reversal = rows
    assert original.state is EntryState.REVERSED
    assert original.result["reversed_by"] == reversal.id
    assert reversal.reversal_of == original.id
    assert reversal.state is EntryState.DONE
    assert reversal.patron_id == "LV0001"
    (loan, back) = lib.transactions("30000001")
    # Returned as of the loan itself (the library system records the return date it was sent).
    assert back.kind == "checkin"
    assert back.effective == datetime.strptime(loan.transaction_date, "%Y%m%d    %H%M%S")
    assert reversal.request["return_date"] == original.created.isoformat()
    assert forward(tmp_path, acs)[0].to_json() == {"forwarded": 0, "refused": 0, "pending": 0}
    assert lib.applications("30000001", "checkin") == 1


def test_unanswered_checkout_followed_by_a_successful_one_is_left_alone(tmp_path, acs):
    """The patron tried again and was told "borrowed": that loan stands, nothing is reversed."""
    lib = acs.library
    first = unanswered(tmp_path, acs, b"12", lambda svc: svc.checkout("LV0001", "30000001"))
    with Journal(tmp_path / "j.sqlite") as j:
        later = j.begin(
            Operation.CHECKOUT,
            mode=Mode.ONLINE,
            state=EntryState.DONE,
            patron_id="LV0001",
            item_id="30000001",
            result={"ok": True},
        )
    report, rows = forward(tmp_path, acs)
    assert report.pending == 0
    assert "30000001" in lib.loans_of("LV0001")
    assert lib.applications("30000001", "checkin") == 0
    row = {r.id: r for r in rows}[first.journal_id]
    assert row.state is EntryState.REFUSED
    assert f"#{later}" in row.result["reconciliation"]


# --- defect 3 and 10: an unanswered renewal -----------------------------------------------------


def test_unanswered_renewal_applied_goes_to_staff_with_what_the_library_shows(tmp_path, acs):
    lib = acs.library
    due_before = lib.loan("30000009").due
    res = unanswered(tmp_path, acs, b"30", lambda svc: svc.renew("LV0001", "30000009"))
    assert res.in_doubt
    assert "not renewed" in res.message
    assert lib.applications("30000009", "renew") == 1
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 0, "refused": 1, "pending": 0}
    (row,) = rows
    assert row.state is EntryState.STAFF
    assert row.on_staff_list
    due_now = lib.loan("30000009").due
    assert due_now > due_before
    assert f"due {due_now:%Y%m%d}" in row.error
    assert f"was {due_before:%Y%m%d}" in row.error
    assert lib.applications("30000009", "renew") == 1  # never sent again


def test_unanswered_renewal_not_applied_is_settled_not_sent_to_staff(tmp_path, acs):
    """The request never reached the library system: 17 shows the due date unchanged."""
    lib = acs.library

    res = unanswered(
        tmp_path, acs, b"29", lambda svc: svc.renew("LV0001", "30000009"), eat_requests=True
    )
    assert res.in_doubt
    assert not res.ok
    report, rows = forward(tmp_path, acs)
    (row,) = rows
    assert row.state is EntryState.REFUSED
    assert not row.on_staff_list
    assert "unchanged" in row.result["reconciliation"]
    assert report.refused == 0
    assert lib.applications("30000009", "renew") == 0


# --- defect 9: an unanswered return never discharges a later loan --------------------------------


def test_unanswered_return_then_a_later_loan_by_someone_else_counts_as_applied(tmp_path, acs):
    """The loan was made at this kiosk, so the journal knows whose loan the return ended; 63 of
    that patron shows the loan there now is not theirs."""
    lib = acs.library
    lent = unanswered(tmp_path, acs, b"XX", lambda svc: svc.checkout("LV0001", "30000001"))
    assert lent.ok
    res = unanswered(tmp_path, acs, b"10", lambda svc: svc.checkin("30000001"))
    assert res.in_doubt
    assert lib.applications("30000001", "checkin") == 1
    assert lib.checkout("LV0002", "30000001").ok  # at the desk, someone else borrows it
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    assert lib.loans_of("LV0002") == ["30000001", "30000008"]  # the later loan stands
    assert lib.applications("30000001", "checkin") == 1
    assert rows[-1].state is EntryState.DONE
    assert "counted as applied" in rows[-1].result["reconciliation"]


def test_unanswered_queued_return_then_a_later_loan_counts_as_applied(tmp_path, acs):
    """A return queued offline (the loan is not in this journal): the forwarder reads the loan's
    due date before sending it, and a loan with another due date later is someone else's."""
    lib = acs.library
    with Journal(tmp_path / "j.sqlite") as j:
        eid = j.begin(
            Operation.CHECKIN,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            item_id="30000009",
            created=datetime.now().replace(microsecond=0) - timedelta(hours=1),
        )
    proxy = AnswerEater(acs.port, b"10")
    svc = service(tmp_path, proxy.port)
    try:
        assert svc.forward_offline().pending == 1
    finally:
        svc.close()
        proxy.close()
    assert lib.applications("30000009", "checkin") == 1
    with Journal(tmp_path / "j.sqlite") as j:
        row = j.get(eid)
    assert row.state is EntryState.IN_DOUBT
    assert row.request["loan_before"]["charged"] is True
    assert lib.checkout("LV0002", "30000009").ok
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    assert "30000009" in lib.loans_of("LV0002")
    assert lib.applications("30000009", "checkin") == 1
    assert rows[-1].state is EntryState.FORWARDED
    assert "counted as applied" in rows[-1].result["reconciliation"]


def test_unanswered_return_not_applied_is_sent_once(tmp_path, acs):
    """The return never reached the library system: the loan it ends (made at this kiosk) is
    still the patron's, so it is sent once more."""
    lib = acs.library
    assert unanswered(tmp_path, acs, b"XX", lambda svc: svc.checkout("LV0001", "30000001")).ok
    res = unanswered(tmp_path, acs, b"09", lambda svc: svc.checkin("30000001"), eat_requests=True)
    assert res.in_doubt
    assert res.refusal is Refusal.LINK_DOWN
    assert lib.applications("30000001", "checkin") == 0
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 1, "refused": 0, "pending": 0}
    assert lib.applications("30000001", "checkin") == 1
    assert "30000001" not in lib.loans_of("LV0001")
    assert rows[-1].state is EntryState.DONE
    assert rows[-1].attempts == 2


def test_unanswered_return_of_a_loan_nobody_can_place_goes_to_staff(tmp_path, acs):
    """Still on loan, and neither the journal nor the library system says whose loan it is: the
    kiosk cannot tell a return that never arrived from a later loan, so staff decide."""
    lib = acs.library
    res = unanswered(tmp_path, acs, b"09", lambda svc: svc.checkin("30000009"), eat_requests=True)
    assert res.in_doubt
    report, rows = forward(tmp_path, acs)
    assert report.to_json() == {"forwarded": 0, "refused": 1, "pending": 0}
    (row,) = rows
    assert row.state is EntryState.STAFF
    assert "whose loan it is cannot be told" in row.error
    assert "status 04" in row.error  # the facts for staff
    assert lib.applications("30000009", "checkin") == 0  # nothing sent blindly
