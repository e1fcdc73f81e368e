"""Power cut: the kiosk process is killed with SIGKILL at named points of a transaction or of forwarding.

Each kiosk run is a real child process (`python -m kiosk circ ...`) against the demo library
system running in this test process. After the kill, `kiosk sync` recovers the journal and
forwards or reconciles; the library system's own records must show every transaction applied
exactly once, and the journal must show that nothing applied was sent again.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk.sync.journal import EntryState, Journal

server = pytest.importorskip("kiosk.sync.acs.server")

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    tmp_path: Path,
    port: int,
    timeout_s: float = 2.0,
    *,
    name: str = "kiosk",
    sip2: str = "",
    offline: str = "",
) -> Path:
    cfg = tmp_path / "config" / f"{name}.toml"
    cfg.parent.mkdir(exist_ok=True)
    cfg.write_text(
        f"""
[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
institution_id = "DEMO"
location_code = "DEMO"
timeout_s = {timeout_s}
retries = 0
{sip2}
[storage]
path = "var/journal.sqlite"

[offline]
policy = "checkin-and-checkout"
{offline}
[acs]
embedded = false
""",
        encoding="utf-8",
    )
    return cfg


@pytest.fixture
def acs(tmp_path):
    # Strict: every request received is applied and counted, so a repeat shows as a double.
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True, strict=True)
    yield running
    running.stop()


def kiosk(
    cfg: Path, *argv: str, crash: str = "", timeout: float = 60
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CRASH_AT"}
    if crash:
        env["KIOSK_CRASH_AT"] = crash
    return subprocess.run(
        [sys.executable, "-m", "kiosk", *argv, "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sync(cfg: Path) -> dict:
    done = kiosk(cfg, "sync")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def journal(tmp_path: Path) -> list:
    with Journal(tmp_path / "var" / "journal.sqlite") as j:
        return j.entries()


CHECKOUT = ("circ", "checkout", "LV0001", "30000001")
CHECKIN = ("circ", "checkin", "30000003")  # lent to LV0001 by the kiosk first


@pytest.mark.parametrize(
    ("argv", "kind", "item", "point", "attempts"),
    [
        (CHECKIN, "checkin", "30000003", "after_journal_write", 1),  # never sent: forwarded once
        (
            CHECKIN,
            "checkin",
            "30000003",
            "after_mark_sent",
            2,
        ),  # marked sent, not on the wire: reconciled, sent once
        (
            CHECKIN,
            "checkin",
            "30000003",
            "after_answer",
            1,
        ),  # applied, answer lost: reconciled, not re-sent
    ],
)
def test_kill_during_a_return_then_recover(tmp_path, acs, argv, kind, item, point, attempts):
    """The loan was made at this kiosk, so the journal knows whose loan the return ends: a return
    cut off before the wire is sent once, one applied is not sent again."""
    cfg = write_config(tmp_path, acs.port)
    lent = kiosk(cfg, "circ", "checkout", "LV0001", item)
    assert json.loads(lent.stdout)["ok"] is True, lent.stdout + lent.stderr
    before = acs.library.applications(item, kind)
    killed = kiosk(cfg, *argv, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _loan, row = journal(tmp_path)
    assert row.state in (EntryState.PENDING, EntryState.SENT)
    report = sync(cfg)
    assert report == {"forwarded": 1, "refused": 0, "pending": 0}
    assert acs.library.applications(item, kind) == before + 1  # exactly once
    _loan, row = journal(tmp_path)
    assert row.state is EntryState.DONE
    assert row.attempts == attempts  # how often it went (or was about to go) on the wire
    assert item not in acs.library.loans_of("LV0001")
    assert sync(cfg) == {"forwarded": 0, "refused": 0, "pending": 0}
    assert acs.library.applications(item, kind) == before + 1


@pytest.mark.parametrize(
    ("point", "settled", "applied", "reversed_"),
    [
        ("after_journal_write", 0, 0, 0),  # never sent: settled at recovery, never sent later
        ("after_mark_sent", 1, 0, 0),  # not on the wire: the library system shows no loan
        ("after_answer", 1, 1, 1),  # applied, the patron never saw it: checked in again
    ],
)
def test_kill_during_a_checkout_ends_as_the_patron_was_told(
    tmp_path, acs, point, settled, applied, reversed_
):
    """The process died before the patron saw "borrowed" (the tag stayed secured): whatever the
    library system applied is undone, and nothing is sent later as a new loan."""
    cfg = write_config(tmp_path, acs.port)
    item = "30000001"
    killed = kiosk(cfg, *CHECKOUT, crash=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (row,) = journal(tmp_path)
    assert row.state in (EntryState.PENDING, EntryState.SENT)
    assert "1234" not in json.dumps(row.to_json())
    assert sync(cfg) == {"forwarded": settled, "refused": 0, "pending": 0}
    assert acs.library.applications(item, "checkout") == applied
    assert acs.library.applications(item, "checkin") == reversed_
    assert item not in acs.library.loans_of("LV0001")  # what the patron was told
    rows = journal(tmp_path)
    if reversed_:
        first, reversal = rows
        assert first.state is EntryState.REVERSED
        assert reversal.reversal_of == first.id
        assert reversal.state is EntryState.DONE
        assert reversal.operation.value == "checkin"
        assert first.to_json()["reversed_by"] == reversal.id
    else:
        (first,) = rows
        assert first.state is EntryState.REFUSED
    assert sync(cfg) == {"forwarded": 0, "refused": 0, "pending": 0}
    assert acs.library.applications(item, "checkout") == applied


class AnswerEater:
    """A loopback TCP proxy to the ACS that passes everything except answers starting with `prefix`.

    It stands for a line that fails after the request went out: the ACS applies the request,
    its answer never reaches the kiosk.
    """

    def __init__(self, upstream_port: int, prefix: bytes, *, eat_requests: bool = False) -> None:
        self.prefix = prefix
        # With eat_requests, it is the request that is lost on the way: the ACS never sees it.
        self.eat_requests = eat_requests
        self.upstream_port = upstream_port
        self.eaten = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                down, _ = self._listener.accept()
            except OSError:
                return
            up = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._socks += [down, up]
            threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, answers: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                return
            if not data:
                return
            if answers != self.eat_requests and data.startswith(self.prefix):
                self.eaten.set()
                continue
            try:
                dst.sendall(data)
            except OSError:
                return

    def close(self) -> None:
        self._listener.close()
        for s in self._socks:
            s.close()


def test_kill_while_the_request_is_on_the_wire(tmp_path, acs):
    """The ACS applies the checkout, its answer is lost on the line, and the kiosk dies waiting."""
    proxy = AnswerEater(acs.port, b"12")
    cfg = write_config(tmp_path, proxy.port, timeout_s=30.0)
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CRASH_AT"}
    child = subprocess.Popen(
        [sys.executable, "-m", "kiosk", *CHECKOUT, "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proxy.eaten.wait(30), "the checkout answer never came"
        assert child.poll() is None  # still waiting for the answer
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        proxy.close()
    assert acs.library.applications("30000001", "checkout") == 1
    (row,) = journal(tmp_path)
    assert row.state is EntryState.SENT
    cfg = write_config(tmp_path, acs.port)
    assert sync(cfg) == {"forwarded": 1, "refused": 0, "pending": 0}
    # Applied, but the patron never saw "borrowed": checked in again, once, and journaled so.
    assert acs.library.applications("30000001", "checkout") == 1
    assert acs.library.applications("30000001", "checkin") == 1
    assert "30000001" not in acs.library.loans_of("LV0001")
    row, reversal = journal(tmp_path)
    assert row.state is EntryState.REVERSED
    assert row.attempts == 1
    assert row.result.get("reconciled") is True
    assert reversal.reversal_of == row.id
    assert reversal.state is EntryState.DONE


def _refusing_port() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


@pytest.mark.parametrize(
    "point",
    [
        "forward_after_mark_sent@2",
        "forward_after_answer@2",
        "forward_after_answer@4",
        # The answer of row 2 (3) held for the next row's commit: lost with the process.
        "forward_answer_carried@2",
        "forward_answer_carried@3",
    ],
)
def test_kill_in_the_middle_of_forwarding(tmp_path, acs, point):
    held = _refusing_port()
    offline_cfg = write_config(tmp_path, held.getsockname()[1])
    work = [
        ("circ", "checkout", "LV0001", "30000001"),
        ("circ", "checkin", "30000009"),
        ("circ", "checkout", "LV0002", "30000002"),
        ("circ", "checkout", "LV0001", "30000003"),
        ("circ", "checkin", "30000002"),
    ]
    for argv in work:
        out = kiosk(offline_cfg, *argv)
        assert json.loads(out.stdout)["queued"] is True, out.stdout + out.stderr
    held.close()
    cfg = write_config(tmp_path, acs.port)
    killed = kiosk(cfg, "sync", crash=point)
    assert killed.returncode == -signal.SIGKILL
    report = sync(cfg)
    assert report["pending"] == 0
    assert report["refused"] == 0
    rows = journal(tmp_path)
    assert [r.state for r in rows] == [EntryState.FORWARDED] * 5
    lib = acs.library
    assert lib.applications("30000001", "checkout") == 1
    assert lib.applications("30000009", "checkin") == 1
    assert lib.applications("30000002", "checkout") == 1
    assert lib.applications("30000002", "checkin") == 1
    assert lib.applications("30000003", "checkout") == 1
    assert sorted(lib.loans_of("LV0001")) == ["30000001", "30000003"]
    assert lib.loans_of("LV0002") == ["30000008"]  # the demo's overdue loan; 30000002 came back
    assert sync(cfg) == {"forwarded": 0, "refused": 0, "pending": 0}
