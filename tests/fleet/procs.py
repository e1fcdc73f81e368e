"""Real processes for the fleet tests: kiosks without screens, Prometheus, Alertmanager; every wait bounded."""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "artifacts" / "screenshots" / "fleet"
T = TypeVar("T")


def wait_for(check: Callable[[], T | None], timeout_s: float, what: str, step_s: float = 0.2) -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (requests.RequestException, OSError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(step_s)
    raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})")


def free_port() -> int:
    """A loopback port free a moment ago, for programs that cannot report the port they bound."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class KioskProcess:
    """tests/fleet/kiosk_process.py in its own Python process."""

    def __init__(self, config: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "SDL_VIDEODRIVER": "offscreen"}
        env.pop("DISPLAY", None)
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fleet" / "kiosk_process.py"), str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=config.parent,
        )
        self.metrics_port = 0

    def ready(self, timeout_s: float = 60.0) -> KioskProcess:
        """Wait for `READY <metrics port>` (start several processes first, then wait for each)."""
        words = self.read_line(timeout_s).split()
        assert words, f"kiosk process said {words!r}"
        assert words[0] == "READY", f"kiosk process said {words!r}"
        self.metrics_port = int(words[1])
        return self

    def read_line(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout_s):
                raise AssertionError(f"kiosk process silent for {timeout_s} s")
        return self.proc.stdout.readline().strip()

    def command(self, line: str, timeout_s: float = 30.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.read_line(timeout_s)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=15)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(timeout=5)


class Server:
    """A server program (prometheus, alertmanager) on loopback with its own data folder."""

    def __init__(self, argv: list[str], ready_url: str, log: Path, timeout_s: float = 60.0) -> None:
        exe = shutil.which(argv[0])
        assert exe, f"{argv[0]} missing: scripts/setup-dev.sh installs it from Debian"
        self.log = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([exe, *argv[1:]], stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for(
                lambda: self.proc.poll() is not None or requests.get(ready_url, timeout=2).ok,
                timeout_s,
                f"{argv[0]} ready",
            )
            assert self.proc.poll() is None, f"{argv[0]} exited: {log.read_text()[-2000:]}"
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def chromium(
    tmp_path: Path, url: str, *, screenshot: str = "", wait_ms: int = 0, size: str = "1100,1500"
) -> str:
    """The page's DOM after loading in headless Chromium (and a screenshot under SHOTS when named).

    `wait_ms` gives a script-driven page (Prometheus' own UI) that much virtual time to draw.
    """
    exe = shutil.which("chromium")
    assert exe, "chromium missing: scripts/setup-dev.sh installs Debian's chromium"
    args = [
        exe,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",
        f"--window-size={size}",
        "--hide-scrollbars",
    ]
    if wait_ms:
        args.append(f"--virtual-time-budget={wait_ms}")
    shot = SHOTS / screenshot if screenshot else None
    if shot is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        shot.unlink(missing_ok=True)
        args.append(f"--screenshot={shot}")
    res = subprocess.run(
        [*args, "--dump-dom", url], capture_output=True, text=True, timeout=90, check=True
    )
    if shot is not None:
        assert shot.stat().st_size > 10_000, "the screenshot is (nearly) empty"
    return res.stdout
