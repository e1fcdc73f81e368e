"""The journal: durable across reopen, WAL + synchronous=FULL, migrations, no secrets, order, recovery."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

import pytest

from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.journal import EntryState, Journal, JournalError, upgrade


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 11, 25, 10, 0, 0))


def test_row_survives_reopen_with_its_state_and_result(tmp_path, clock):
    path = tmp_path / "j.sqlite"
    j = Journal(path, clock=clock)
    eid = j.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.PENDING,
        patron_id="LV0001",
        item_id="30000001",
    )
    j.mark_sent(eid)
    j.update(
        eid, EntryState.DONE, result={"ok": True, "title": "Zaļā grāmata", "due_date": "20261216"}
    )
    j.close()
    again = Journal(path, clock=clock)
    (entry,) = again.entries()
    assert entry.id == eid
    assert entry.state is EntryState.DONE
    assert entry.attempts == 1
    assert entry.result["title"] == "Zaļā grāmata"
    assert entry.created == datetime(2026, 11, 25, 10, 0, 0)


def test_committed_before_begin_returns_visible_to_another_connection(tmp_path, clock):
    j = Journal(tmp_path / "j.sqlite", clock=clock)
    eid = j.begin(Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000003")
    # A separate plain sqlite3 connection sees the row at once: it was committed, not buffered.
    con = sqlite3.connect(tmp_path / "j.sqlite")
    assert con.execute("select state, item_id from transactions where id=?", (eid,)).fetchone() == (
        "queued",
        "30000003",
    )
    con.close()


def test_wal_and_synchronous_full(tmp_path):
    j = Journal(tmp_path / "j.sqlite")
    assert j.pragma("journal_mode") == "wal"
    assert j.pragma("synchronous") == 2  # FULL
    with pytest.raises(JournalError):
        j.pragma("synchronous; drop table transactions")


def test_migrations_create_schema_and_are_idempotent(tmp_path):
    path = tmp_path / "j.sqlite"
    Journal(path).close()
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert {"transactions", "events", "alembic_version"} <= tables
    head = con.execute("select version_num from alembic_version").fetchall()
    con.close()
    j = Journal(path)  # second open runs the upgrade again: nothing changes, no error
    upgrade(j._engine)
    con = sqlite3.connect(path)
    assert con.execute("select version_num from alembic_version").fetchall() == head == [("0002",)]
    con.close()


def test_no_pin_anywhere_in_the_file(tmp_path, clock):
    path = tmp_path / "j.sqlite"
    j = Journal(path, clock=clock)
    eid = j.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.PENDING,
        patron_id="LV0001",
        item_id="30000001",
        request={"pin": "918273", "AD": "918273", "AC": "secretterm", "language": "000"},
    )
    j.update(eid, EntryState.DONE, result={"ok": True})
    j.close()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("j.sqlite"))
    assert b"LV0001" in data  # the patron id is kept for replay ...
    assert b"918273" not in data  # ... but never the PIN
    assert b"secretterm" not in data


def test_order_since_and_pending(tmp_path, clock):
    j = Journal(tmp_path / "j.sqlite", clock=clock)
    ids = []
    for n in range(5):
        ids.append(
            j.begin(
                Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id=f"3000000{n}"
            )
        )
        clock.advance(60)
    j.update(ids[1], EntryState.FORWARDED)
    j.update(ids[3], EntryState.FORWARD_REFUSED, result={"ok": False, "message": "Nav zināms"})
    assert [e.id for e in j.entries()] == ids
    assert [e.id for e in j.pending_offline()] == [ids[0], ids[2], ids[4]]
    assert j.pending_count() == 3
    assert j.pending_count(item_id="30000002") == 1
    assert [e.id for e in j.refusals()] == [ids[3]]
    since = datetime(2026, 11, 25, 10, 0, 0) + timedelta(seconds=150)
    assert [e.id for e in j.entries(since)] == ids[3:]


def test_json_lines_mask_patron_and_include_events(tmp_path, clock):
    j = Journal(tmp_path / "j.sqlite", clock=clock)
    j.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV00012345",
        item_id="30000001",
    )
    j.record_event("link_down", "ACS 127.0.0.1:6001 not reachable")
    lines = [json.loads(line) for line in j.to_json_lines().splitlines()]
    assert lines[0]["patron_id"] == "******2345"
    assert lines[0]["state"] == "queued"
    assert lines[1] == {
        "type": "event",
        "id": 1,
        "created": "2026-11-25T10:00:00",
        "kind": "link_down",
        "detail": "ACS 127.0.0.1:6001 not reachable",
        "staff_list": False,
    }
    assert "LV00012345" not in j.to_json_lines()
    assert [e.kind for e in j.events()] == ["link_down"]


def test_recover_hands_over_rows_of_a_dead_process_only(tmp_path, clock):
    path = tmp_path / "j.sqlite"
    j = Journal(path, clock=clock)
    never_sent = j.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.PENDING, item_id="30000001"
    )
    on_wire = j.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.PENDING, item_id="30000002"
    )
    j.mark_sent(on_wire)
    mine = j.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.PENDING, item_id="30000003"
    )
    con = sqlite3.connect(path)
    con.execute(
        "update transactions set owner='deadbeef:999999999:1' where id in (?, ?)",
        (never_sent, on_wire),
    )
    con.commit()
    con.close()
    assert j.recover() == 2
    assert j.get(never_sent).state is EntryState.QUEUED
    assert j.get(on_wire).state is EntryState.IN_DOUBT
    assert j.get(mine).state is EntryState.PENDING  # a live writer's row is left alone


def test_unwritable_location_is_a_journal_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(JournalError, match="storage"):
        Journal(blocker / "j.sqlite")


def test_unreadable_rows_give_a_journal_error_or_keep_the_text(tmp_path, clock):
    path = tmp_path / "j.sqlite"
    j = Journal(path, clock=clock)
    good = j.begin(
        Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000001"
    )
    bad = j.begin(Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000002")
    con = sqlite3.connect(path)
    con.execute("update transactions set result='{not json' where id=?", (good,))
    con.commit()
    assert j.get(good).result == {"unreadable": "{not json"}  # kept, shown as text
    con.execute("update transactions set state='teleported' where id=?", (bad,))
    con.commit()
    con.close()
    with pytest.raises(JournalError, match=f"row #{bad}"):
        j.entries()


def test_purge_keeps_open_work_and_refusals(tmp_path, clock):
    j = Journal(tmp_path / "j.sqlite", clock=clock)
    old = datetime(2026, 1, 1, 9, 0, 0)
    done = j.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.DONE,
        patron_id="LV0001",
        item_id="1",
        created=old,
    )
    queued = j.begin(
        Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="2", created=old
    )
    refused = j.begin(
        Operation.CHECKIN,
        mode=Mode.OFFLINE,
        state=EntryState.FORWARD_REFUSED,
        item_id="3",
        created=old,
    )
    doubt = j.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.IN_DOUBT, item_id="4", created=old
    )
    recent = j.begin(
        Operation.CHECKOUT, mode=Mode.ONLINE, state=EntryState.DONE, patron_id="LV0002", item_id="5"
    )
    assert j.purge(datetime(2026, 6, 1)) == 1
    assert [e.id for e in j.entries()] == [queued, refused, doubt, recent]
    assert done not in [e.id for e in j.entries()]


def test_the_forwarders_read_of_a_turn_sees_another_writer_at_once(tmp_path, clock):
    """The journal keeps one connection open for its writes and the forwarder's reads: it must not
    hold a snapshot between them, or a row another process settled would still look open."""
    path = tmp_path / "j.sqlite"
    ours = Journal(path, clock=clock)
    eid = ours.begin(
        Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000003"
    )
    later = ours.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="30000003",
    )
    waits, entry = ours.take_turn("30000003", eid)
    assert (waits, entry.state) == (False, EntryState.QUEUED)
    assert entry.created == datetime(2026, 11, 25, 10, 0, 0), "read back as a date, not text"
    assert ours.take_turn("30000003", later)[0], "the loan waits for the return before it"
    theirs = Journal(path, clock=clock)
    theirs.update(eid, EntryState.FORWARDED, result={"ok": True})
    theirs.close()
    settled = ours.take_turn("30000003", eid)[1]
    assert settled.state is EntryState.FORWARDED
    assert settled.updated == clock.now()
    assert ours.get(eid) == settled, "the same row as SQLAlchemy's own read gives"
    assert ours.take_turn("30000003", later)[0] is False, "the return is settled: the loan may go"
    ours.close()


def test_a_failed_write_loses_no_deferred_answer_and_the_next_write_carries_it(tmp_path, clock):
    path = tmp_path / "j.sqlite"
    j = Journal(path, clock=clock)
    first, second = (
        j.begin(Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id=item)
        for item in ("30000001", "30000002")
    )
    j.mark_sent(first)
    j.update(first, EntryState.FORWARDED, result={"ok": True}, defer=True)
    j._connection().exec_driver_sql("PRAGMA busy_timeout = 50")  # not 10 s of waiting here
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
    with pytest.raises(JournalError, match="write failed"):
        j.mark_sent(second)
    assert j.deferred == 1, "the answer waits for the next commit"
    blocker.execute("ROLLBACK")
    blocker.close()
    j.mark_sent(second)
    assert j.deferred == 0
    plain = sqlite3.connect(path)
    states = dict(plain.execute("select id, state from transactions").fetchall())
    attempts = dict(plain.execute("select id, attempts from transactions").fetchall())
    plain.close()
    assert states == {first: "forwarded", second: "sent"}
    assert attempts == {first: 1, second: 1}, "the failed mark counted no attempt"
    j.close()
