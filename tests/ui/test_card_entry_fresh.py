"""The card keypad opens fresh: a mistyped number and its message from one visit are never shown
to the next patron (nor left in the first patron's language)."""

from __future__ import annotations

from typing import Any

import pytest

from kiosk.core.session import LoginProblem

pytestmark = pytest.mark.ui


def test_the_keypad_opens_without_the_last_patrons_digits_or_message(kiosk: Any) -> None:
    p = kiosk.start(prefix="card-entry-fresh-")
    app = p.app
    app.open_keypad()
    p.wait_screen("card_entry")
    screen = app.screen("card_entry")
    screen.keep("LV00123A", LoginProblem.BAD_CARD)
    assert screen.ids.pad.text == "LV00123A"
    assert screen.hint
    app.close_keypad()
    p.wait_screen("welcome")
    app.open_keypad()
    p.wait_screen("card_entry")
    assert screen.ids.pad.text == ""
    assert screen.hint == ""
    assert not screen.letters
