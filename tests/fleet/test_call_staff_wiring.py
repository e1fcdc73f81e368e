"""The patron's "Call staff" button reaches the fleet alerting as a known alert kind."""

from __future__ import annotations

from types import SimpleNamespace

import kiosk.app as kiosk_app
from kiosk.fleet.alerts import KINDS


def test_call_staff_raises_the_call_staff_alert(monkeypatch) -> None:
    raised: list[tuple[str, str]] = []
    monkeypatch.setattr(
        kiosk_app, "raise_alert", lambda kind, summary, **labels: raised.append((kind, summary))
    )
    app = SimpleNamespace(staff_alert=None)
    kiosk_app.wire_staff_alert(app)  # type: ignore[arg-type]
    app.staff_alert("help on the checkout screen")
    assert raised == [("call_staff", "help on the checkout screen")]
    assert raised[0][0] in KINDS
