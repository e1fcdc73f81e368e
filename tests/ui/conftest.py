"""UI test fixtures: the embedded demo library system on a temporary SQLite database and an
ephemeral port, a test configuration pointing at it, and the kiosk app running offscreen."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.ui.pilot import Pilot, pump

TOML = """
[kiosk]
mode = "{mode}"
library_name = "Demo bibliotēka"
terminal_id = "UI-TEST"
languages = ["lv", "en", "ru"]
returns_enabled = true

[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
timeout_s = {sip2_timeout}
retries = 1

[storage]
path = "{tmp}/journal.sqlite"

[offline]
policy = "{offline_policy}"
forward_interval_s = 3600

[reader]
url = "{reader}"
poll_interval_s = 0.03
# The site's default: a tag is shown when first sighted, acted on when two inventories agree.
stable_rounds = 2

[patron]
pin_policy = "{pin_policy}"
card_pattern = "^LV[0-9]{{4,12}}$"
card_sources = ["sim:{reader_name}", "wedge:"]

[printer]
url = "file:{tmp}/receipts"
email_receipts = {email}
email_url = "file:{tmp}/outbox"
{printer_extra}

[admin]
cards = {admin_cards}

[ui]
fullscreen = false
demo_panel = {demo_panel}
sounds = false
idle_timeout_s = 90
idle_warning_s = 25
goodbye_s = 5
{ui_extra}
"""


@pytest.fixture
def acs(tmp_path: Path):
    from kiosk.sync.acs.server import start_embedded

    running = start_embedded(f"sqlite:///{tmp_path}/acs.sqlite", "127.0.0.1", 0, fresh=True)
    yield running
    running.stop()


def make_config(tmp_path: Path, port: int, **overrides: Any):
    from kiosk.config import parse

    name = uuid.uuid4().hex[:8]
    values = {
        "port": port,
        "tmp": tmp_path.as_posix(),
        "reader": f"sim:ui-{name}",
        "reader_name": f"ui-{name}",
        "offline_policy": "checkin-and-checkout",
        "demo_panel": "false",
        "sip2_timeout": 5.0,
        "pin_policy": "mandatory",
        "mode": "checkout",
        "email": "false",
        "admin_cards": "[]",
        "ui_extra": "",
        "printer_extra": "",
    }
    values.update(overrides)
    return parse(TOML.format(**values), str(tmp_path / "kiosk.toml"))


class KioskHarness:
    """Starts and stops KioskApp instances for one test."""

    def __init__(self, tmp_path: Path, acs: Any) -> None:
        self.tmp_path = tmp_path
        self.acs = acs
        self.app: Any = None
        self.clock: Any = None

    def start(self, prefix: str = "", **overrides: Any) -> Pilot:
        from kivy.base import runTouchApp

        from kiosk.app import KioskApp, build_services
        from kiosk.core.ports import ManualClock

        cfg = make_config(self.tmp_path, self.acs.port if self.acs else 9, **overrides)
        self.clock = ManualClock()
        services = build_services(cfg, session_clock=self.clock, start_acs=False)
        self.app = KioskApp(cfg, services)
        self.app._run_prepare()
        runTouchApp(embedded=True)
        pump(3)
        pilot = Pilot(self.app, prefix)
        pilot.clock = self.clock  # type: ignore[attr-defined]
        pilot.pad = services.pad  # type: ignore[attr-defined]
        return pilot

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
            pump(1)
            self.app = None


@pytest.fixture
def kiosk(tmp_path: Path, acs: Any):
    harness = KioskHarness(tmp_path, acs)
    yield harness
    harness.stop()


@pytest.fixture(autouse=True)
def _window_size():
    from kivy.core.window import Window

    Window.size = (1280, 800)
    yield
    Window.size = (1280, 800)
