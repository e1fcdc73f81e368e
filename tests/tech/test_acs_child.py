"""`kiosk run` starts the embedded demo library system as a child process (kiosk/acschild.py): it
serves SIP2 like the in-process one, stops with the kiosk, and a killed kiosk leaves none behind.
Real processes, real SIP2 over loopback, real SQLite."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk import config
from kiosk.app import start_embedded_acs
from kiosk.sync.acs.library import AcsError
from kiosk.sync.sip2.client import Sip2Client
from tests.tech.conftest import kiosk_run_env
from tests.tech.test_clean_stop import site as site_of_the_demo
from tests.tech.test_clean_stop import wait_ready

ROOT = Path(__file__).resolve().parents[2]

SITE = """
[sip2]
host = "127.0.0.1"
port = 6001
username = "kiosk"
password = "demo"
institution_id = "DEMO"
location_code = "DEMO"
timeout_s = 5.0
[acs]
embedded = true
database_url = "{database_url}"
port = {port}
"""


def site(tmp_path: Path, port: int = 0, database_url: str = "sqlite:///var/acs.sqlite") -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    path = tmp_path / "config" / "kiosk.toml"
    path.write_text(SITE.format(port=port, database_url=database_url), encoding="utf-8")
    return path


def gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped by whoever inherited it has ended too)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def wait_for(predicate, timeout_s: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(0.05)


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_child_serves_sip2_and_stops_when_the_kiosk_closes_it(tmp_path: Path) -> None:
    cfg = config.load(str(site(tmp_path)))
    cfg, acs = start_embedded_acs(cfg, own_process=True)
    try:
        assert cfg.sip2.port == acs.port != 0  # the kiosk's link points at the child's port
        assert not gone(acs.pid)
        client = Sip2Client(cfg.sip2)
        status = client.connect()  # login and SC status over real SIP2
        client.close()
        assert status.online
        assert (tmp_path / "var" / "acs.sqlite").exists()  # its database, relative to the site
    finally:
        acs.stop()
    assert acs.proc.returncode == 0
    assert refused(acs.port)


def test_a_taken_port_moves_the_child_to_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg, acs = start_embedded_acs(config.load(str(site(tmp_path, port))), own_process=True)
        try:
            assert acs.port != port and cfg.sip2.port == acs.port
            client = Sip2Client(cfg.sip2)
            assert client.connect().online
            client.close()
        finally:
            acs.stop()


def test_a_child_that_cannot_start_says_why(tmp_path: Path) -> None:
    cfg = config.load(str(site(tmp_path, database_url="no database")))
    with pytest.raises(AcsError) as caught:
        start_embedded_acs(cfg, own_process=True)
    text = str(caught.value)
    assert "the demo library system did not start" in text
    assert "'no database' is not a database URL" in text  # the child's own reason, passed on
    assert "Traceback" not in text


def test_a_killed_kiosk_leaves_no_demo_library_system(tmp_path: Path) -> None:
    path = site(tmp_path)
    script = (
        "import sys, time\n"
        "from kiosk import config\n"
        "from kiosk.app import start_embedded_acs\n"
        f"cfg, acs = start_embedded_acs(config.load({str(path)!r}), own_process=True)\n"
        "print(acs.pid, acs.port, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "offscreen"}
    kiosk = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    try:
        assert kiosk.stdout is not None
        pid, port = (int(x) for x in kiosk.stdout.readline().split())
        assert not gone(pid) and not refused(port)
        kiosk.send_signal(signal.SIGKILL)  # a power cut of the kiosk's process, no clean-up
        kiosk.wait(30)
        wait_for(lambda: gone(pid), 30, "the demo library system ends with the kiosk")
        assert refused(port)
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait()
        if kiosk.stdout is not None:
            kiosk.stdout.close()


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(x) for x in text]
    return found


@pytest.mark.ui
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_kiosk_run_keeps_the_demo_library_system_in_a_child_that_ends_with_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    cfg = site_of_the_demo(tmp_path)  # full screen: the lockdown is applied too
    notify, env = kiosk_run_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--config", str(cfg), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(notify)  # the parts are attached: the child has answered
        acs = [
            pid
            for pid in children_of(proc.pid)
            if b"kiosk.acschild" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        assert len(acs) == 1, children_of(proc.pid)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        wait_for(lambda: gone(acs[0]), 30, "the demo library system ends with the kiosk")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    log = err.decode(errors="replace")
    assert "Traceback" not in log, log
    if sig == signal.SIGTERM:
        assert proc.returncode == 0, log
        assert "demo library system listening on 127.0.0.1:" in log, log
