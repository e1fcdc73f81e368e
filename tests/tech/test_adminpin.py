"""Admin PIN hashing and `kiosk admin set-pin` writing the hash into a config file in place."""

from __future__ import annotations

import io
import os
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk import adminpin, config
from kiosk.adminpin import AdminPinError

FAST = {"n": 2**10, "r": 8, "p": 1}


def test_hash_is_salted_and_verifies_only_the_right_pin():
    h1 = adminpin.hash_pin("4711", **FAST)
    h2 = adminpin.hash_pin("4711", **FAST)
    assert h1 != h2  # fresh salt every time
    assert "4711" not in h1
    assert h1.startswith("scrypt$1024$8$1$")
    assert adminpin.verify_pin("4711", h1)
    assert adminpin.verify_pin("4711", h2)
    assert not adminpin.verify_pin("4712", h1)
    assert not adminpin.verify_pin("", h1)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "4711",
        "scrypt$x$8$1$aa$bb",
        "scrypt$1024$8$1$!!$bb",
        "bcrypt$1$2$3$4$5",
        "scrypt$1000$8$1$AAAA$AAAA",
    ],
)
def test_damaged_hashes_never_match_and_explain(stored):
    assert adminpin.verify_pin("4711", stored) is False
    if stored:
        with pytest.raises(AdminPinError, match="set-pin"):
            adminpin.parse_hash(stored)


@pytest.mark.parametrize("pin", ["12", "12ab", "", "1" * 13, "١٢٣٤"])
def test_unusable_pins_are_refused(pin):
    with pytest.raises(AdminPinError):
        adminpin.hash_pin(pin, **FAST)


SITE = """# Site configuration for branch 3
[kiosk]
terminal_id = "B3-1"   # shown in logs

[admin]
# technicians: Jānis, Olga
cards = ["ADM0001"]
pin_hash = "old"   # replaced by set-pin
max_failures = 3

[[routing]]
bin = 2
"""


def test_set_pin_replaces_only_the_hash_line(tmp_path):
    f = tmp_path / "kiosk.toml"
    f.write_text(SITE)
    os.chmod(f, 0o640)
    h = adminpin.hash_pin("2468", **FAST)
    adminpin.write_pin_hash(f, h)
    new = f.read_text()
    old_lines, new_lines = SITE.splitlines(), new.splitlines()
    changed = [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert changed == [('pin_hash = "old"   # replaced by set-pin', f'pin_hash = "{h}"')]
    assert stat.S_IMODE(f.stat().st_mode) == 0o640
    cfg = config.load(f)
    assert adminpin.verify_pin("2468", cfg.admin.pin_hash)
    assert cfg.admin.cards == ("ADM0001",)


def test_set_pin_adds_the_key_or_the_section(tmp_path):
    h = adminpin.hash_pin("2468", **FAST)
    with_section = adminpin.with_pin_hash("[admin]\nmax_failures = 5\n[ui]\nsounds = false\n", h)
    assert config.parse(with_section).admin.pin_hash == h
    assert config.parse(with_section).admin.max_failures == 5
    assert config.parse(with_section).ui.sounds is False
    without = adminpin.with_pin_hash("[ui]\nsounds = false", h)
    assert without.startswith("[ui]\nsounds = false\n")
    assert config.parse(without).admin.pin_hash == h


def test_set_pin_refuses_the_embedded_demo_config():
    before = config.DEFAULT_CONFIG.read_text()
    with pytest.raises(AdminPinError, match="examples"):
        adminpin.write_pin_hash(config.DEFAULT_CONFIG, adminpin.hash_pin("2468", **FAST))
    assert config.DEFAULT_CONFIG.read_text() == before


def test_set_pin_keeps_the_file_when_the_result_would_not_load(tmp_path):
    f = tmp_path / "kiosk.toml"
    f.write_text('[admin]\npin_hash = "x"\nbogus_key = 1\n')
    with pytest.raises(config.ConfigError, match="bogus_key"):
        adminpin.write_pin_hash(f, adminpin.hash_pin("2468", **FAST))
    assert f.read_text() == '[admin]\npin_hash = "x"\nbogus_key = 1\n'


def test_cli_set_pin_from_stdin(tmp_path, monkeypatch, capsys):
    from kiosk import cli

    f = tmp_path / "kiosk.toml"
    f.write_text(SITE)
    monkeypatch.setattr("sys.stdin", io.StringIO("13579\n"))
    rc = cli.main(["--config", str(f), "admin", "set-pin", "--stdin"])
    assert rc == 0
    out = capsys.readouterr()
    assert "13579" not in out.out + out.err
    assert "13579" not in f.read_text()  # only the salted hash is stored
    assert adminpin.verify_pin("13579", config.load(f).admin.pin_hash)


def test_cli_set_pin_prompts_twice_and_refuses_a_mismatch(tmp_path, monkeypatch):
    from kiosk import cli

    f = tmp_path / "kiosk.toml"
    f.write_text(SITE)
    answers = iter(["13579", "97531"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert cli.main(["--config", str(f), "admin", "set-pin"]) != 0
    assert 'pin_hash = "old"' in f.read_text()
    answers = iter(["13579", "13579"])
    assert cli.main(["--config", str(f), "admin", "set-pin"]) == 0
    assert adminpin.verify_pin("13579", config.load(f).admin.pin_hash)


@given(st.text(max_size=120))
def test_any_stored_hash_text_is_refused_cleanly(text):
    assert adminpin.verify_pin("2468", text) is False
    try:
        adminpin.parse_hash(text)
    except AdminPinError:
        pass


@given(
    st.dictionaries(
        st.sampled_from(["ui", "admin", "kiosk", "x_comment"]), st.booleans(), max_size=4
    ),
    st.booleans(),
)
def test_set_pin_text_edit_keeps_every_other_setting(sections, trailing_newline):
    h = adminpin.hash_pin("2468", n=2**4, r=1)
    parts = []
    if "ui" in sections:
        parts.append("[ui]\nsounds = false\n# a comment = 1\n")
    if "admin" in sections:
        parts.append(
            '[admin]\n# pin_hash = "not this one"\nmax_failures = 7\n'
            + ('pin_hash = "old"\n' if sections["admin"] else "")
        )
    if "kiosk" in sections:
        parts.append('[kiosk]\nterminal_id = "X"\n')
    text = "# site\n" + "".join(parts)
    if not trailing_newline:
        text = text.rstrip("\n")
    new = adminpin.with_pin_hash(text, h)
    before, after = config.parse(text), config.parse(new)
    assert after.admin.pin_hash == h
    assert after.ui == before.ui
    assert after.kiosk == before.kiosk
    assert after.admin.max_failures == before.admin.max_failures
    assert "# site" in new
    assert ("# a comment = 1" in new) == ("ui" in sections)
