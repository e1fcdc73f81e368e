"""Fixtures for the fleet tests: the demo library system on loopback and kiosk configurations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.tech.conftest import closed_port, write_site  # noqa: F401 (closed_port is a fixture)


@pytest.fixture
def demo_acs(tmp_path: Path) -> Any:
    from kiosk.sync.acs.server import start_embedded

    acs = start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}", "127.0.0.1", 0, fresh=True, login=("kiosk", "demo")
    )
    yield acs
    acs.stop()


def write_kiosk(folder: Path, *, port: int, terminal: str = "TEST-1", extra: str = "") -> Path:
    """The technicians' test site (tests/tech/conftest.py) in folder/config/kiosk.toml, named
    `terminal`, on its own simulated pad, allowed to lend offline; its data lives in folder/var."""
    folder.mkdir(parents=True, exist_ok=True)
    f = write_site(
        folder,
        port=port,
        reader=f"sim:{terminal}",
        sorter="none",
        extra='[offline]\npolicy = "checkin-and-checkout"\n' + extra,
    )
    f.write_text(f.read_text().replace('terminal_id = "TEST-1"', f'terminal_id = "{terminal}"'))
    return f
