"""What a first-time patron meets, through the real KioskApp: a mistyped card number stays on the
keypad with what a card number looks like; help on every screen with "Call staff" raising a staff
alert; a blocked patron reads one sentence and is not asked to place items; a greeting with what
needs attention; out of service in plain words in every language with the opening hours."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui

UI_EXTRA = '\nopening_hours = "P-Pk 10-19"\ncard_hint = "LV and 4-12 digits, e.g. LV0001"\nfee_payment = "at the desk"\n'


def _typed(p, text: str) -> None:
    p.tap_id("type_number", "welcome")
    p.wait_screen("card_entry")
    pad = p.widget("pad")
    if not p.screen("card_entry").letters:
        p.tap_id("letters")
    p.keys(pad, "LV")
    p.tap_id("letters")
    p.keys(pad, text)


def test_a_mistyped_card_number_stays_on_the_keypad_with_a_hint(kiosk) -> None:
    p = kiosk.start("first-mistyped-", pin_policy="none", ui_extra=UI_EXTRA)
    p.wait_screen("welcome")
    _typed(p, "01")  # LV01: too short for the card pattern
    p.tap_id("ok")
    p.wait_until(
        lambda: p.app.state.problem is not None and p.app.current_screen == "card_entry",
        what="back on the keypad",
    )
    p.wait_until(lambda: p.widget("hint", "card_entry").text, what="the hint")
    assert p.widget("display", "card_entry").text == "LV01"  # the digits are kept
    hint = p.widget("hint", "card_entry").text
    assert "Tas nav lasītāja kartes numurs" in hint
    assert "LV and 4-12 digits, e.g. LV0001" in hint
    p.screenshot("card-mistyped")
    p.keys(p.widget("pad", "card_entry"), "01")  # corrected: LV0101 is not known, LV0001 is
    p.tap(
        next(
            k
            for k in p.widget("pad", "card_entry").children
            if getattr(k, "key", "") == "BACKSPACE"
        )
    )
    p.tap(
        next(
            k
            for k in p.widget("pad", "card_entry").children
            if getattr(k, "key", "") == "BACKSPACE"
        )
    )
    p.tap(
        next(
            k
            for k in p.widget("pad", "card_entry").children
            if getattr(k, "key", "") == "BACKSPACE"
        )
    )
    p.keys(p.widget("pad", "card_entry"), "001")
    assert p.widget("display", "card_entry").text == "LV0001"
    p.tap_id("ok")
    p.wait_screen("checkout")
    greeting = p.widget("greeting", "checkout").text
    assert greeting.startswith("Sveiki")


def test_help_on_every_screen_and_call_staff_raises_a_staff_alert(kiosk) -> None:
    p = kiosk.start("first-help-", pin_policy="none")
    app = p.app
    alerts: list[str] = []
    app.staff_alert = alerts.append  # as kiosk.app wires the services' alerting
    p.wait_screen("welcome")
    for name in ("welcome", "checkout"):
        if name == "checkout":
            p.choose_language(
                "lv"
            )  # John reads English in the library system; here he chooses Latvian
            app.present_card("LV0002")
            p.wait_screen("checkout")
        p.tap_id("help_button", "root")
        overlay = p.find(lambda w: type(w).__name__ == "HelpOverlay")
        assert overlay.ids.help_text.text  # what to do here, in the patron's language
        p.screenshot(f"help-{name}")
        if name == "checkout":
            p.tap(overlay.ids.call_staff)
            assert alerts
            assert "checkout" in alerts[0]
            assert overlay.ids.staff_coming.text == "Darbinieks ir izsaukts un drīz būs klāt."
            assert overlay.ids.call_staff.disabled  # one call is enough
            p.screenshot("help-staff-called")
        p.tap(overlay.ids.close_help)
        assert not any(
            type(w).__name__ == "HelpOverlay" for w in app.kiosk_root.walk(restrict=True)
        )
    assert len(alerts) == 1


def test_call_staff_without_an_alert_service_is_logged(kiosk, caplog) -> None:
    """No alert service running (no sinks configured): the call still leaves a warning in the log,
    from the fleet alerting when the kiosk has it, else from the app."""
    p = kiosk.start("first-help-log-", pin_policy="none")
    p.wait_screen("welcome")
    with caplog.at_level("WARNING"):
        p.app.call_staff("welcome")
    assert any("staff" in r.getMessage() and "welcome" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


def test_a_blocked_patron_reads_one_sentence_and_is_not_asked_to_place_items(kiosk) -> None:
    p = kiosk.start("first-blocked-", pin_policy="none")
    kiosk.acs.library.block_patron("LV0002", "blocked by staff")  # denies charging
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    p.wait_until(lambda: p.widget("notice", "checkout").text, what="the block")
    notice = p.widget("notice", "checkout").text
    assert "\n" not in notice
    assert notice.endswith(".")  # one sentence
    assert p.widget("place_items", "checkout").text == ""
    p.screenshot("blocked-one-sentence")


def test_greeting_says_what_needs_attention(kiosk) -> None:
    p = kiosk.start("first-greeting-", pin_policy="none")
    p.wait_screen("welcome")
    p.choose_language("lv")  # John reads English in the library system; here he chooses Latvian
    p.app.present_card("LV0002")  # has an overdue loan
    p.wait_screen("checkout")
    p.wait_until(
        lambda: "nokavēt" in p.widget("greeting", "checkout").text, what="overdue in the greeting"
    )
    p.screenshot("greeting-overdue")


def test_out_of_service_in_plain_words_in_every_language(kiosk) -> None:
    p = kiosk.start("first-resting-", reader="bogus:nothing", ui_extra=UI_EXTRA)
    p.wait_screen("out_of_service")
    screen = p.screen("out_of_service")
    assert screen.ids.resting.text == "Šis kiosks atpūšas."
    assert "This kiosk is resting." in screen.ids.resting_others.text
    assert "Этот киоск отдыхает." in screen.ids.resting_others.text
    assert screen.ids.hours.text == "Darba laiks: P-Pk 10-19"
    shown = " ".join(w.text for w in screen.walk() if hasattr(w, "text"))
    assert "reader" not in shown.lower()
    assert "bogus" not in shown  # technical text goes to the log
    p.screenshot("out-of-service-plain")
