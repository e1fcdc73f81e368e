"""The app's appliance wiring: admin cards open maintenance (the patron session never sees them),
and the systemd watchdog hears READY=1 and WATCHDOG=1 from the Kivy clock."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from kiosk.devices.cards.sim import get_shared_card_source

pytestmark = pytest.mark.ui


def test_admin_card_opens_maintenance_and_the_session_never_sees_it(kiosk):
    pilot = kiosk.start("wiring-admin-", admin_cards='["ADM-777"]')
    app = pilot.app
    assert app.current_screen == "welcome"
    source = get_shared_card_source(app.cfg.patron.card_sources[0].removeprefix("sim:"))
    source.present("ADM-777")
    pilot.wait_until(
        lambda: app.current_screen.startswith("maintenance"), what="maintenance screen"
    )
    assert app.current_screen != "maintenance_login"  # the card logs in by itself
    assert app.services.session.state.stage.value == "welcome"
    assert all(e != "CardPresented" for e in app._events)
    # An ordinary patron card is not taken for an admin card.
    assert app.maintenance.card_presented("LV0001") is False


def test_watchdog_gets_ready_and_pings(kiosk, tmp_path: Path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # pings every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            try:
                received.append(sock.recv(4096).decode())
            except (TimeoutError, BlockingIOError):
                return received

    try:
        pilot = kiosk.start("wiring-watchdog-")
        pilot.wait_until(lambda: any("READY=1" in m for m in drain()), timeout=5, what="READY=1")
        assert any(f"MAINPID={os.getpid()}" in m for m in received)
        pilot.wait_until(
            lambda: sum("WATCHDOG=1" in m for m in drain()) >= 2, timeout=5, what="two pings"
        )
        kiosk.stop()
        assert any("STOPPING=1" in m for m in drain())
    finally:
        sock.close()


def test_run_refuses_a_world_readable_password_under_refuse(tmp_path: Path, capsys):
    from kiosk.cli import main

    cfg = tmp_path / "site.toml"
    cfg.write_text('[sip2]\npassword = "s3cret"\n[admin]\nsecrets_policy = "refuse"\n')
    cfg.chmod(0o644)
    assert main(["--config", str(cfg), "run"]) == 2
    err = capsys.readouterr().err
    assert "configuration error" in err
    assert "refuse" in err
    assert "s3cret" not in err
    cfg.chmod(0o600)
    from kiosk.config import load
    from kiosk.doctor import check_secrets

    assert check_secrets(load(cfg)) == []
