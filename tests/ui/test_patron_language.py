"""The patron's preferred language from the library system, through the real app: the demo
library system answers Ivan's (LV0004) patron information with Russian (015), so his visit
turns Russian at login; a language the patron tapped first wins."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui


def _type_card(p, number: str) -> None:
    p.tap_id("type_number", "welcome")
    p.wait_screen("card_entry")
    pad = p.widget("pad")
    p.tap_id("letters")
    p.keys(pad, number[:2])
    p.tap_id("letters")
    p.keys(pad, number[2:])
    p.tap_id("ok")
    p.wait_screen("checkout")


def test_a_russian_reader_is_greeted_in_russian(kiosk) -> None:
    p = kiosk.start("lang-ru-", pin_policy="none")
    p.wait_screen("welcome")
    assert p.app.lang == "lv"
    _type_card(p, "LV0004")
    p.wait_until(lambda: p.app.lang == "ru", what="the patron's language")
    p.settle()
    assert p.widget("tab_checkout").text == "Взять"
    assert p.widget("greeting").text.startswith("Здравствуйте")
    p.screenshot("checkout")
    # The language buttons stay on the welcome screen: the choice is the patron's to make first.
    assert len(p.widget("languages", "welcome").children) == 3


def test_a_language_tapped_first_wins(kiosk) -> None:
    p = kiosk.start("lang-chosen-", pin_policy="none")
    p.wait_screen("welcome")
    english = next(b for b in p.widget("languages", "welcome").children if b.code == "en")
    p.tap(english)
    p.wait_until(lambda: p.app.lang == "en", what="English chosen")
    _type_card(p, "LV0004")
    p.settle()
    assert p.app.lang == "en"
    assert p.widget("tab_checkout").text == "Borrow"


def test_the_language_can_be_changed_during_the_visit(kiosk) -> None:
    # Greeted in Russian from the library system's record, the patron switches to Latvian from
    # the bar without logging out; the welcome screen, with its own buttons, has no bar button.
    p = kiosk.start("lang-bar-", pin_policy="none")
    p.wait_screen("welcome")
    assert p.widget("language_button", "root").parent is None
    _type_card(p, "LV0004")
    p.wait_until(lambda: p.app.lang == "ru", what="the patron's language")
    p.settle()
    button = p.widget("language_button", "root")
    assert button.parent is not None
    assert button.text == "RU"  # the visit's language, not the one the kiosk started in
    p.tap(button)
    overlay = p.app.kiosk_root._languages
    assert overlay is not None
    assert sorted(b.code for b in overlay.ids.choices.children) == ["en", "lv", "ru"]
    p.screenshot("choices")
    latvian = next(b for b in overlay.ids.choices.children if b.code == "lv")
    assert latvian.text == "Latviešu"
    p.tap(latvian)
    p.wait_until(lambda: p.app.lang == "lv", what="Latvian chosen")
    p.settle()
    assert p.app.kiosk_root._languages is None
    assert p.widget("tab_checkout").text == "Ņemt"
    assert button.text == "LV"
    assert p.app.current_screen == "checkout"
    p.screenshot("after")
