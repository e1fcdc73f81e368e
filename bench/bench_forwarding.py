"""Benchmark: forwarding queued offline work over one SIP2 connection vs a connection per message.

Fills a fresh journal with N queued transactions (alternating checkouts and checkins) and
forwards them to a minimal fast SIP2 responder on loopback, twice in the same run:

* one connection: the kiosk's Forwarder (login once, then one request per entry);
* naive: a new TCP connection, 93 login and 99 status for every entry.

Both write ahead to the journal exactly as the kiosk does (commit before send, update after).
It also measures the journal alone (the same commits, no network) and the responder's own time
spent answering, so the kiosk's share is visible. Times are reported as ratios against the
one-connection run.

Then the same Forwarder against the project's own demo library system (`kiosk acs`: strict,
every request applied to its SQLite database, on loopback), timing the library system's own
work per request (decode, apply, encode) inside its server: the kiosk's overhead per transaction
against that answer time is the issue's "loopback ACS" measure; the canned responder above is a
floor that no library system reaches. Usage:
`python bench/bench_forwarding.py [--count 10000] [--demo-count 2000] [--one-core]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path

from _kiosk_harness import budget, one_core_if_asked

from kiosk.config import Sip2Section
from kiosk.core.domain import Mode, Operation
from kiosk.sync.acs.library import Library
from kiosk.sync.acs.server import AcsServer
from kiosk.sync.forwarder import Forwarder
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client
from kiosk.sync.sip2.codec import FrameBuffer, decode, encode, message


class Responder:
    """A minimal SIP2 ACS: canned valid answers, one thread per connection, timing its own work."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.busy_s = 0.0
        self.connections = 0
        self.requests = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _answer(frame: bytes) -> bytes:
        req = decode(frame)
        now = datetime.now().strftime("%Y%m%d    %H%M%S")
        c = req.command
        if c == "93":
            ans = message("94", ok="1")
        elif c == "99":
            ans = message(
                "98",
                online_status="Y",
                checkin_ok="Y",
                checkout_ok="Y",
                acs_renewal_policy="Y",
                status_update_ok="N",
                offline_ok="Y",
                timeout_period="050",
                retries_allowed="003",
                date_time_sync=now,
                protocol_version="2.00",
                fields=[("AO", "DEMO"), ("BX", "YYYYYYYYYYYYYYYY")],
            )
        elif c == "17":  # item information: the forwarder reads the loan a return ends first
            ans = message(
                "18",
                circulation_status="04",
                security_marker="02",
                fee_type="01",
                transaction_date=now,
                fields=[("AB", req.get("AB")), ("AJ", "Zaļā grāmata"), ("AH", now)],
            )
        elif c == "11":
            ans = message(
                "12",
                ok="1",
                renewal_ok="N",
                magnetic_media="N",
                desensitize="Y",
                transaction_date=now,
                fields=[
                    ("AO", "DEMO"),
                    ("AA", req.get("AA")),
                    ("AB", req.get("AB")),
                    ("AJ", "Zaļā grāmata"),
                    ("AH", now),
                ],
            )
        else:
            ans = message(
                "10",
                ok="1",
                resensitize="Y",
                magnetic_media="N",
                alert="N",
                transaction_date=now,
                fields=[("AO", "DEMO"), ("AB", req.get("AB")), ("AQ", "Pieaugušo nodaļa")],
            )
        return encode(ans, sequence=req.sequence, error_detection=req.checksum is not None)

    def _serve(self, conn: socket.socket) -> None:
        frames = FrameBuffer()
        with conn:
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                for frame in frames.feed(data):
                    t = time.perf_counter()
                    reply = self._answer(frame)
                    conn.sendall(reply)
                    with self._lock:
                        self.busy_s += time.perf_counter() - t
                        self.requests += 1

    def reset(self) -> None:
        with self._lock:
            self.busy_s, self.connections, self.requests = 0.0, 0, 0

    def close(self) -> None:
        self._sock.close()


