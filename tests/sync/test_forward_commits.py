"""One fsynced commit per forwarded transaction: the "sent" mark of a row goes to disk in the same
commit as the answer of the row before it, never later than its own request leaves. Against the
demo library system (strict: every request it receives is applied and counted)."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from kiosk.core.domain import Operation
from kiosk.sync.forwarder import Forwarder
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from tests.sync.demo_link import settings_for
from tests.sync.test_claims import queue

server = pytest.importorskip("kiosk.sync.acs.server")

T0 = datetime(2026, 11, 25, 10, 0, 0)
# Offline work of one afternoon: loans of five items, returns of two on loan (one returned
# again after it was lent again here), so rows of one item follow each other too.
WORK = [
    (Operation.CHECKOUT, "LV0001", "30000001"),
    (Operation.CHECKIN, "", "30000009"),
    (Operation.CHECKOUT, "LV0001", "30000002"),
    (Operation.CHECKOUT, "LV0001", "30000003"),
    (Operation.CHECKIN, "", "30000002"),
    (Operation.CHECKOUT, "LV0001", "30000004"),
    (Operation.CHECKOUT, "LV0001", "30000010"),
]


@pytest.fixture
def acs(tmp_path: Path):
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, strict=True)
    yield running
    running.stop()


def test_one_commit_per_forwarded_transaction_and_each_applied_once(tmp_path: Path, acs) -> None:
    queue(tmp_path / "journal.sqlite", WORK, T0)
    journal = Journal(tmp_path / "journal.sqlite")
    commits: list[list[str]] = []  # the states written by each commit, in order
    writing: list[str] = []
    lock = threading.Lock()

    def executed(_conn, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        if statement.startswith("UPDATE transactions"):
            with lock:
                writing.extend(p for p in parameters if p in ("sent", "forwarded"))

    def committed(_conn) -> None:  # noqa: ANN001
        with lock:
            commits.append([w for w in writing if w])
            writing.clear()

    event.listen(journal._engine, "before_cursor_execute", executed)
    event.listen(journal._engine, "commit", committed)
    s = settings_for(acs, timeout_s=5.0, retries=0)
    report = Forwarder(journal, lambda: Sip2Client(s), settings=s).forward_once()
    assert report.to_json() == {"forwarded": len(WORK), "refused": 0, "pending": 0}
    assert [e.state for e in journal.entries()] == [EntryState.FORWARDED] * len(WORK)

    # Two commits a row before: "sent", then the answer. Now one a row, plus the run's closing
    # commits (the last answer, the run's event); no two rows of one item are adjacent here.
    assert len(commits) <= len(WORK) + 2, commits
    # Each "sent" commit after the first carries the previous row's answer with it.
    sent_with_answer = [c for c in commits if "sent" in c and "forwarded" in c]
    assert len(sent_with_answer) >= len(WORK) - 2, commits

    lib = acs.library
    for op, _patron, item in WORK:
        kind = "checkout" if op is Operation.CHECKOUT else "checkin"
        expected = sum(1 for o, _p, i in WORK if o is op and i == item)
        assert lib.applications(item, kind) == expected, (item, kind)
    assert sorted(lib.loans_of("LV0001")) == ["30000001", "30000003", "30000004", "30000010"]
    journal.close()


def test_rows_of_one_item_in_a_row_wait_for_the_earlier_answer(tmp_path: Path, acs) -> None:
    """A loan and its return queued one after the other: the return is sent only after the loan's
    answer is on disk, so it never sees its own item's earlier row still "sent"."""
    rows = [(Operation.CHECKOUT, "LV0001", "30000001"), (Operation.CHECKIN, "", "30000001")]
    queue(tmp_path / "journal.sqlite", rows, T0)
    journal = Journal(tmp_path / "journal.sqlite")
    s = settings_for(acs, timeout_s=5.0, retries=0)
    report = Forwarder(journal, lambda: Sip2Client(s), settings=s).forward_once()
    assert report.to_json() == {"forwarded": 2, "refused": 0, "pending": 0}
    assert acs.library.applications("30000001", "checkout") == 1
    assert acs.library.applications("30000001", "checkin") == 1
    assert "30000001" not in acs.library.loans_of("LV0001")
    assert journal.deferred == 0
    journal.close()
