"""Shared fixtures for the technician tests: the demo library system on loopback and site configs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kiosk import adminpin

ADMIN_PIN = "2468"
ADMIN_CARD = "ADM0001"
PIN_HASH = adminpin.hash_pin(ADMIN_PIN, n=2**10)


@pytest.fixture
def demo_acs(tmp_path):
    from kiosk.sync.acs.server import start_embedded

    acs = start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", "127.0.0.1", 0, fresh=True)
    yield acs
    acs.stop()


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound (so nobody else gets it) but not listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def write_site(
    tmp_path: Path,
    *,
    port: int,
    reader: str = "sim:doctor",
    printer: str = "file:var/receipts",
    sorter: str = "sim:",
    embedded: bool = False,
    mode: int = 0o600,
    extra: str = "",
) -> Path:
    """A site config in tmp_path/config/kiosk.toml whose data lives in tmp_path/var."""
    (tmp_path / "config").mkdir(exist_ok=True)
    f = tmp_path / "config" / "kiosk.toml"
    f.write_text(
        f"""[kiosk]
terminal_id = "TEST-1"
[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
timeout_s = 2.0
[acs]
embedded = {str(embedded).lower()}
[reader]
url = "{reader}"
[patron]
card_pattern = "^LV[0-9]{{4,12}}$"
card_sources = ["sim:"]
[printer]
url = "{printer}"
[sorter]
url = "{sorter}"
[admin]
pin_hash = "{PIN_HASH}"
cards = ["{ADMIN_CARD}"]
{extra}"""
    )
    os.chmod(f, mode)
    return f


def kiosk_run_env(tmp_path: Path) -> tuple[socket.socket, dict[str, str]]:
    """For `kiosk run` as a real process: a $NOTIFY_SOCKET to hear READY=1 on, as under systemd,
    and its environment (offscreen, this tree's kiosk, a Kivy home of its own)."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(90)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "SDL_VIDEODRIVER": "offscreen",
        "NOTIFY_SOCKET": str(tmp_path / "notify"),
        "KIVY_HOME": str(tmp_path / "kivy"),
    }
    env.pop("DISPLAY", None)
    return notify, env
