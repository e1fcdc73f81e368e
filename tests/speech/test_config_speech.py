"""The [speech] and [keypad] sections: defaults, and a clear one-line error for each wrong value."""

from __future__ import annotations

import pytest

from kiosk.config import parse
from kiosk.errors import ConfigError
from kiosk.speech.keys import ACTIONS, KEYCODES


def test_defaults_are_valid_and_every_action_has_a_key() -> None:
    cfg = parse("")
    assert cfg.speech.mode == "on-demand"
    assert cfg.speech.engine == "espeak-ng"
    for action in ACTIONS:
        assert getattr(cfg.keypad, action), action
        assert all(name in KEYCODES for name in getattr(cfg.keypad, action))


def test_a_site_can_remap_keys_and_switch_speech_always_on() -> None:
    cfg = parse(
        '[speech]\nmode = "always"\nvoice_ru = "ru-lv"\nrate = 140\n[keypad]\nup = ["numpad8"]\ndown = ["numpad2"]\nenter = ["numpad5"]\n'
    )
    assert cfg.speech.mode == "always"
    assert cfg.speech.voice_ru == "ru-lv"
    assert cfg.speech.rate == 140
    assert cfg.keypad.up == ("numpad8",)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[speech]\nmode = "loud"', "speech.mode: expected one of 'off', 'on-demand', 'always'"),
        ("[speech]\nvolume = 150", "speech.volume: expected 10-100"),
        ("[speech]\nrate = 20", "speech.rate: expected 80-400"),
        ('[speech]\nvoice_lv = " "', "speech.voice_lv: expected a name"),
        ('[keypad]\nup = ["uparrow"]', "keypad.up: unknown key 'uparrow'"),
        ('[keypad]\nhelp = ["up"]', "keypad.help: key 'up' is already keypad.up"),
        ("[keypad]\nup = []", "keypad: expected at least one key each for up, down and enter"),
        ("[keypad]\nring_width = 1", "keypad.ring_width: expected 2-20"),
        ('[keypad]\nring_color = "yellow"', "keypad.ring_color: expected #RRGGBB"),
        ("[keypad]\ncolour = 1", "keypad.colour: unknown key"),
    ],
)
def test_wrong_values_are_refused_with_the_key_named(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse(toml, "site.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("site.toml: ")
