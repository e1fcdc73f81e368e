"""The appliance files: systemd units pass `systemd-analyze verify`, carry the watchdog, user and
sandbox settings the kiosk relies on; udev rules are well-formed; the examples load."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
UNITS = sorted(p.name for p in SYSTEMD.iterdir() if p.suffix in (".service", ".timer"))
KIOSK_BIN = Path(sys.executable).with_name("kiosk")


def _unit(name: str) -> dict[str, list[str]]:
    """Section.key -> values (systemd allows repeated keys)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (SYSTEMD / name).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values.setdefault(f"{section}.{key}", []).append(value)
    return values


def test_units_pass_systemd_analyze_verify(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt install systemd)")
    assert KIOSK_BIN.exists(), (
        "the kiosk entry point is not installed in this environment (pip install -e .)"
    )
    for name in UNITS:
        # The units point at /opt/kiosk; verify a copy that points at this environment's kiosk.
        text = (
            (SYSTEMD / name)
            .read_text()
            .replace("/opt/kiosk/current/.venv/bin/kiosk", str(KIOSK_BIN))
        )
        (tmp_path / name).write_text(text)
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *UNITS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert proc.stderr.strip() == "", proc.stderr + proc.stdout
    assert proc.stdout.strip() == "", proc.stderr + proc.stdout


def test_verify_would_catch_a_broken_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt install systemd)")
    (tmp_path / "kiosk.service").write_text(
        (SYSTEMD / "kiosk.service").read_text().replace("Type=notify", "Typ=notify")
    )
    proc = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", "kiosk.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Unknown key 'Typ'" in proc.stderr
    assert "not executable" in proc.stderr


def test_kiosk_unit_runs_unprivileged_with_watchdog_and_sandbox():
    u = _unit("kiosk.service")
    one = {k: v[-1] for k, v in u.items()}
    assert one["Service.Type"] == "notify"
    assert int(one["Service.WatchdogSec"]) > 0
    assert one["Service.Restart"] == "always"
    assert one["Service.User"] == "kiosk"
    assert one["Service.ExecStart"].endswith("kiosk run")
    assert set(one["Service.SupplementaryGroups"].split()) >= {
        "dialout",
        "plugdev",
        "lp",
        "video",
        "render",
        "input",
    }
    assert one["Service.ProtectSystem"] == "strict"
    assert "/var/lib/kiosk" in one["Service.ReadWritePaths"]
    for key in ("ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert one[f"Service.{key}"] == "yes"
    allowed = {v.split()[0] for v in u["Service.DeviceAllow"]}
    assert {
        "char-ttyUSB",
        "char-ttyACM",
        "char-usb_device",
        "char-lp",
        "char-drm",
        "char-input",
    } <= allowed
    assert one["Service.DevicePolicy"] == "closed"
    envs = dict(e.split("=", 1) for e in u["Service.Environment"])
    assert envs["SDL_VIDEODRIVER"] == "kmsdrm"
    assert envs["KCFG_KIVY_EXIT_ON_ESCAPE"] == "0"
    assert "Service.PrivateDevices" not in one  # it would hide the readers and the printer


def test_forwarder_steps_aside_while_the_kiosk_runs():
    u = _unit("kiosk-forward.service")
    assert "kiosk.service" in u["Service.ExecCondition"][0]
    assert u["Service.ExecStart"][0].endswith("kiosk sync")
    assert _unit("kiosk-forward.timer")["Timer.OnUnitInactiveSec"]


_RULE_PART = re.compile(r'^(?P<key>[A-Z_]+)(\{[A-Za-z0-9_]+\})?(?P<op>==|!=|\+=|:=|=)"[^"]*"$')
_MATCH_KEYS = {"SUBSYSTEM", "ATTRS", "ATTR", "ENV", "KERNEL", "SUBSYSTEMS"}


def test_udev_rules_are_well_formed_and_name_the_devices():
    text = (SYSTEMD / "99-kiosk.rules").read_text()
    rules = [
        line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules
    for rule in rules:
        parts = [p.strip() for p in rule.split(", ")]
        for part in parts:
            m = _RULE_PART.match(part)
            assert m, f"malformed udev rule part {part!r} in: {rule}"
            if m["key"] in _MATCH_KEYS:
                assert m["op"] in ("==", "!="), f"match key assigned with {m['op']}: {rule}"
        assert any(p.startswith("GROUP=") for p in parts)
        assert any(p.startswith('MODE="0660"') for p in parts)
    for vendor in ("0ab1", "072f", "04b8", "0519"):  # FEIG, ACS, Epson, Star
        assert f'"{vendor}' in text or f"|{vendor}" in text
    assert 'SYMLINK+="kiosk-reader"' in text
    assert 'SYMLINK+="kiosk-printer"' in text


def test_install_script_dry_run_on_this_machine_checks_every_step():
    # On the machine itself (not a throwaway root): every step is checked and listed, nothing
    # is changed; tests/tech/test_install.py checks the result of a real install.
    proc = subprocess.run(
        ["bash", str(SYSTEMD / "install.sh"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for step in (
        "user kiosk",
        "/etc/kiosk",
        "/var/lib/kiosk",
        "/etc/udev/rules.d/99-kiosk.rules",
        "/etc/systemd/system/kiosk.service",
        "systemctl enable pcscd.socket kiosk.service kiosk-forward.timer",
        "/etc/systemd/logind.conf.d/kiosk.conf",
        "/etc/sysctl.d/90-kiosk.conf",
        "/opt/kiosk/current",
        "data: storage.path = /var/lib/kiosk/journal.sqlite",
        "dry run finished",
    ):
        assert step in out, step


@pytest.mark.parametrize("name", ["koha.toml", "alise.toml", "bookdrop.toml"])
def test_examples_load_and_are_ready_for_an_appliance(name):
    from kiosk.core.routing import RoutingTable

    cfg = config.load(ROOT / "config" / "examples" / name)
    assert Path(cfg.storage.path).is_absolute()  # relative paths would land in /etc/kiosk
    assert cfg.admin.secrets_policy == "refuse"
    assert cfg.ui.fullscreen
    RoutingTable.from_config(cfg)
    from kiosk.devices.cards import check_source

    for url in cfg.patron.card_sources:
        check_source(url, cfg.patron)  # raises for an entry the card layer does not know
    if name == "bookdrop.toml":
        assert cfg.kiosk.mode == "bookdrop"
        assert cfg.routing
        assert cfg.sorter.url != "none"
