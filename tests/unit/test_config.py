"""Configuration loading: typed values, defaults, and one-line errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk import config
from kiosk.core.domain import OfflinePolicy, PinPolicy
from kiosk.errors import ConfigError


def test_embedded_default_loads_as_demo():
    cfg = config.load(config.DEFAULT_CONFIG)
    assert cfg.kiosk.demo is True
    assert cfg.acs.embedded is True
    assert cfg.reader.url == "sim:"
    assert cfg.security.afi_secured == 0x07
    assert cfg.security.afi_unsecured == 0xC2
    assert cfg.kiosk.languages == ("lv", "en", "ru")


def test_packaged_default_matches_the_config_folder():
    assert config.PACKAGED_DEFAULT.read_text() == config.DEFAULT_CONFIG.read_text()


def test_env_variable_chooses_the_file(tmp_path, monkeypatch):
    f = tmp_path / "site.toml"
    f.write_text('[sip2]\nhost = "ils.example.lv"\nport = 6002\n')
    monkeypatch.setenv("KIOSK_CONFIG", str(f))
    cfg = config.load()
    assert cfg.sip2.host == "ils.example.lv"
    assert cfg.sip2.port == 6002
    assert cfg.source == str(f.resolve())


@pytest.mark.parametrize(
    "text, key, expected",
    [
        ("[sip2]\nprot = 1\n", "sip2.prot", "unknown key"),
        ("[sip2]\nport = 'x'\n", "sip2.port", "whole number"),
        ("[sip2]\nport = 70000\n", "sip2.port", "1-65535"),
        ("[sip2]\nencoding = 'latin1'\n", "sip2.encoding", "cp1257"),
        ("[offline]\npolicy = 'sometimes'\n", "offline.policy", "'checkin-only'"),
        ("[offline]\npolicy = 1\n", "offline.policy", "'checkin-and-checkout'"),
        ("[patron]\npin_policy = 'Optional'\n", "patron.pin_policy", "'optional'"),
        ("[admin]\nsecrets_policy = 'ignore'\n", "admin.secrets_policy", "'refuse', 'warn'"),
        ("[kiosk]\nlanguages = ['lv', 'de']\n", "kiosk.languages", "lv, en, ru"),
        ("[ui]\nidle_warning_s = 5\n", "ui.idle_warning_s", "20 seconds"),
        ("[sip2]\ntls = 'yes'\n", "sip2.tls", "true or false"),
        ("[patron]\ncard_pattern = '(['\n", "patron.card_pattern", "regular expression"),
        ("[security]\nafi_secured = 300\n", "security.afi_secured", "byte"),
        ("[nonsense]\na = 1\n", "nonsense", "unknown key"),
        ("[[routing]]\ninstruction = 'x'\n", "bin", ""),
    ],
)
def test_bad_values_name_file_key_and_expectation(tmp_path, text, key, expected):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        config.load(f)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(f.resolve()) in msg
    assert key in msg
    assert expected in msg


def test_policies_are_read_into_their_enums(tmp_path):
    f = tmp_path / "site.toml"
    f.write_text(
        "[offline]\npolicy = 'disabled'\n[patron]\npin_policy = 'mandatory'\n"
        "[admin]\nsecrets_policy = 'refuse'\n"
    )
    cfg = config.load(f)
    assert cfg.offline.policy is OfflinePolicy.DISABLED
    assert cfg.patron.pin_policy is PinPolicy.MANDATORY
    assert cfg.admin.secrets_policy is config.SecretsPolicy.REFUSE
    defaults = config.load(config.DEFAULT_CONFIG)
    assert type(defaults.offline.policy) is OfflinePolicy
    assert type(defaults.patron.pin_policy) is PinPolicy


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[sip2\nport=1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(f)


def test_missing_file():
    with pytest.raises(ConfigError, match="not found"):
        config.load(Path("/nonexistent/kiosk.toml"))


def test_routing_rules_are_typed(tmp_path):
    f = tmp_path / "r.toml"
    f.write_text(
        '[[routing]]\nbin = 3\nalert_type = "02"\nhold_slip = true\n[[routing]]\nbin = 1\n'
    )
    cfg = config.load(f)
    assert cfg.routing[0].bin == 3
    assert cfg.routing[0].hold_slip is True
    assert cfg.routing[1].alert_type == ""


def test_config_is_frozen():
    cfg = config.parse("")
    with pytest.raises(AttributeError):
        cfg.sip2.port = 1  # type: ignore[misc]


def test_optional_bool_in_a_routing_row(tmp_path):
    f = tmp_path / "alert.toml"
    f.write_text(
        "[[routing]]\nbin = 3\nalert = true\n[[routing]]\nbin = 4\nalert = false\n[[routing]]\nbin = 5\n"
    )
    cfg = config.load(f)
    assert [r.alert for r in cfg.routing] == [True, False, None]
    f.write_text('[[routing]]\nbin = 3\nalert = "yes"\n')
    with pytest.raises(ConfigError, match="routing\\[0\\].alert: expected true or false"):
        config.load(f)


def test_site_currency_reaches_the_circulation_service(tmp_path):
    from kiosk.sync.circulation import build_circulation

    f = tmp_path / "c.toml"
    f.write_text(
        f'[kiosk]\ncurrency = "SEK"\n[storage]\npath = "{tmp_path / "j.sqlite"}"\n[sip2]\nport = 1\n'
    )
    cfg = config.load(f)
    assert cfg.kiosk.currency == "SEK"
    service = build_circulation(cfg)
    try:
        assert service.currency == "SEK"
    finally:
        service.close()
