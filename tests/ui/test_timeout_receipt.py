"""A visit ended by the idle timeout, through the real app and the demo library system: the
"your session has ended" screen in the patron's language, and the visit's receipt handled as
the site's `[printer] timeout_receipt` says (print, email, none)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiosk.core.session import Stage

pytestmark = pytest.mark.ui

ENDED = {
    "print": "Please take your receipt.",
    "email": "Your receipt has been sent by e-mail.",
    "none": None,
}


@pytest.mark.parametrize("policy", ["print", "email", "none"])
def test_the_timeout_receipt_policy(kiosk, tmp_path: Path, policy: str) -> None:
    p = kiosk.start(
        f"timeout-{policy}-",
        pin_policy="optional",
        email="true",
        printer_extra=f'timeout_receipt = "{policy}"',
    )
    app = p.app
    p.wait_screen("welcome")
    p.choose_language("en")
    p.borrow("LV0001", "30000002", "1234")  # Anna: anna@example.lv
    settings = app.services.session.settings
    p.clock.advance(settings.idle_timeout_s - settings.idle_warning_s + 1)
    app.tick()
    p.wait_until(lambda: app.idle_warning, what="idle warning")
    p.clock.advance(settings.idle_warning_s + 1)
    app.tick()
    p.wait_screen("timed_out")
    assert app.state.stage is Stage.WELCOME
    assert p.widget("ended", "timed_out").text == "Your session has ended."
    body = p.widget("ended_text", "timed_out").text
    assert "1 item is yours to take." in body
    p.screenshot("ended")
    printed = list((tmp_path / "receipts").glob("*-checkout.txt"))
    mailed = list((tmp_path / "outbox").glob("*.eml"))
    if policy == "print":
        assert len(printed) == 1
        assert "Dvēseļu putenis" in printed[0].read_text(encoding="utf-8")
        assert not mailed
    elif policy == "email":
        assert len(mailed) == 1
        assert b"To: anna@example.lv" in mailed[0].read_bytes()
        assert not printed
    else:
        assert not printed
        assert not mailed
    for choice, words in ENDED.items():
        if words is not None:
            assert (words in body) == (choice == policy), body
