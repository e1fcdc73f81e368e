"""The patron screens beyond the main visit: a stalled library system never freezes touches,
block reasons at login, returns, the demo panel, out of service, offline, paper out, a keyboard
wedge scanner, small and portrait screens with touch targets of at least 48 px."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiosk.core.checkout import ItemStatus
from kiosk.core.events import CardSource
from kiosk.devices.printer import PAPER_OUT_FLAG
from kiosk.devices.readers.sim import demo_tag
from kiosk.sounds import Cue

pytestmark = pytest.mark.ui


def _items(app):
    return (
        {i.item_id: i for i in app.state.checkout.items} if app.state and app.state.checkout else {}
    )


def _login(p, card: str) -> None:
    """The card on the contactless reader (as the demo panel or a card source presents it)."""
    p.wait_screen("welcome")
    p.app.present_card(card, CardSource.RFID)


def _in_scroll_view(widget) -> bool:
    from kivy.uix.scrollview import ScrollView

    parent = widget.parent
    while parent is not None and parent is not parent.parent:
        if isinstance(parent, ScrollView):
            return True
        parent = parent.parent
    return False


def _buttons(root):
    from kivy.uix.button import Button

    return [
        w
        for w in root.walk(restrict=True)
        if isinstance(w, Button)
        and w.opacity > 0
        and w.width > 1
        and w.height > 1
        and w.get_root_window()
    ]


def test_screen_answers_touches_while_the_library_system_stalls(kiosk, acs) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="optional", sip2_timeout=15.0)
    app = p.app
    _login(p, "LV0002")
    p.wait_screen("checkout")
    acs.faults.stall_s = 10
    p.pad.place(demo_tag("30000003"))
    p.wait_until(lambda: "30000003" in _items(app), what="item shown before the answer")
    assert acs.faults.reply_held.wait(5)  # the library system holds its answer back
    row = next(r for r in p.widget("item_list", "checkout").children if r.item_id == "30000003")
    assert row.state_name == "pending"
    before = p.widget("finish", "checkout").font_size
    started = time.monotonic()
    p.tap_id("large_text_toggle", "root")
    p.wait_until(
        lambda: p.widget("finish", "checkout").font_size > before,
        timeout=2,
        what="larger text while the checkout waits",
    )
    assert time.monotonic() - started < 2
    assert _items(app)["30000003"].status is ItemStatus.SEEN  # still waiting for the library system
    p.screenshot("20-stalled-checkout-large-text")
    acs.faults.stall_s = 0
    p.wait_until(
        lambda: _items(app)["30000003"].status is ItemStatus.CHECKED_OUT,
        timeout=15,
        what="answer after the stall",
    )
    assert app.theme.large_text  # the snapshot that arrived late did not undo the patron's choice
    assert Cue.SCAN in app.services.sounds.played
    assert Cue.SUCCESS in app.services.sounds.played


@pytest.mark.parametrize(
    ("card", "words", "shot"),
    [
        ("LV0003", "pieteikta kā pazaudēta", "21-blocked-lost-card"),
        ("LV9999", "nav zināma", "23-unknown-card"),
        ("LV0005", "derīgum", "21-blocked-expired-card"),  # said only in AF: "card expired"
    ],
)
def test_block_reasons_at_login_in_plain_words(kiosk, card: str, words: str, shot: str) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="none")
    _login(p, card)
    message = p.wait_until(lambda: p.widget("message", "welcome").text, what="block message")
    assert words in message
    assert p.app.current_screen == "welcome"
    assert Cue.REFUSAL in p.app.services.sounds.played
    p.screenshot(shot)


def test_blocked_patron_may_look_but_not_borrow(kiosk) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="none")
    kiosk.acs.library.block_patron("LV0002", "blocked by staff")  # denies charging
    _login(p, "LV0002")
    p.wait_screen("checkout")
    notice = p.wait_until(lambda: p.widget("notice", "checkout").text, what="block notice")
    assert "Izdevumu ņemšana ar jūsu karti ir bloķēta" in notice
    p.pad.place(demo_tag("30000001"))
    p.wait_until(lambda: _items(p.app).get("30000001") and _items(p.app)["30000001"].final)
    assert _items(p.app)["30000001"].status is ItemStatus.REFUSED
    p.screenshot("22-blocked-patron-checkout")


def test_patron_with_fees_sees_them_in_the_account(kiosk) -> None:
    p = kiosk.start(prefix="ru-contrast-", pin_policy="none")
    p.wait_screen("welcome")
    p.tap(next(b for b in p.widget("languages", "welcome").children if b.code == "ru"))
    _login(p, "LV0004")
    p.wait_screen("checkout")
    p.tap(p.widget("contrast_toggle", "root"))
    p.tap_id("tab_account", "checkout")
    p.wait_screen("account")
    p.wait_until(lambda: p.app.state.account and p.app.state.account.fees, what="fees")
    p.settle()
    texts = [getattr(w, "text", "") for w in p.widget("account_list", "account").walk()]
    assert any("3,50 €" in t for t in texts)
    assert any("Kavējuma nauda" in t for t in texts)
    p.screenshot("24-account-fees")


def test_barcode_item_and_bad_scan(kiosk) -> None:
    p = kiosk.start(prefix="en-", pin_policy="none")
    p.tap(next(b for b in p.widget("languages", "welcome").children if b.code == "en"))
    _login(p, "LV0002")
    p.wait_screen("checkout")
    p.app.scan("30000007")  # reference: not for loan
    p.app.scan("not|an item")
    p.wait_until(
        lambda: _items(p.app).get("30000007") and _items(p.app)["30000007"].final, what="refusal"
    )
    rows = {r.item_id: r for r in p.widget("item_list", "checkout").children}
    assert rows["30000007"].status == "This item can only be used in the library."
    assert rows[""].status == "That is not an item number."
    p.screenshot("25-barcode-refusals")


def test_returns_from_the_same_kiosk(kiosk, tmp_path: Path) -> None:
    p = kiosk.start(prefix="lv-")
    p.wait_screen("welcome")
    p.tap_id("returns", "welcome")
    p.wait_screen("returns")
    p.pad.place(demo_tag("30000009", secured=False))  # on loan to LV0001
    p.pad.place(demo_tag("30000008", secured=False))  # on loan to LV0002
    p.wait_until(
        lambda: p.app.return_state and len(p.app.return_state.returned) == 2, what="two returns"
    )
    assert "2 izdevumi nodoti" == p.widget("count", "returns").text
    assert p.pad.tag(demo_tag("30000009").uid).afi == 0x07  # secured again
    p.screenshot("26-returns")
    p.tap_id("print_receipt", "returns")
    p.wait_screen("welcome")
    transcript = p.wait_until(
        lambda: next(iter((tmp_path / "receipts").glob("*.txt")), None), what="return receipt"
    )
    assert "Nodošanas kvīts" in transcript.read_text(encoding="utf-8")


def test_demo_panel_drives_a_visit_with_the_mouse(kiosk) -> None:
    p = kiosk.start(prefix="lv-", demo_panel="true", pin_policy="none")
    app = p.app
    p.wait_screen("welcome")
    panel = p.find(lambda w: type(w).__name__ == "DemoPanel")
    card = p.find(lambda w: getattr(w, "card", None) == "LV0002", panel)
    p.tap(card)
    p.wait_screen("checkout")
    toggle = panel.part_buttons[("30000003", 1)]
    toggle.parent.parent.parent.scroll_to(toggle, animate=False)
    p.settle()
    p.tap(toggle)
    p.wait_until(
        lambda: (
            _items(app).get("30000003") and _items(app)["30000003"].status is ItemStatus.CHECKED_OUT
        ),
        what="demo item borrowed",
    )
    from kivy.core.window import Window

    p.tap(panel.typing_toggle)
    for char in "30000004":
        Window.dispatch("on_textinput", char)
    assert panel.field.text == "30000004"
    Window.dispatch("on_key_down", 13, 40, None, [])
    p.wait_until(
        lambda: _items(app).get("30000004") and _items(app)["30000004"].final,
        what="scanned demo item",
    )
    p.screenshot("27-demo-panel")
    p.tap(toggle)  # lifted off the pad again
    p.wait_until(lambda: p.pad.tag(demo_tag("30000003").uid) is None)


def test_out_of_service_when_the_reader_is_missing(kiosk) -> None:
    p = kiosk.start(prefix="lv-", reader="bogus:nothing")
    p.wait_screen("out_of_service")
    assert "RFID reader" in " ".join(p.app.services.faults)
    p.screenshot("28-out-of-service")


def test_offline_banner_says_what_still_works(kiosk, acs) -> None:
    acs.stop()
    p = kiosk.start(prefix="lv-")
    banner = p.widget("offline_banner", "root")
    p.wait_until(lambda: banner.text, timeout=15, what="offline banner")
    assert "nav sasniedzama" in banner.text
    assert "provizoriski" in banner.text
    p.screenshot("29-offline-banner")


def test_out_of_service_when_offline_is_disabled(kiosk, acs) -> None:
    acs.stop()
    p = kiosk.start(prefix="lv-", offline_policy="disabled")
    p.wait_screen("out_of_service", timeout=15)
    p.screenshot("30-offline-out-of-service")


def test_paper_out_is_shown_and_print_is_not_offered(kiosk, tmp_path: Path) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="none")
    (tmp_path / "receipts").mkdir(exist_ok=True)
    (tmp_path / "receipts" / PAPER_OUT_FLAG).touch()
    _login(p, "LV0002")
    p.wait_screen("checkout")
    p.pad.place(demo_tag("30000001"))
    p.wait_until(lambda: _items(p.app).get("30000001") and _items(p.app)["30000001"].final)
    p.tap_id("finish", "checkout")
    p.wait_screen("finish")
    p.wait_until(lambda: p.widget("print_receipt", "finish").disabled, what="print disabled")
    assert p.widget("printer_problem", "finish").text == "Kvīšu printerim beidzies papīrs."
    p.screenshot("31-paper-out")
    p.tap_id("no_receipt", "finish")
    p.wait_screen("goodbye")


def test_keyboard_wedge_scanner_logs_in(kiosk) -> None:
    from kivy.core.window import Window

    p = kiosk.start(prefix="lv-", pin_policy="none")
    p.wait_screen("welcome")
    for char in "LV0002":
        Window.dispatch("on_textinput", char)
    Window.dispatch("on_key_down", 13, 40, None, [])
    p.wait_screen("checkout")
    assert p.app.state.patron.card_masked == "**0002"


@pytest.mark.parametrize(
    "size", [(800, 480), (480, 800)], ids=["landscape-800x480", "portrait-480x800"]
)
def test_small_and_portrait_screens_keep_targets_reachable(kiosk, size) -> None:
    from kivy.core.window import Window

    Window.size = size
    name = f"{size[0]}x{size[1]}"
    p = kiosk.start(prefix=f"lv-{name}-", pin_policy="mandatory")
    p.wait_screen("welcome")
    shots = {}

    def check(screen: str) -> None:
        p.settle()
        shots[screen] = p.screenshot(screen)
        for button in _buttons(p.app.kiosk_root):
            x, y = button.to_window(button.x, button.y)
            assert min(button.width, button.height) >= 48, (
                f"{screen}: {button.text!r} is {button.size}"
            )
            if _in_scroll_view(button):
                continue  # a long list scrolls; its rows may lie outside the window
            assert -1 <= x, f"{screen}: {button.text!r} off screen"
            assert x + button.width <= Window.width + 1, f"{screen}: {button.text!r} off screen"
            assert -1 <= y, f"{screen}: {button.text!r} off screen"
            assert y + button.height <= Window.height + 1, f"{screen}: {button.text!r} off screen"

    check("welcome")
    p.tap_id("type_number", "welcome")
    p.wait_screen("card_entry")
    check("card-entry")
    p.tap_id("letters", "card_entry")
    check("card-entry-letters")
    p.tap_id("cancel", "card_entry")
    p.app.present_card("LV0002")
    p.wait_screen("pin")
    check("pin")
    p.tap_id("cancel", "pin")
    p.wait_screen("welcome")

    kiosk.stop()
    p = kiosk.start(prefix=f"lv-{name}-", pin_policy="none")
    _login(p, "LV0001")
    p.wait_screen("checkout")
    for item_id in ("30000001", "30000006", "30000003", "30000010"):
        p.pad.place(demo_tag(item_id))
    p.wait_until(
        lambda: len(_items(p.app)) == 4 and all(i.final for i in _items(p.app).values()),
        what="four answers",
    )
    check("checkout")
    p.tap_id("tab_account", "checkout")
    p.wait_screen("account")
    p.wait_until(lambda: p.app.state.account and p.app.state.account.loans, what="loans")
    check("account")
    p.tap_id("finish", "account")
    p.wait_screen("finish")
    check("finish")
    assert len(shots) == 7


def test_book_drop_mode_shows_each_item_result(kiosk) -> None:
    p = kiosk.start(prefix="bookdrop-", mode="bookdrop")
    p.wait_screen("bookdrop")
    p.screenshot("40-attract")
    p.pad.place(demo_tag("30000008", secured=False))  # on loan to LV0002: returned
    p.wait_until(lambda: p.screen("bookdrop").mode == "result", what="book-drop result")
    assert p.pad.tag(demo_tag("30000008").uid).afi == 0x07  # secured again
    p.screenshot("41-returned")


def test_receipt_by_e_mail_when_the_site_enables_it(kiosk, tmp_path: Path) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="optional", email="true")
    _login(p, "LV0001")  # the library system knows an address for this patron
    p.wait_until(lambda: p.app.current_screen in ("pin", "checkout"))
    if p.app.current_screen == "pin":
        p.keys(p.widget("pad", "pin"), "1234")
        p.tap_id("ok", "pin")
    p.wait_screen("checkout")
    p.pad.place(demo_tag("30000002"))
    p.wait_until(lambda: _items(p.app).get("30000002") and _items(p.app)["30000002"].final)
    p.tap_id("finish", "checkout")
    p.wait_screen("finish")
    button = p.wait_until(lambda: p.widget("email_slot", "finish").children, what="e-mail choice")[
        0
    ]
    p.screenshot("32-receipt-choice-email")
    p.tap(button)
    p.wait_screen("goodbye")
    assert p.widget("message", "goodbye").text.endswith("Kvīts ir nosūtīta uz jūsu e-pastu.")
    (mail,) = (tmp_path / "outbox").glob("*.eml")
    from email import message_from_bytes, policy

    message = message_from_bytes(mail.read_bytes(), policy=policy.default)
    body = message.get_content()
    assert message["To"] == "anna@example.lv"
    assert "Izsniegšanas kvīts" in message["Subject"]
    assert "Dvēseļu putenis" in body
    assert "**0001" in body
    assert "LV0001" not in body
    assert "1234" not in body


def test_tag_write_failure_sends_the_item_to_the_desk(kiosk) -> None:
    p = kiosk.start(prefix="en-", pin_policy="none")
    p.tap(next(b for b in p.widget("languages", "welcome").children if b.code == "en"))
    _login(p, "LV0002")
    p.wait_screen("checkout")
    tag = demo_tag("30000003")
    p.pad.fail_writes(tag.uid, count=50)  # the security bit cannot be switched off
    p.pad.place(tag)
    p.wait_until(
        lambda: _items(p.app).get("30000003") and _items(p.app)["30000003"].final, timeout=15
    )
    row = next(r for r in p.widget("item_list", "checkout").children if r.item_id == "30000003")
    assert row.state_name == "refused"
    assert "desk" in row.status
    assert p.pad.tag(tag.uid).afi == 0x07  # still secured: the patron cannot walk out with it
    p.screenshot("33-security-write-failed")


def test_repeated_wrong_pins_lock_the_card_out(kiosk) -> None:
    p = kiosk.start(prefix="lv-")
    _login(p, "LV0001")
    for _ in range(3):
        p.wait_screen("pin")
        p.keys(p.widget("pad", "pin"), "9999")
        p.tap_id("ok", "pin")
        p.wait_until(
            lambda: (
                p.app.state.problem is not None and p.app.state.stage.value in ("pin", "welcome")
            )
        )
    p.wait_screen("welcome")
    message = p.wait_until(lambda: p.widget("message", "welcome").text, what="lock-out message")
    assert message.startswith("Pārāk daudz mēģinājumu.")
    assert "sekundēm" in message
    p.screenshot("34-locked-out")


def test_offline_checkout_shows_provisional_due_dates(kiosk, acs, tmp_path: Path) -> None:
    acs.stop()
    p = kiosk.start(prefix="lv-", pin_policy="none", sip2_timeout=1.0)
    _login(p, "LV0002")
    p.wait_screen("checkout", timeout=20)
    assert not p.app.state.capabilities.online
    assert "provizoriski" in p.widget("offline_banner", "root").text
    assert p.widget("tab_account", "checkout").disabled  # the account needs the library system
    p.pad.place(demo_tag("30000001"))
    p.wait_until(
        lambda: _items(p.app).get("30000001") and _items(p.app)["30000001"].final, timeout=20
    )
    row = next(r for r in p.widget("item_list", "checkout").children if r.item_id == "30000001")
    assert row.state_name == "ok"
    assert "provizorisks termiņš" in row.status
    p.screenshot("35-offline-checkout")
    p.tap_id("finish", "checkout")
    p.wait_screen("finish")
    p.wait_until(lambda: not p.widget("print_receipt", "finish").disabled)
    p.tap_id("print_receipt", "finish")
    p.wait_screen("goodbye")
    transcript = p.wait_until(lambda: next(iter((tmp_path / "receipts").glob("*.txt")), None))
    assert "termiņi ir provizoriski" in transcript.read_text(encoding="utf-8").replace("\n", " ")