class TimedAcsServer(AcsServer):
    """The demo library system's server, adding up the time it spends answering (decode, apply,
    encode; not the socket) per request."""

    busy_s = 0.0
    requests = 0

    def respond(self, conn: object, frame: bytes) -> bytes | None:  # type: ignore[override]
        t = time.perf_counter()
        try:
            return super().respond(conn, frame)  # type: ignore[arg-type]
        finally:
            self.busy_s += time.perf_counter() - t
            self.requests += 1


# Four of the demo catalogue's loanable items, lent to and returned by a demo patron in turn, so
# every request is applied (nothing refused) and no two rows in a row are of the same item.
DEMO_ITEMS = ("30000001", "30000002", "30000003", "30000004")


def fill_demo(journal: Journal, count: int) -> None:
    start = datetime(2026, 11, 25, 10, 0, 0)
    for n in range(count):
        item = DEMO_ITEMS[n % len(DEMO_ITEMS)]
        op = Operation.CHECKOUT if (n // len(DEMO_ITEMS)) % 2 == 0 else Operation.CHECKIN
        journal.begin(
            op,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            patron_id="LV0001" if op is Operation.CHECKOUT else "",
            item_id=item,
            created=start + timedelta(seconds=n),
            promised_due_date="2026-12-09",
        )


def serve_demo_library(db: str, pipe: Connection) -> None:
    """In a process of its own, as a library system is: serve until told to stop, then report
    the time spent answering and the number of requests."""
    library = Library.open(f"sqlite:///{db}", fresh=True)
    server = TimedAcsServer(("127.0.0.1", 0), library)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pipe.send(server.server_address[1])
    pipe.recv()  # reset: the forwarding starts
    server.busy_s, server.requests = 0.0, 0
    pipe.recv()  # stop
    pipe.send((server.busy_s, server.requests))
    server.shutdown()
    server.server_close()
    library.close()


def against_demo_library(tmp: Path, count: int) -> tuple[float, float, int]:
    """Forward `count` rows to the demo library system; (wall s, its answer time s, requests)."""
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve_demo_library, args=(str(tmp / "demo-library.sqlite"), theirs), daemon=True
    )
    child.start()
    try:
        if not ours.poll(60):
            raise SystemExit("the demo library system did not start")
        port = ours.recv()
        settings = loopback_settings(port)
        j = Journal(tmp / "demo.sqlite")
        fill_demo(j, count)
        ours.send("reset")
        t = time.perf_counter()
        report = Forwarder(j, lambda: Sip2Client(settings), settings=settings).forward_once()
        wall = time.perf_counter() - t
        assert report.forwarded == count, report
        j.close()
        ours.send("stop")
        busy, requests = ours.recv()
        return wall, busy, requests
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def loopback_settings(port: int) -> Sip2Section:
    """The kiosk's [sip2] for a library system on loopback at `port`."""
    return Sip2Section(
        host="127.0.0.1",
        port=port,
        username="kiosk",
        password="demo",
        institution_id="DEMO",
        timeout_s=5,
        retries=1,
    )


def fill(journal: Journal, count: int) -> None:
    start = datetime(2026, 11, 25, 10, 0, 0)
    for n in range(count):
        op = Operation.CHECKOUT if n % 2 == 0 else Operation.CHECKIN
        journal.begin(
            op,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            patron_id="LV0001" if op is Operation.CHECKOUT else "",
            item_id=f"3{n:07d}",
            created=start + timedelta(seconds=n),
            promised_due_date="2026-12-09",
        )


def count_commits(journal: Journal) -> list[int]:
    """Counts the journal's commits from now on (each one an fsync of the WAL)."""
    from sqlalchemy import event

    counted = [0]

    def commit(_conn: object) -> None:
        counted[0] += 1

    event.listen(journal._engine, "commit", commit)
    return counted


