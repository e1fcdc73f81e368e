"""Configuration faults of the library-system link are named as such (the key and the fix),
not reported as the library system being unreachable: `kiosk doctor` and `kiosk sip2 check`
against the demo library system on loopback."""

from __future__ import annotations

from kiosk import config as kconfig
from kiosk import doctor
from kiosk.cli import main
from kiosk.exitcodes import Exit
from tests.tech.conftest import write_site


def library(checks: list[doctor.Check]) -> doctor.Check:
    return next(c for c in checks if c.name == "library")


def test_a_refused_login_names_the_password(tmp_path, demo_acs, capsys):
    f = write_site(tmp_path, port=demo_acs.port)
    f.write_text(f.read_text().replace('password = "demo"', 'password = "typo"'))
    check = library(doctor.run_checks(kconfig.load(f), timeout_s=2))
    assert check.status is doctor.Status.FAIL
    assert check.detail.startswith("[sip2] password: the library system refused the login")
    assert "(94 0)" in check.detail
    assert "unreachable" not in check.detail
    assert main(["--config", str(f), "sip2", "check"]) == Exit.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "[sip2] password" in err[0]
    assert "typo" not in err[0]


def test_a_missing_ca_file_names_the_key(tmp_path, demo_acs, capsys):
    missing = tmp_path / "ca.pem"
    f = write_site(tmp_path, port=demo_acs.port, extra="")
    f.write_text(
        f.read_text().replace(
            "timeout_s = 2.0", f'timeout_s = 2.0\ntls = true\ntls_ca_file = "{missing}"'
        )
    )
    check = library(doctor.run_checks(kconfig.load(f), timeout_s=2))
    assert check.status is doctor.Status.FAIL
    assert check.detail == f"[sip2] tls_ca_file: {missing} does not exist"
    assert main(["--config", str(f), "sip2", "check"]) == Exit.USAGE
    assert f"[sip2] tls_ca_file: {missing} does not exist" in capsys.readouterr().err
