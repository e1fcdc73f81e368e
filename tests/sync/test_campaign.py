"""The randomized power-cut campaign: kiosk processes killed at random points, two forwarders
racing, a library system that answers late or drops the link; nothing lost, nothing doubled.

Each round queues offline work, starts in random order two kiosk processes doing live checkouts,
returns and renewals (on items with queued work too) and two forwarders, half of them over a
flaky line, and kills each with SIGKILL at a random microsecond-to-millisecond point. A clean
forwarding run then settles the journal, and the round is checked against the strict demo
library system (every request it receives applied and counted):

- lost: the patron was told it was done (borrowed, returned, queued) and the library system
  does not show it, or shows the item with someone else;
- doubled: a transaction applied more often than the journal has rows that may have been applied,
  or a loan the patron was told did not happen.

Entries on the staff list are counted, not judged: the facts are there for a person.
The default run is bounded to about 25 s; `-m slow` runs the long version.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_claims import direct_service, queue
from test_powercut import write_config

from kiosk.core.domain import Operation
from kiosk.sync.journal import STAFF_STATES, EntryState, Journal, JournalEntry

server = pytest.importorskip("kiosk.sync.acs.server")

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PATRONS = ("LV0001", "LV0002")
ITEMS = ("30000001", "30000002", "30000003", "30000004", "30000010", "30000009")
TIMEOUT_S = 0.5
APPLIED = (EntryState.DONE, EntryState.FORWARDED, EntryState.REVERSED, EntryState.STAFF)


class FlakyLine:
    """A loopback proxy in front of the library system: answers to checkouts, returns and renewals
    come late (after the kiosk's timeout) or not at all (the line drops after the library system
    applied the request), at random."""

    def __init__(
        self, upstream_port: int, rng: random.Random, p_late: float = 0.15, p_drop: float = 0.15
    ) -> None:
        self.upstream_port = upstream_port
        self.rng = rng
        self.p_late, self.p_drop = p_late, p_drop
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._listener.accept()
                up = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                return
            with self._lock:
                self._socks += [down, up]
            threading.Thread(target=self._requests, args=(down, up), daemon=True).start()
            threading.Thread(target=self._answers, args=(up, down), daemon=True).start()

    def _requests(self, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
            except OSError:
                break
        self._close(src, dst)

    def _answers(self, src: socket.socket, dst: socket.socket) -> None:
        buf = b""
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            buf += data
            while b"\r" in buf:
                frame, buf = buf.split(b"\r", 1)
                if frame[:2] in (b"12", b"10", b"30"):
                    with self._lock:
                        roll = self.rng.random()
                    if roll < self.p_drop:
                        self._close(src, dst)
                        return
                    if roll < self.p_drop + self.p_late:
                        time.sleep(TIMEOUT_S * 1.5)
                try:
                    dst.sendall(frame + b"\r")
                except OSError:
                    self._close(src, dst)
                    return
        self._close(src, dst)

    @staticmethod
    def _close(*socks: socket.socket) -> None:
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            self._close(*self._socks)


@dataclass
class Tally:
    rounds: int = 0
    kills: int = 0
    transactions: int = 0
    lost: int = 0
    doubled: int = 0
    reversed: int = 0
    staff: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"campaign: rounds={self.rounds} kills={self.kills} transactions={self.transactions} "
            f"lost={self.lost} doubled={self.doubled} reversed={self.reversed} staff-list={self.staff}"
        )


def holder(acs, item: str) -> str:
    loan = acs.library.loan(item)
    return loan.patron_id if loan is not None else ""


def plan_round(
    rng: random.Random, acs, start: datetime
) -> tuple[list[tuple[Operation, str, str]], list[list[str]]]:
    """Queued offline rows, and the actions of two live kiosk processes, from the library's state."""
    holders = {item: holder(acs, item) for item in ITEMS}
    items = list(ITEMS)
    rng.shuffle(items)
    queued_items, live_items = items[:2], items[2:]
    queued: list[tuple[Operation, str, str]] = []
    after_queue = dict(holders)
    for item in queued_items:
        for _ in range(rng.randint(1, 3)):
            if after_queue[item]:
                queued.append((Operation.CHECKIN, "", item))
                after_queue[item] = ""
            else:
                patron = rng.choice(PATRONS)
                queued.append((Operation.CHECKOUT, patron, item))
                after_queue[item] = patron
    # Each live process works on its own items, plus (for process 0) an item with queued work,
    # so live circulation meets a forwarder in another process on the same item.
    live: list[list[str]] = [[], []]
    for n, item in enumerate(live_items + queued_items[:1]):
        proc = 0 if n >= len(live_items) else n % 2
        who = after_queue[item]
        if who:
            if rng.random() < 0.5:
                live[proc].append(f"renew:{who}:{item}")
            live[proc].append(f"checkin:{item}")
        else:
            live[proc].append(f"checkout:{rng.choice(PATRONS)}:{item}")
    return queued, live