def main() -> None:
    one_core = one_core_if_asked(sys.argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--demo-count", type=int, default=2_000)
    args = parser.parse_args()
    n = args.count
    responder = Responder()
    settings = loopback_settings(responder.port)
    rows: list[tuple[str, float, float, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        # 1. Journal alone: the forwarder's write-ahead commits, no network. Each row's "sent"
        # is committed together with the answer of the row before it (one commit a row).
        j = Journal(Path(tmp) / "alone.sqlite")
        fill(j, n)
        t = time.perf_counter()
        for e in j.pending_offline():
            j.mark_sent(e.id)
            j.update(e.id, EntryState.FORWARDED, result={"ok": True}, defer=True)
        j.flush()
        journal_s = time.perf_counter() - t
        j.close()

        # 2. The kiosk's forwarder: one connection.
        j = Journal(Path(tmp) / "one.sqlite")
        fill(j, n)
        responder.reset()
        commits = count_commits(j)
        t = time.perf_counter()
        report = Forwarder(j, lambda: Sip2Client(settings), settings=settings).forward_once()
        one_s = time.perf_counter() - t
        assert report.forwarded == n, report
        one_commits = commits[0]
        rows.append(("one connection (Forwarder)", one_s, responder.busy_s, responder.connections))
        j.close()

        # 3. Naive: a new connection with login and status for each message.
        j = Journal(Path(tmp) / "naive.sqlite")
        fill(j, n)
        fw = Forwarder(j, lambda: Sip2Client(settings), settings=settings)
        responder.reset()
        t = time.perf_counter()
        done = 0
        for e in j.pending_offline():
            client = Sip2Client(settings)
            client.connect()
            if fw._forward_entry(client, e) is EntryState.FORWARDED:
                done += 1
            client.close()
        naive_s = time.perf_counter() - t
        assert done == n
        rows.append(
            ("naive (connect+login per message)", naive_s, responder.busy_s, responder.connections)
        )
        j.close()

        # 4. The kiosk's forwarder against the demo library system.
        demo_n = args.demo_count
        demo_wall, demo_busy, demo_requests = against_demo_library(Path(tmp), demo_n)
    responder.close()

    print(f"{budget()}{' [--one-core]' if one_core else ''}")
    print(f"forwarding {n} queued transactions to a loopback SIP2 responder")
    print(
        f"{'approach':36} {'total s':>9} {'ms/tx':>7} {'vs one':>7} {'server s':>9} {'server %':>8} {'conns':>6}"
    )
    for name, total, server, conns in rows:
        print(
            f"{name:36} {total:9.2f} {1000 * total / n:7.3f} {total / one_s:7.2f} {server:9.2f} {100 * server / total:7.1f}% {conns:6d}"
        )
    print(
        f"{'journal alone (1 fsynced commit/tx)':36} {journal_s:9.2f} {1000 * journal_s / n:7.3f} {journal_s / one_s:7.2f}"
    )
    share = one_s - rows[0][2]
    print(
        f"commits by the forwarder: {one_commits} for {n} transactions ({one_commits / n:.2f} a transaction)"
    )
    print(
        f"kiosk share of the one-connection run (total minus server time): {share:.2f} s, "
        f"of which the journal accounts for about {journal_s:.2f} s; "
        f"kiosk overhead {1000 * share / n:.2f} ms/tx against the responder's "
        f"{1000 * rows[0][2] / n:.2f} ms/tx = {share / rows[0][2]:.0%} (floor: a responder that "
        "applies nothing)"
    )
    demo_share = demo_wall - demo_busy
    ratio = demo_share / demo_busy
    print(
        f"forwarding {demo_n} queued transactions to the demo library system (strict, loopback): "
        f"{demo_wall:.2f} s, {1000 * demo_wall / demo_n:.3f} ms/tx; the library system's own "
        f"answer time {1000 * demo_busy / demo_n:.3f} ms/tx ({demo_requests} requests)"
    )
    print(
        f"kiosk overhead against the demo library system: {1000 * demo_share / demo_n:.3f} ms/tx = "
        f"{ratio:.0%} of its answer time (target <= 50%: {'met' if ratio <= 0.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
