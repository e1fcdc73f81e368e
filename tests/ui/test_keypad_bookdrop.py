"""The book drop by keypad: the first key starts speech, up and down choose the spoken language,
each returned item is said as it is decided, and speech goes off after the idle time."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.speech.narration import say
from tests.ui.test_keypad_visit import Keypad, recorded  # noqa: F401, F811  (the fixture)

pytestmark = pytest.mark.ui


def test_book_drop_by_keypad(recorded: Any) -> None:  # noqa: F811
    from kiosk.devices.readers.sim import demo_tag

    p = recorded.start(prefix="keypad-bookdrop-", mode="bookdrop")
    p.wait_screen("bookdrop")
    keypad = Keypad(p)
    _press = keypad.press
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
    assert spoken()[-1].startswith(say("bookdrop", "en"))
    assert say("keys", "en") in spoken()[-1]

    # no key and no item for the idle time: speech goes off, the language back to Latvian
    p.clock.advance(p.app.cfg.ui.idle_timeout_s + 1)
    p.app.tick()
    assert not guide.speaker.enabled
    assert guide.lang == "lv"
