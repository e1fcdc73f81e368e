"""A renewal the library system accepts without moving the due date says so, through the real
app and the demo library system: its renewals run from today (as Koha's do), so a loan taken
today and renewed today keeps its due date. A renewal that moves the date says the new one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ui


def _row(p, item_id: str):
    # The list holds headings too (KLabel, no item_id); the account shown first may be the one
    # read at login, before today's loan, until the fresh one arrives.
    return next(
        (
            r
            for r in p.widget("account_list", "account").children
            if getattr(r, "item_id", None) == item_id
        ),
        None,
    )


def test_renewed_but_the_due_date_stays(kiosk) -> None:
    p = kiosk.start("renew-same-", pin_policy="optional")
    app = p.app
    p.wait_screen("welcome")
    p.choose_language("en")
    p.borrow("LV0001", "30000002", "1234")
    (item,) = [i for i in app.state.checkout.items if i.item_id == "30000002"]
    due = app.fmt_date(item.due_date)
    p.tap_id("tab_account", "checkout")
    p.wait_screen("account")
    row = p.wait_until(lambda: _row(p, "30000002"), what="today's loan in the account")
    p.wait_until(lambda: row.action_button is not None, what="its Renew button")
    p.tap(row.action_button)
    p.wait_until(lambda: row.status.startswith("Renewed"), what="the renewal's answer")
    assert row.status == f"Renewed, but the due date stays {due}."
    p.screenshot("account")
    # A loan the kiosk knew with an earlier due date moves on and says its new date.
    other = next(
        r
        for r in p.widget("account_list", "account").children
        if getattr(r, "item_id", "") not in ("", "30000002") and r.action_button is not None
    )
    p.tap(other.action_button)
    p.wait_until(lambda: other.status.startswith("Renewed"), what="the other renewal")
    assert other.status.startswith("Renewed: due ")
