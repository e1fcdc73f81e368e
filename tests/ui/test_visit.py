"""A whole patron visit, tapped through the real widgets against the embedded demo library system
and the simulated pad: identify, PIN, stack checkout with a refused item and an incomplete set,
account, renew, receipt, goodbye and idle timeout - in Latvian, English and Russian, and in
large-text/high-contrast mode. Screenshots of every screen go to tests/artifacts/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.core.checkout import ItemStatus
from kiosk.core.session import Stage

pytestmark = pytest.mark.ui


def _items(app):
    state = app.state
    return {i.item_id: i for i in state.checkout.items} if state and state.checkout else {}


def _login_lv0001(p, shot: bool = True) -> None:
    """Type LV0001 on the keypad, get asked for the PIN, give a wrong one, then the right one."""
    p.tap_id("type_number", "welcome")
    p.wait_screen("card_entry")
    pad = p.widget("pad")
    p.tap_id("letters")
    p.keys(pad, "LV")
    p.tap_id("letters")
    p.keys(pad, "0001")
    assert p.widget("display").text == "LV0001"
    if shot:
        p.screenshot("02-card-entry")
    p.tap_id("ok")
    p.wait_screen("pin")
    if shot:
        p.screenshot("03-pin")
    pad = p.widget("pad", "pin")
    p.keys(pad, "9999")
    assert p.widget("dots", "pin").text == "●●●●"  # the PIN is masked
    p.tap_id("ok", "pin")
    p.wait_until(
        lambda: p.app.state.problem is not None and p.widget("message", "pin").text,
        what="wrong PIN message",
    )
    if shot:
        p.screenshot("04-pin-wrong")
    p.keys(p.widget("pad", "pin"), "1234")
    assert len(p.widget("dots", "pin").text) == 4
    p.tap_id("ok", "pin")
    p.wait_until(
        lambda: p.app.current_screen == "checkout",
        what=lambda: f"checkout after the right PIN, state {p.app.state}",
    )
    p.settle()


def _visit(p, lang: str, receipts: Path, expect: dict[str, str]) -> None:
    app = p.app
    p.wait_screen("welcome")
    if lang != "lv":
        button = next(b for b in p.widget("languages", "welcome").children if b.code == lang)
        p.tap(button)
        p.wait_until(lambda: app.lang == lang, what="language switch")
    assert p.widget("type_number", "welcome").text == expect["type"]
    p.screenshot("01-welcome")

    _login_lv0001(p)
    assert app.lang == lang  # the choice survives the login
    p.screenshot("05-checkout-empty")

    from kiosk.devices.readers.sim import demo_tag

    pad = p.pad
    pad.place(demo_tag("30000001"))
    pad.place(demo_tag("30000006"))  # on hold for another patron
    pad.place(demo_tag("30000005", 1, 3))  # 2 parts of a 3-part set
    pad.place(demo_tag("30000005", 2, 3))
    p.wait_until(
        lambda: {"30000001", "30000006", "30000005"} <= set(_items(app)), what="all items seen"
    )
    p.wait_until(
        lambda: (
            _items(app)["30000001"].status is ItemStatus.CHECKED_OUT
            and _items(app)["30000006"].final
        ),
        what="answers",
    )
    items = _items(app)
    assert items["30000006"].status is ItemStatus.REFUSED
    assert items["30000005"].status in (ItemStatus.WAITING, ItemStatus.REFUSED)
    rows = {row.item_id: row for row in p.widget("item_list", "checkout").children}
    assert rows["30000001"].state_name == "ok"
    assert expect["due"] in rows["30000001"].status
    assert rows["30000006"].state_name == "refused"
    assert rows["30000006"].status == expect["hold"]
    assert "3" in rows["30000005"].status
    assert "2" in rows["30000005"].status
    # nothing was checked out for the waiting set, yet its title was asked for and is shown
    p.wait_until(
        lambda: rows["30000005"].title == "Latviešu valodas kurss (3 CD)",
        what="title of the waiting set",
    )
    assert not pad.tag(demo_tag("30000006").uid).afi == 0xC2  # a refused item stays secured
    p.screenshot("06-checkout-results")

    p.tap_id("tab_account", "checkout")
    p.wait_screen("account")
    p.wait_until(
        lambda: (
            app.state.account
            and any(loan.item_id == "30000009" for loan in app.state.account.loans)
        ),
        what="loans",
    )
    p.screenshot("07-account")
    renew = next(
        r
        for r in p.widget("account_list", "account").children
        if getattr(r, "item_id", "") == "30000009"
    )
    p.tap(renew.action_button)
    p.wait_until(
        lambda: any(
            loan.item_id == "30000009" and loan.renewed is not None
            for loan in app.state.account.loans
        ),
        what="renewal",
    )
    p.screenshot("08-account-renewed")
    if p.widget("renew_all", "account").disabled is False:
        p.tap_id("renew_all", "account")
        p.wait_until(
            lambda: all(loan.renewed is not None for loan in app.state.account.loans),
            what="renew all",
        )
        p.screenshot("09-account-renew-all")

    p.tap_id("finish", "account")
    p.wait_screen("finish")
    refused = p.widget("refused_list", "finish").text
    assert expect["desk"] in refused
    assert "Mērnieku laiki" in refused  # the refused item, by name
    p.screenshot("10-receipt-choice")
    p.wait_until(lambda: not p.widget("print_receipt", "finish").disabled, what="printer ready")
    p.tap_id("print_receipt", "finish")
    p.wait_screen("goodbye")
    assert (
        "Mērnieku laiki" in p.widget("message", "goodbye").text
    )  # named again: leave it at the desk
    p.screenshot("11-goodbye")
    transcript = p.wait_until(lambda: next(iter(receipts.glob("*.txt")), None), what="receipt file")
    text = transcript.read_text(encoding="utf-8")
    assert expect["receipt"] in text
    assert "**0001" in text
    assert "LV0001" not in text
    assert "1234" not in text
    assert not p.widget("item_list", "checkout").children  # the patron's list is wiped at goodbye
    assert app.state.patron is None
    assert app.state.checkout is None
    p.tap_id("done", "goodbye")
    p.wait_screen("welcome")
    assert app.lang == "lv"  # the next patron is greeted in Latvian


EXPECT = {
    "lv": {
        "type": "Ievadiet kartes numuru",
        "due": "Atdot līdz",
        "hold": "Rezervēts citam lasītājam. Lūdzu, atstājiet to pie bibliotekāra.",
        "receipt": "Izsniegšanas kvīts",
        "desk": "atstājiet šos izdevumus pie bibliotekāra",
    },
    "en": {
        "type": "Type your card number",
        "due": "Due",
        "hold": "Reserved for another reader. Please leave it at the desk.",
        "receipt": "Loan receipt",
        "desk": "leave these at the desk",
    },
    "ru": {
        "type": "Введите номер билета",
        "due": "Вернуть до",
        "hold": "Забронировано другим читателем. Пожалуйста, оставьте его у библиотекаря.",
        "receipt": "Квитанция о выдаче",
        "desk": "оставьте это у библиотекаря",
    },
}


@pytest.mark.parametrize("lang", ["lv", "en", "ru"])
def test_whole_visit(kiosk, tmp_path: Path, lang: str) -> None:
    p = kiosk.start(prefix=f"{lang}-")
    _visit(p, lang, tmp_path / "receipts", EXPECT[lang])
    assert len(p.shots) >= 10


def test_whole_visit_large_text_high_contrast(kiosk, tmp_path: Path) -> None:
    p = kiosk.start(prefix="lv-large-contrast-")
    p.wait_screen("welcome")
    normal = p.widget("type_number", "welcome").font_size
    p.tap_id("large_text_toggle", "root")
    p.tap_id("contrast_toggle", "root")
    p.wait_until(lambda: p.app.theme.large_text and p.app.theme.high_contrast)
    assert p.widget("type_number", "welcome").font_size > normal
    assert tuple(p.app.theme.bg) == (0, 0, 0, 1)
    _visit(p, "lv", tmp_path / "receipts", EXPECT["lv"])
    assert not p.app.theme.large_text
    assert not p.app.theme.high_contrast  # reset for the next patron


def test_idle_warning_extend_and_timeout_reset(kiosk) -> None:
    p = kiosk.start(prefix="ru-")
    app = p.app
    p.wait_screen("welcome")
    p.tap(next(b for b in p.widget("languages", "welcome").children if b.code == "ru"))
    p.tap_id("large_text_toggle", "root")
    _login_lv0001(p, shot=False)
    settings = app.services.session.settings
    p.clock.advance(settings.idle_timeout_s - settings.idle_warning_s + 1)
    app.tick()
    p.wait_until(lambda: app.idle_warning, what="idle warning")
    warning = p.find(lambda w: type(w).__name__ == "IdleWarning")
    assert app.seconds_left >= 20  # at least 20 s to react
    assert str(app.seconds_left) in warning.ids.countdown.text
    assert "Вы ещё здесь?" in warning.children[0].children[-1].text
    p.screenshot("12-idle-warning")
    p.tap(warning.ids.extend)
    p.wait_until(
        lambda: (
            not app.idle_warning and app.state.stage is Stage.ACTIVE and not app.state.idle_warning
        ),
        what="extended",
    )
    p.clock.advance(settings.idle_timeout_s - settings.idle_warning_s + 1)
    app.tick()
    p.wait_until(lambda: app.idle_warning)
    p.clock.advance(settings.idle_warning_s + 1)
    app.tick()
    p.wait_screen("timed_out")  # never silently: the session has ended, in the patron's language
    assert app.state.stage is Stage.WELCOME
    assert app.state.patron is None
    assert p.widget("ended", "timed_out").text == "Ваш сеанс завершён."
    assert p.widget("done", "timed_out").text == "Готово"
    p.screenshot("13-timed-out")
    p.clock.advance(app.cfg.ui.goodbye_s + 1)
    app.tick()
    p.wait_screen("welcome")
    assert app.lang == "lv"
    assert not app.theme.large_text  # language and display reset
    p.screenshot("14-after-timeout")
