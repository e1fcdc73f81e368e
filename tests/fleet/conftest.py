"""Fixtures for the fleet tests: the demo library system on loopback and kiosk configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def demo_acs(tmp_path: Path) -> Any:
    from kiosk.sync.acs.server import start_embedded

    acs = start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}", "127.0.0.1", 0, fresh=True, login=("kiosk", "demo")
    )
    yield acs
    acs.stop()


def write_kiosk(
    folder: Path, *, port: int, terminal: str = "TEST-1", extra: str = "", name: str = "kiosk.toml"
) -> Path:
    """A kiosk configuration in folder/config/NAME whose data lives in folder/var."""
    (folder / "config").mkdir(parents=True, exist_ok=True)
    f = folder / "config" / name
    f.write_text(
        f"""[kiosk]
terminal_id = "{terminal}"
[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
timeout_s = 2.0
[offline]
policy = "checkin-and-checkout"
[reader]
url = "sim:{terminal}"
[patron]
pin_policy = "none"
card_pattern = "^LV[0-9]{{4,12}}$"
card_sources = ["sim:{terminal}"]
[printer]
url = "file:var/receipts"
[ui]
sounds = false
{extra}"""
    )
    return f
