"""`kiosk doctor` on a healthy demo setup and with each part missing; the secrets check."""

from __future__ import annotations

import json
import os

import pytest

from kiosk import cli, config, doctor
from kiosk.errors import ConfigError
from tests.tech.conftest import write_site


def _run(capsys, cfgfile, *extra):
    rc = cli.main(["--config", str(cfgfile), "doctor", "--timeout", "2", *extra])
    out = capsys.readouterr().out
    return rc, out


def _line(out, name):
    found = [
        line
        for line in out.splitlines()
        if line.split()[1:2] == [name] or line[6:].startswith(name)
    ]
    assert found, f"no {name!r} line in:\n{out}"
    return found[0]


def test_healthy_demo_setup_is_all_ok(tmp_path, capsys, demo_acs):
    f = write_site(tmp_path, port=demo_acs.port)
    rc, out = _run(capsys, f)
    assert rc == 0, out
    for name in (
        "config",
        "secrets",
        "admin",
        "library",
        "reader",
        "card reader",
        "printer",
        "sorter",
        "journal",
        "disk",
    ):
        assert _line(out, name).startswith("ok "), out
    assert f"127.0.0.1:{demo_acs.port} online" in _line(out, "library")
    assert "FAIL" not in out


@pytest.mark.parametrize(
    "part, kwargs, expect",
    [
        ("reader", {"reader": "feig:/dev/ttyUSB-kiosk-missing"}, "/dev/ttyUSB-kiosk-missing"),
        (
            "printer",
            {"printer": "serial:/dev/ttyUSB-printer-missing"},
            "/dev/ttyUSB-printer-missing does not exist",
        ),
        ("sorter", {"sorter": "tcp:127.0.0.1:{closed}"}, "127.0.0.1:{closed}"),
        ("library", {"port": "{closed}"}, "unreachable"),
    ],
)
def test_each_missing_part_fails_with_its_line(
    tmp_path, capsys, demo_acs, closed_port, part, kwargs, expect
):
    kwargs = {
        k: (v.format(closed=closed_port) if isinstance(v, str) else v) for k, v in kwargs.items()
    }
    if "port" in kwargs:
        kwargs["port"] = int(kwargs["port"])
    f = write_site(tmp_path, **{"port": demo_acs.port, **kwargs})
    rc, out = _run(capsys, f)
    assert rc == 1, out
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1, out
    line = _line(out, part)
    assert line.startswith("FAIL")
    assert expect.format(closed=closed_port) in line
    assert "fix:" in line


def test_embedded_demo_library_not_running_is_only_a_warning(tmp_path, capsys, closed_port):
    f = write_site(tmp_path, port=closed_port, embedded=True)
    rc, out = _run(capsys, f)
    assert _line(out, "library").startswith("warn")
    assert "kiosk run" in _line(out, "library")
    assert rc == 0, out


def test_json_output_and_offline_queue_warning(tmp_path, capsys, demo_acs):
    from kiosk.core.domain import Mode, Operation
    from kiosk.sync.journal import EntryState, Journal

    f = write_site(tmp_path, port=demo_acs.port)
    j = Journal(tmp_path / "var" / "journal.sqlite")
    j.begin(Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000001")
    j.close()
    rc, out = _run(capsys, f, "--json")
    checks = {c["check"]: c for c in json.loads(out)}
    assert checks["journal"]["status"] == "warn"
    assert "1 offline transaction" in checks["journal"]["detail"]
    assert rc == 0


def test_broken_config_is_a_fail_line(tmp_path, capsys):
    f = tmp_path / "kiosk.toml"
    f.write_text("[sip2]\nport = 'x'\n")
    rc, out = _run(capsys, f)
    assert rc == 1
    assert out.startswith("FAIL")
    assert "sip2.port" in out


def test_damaged_pin_hash_fails(tmp_path, capsys, demo_acs):
    f = write_site(tmp_path, port=demo_acs.port)
    f.write_text(f.read_text().replace('pin_hash = "scrypt', 'pin_hash = "xcrypt'))
    rc, out = _run(capsys, f)
    assert rc == 1
    assert _line(out, "admin").startswith("FAIL")
    assert "set-pin" in _line(out, "admin")


# -- the secrets check ---------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["refuse", "warn"])
def test_world_readable_secrets(tmp_path, policy):
    f = write_site(tmp_path, port=6001, mode=0o644, extra=f'secrets_policy = "{policy}"\n')
    cfg = config.load(f)
    if policy == "refuse":
        with pytest.raises(ConfigError, match="readable by every user.*chmod 0640"):
            doctor.check_secrets(cfg)
    else:
        warnings = doctor.check_secrets(cfg)
        assert len(warnings) == 1
        assert "sip2.password" in warnings[0]
        assert "admin.pin_hash" in warnings[0]


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_private_secrets_are_fine(tmp_path, mode):
    f = write_site(tmp_path, port=6001, mode=mode, extra='secrets_policy = "refuse"\n')
    assert doctor.check_secrets(config.load(f)) == []


def test_world_readable_file_without_secrets_is_fine(tmp_path):
    f = tmp_path / "kiosk.toml"
    f.write_text('[admin]\nsecrets_policy = "refuse"\n')
    os.chmod(f, 0o644)
    assert doctor.check_secrets(config.load(f)) == []


def test_doctor_reports_refused_secrets(tmp_path, capsys, demo_acs):
    f = write_site(tmp_path, port=demo_acs.port, mode=0o604, extra='secrets_policy = "refuse"\n')
    rc, out = _run(capsys, f)
    assert rc == 1
    assert _line(out, "secrets").startswith("FAIL")
    assert "fix: chmod 0640" in _line(out, "secrets")


def test_doctor_does_not_create_the_journal(tmp_path, capsys, demo_acs):
    f = write_site(tmp_path, port=demo_acs.port)
    rc, out = _run(capsys, f)
    assert rc == 0
    assert "not created yet" in _line(out, "journal")
    assert not (tmp_path / "var" / "journal.sqlite").exists()


def test_the_demo_configuration_is_not_flagged():
    cfg = config.load(config.DEFAULT_CONFIG)
    assert cfg.kiosk.demo
    assert cfg.sip2.password
    assert doctor.check_secrets(cfg) == []


def test_warn_line_gives_the_fix_once(tmp_path, capsys, demo_acs):
    f = write_site(tmp_path, port=demo_acs.port, mode=0o644)
    rc, out = _run(capsys, f)
    line = _line(out, "secrets")
    assert rc == 0
    assert line.startswith("warn")
    assert line.count("chmod") == 1
