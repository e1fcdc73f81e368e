"""The book drop by keypad: the first key starts speech, up and down choose the spoken language,
each returned item is said as it is decided, and speech goes off after the idle time."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest
from pilot import pump

from kiosk.config import SpeechSection
from kiosk.speech.keys import KEYCODES
from kiosk.speech.narration import say

pytestmark = pytest.mark.ui


@pytest.fixture
def recorded(kiosk: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = sys.modules[type(kiosk).__module__]
    make_config = module.make_config

    def with_recording(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(
            make_config(*args, **kwargs), speech=SpeechSection(engine="none")
        )

    monkeypatch.setattr(module, "make_config", with_recording)
    return kiosk


def _press(name: str) -> None:
    from kivy.core.window import Window

    Window.dispatch("on_key_down", KEYCODES[name], 0, None, [])
    pump(1)


def test_book_drop_by_keypad(recorded: Any) -> None:
    from kiosk.devices.readers.sim import demo_tag

    p = recorded.start(prefix="keypad-bookdrop-", mode="bookdrop")
    p.wait_screen("bookdrop")
    guide = p.app.speech
    sink = guide.speaker.engine

    def spoken() -> list[str]:
        assert guide.speaker.flush()
        return sink.texts

    assert not guide.speaker.enabled
    _press("down")  # the first key: speech on, where the patron is, in Latvian
    assert spoken() == [say("speech_on", "lv") + " " + say("bookdrop", "lv")]
    _press("down")  # the next language
    _press("down")
    assert spoken()[-2:] == [say("bookdrop", "en"), say("bookdrop", "ru")]
    _press("up")
    assert spoken()[-1] == say("bookdrop", "en")

    p.pad.place(demo_tag("30000009", secured=False))  # on loan to LV0001: a plain return
    p.wait_until(
        lambda: "Sprīdītis, returned." in spoken(), what=lambda: f"return said; spoken {spoken()}"
    )
    p.screenshot("returned")
    _press("f1")  # help: the purpose again and the keys
    assert spoken()[-1].startswith(say("bookdrop", "en")) and say("keys", "en") in spoken()[-1]

    # no key and no item for the idle time: speech goes off, the language back to Latvian
    p.clock.advance(p.app.cfg.ui.idle_timeout_s + 1)
    p.app.tick()
    assert not guide.speaker.enabled
    assert guide.lang == "lv"
