"""Layered configuration: one site file for every kiosk of a library under each kiosk's own file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk import cli, config, config_layers
from kiosk.errors import ConfigError

SITE = """[kiosk]
library_name = "City Library"
currency = "EUR"
[sip2]
host = "sip.library.example"
port = 6001
username = "kiosk"
password = "site-secret"
institution_id = "CITY"
[offline]
policy = "checkin-and-checkout"
[[routing]]
bin = 2
media_type = "006"
"""


def kiosk_file(tmp_path: Path, body: str = "", site: str = "site.toml") -> Path:
    (tmp_path / "config").mkdir(exist_ok=True)
    f = tmp_path / "config" / "kiosk.toml"
    f.write_text(
        f'[site]\nfile = "{tmp_path / site}"\n[kiosk]\nterminal_id = "CENTRAL-3"\n[reader]\nurl = "sim:c3"\n{body}'
    )
    return f


def test_site_values_under_kiosk_values_with_origins(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    cfg = config.load(kiosk_file(tmp_path, '[sip2]\nlocation_code = "CENTRAL"\n'))
    assert cfg.kiosk.library_name == "City Library" and cfg.kiosk.terminal_id == "CENTRAL-3"
    assert cfg.sip2.host == "sip.library.example" and cfg.sip2.location_code == "CENTRAL"
    assert cfg.offline.policy == "checkin-and-checkout"
    assert [r.bin for r in cfg.routing] == [2]
    origins = {v.key: v.origin for v in config_layers.resolved_values(cfg)}
    assert origins["sip2.host"] == "site" and origins["sip2.location_code"] == "kiosk"
    assert (
        origins["kiosk.terminal_id"] == "kiosk"
        and origins["ui.width"] == "default"
        and origins["routing"] == "site"
    )
    assert config_layers.report_for(cfg).problems == ()


def test_kiosk_file_wins_and_lists_replace(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    cfg = config.load(kiosk_file(tmp_path, "[sip2]\nport = 7001\n[[routing]]\nbin = 5\n"))
    assert cfg.sip2.port == 7001 and cfg.sip2.host == "sip.library.example"
    assert [r.bin for r in cfg.routing] == [5]


def test_config_show_resolved_masks_secrets_and_names_origins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    f = kiosk_file(tmp_path, '[status_page]\ntoken = "tok-123"\n')
    assert cli.main(["--config", str(f), "config", "show", "--resolved"]) == 0
    out = capsys.readouterr().out
    assert "site-secret" not in out and "tok-123" not in out
    assert 'password = "********"  # site' in out
    assert 'host = "sip.library.example"  # site' in out
    assert 'terminal_id = "CENTRAL-3"  # kiosk' in out
    assert "width = 1280  # default" in out
    assert f"# config hash: {config_layers.config_hash(config.load(f))}" in out
    assert cli.main(["--config", str(f), "config", "show", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    values = {v["key"]: v for v in doc["values"]}
    assert values["sip2.password"] == {
        "key": "sip2.password",
        "value": "********",
        "origin": "site",
    }


def test_config_hash_follows_the_settings(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    f = kiosk_file(tmp_path)
    first = config_layers.config_hash(config.load(f))
    assert first == config_layers.config_hash(config.load(f))
    (tmp_path / "site.toml").write_text(SITE.replace("6001", "6002"))
    assert config_layers.config_hash(config.load(f)) != first


def test_a_broken_site_file_falls_back_to_the_last_good_copy(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    f = kiosk_file(tmp_path)
    good = config.load(f)
    assert (tmp_path / "var" / "site.last-good.toml").read_text() == SITE
    (tmp_path / "site.toml").write_text(
        SITE.replace('policy = "checkin-and-checkout"', 'policy = "sometimes"')
    )
    cfg = config.load(f)
    assert cfg.sip2.host == "sip.library.example" and cfg.offline.policy == "checkin-and-checkout"
    rep = config_layers.report_for(cfg)
    assert rep.site_used == config_layers.LAST_GOOD
    assert "offline.policy" in rep.problems[0] and "last good" in rep.problems[1]
    assert config_layers.config_hash(cfg) == config_layers.config_hash(good)
    assert (
        tmp_path / "var" / "site.last-good.toml"
    ).read_text() == SITE  # the bad one did not replace it


def test_no_site_file_at_all_runs_on_the_kiosk_file(tmp_path: Path) -> None:
    cfg = config.load(kiosk_file(tmp_path, site="missing.toml"))
    assert cfg.kiosk.terminal_id == "CENTRAL-3" and cfg.sip2.host == "127.0.0.1"
    assert "not found" in config_layers.report_for(cfg).problems[0]


def test_a_broken_kiosk_file_is_still_an_error(tmp_path: Path) -> None:
    (tmp_path / "site.toml").write_text(SITE)
    f = kiosk_file(tmp_path, "[ui]\nwidth = 'wide'\n")
    with pytest.raises(ConfigError, match="ui.width"):
        config.load(f)


def test_site_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other.toml").write_text(SITE.replace("City Library", "Branch Library"))
    monkeypatch.setenv(config_layers.SITE_ENV, str(tmp_path / "other.toml"))
    assert config.load(kiosk_file(tmp_path)).kiosk.library_name == "Branch Library"


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(max_size=200))
def test_any_site_file_content_never_stops_the_kiosk(tmp_path: Path, text: str) -> None:
    try:
        (tmp_path / "site.toml").write_text(text, encoding="utf-8")
    except UnicodeEncodeError:
        return
    cfg = config.load(kiosk_file(tmp_path))
    assert cfg.kiosk.terminal_id == "CENTRAL-3"


def test_a_running_kiosk_alerts_on_a_broken_new_site_file(tmp_path: Path, demo_acs: Any) -> None:
    from tests.fleet.conftest import write_kiosk
    from tests.fleet.kiosk_process import HeadlessKiosk
    from tests.fleet.procs import wait_for
    from tests.fleet.receivers import WebhookReceiver

    receiver = WebhookReceiver()
    site = tmp_path / "site.toml"
    site.write_text('[kiosk]\nlibrary_name = "City Library"\n')
    extra = f'[site]\nfile = "{site}"\n[alerts]\nwebhook_url = "{receiver.url}"\nretry_initial_s = 0.1\n'
    k = HeadlessKiosk(config.load(write_kiosk(tmp_path, port=demo_acs.port, extra=extra)))
    try:
        assert k.fleet.check_site() == []  # unchanged
        site.write_text("[kiosk\nbroken")
        problems = k.fleet.check_site()
        assert problems and "not valid TOML" in problems[0]
        assert k.services.cfg.kiosk.library_name == "City Library"  # still running on the good one
        assert k.fleet.metrics.site_config_ok._value.get() == 0
        wait_for(lambda: receiver.bodies, 10, "the alert at the webhook")
        assert receiver.bodies[0]["kind"] == "site_config_rejected"
    finally:
        k.close()
        receiver.stop()
