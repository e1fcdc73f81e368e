"""Proving the duplicate rule: the same 99 frame twice, seconds apart, against the demo library
system's profiles (a replay repeats the first answer's date; a re-execution has a later one),
from the client and from `kiosk sip2 check --duplicate-rule`."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from demo_link import settings_for

from kiosk.cli import main
from kiosk.sync.acs.server import RunningAcs, start_embedded
from kiosk.sync.sip2.client import Sip2Client


@pytest.fixture
def acs_with(tmp_path) -> Iterator:
    started: list[RunningAcs] = []

    def start(profile: str) -> RunningAcs:
        acs = start_embedded(
            f"sqlite:///{tmp_path / f'acs{len(started)}.sqlite'}", fresh=True, profile=profile
        )
        started.append(acs)
        return acs

    yield start
    for acs in started:
        acs.stop()


@pytest.mark.parametrize(
    "profile,detection,honoured",
    [
        ("standard", "on", True),
        ("no-duplicate-rule", "on", False),
        ("no-error-detection", "auto", False),
        ("standard", "off", False),  # without AY/AZ from the kiosk no rule can apply
    ],
)
def test_the_probe_tells_a_replaying_acs_from_one_that_executes_again(
    acs_with, profile, detection, honoured
) -> None:
    acs = acs_with(profile)
    client = Sip2Client(settings_for(acs, error_detection=detection, timeout_s=2.0))
    try:
        client.connect()
        assert client.probe_duplicate_rule(pause_s=1.2) is honoured
        assert client.sc_status().online, "the link stays usable after the probe"
    finally:
        client.close()


def test_sip2_check_reports_whether_the_rule_is_honoured(acs_with, tmp_path, capsys) -> None:
    acs = acs_with("no-duplicate-rule")
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        f'[sip2]\nhost = "{acs.host}"\nport = {acs.port}\nusername = "kiosk"\n'
        'password = "demo"\nerror_detection = "on"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "sip2", "check", "--duplicate-rule"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["duplicate_rule"] is False and report["duplicate_rule_honoured"] is False


def test_pysip2_honours_the_rule(pysip2_acs) -> None:
    client = Sip2Client(pysip2_acs.settings())
    try:
        client.connect()
        assert client.probe_duplicate_rule(pause_s=1.2) is True
    finally:
        client.close()
