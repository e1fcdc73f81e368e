"""Several kiosk processes on one journal: each row is forwarded by one of them, exactly once.

Real processes (`kiosk sync`, `kiosk circ`, and `kiosk_proc.py`, which does what `kiosk run` does
with the journal) are started in random order against the demo library system in strict mode,
which applies every request it receives; its transaction log is the count of applications.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from kiosk.core.domain import Mode, Operation
from kiosk.sync.journal import EntryState, ItemClaims, Journal, owner_alive, process_owner
from tests.sync.test_powercut import ROOT, write_config

server = pytest.importorskip("kiosk.sync.acs.server")

HERE = Path(__file__).resolve().parent


def start_strict_acs(tmp_path: Path):
    """The demo library system in strict mode: every request it receives is applied and counted."""
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, strict=True)
    assert running.library.strict
    return running


@pytest.fixture
def acs(tmp_path):
    running = start_strict_acs(tmp_path)
    yield running
    running.stop()


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "KIOSK_CRASH_AT"}
    e["PYTHONPATH"] = str(ROOT)
    return e


def spawn(cfg: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kiosk", *argv, "--config", str(cfg)],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def spawn_run(cfg: Path, *actions: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "kiosk_proc.py"), str(cfg), *actions],
        cwd=ROOT,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(
    procs: list[subprocess.Popen], timeout: float = 90, exits: tuple[int, ...] = (0,)
) -> list[str]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode in exits, err
        assert "Traceback" not in err, err
        outs.append(out)
    return outs


# A round of queued offline work that leaves the library as it found it: every item that goes out
# comes back. (operation, patron, item)
ROUND = [
    (Operation.CHECKOUT, "LV0001", "30000001"),
    (Operation.CHECKOUT, "LV0001", "30000002"),
    (Operation.CHECKOUT, "LV0002", "30000003"),
    (Operation.CHECKIN, "", "30000001"),
    (Operation.CHECKOUT, "LV0002", "30000010"),
    (Operation.CHECKIN, "", "30000002"),
    (Operation.CHECKIN, "", "30000003"),
    (Operation.CHECKIN, "", "30000010"),
]


def queue(journal_path: Path, rows, start: datetime) -> list[int]:
    with Journal(journal_path) as j:
        return [
            j.begin(
                op,
                mode=Mode.OFFLINE,
                state=EntryState.QUEUED,
                patron_id=patron,
                item_id=item,
                created=start + timedelta(seconds=n),
                promised_due_date=(start + timedelta(days=14)).date().isoformat()
                if op is Operation.CHECKOUT
                else "",
            )
            for n, (op, patron, item) in enumerate(rows)
        ]


def applications(acs) -> dict[tuple[str, str], int]:
    """(kind, item) -> how many requests the strict library system applied."""
    return {(kind, item): n for (item, kind), n in acs.library.application_counts().items()}


def expected(rows, rounds: int) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for op, _patron, item in rows:
        counts[(op.value, item)] = counts.get((op.value, item), 0) + rounds
    return counts


def direct_service(jpath: Path, port: int):
    """A circulation service in this process on the journal, straight to the library system."""
    from kiosk.config import OfflineSection, Sip2Section
    from kiosk.sync.circulation import CirculationService
    from kiosk.sync.sip2.client import Sip2Client

    s = Sip2Section(
        host="127.0.0.1",
        port=port,
        username="kiosk",
        password="demo",
        institution_id="DEMO",
        location_code="DEMO",
        timeout_s=2.0,
        retries=0,
    )
    return CirculationService(
        Sip2Client(s),
        Journal(jpath),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
    )


# --- the claim itself --------------------------------------------------------------------------


def test_a_claim_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path):
    lockfile = tmp_path / "j.sqlite.claims"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from kiosk.sync.journal import ItemClaims; c = ItemClaims(Path(sys.argv[1])); assert c.acquire('30000001'); print('held', flush=True); sys.stdin.read()",
            str(lockfile),
        ],
        cwd=ROOT,
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        claims = ItemClaims(lockfile)
        assert not claims.acquire("30000001", wait_s=0.05)  # held by the other process
        assert claims.acquire("30000002")  # another item is free
        claims.release("30000002")
        holder.send_signal(signal.SIGKILL)  # the holder dies without releasing anything
        holder.wait(10)
        assert claims.acquire("30000001", wait_s=5)  # the kernel dropped the dead holder's lock
        assert claims.acquire("30000001")  # re-entrant in one thread
        claims.release("30000001")
        claims.release("30000001")
        # Released: a plain lock probe on the same byte now succeeds.
        fd = os.open(lockfile, os.O_RDWR)
        try:
            fcntl.lockf(
                fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, ItemClaims.slot("30000001"), os.SEEK_SET
            )
        finally:
            os.close(fd)
        claims.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_a_dead_owner_is_told_by_its_start_time_not_its_pid(tmp_path):
    """A row left by a dead process whose pid now belongs to another process is recovered."""
    me = process_owner()
    boot, pid, start = me.split(":")
    assert owner_alive(me)
    reused = f"{boot}:{pid}:{int(start) + 1}"  # same pid, another process start: the owner is gone
    assert not owner_alive(reused)
    path = tmp_path / "j.sqlite"
    j = Journal(path)
    sent = j.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.PENDING, item_id="30000009"
    )
    j.mark_sent(sent)
    import sqlite3

    con = sqlite3.connect(path)
    con.execute("update transactions set owner=? where id=?", (reused, sent))
    con.commit()
    con.close()
    assert j.recover() == 1
    assert j.get(sent).state is EntryState.IN_DOUBT
    j.close()


# --- processes racing --------------------------------------------------------------------------


def test_two_kiosk_sync_processes_forward_each_row_once(tmp_path, acs):
    cfg = write_config(tmp_path, acs.port)
    rng = random.Random(9)
    rounds = 3
    start = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    for r in range(rounds):
        ids = queue(tmp_path / "var" / "journal.sqlite", ROUND, start + timedelta(minutes=r))
        first = spawn(cfg, "sync")
        time.sleep(rng.random() * 0.3)  # the second starts anywhere in the first one's run
        second = spawn(cfg, "sync")
        # A run that met rows the other run holds reports them pending and exits 1 (kiosk sync's
        # contract: work still waiting is not "done"); the sums below say what was forwarded.
        reports = [json.loads(out) for out in finish([first, second], exits=(0, 1))]
        assert sum(x["forwarded"] for x in reports) == len(ids), reports
        assert all(x["refused"] == 0 for x in reports), reports
        with Journal(tmp_path / "var" / "journal.sqlite") as j:
            assert {j.get(i).state for i in ids} == {EntryState.FORWARDED}
            assert j.refusals() == []
    assert applications(acs) == expected(ROUND, rounds)
    assert acs.library.loans_of("LV0001") == ["30000009"]


def test_kiosk_run_and_kiosk_sync_and_kiosk_circ_in_random_order(tmp_path, acs):
    """Live circulation in two processes on items a third process is forwarding."""
    cfg = write_config(tmp_path, acs.port)
    rng = random.Random(10)
    start = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    rounds = 3
    for r in range(rounds):
        ids = queue(tmp_path / "var" / "journal.sqlite", ROUND * 3, start + timedelta(minutes=r))
        # The returns of 30000001 and 30000003 are queued; live, 30000001 is lent again and
        # given back, and 30000003 is lent by `kiosk circ` and returned by the kiosk process.
        starters = [
            lambda: spawn(cfg, "sync"),
            lambda: spawn_run(cfg, "checkout:LV0002:30000001", "checkin:30000001"),
            lambda: spawn(cfg, "circ", "checkout", "LV0001", "30000003"),
        ]
        rng.shuffle(starters)
        procs = []
        for s in starters:
            procs.append(s())
            time.sleep(rng.random() * 0.1)
        for p in procs:
            p.communicate(timeout=90)
            assert p.returncode in (0, 1)  # circ exits 1 when refused
        # What is left (the circ loan) is returned so every round starts alike.
        finish([spawn(cfg, "circ", "checkin", "30000003")])
        finish([spawn(cfg, "sync")])
        with Journal(tmp_path / "var" / "journal.sqlite") as j:
            assert {j.get(i).state for i in ids} == {EntryState.FORWARDED}
            rows = j.entries()
            assert j.refusals() == []
            assert j.pending_count() == 0
    # Every journaled transaction the library system accepted was applied once; nothing else.
    done = {}
    for row in rows:
        if row.operation in (Operation.CHECKOUT, Operation.CHECKIN) and row.state in (
            EntryState.DONE,
            EntryState.FORWARDED,
        ):
            key = (row.operation.value, row.item_id)
            done[key] = done.get(key, 0) + 1
    assert applications(acs) == done
    assert acs.library.loans_of("LV0001") == ["30000009"]
    assert acs.library.loans_of("LV0002") == ["30000008"]


def test_live_circulation_waits_for_an_item_another_process_is_forwarding(tmp_path, acs):
    """Another process holds the item's claim: the checkout sends nothing while it does, and goes
    through once the claim is free (here: its holder died)."""
    jpath = tmp_path / "j.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from kiosk.sync.journal import Journal; j = Journal(sys.argv[1]); assert j.claims.acquire('30000001'); print('held', flush=True); sys.stdin.read()",
            str(jpath),
        ],
        cwd=ROOT,
        env=env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        svc = direct_service(jpath, acs.port)
        busy = svc.checkout("LV0001", "30000001")
        assert not busy.ok
        assert not busy.queued
        assert "still sending" in busy.message
        assert acs.library.applications("30000001", "checkout") == 0
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        done = svc.checkout("LV0001", "30000001")
        assert done.ok
        assert acs.library.applications("30000001", "checkout") == 1
        svc.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_a_later_row_never_overtakes_a_half_done_earlier_one_of_its_item(tmp_path, acs):
    """An earlier row of the item was left `sent` by a process that still runs but no longer
    holds the item (it failed between write and answer): the forwarder hands it over under the
    claim and keeps the item's order, instead of sending the later return first."""
    jpath = tmp_path / "j.sqlite"
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        start = datetime.now().replace(microsecond=0) - timedelta(hours=1)
        checkout, checkin = queue(
            jpath,
            [(Operation.CHECKOUT, "LV0001", "30000001"), (Operation.CHECKIN, "", "30000001")],
            start,
        )
        import sqlite3

        con = sqlite3.connect(jpath)
        con.execute(
            "update transactions set state='sent', owner=? where id=?",
            (process_owner(other.pid), checkout),
        )
        con.commit()
        con.close()
        svc = direct_service(jpath, acs.port)
        assert svc.journal.get(checkout).state is EntryState.SENT  # its writer runs: not recovered
        first = svc.forward_offline()
        assert acs.library.applications("30000001", "checkin") == 0  # the return did not go first
        assert svc.journal.get(checkout).state is EntryState.IN_DOUBT
        assert first.pending == 2
        svc.forward_offline()
        assert [svc.journal.get(i).state for i in (checkout, checkin)] == [EntryState.FORWARDED] * 2
        assert applications(acs) == {("checkout", "30000001"): 1, ("checkin", "30000001"): 1}
        svc.close()
    finally:
        other.kill()
        other.wait(10)