def run_round(
    tmp_path: Path, acs, flaky: FlakyLine, rng: random.Random, tally: Tally, r: int
) -> None:
    jpath = tmp_path / "var" / "journal.sqlite"
    settings = {"sip2": 'error_detection = "on"', "offline": "max_checkouts = 50"}
    direct = write_config(tmp_path, acs.port, TIMEOUT_S, name="direct", **settings)
    shaky = write_config(tmp_path, flaky.port, TIMEOUT_S, name="flaky", **settings)
    with Journal(jpath) as j:
        first_id = len(j.entries()) + 1
    before = {item: holder(acs, item) for item in ITEMS}
    before_apps = acs.library.application_counts()
    start = datetime.now().replace(microsecond=0) - timedelta(minutes=30 - r)
    queued, live = plan_round(rng, acs, start)
    queue(jpath, queued, start)
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CRASH_AT"}
    env["PYTHONPATH"] = str(ROOT)
    specs = [
        [str(shaky), *live[0]],
        [str(direct if rng.random() < 0.5 else shaky), *live[1]],
        [str(shaky), "--sync"],
        [str(direct), "--sync"],
    ]
    rng.shuffle(specs)
    procs: list[subprocess.Popen] = []
    for spec in specs:
        kill = rng.random() < 0.6
        argv = [sys.executable, str(HERE / "kiosk_proc.py"), *spec]
        if kill:
            # Microseconds to a few hundred milliseconds after the service is up.
            argv += ["--kill-after-us", str(int(10 ** rng.uniform(0, 5.5)))]
        procs.append(
            subprocess.Popen(
                argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
        time.sleep(rng.random() * 0.05)
    told: dict[int, dict] = {}
    for p in procs:
        out, err = p.communicate(timeout=120)
        if p.returncode == -9:
            tally.kills += 1
        else:
            assert p.returncode == 0, err
        assert "Traceback" not in err, err
        for line in out.splitlines():
            data = json.loads(line)
            if "id" in data and data["id"] is not None:
                told[data["id"]] = data
    # Settle: a clean forwarder on a clean line (the killed processes are gone: their rows recover).
    svc = direct_service(jpath, acs.port)
    try:
        for _ in range(10):
            if svc.forward_offline().pending == 0:
                break
        rows = [e for e in svc.journal.entries() if e.id >= first_id]
        assert svc.journal.pending_count() == 0, [
            e.to_json() for e in svc.journal.pending_offline()
        ]
    finally:
        svc.close()
    judge(acs, rows, told, before, before_apps, tally)


def judge(
    acs,
    rows: list[JournalEntry],
    told: dict[int, dict],
    before: dict[str, str],
    before_apps: dict,
    tally: Tally,
) -> None:
    circ = [
        e for e in rows if e.operation in (Operation.CHECKOUT, Operation.CHECKIN, Operation.RENEW)
    ]
    tally.rounds += 1
    tally.transactions += len([e for e in circ if e.reversal_of is None])
    tally.reversed += len([e for e in circ if e.state is EntryState.REVERSED])
    staff_items = {e.item_id for e in circ if e.state in STAFF_STATES}
    tally.staff += len([e for e in circ if e.state in STAFF_STATES])
    # What the patron was told must be what the row ended as.
    for e in circ:
        said = told.get(e.id)
        if said is None or e.reversal_of is not None or e.state in STAFF_STATES:
            continue
        done = e.state in (EntryState.DONE, EntryState.FORWARDED)
        if e.operation is Operation.CHECKIN:
            if (said["ok"] or said["queued"] or said["in_doubt"]) and not done:
                tally.lost += 1
                tally.problems.append(f"return #{e.id} told {said}, ended {e.state}")
        elif (said["ok"] or said["queued"]) and not done:
            tally.lost += 1
            tally.problems.append(f"{e.operation.value} #{e.id} told {said}, ended {e.state}")
        elif not (said["ok"] or said["queued"]) and done:
            tally.doubled += 1
            tally.problems.append(
                f"{e.operation.value} #{e.id} told {said}, yet applied ({e.state})"
            )
    # Each item ends with whom the journal's outcomes say (rows in order; reversals undo loans).
    expected = dict(before)
    for e in circ:
        if e.state in (EntryState.DONE, EntryState.FORWARDED):
            if e.operation is Operation.CHECKOUT:
                expected[e.item_id] = e.patron_id
            elif e.operation is Operation.CHECKIN:
                expected[e.item_id] = ""
    for item in ITEMS:
        if item in staff_items:
            continue
        now = holder(acs, item)
        if now != expected[item]:
            if expected[item]:
                tally.lost += 1
            else:
                tally.doubled += 1
            tally.problems.append(
                f"item {item}: library shows {now or 'nobody'}, journal says {expected[item] or 'nobody'}"
            )
    # No request applied more often than there are rows that may have been applied.
    apps = acs.library.application_counts()
    for (item, kind), n in apps.items():
        n -= before_apps.get((item, kind), 0)
        may = len(
            [
                e
                for e in circ
                if e.item_id == item and e.operation.value == kind and e.state in APPLIED
            ]
        )
        if n > may:
            tally.doubled += n - may
            tally.problems.append(f"{kind} of {item} applied {n} times for {may} journaled")
            tally.problems += story(acs, circ, item)


def story(acs, rows: list[JournalEntry], item: str) -> list[str]:
    """The item's journal rows and the library system's log, to read a failed round by."""
    out = [
        f"    #{e.id} {e.operation.value} {e.patron_id} {e.mode.value} {e.state.value} "
        f"attempts={e.attempts} owner={e.owner} {e.error[:90]!r} {e.result.get('reconciliation', '')!r}"
        for e in rows
        if e.item_id == item
    ]
    out += [
        f"    acs: {t.kind} {t.patron_id} {t.transaction_date} nb={t.no_block}"
        for t in acs.library.transactions(item)[-8:]
    ]
    return out


def campaign(tmp_path: Path, seed: int, budget_s: float, min_rounds: int) -> Tally:
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, strict=True)
    rng = random.Random(seed)
    flaky = FlakyLine(running.port, random.Random(seed + 1))
    tally = Tally()
    deadline = time.monotonic() + budget_s
    try:
        r = 0
        while r < min_rounds or time.monotonic() < deadline:
            run_round(tmp_path, running, flaky, rng, tally, r)
            r += 1
    finally:
        flaky.close()
        running.stop()
    print(tally.line())
    for p in tally.problems:
        print("  ", p)
    return tally


def test_campaign(tmp_path):
    tally = campaign(
        tmp_path, seed=int(os.environ.get("KIOSK_CAMPAIGN_SEED", "2026")), budget_s=20, min_rounds=2
    )
    assert tally.kills > 0 and tally.transactions > 0
    assert (tally.lost, tally.doubled) == (0, 0), tally.problems


@pytest.mark.slow
@pytest.mark.timeout(0)  # bounded by its own budget ($KIOSK_CAMPAIGN_S)
def test_campaign_long(tmp_path):
    tally = campaign(
        tmp_path,
        seed=int(os.environ.get("KIOSK_CAMPAIGN_SEED", "7")),
        budget_s=float(os.environ.get("KIOSK_CAMPAIGN_S", "180")),
        min_rounds=15,
    )
    assert (tally.lost, tally.doubled) == (0, 0), tally.problems
