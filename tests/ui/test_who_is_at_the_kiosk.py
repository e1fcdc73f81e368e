"""Through the running app: items that went over the return screen are not checked out to the
next patron (the pad is read at login), and another patron's card mid-session ends the open
session (receipt offer first) before the new patron borrows anything."""

from __future__ import annotations

import threading

import pytest

from kiosk.devices.readers.sim import demo_tag

pytestmark = pytest.mark.ui


def _worker_idle(p) -> None:
    """Wait until the core worker has done everything submitted so far."""
    done = threading.Event()
    p.app.services.worker.submit(lambda: None, on_done=lambda _r: done.set())
    p.wait_until(done.is_set, what="the core worker to finish")


def test_items_returned_before_login_are_not_checked_out_to_the_next_patron(kiosk, acs) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="none")
    p.wait_screen("welcome")
    returned = demo_tag("30000009", secured=False)  # on loan to LV0001
    p.pad.place(returned)  # seen on the welcome screen ...
    p.wait_until(
        lambda: returned.uid in {t.uid for t in p.app.services.stack.current()}, what="the pad"
    )
    _worker_idle(p)
    p.tap_id("returns", "welcome")  # ... then returned on the return screen and taken away
    p.wait_screen("returns")
    p.wait_until(
        lambda: p.app.return_state and len(p.app.return_state.returned) == 1, what="the return"
    )
    p.pad.remove(returned.uid)
    p.wait_until(lambda: not p.app.services.stack.current(), what="the pad to be empty")
    p.tap_id("done", "returns")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    _worker_idle(p)
    assert p.app.state.checkout is not None
    assert p.app.state.checkout.items == ()
    assert acs.library.loan("30000009") is None


def test_another_card_mid_session_never_borrows_on_the_open_account(kiosk, acs, tmp_path) -> None:
    p = kiosk.start(prefix="lv-", pin_policy="none")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    first = demo_tag("30000003")
    p.pad.place(first)
    p.wait_until(lambda: p.app.state.checkout and p.app.state.checkout.checked_out, what="the loan")
    p.pad.remove(first.uid)
    p.app.services.card_sim.present("LV0001")  # the next patron's card on the reader
    p.wait_screen("finish")
    assert p.app.state.next_patron_waiting
    assert p.app.state.patron.card_masked.endswith("0002")
    # The visit only ends now: no way back to its items, and no hidden button left to tap.
    finish = p.screen("finish")
    back = finish._back
    assert back.parent is None
    assert all(w is not back for w in p.app.kiosk_root.walk(restrict=True))
    assert p.widget("no_receipt", "finish").get_root_window() is not None
    p.screenshot("50-receipt-offer-before-the-next-patron")
    second = demo_tag("30000004")
    p.pad.place(second)  # placed while the first patron's receipt is offered
    p.wait_until(
        lambda: second.uid in {t.uid for t in p.app.services.stack.current()}, what="the pad"
    )
    _worker_idle(p)
    assert acs.library.loan("30000004") is None
    p.tap_id("no_receipt", "finish")
    p.wait_until(
        lambda: p.app.state.patron and p.app.state.patron.card_masked.endswith("0001"),
        what="the next patron",
    )
    p.wait_screen("checkout")
    _worker_idle(p)
    assert acs.library.loan("30000003").patron_id == "LV0002"
    assert acs.library.loan("30000004").patron_id == "LV0001"
    # The next patron's own receipt question, with nobody waiting, has the way back again.
    p.tap_id("finish", "checkout")
    p.wait_screen("finish")
    assert not p.app.state.next_patron_waiting
    assert back.parent is not None
    assert back.get_root_window() is not None
