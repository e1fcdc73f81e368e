"""SIGTERM and SIGINT stop the kiosk cleanly, also under the lockdown (`kiosk run` as a real process).

The kiosk runs full screen (so the lockdown is applied) on SDL's offscreen driver with the
embedded demo library system; it says READY=1 over $NOTIFY_SOCKET as under systemd, then gets
the signal systemd (or Ctrl+C) would send.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kiosk.shutdown import STATUS_READY, GracefulStop

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]


def site(tmp_path: Path) -> Path:
    text = (ROOT / "config" / "kiosk.toml").read_text(encoding="utf-8")
    text = text.replace("fullscreen = false", "fullscreen = true").replace(
        "port = 6001\n\n[reader]", "port = 0\n\n[reader]"
    )
    assert "fullscreen = true" in text
    assert "port = 0" in text
    (tmp_path / "config").mkdir()
    cfg = tmp_path / "config" / "kiosk.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def wait_ready(sock: socket.socket) -> list[str]:
    """Until the kiosk has started and taken the signals over from the lockdown."""
    seen: list[str] = []
    while f"STATUS={STATUS_READY}" not in seen:
        seen += sock.recv(4096).decode().splitlines()  # raises after the socket's timeout
    return seen


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_the_locked_down_kiosk(tmp_path, sig):
    cfg = site(tmp_path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(90)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SDL_VIDEODRIVER": "offscreen",
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "KIVY_HOME": str(tmp_path / "kivy"),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiosk", "--config", str(cfg), "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_ready(notify)
        proc.send_signal(sig)
        notify.settimeout(30)
        assert "STOPPING=1" in wait_stopping(notify)
        out, _ = proc.communicate(timeout=30)  # old code: the lockdown refuses, nothing ends
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        notify.close()
    log = out.decode(errors="replace")
    assert proc.returncode == 0, log
    assert "Traceback" not in log, log
    assert f"{sig.name} received: stopping the kiosk" in log, log
    assert "kiosk stopped cleanly" in log, log
    assert "did not stop within" not in log


def wait_stopping(sock: socket.socket) -> list[str]:
    seen: list[str] = []
    while "STOPPING=1" not in seen:
        seen += sock.recv(4096).decode().splitlines()
    return seen


class _App:
    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.lockdown = _Lock()

    def stop(self) -> None:
        self.lockdown_open_when_stopped = self.lockdown.open
        self.stopped.set()


class _Lock:
    open = False

    def allow_exit(self) -> None:
        self.open = True


def test_a_stop_that_hangs_ends_at_the_deadline_and_a_second_signal_changes_nothing():
    app = _App()
    exits: list[int] = []
    ended = threading.Event()
    stop = GracefulStop(
        app,
        budget_s=0.05,
        schedule=lambda fn: None,
        hard_exit=lambda code: (exits.append(code), ended.set()),
    )
    stop._on_signal(signal.SIGTERM, None)  # the app never stops: nothing was scheduled
    assert ended.wait(30)
    assert exits == [130]
    stop._on_signal(signal.SIGINT, None)
    assert stop.signal_received == signal.SIGTERM
    assert exits == [130]


def test_the_app_is_stopped_through_the_lockdown_and_the_deadline_is_cancelled():
    app = _App()
    exits: list[int] = []
    stop = GracefulStop(app, budget_s=60, schedule=lambda fn: fn(0), hard_exit=exits.append)
    stop._on_signal(signal.SIGTERM, None)
    assert app.stopped.is_set()
    assert app.lockdown_open_when_stopped
    stop.finished()
    assert stop.deadline is not None
    stop.deadline.join(30)
    assert not stop.deadline.is_alive()
    assert exits == []
