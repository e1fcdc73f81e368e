"""Maintenance entry in the real KioskApp: the admin card and the hidden-corner gesture open
maintenance and it stays open while the patron session ticks; the gesture sits on no patron
control; a patron card during the admin login prompt closes it and starts the patron's visit."""

from __future__ import annotations

import pytest
from pilot import pump

from kiosk.devices.cards.sim import get_shared_card_source

pytestmark = pytest.mark.ui

ADMIN = '["ADM-777"]'


def _source(app):
    return get_shared_card_source(app.cfg.patron.card_sources[0].removeprefix("sim:"))


def _ticks(p, n: int) -> None:
    """`n` seconds of the kiosk's life: the clock moves, the app ticks and the session answers."""
    for _ in range(n):
        p.clock.advance(1.0)
        done = len(p.app._events)
        p.app.tick()
        p.wait_until(lambda: not p.app._tick_pending.is_set(), what="the session's tick")
        pump(2)
        assert len(p.app._events) == done  # ticks are not patron events


def _hold_corner(p, seconds: float = 5.0):
    from kivy.tests.common import UnitTestTouch

    region = p.app.maintenance.corner_region()
    touch = UnitTestTouch(region.x + region.width / 2, region.y + region.height / 2)
    touch.touch_down()
    pump(1)
    p.clock.advance(seconds)
    p.app.maintenance.tick()
    touch.touch_up()
    pump(2)


def test_admin_card_opens_maintenance_and_it_stays_open_while_the_session_ticks(kiosk) -> None:
    p = kiosk.start("maint-entry-", admin_cards=ADMIN)
    app = p.app
    p.wait_screen("welcome")
    _source(app).present("ADM-777")
    p.wait_screen("maintenance")
    _ticks(p, 4)  # the patron session publishes a snapshot each second
    assert app.current_screen == "maintenance"
    p.tap(
        next(
            b
            for b in app.screen("maintenance").walk()
            if getattr(b, "text", "") == app.tr("Diagnostics")
        )
    )
    _ticks(p, 3)
    assert app.current_screen == "maintenance_diag"
    p.screenshot("maintenance-diag-real-app")
    p.tap(
        next(
            b
            for b in app.screen("maintenance_diag").walk()
            if getattr(b, "text", "") == app.tr("Leave")
        )
    )
    p.wait_screen("welcome")
    _ticks(p, 2)
    assert app.current_screen == "welcome"


def test_the_hidden_corner_is_on_no_patron_control(kiosk) -> None:
    """On every patron screen and display size the gesture's square covers no button or key."""
    from kivy.core.window import Window

    from kiosk.screens.patron import PATRON_SCREENS

    p = kiosk.start("maint-corner-", admin_cards=ADMIN)
    app = p.app
    for size in ((1280, 800), (800, 480), (480, 800)):
        Window.size = size
        for large in (False, True):
            app.theme.large_text = large
            for name in PATRON_SCREENS:
                app.show_screen(name)
                pump(3)
                region = app.maintenance.corner_region()
                assert region.width >= 48 and region.height >= 48
                assert (
                    region.x + region.width <= Window.width
                    and region.y + region.height <= Window.height
                )
                for widget in app.kiosk_root.walk(restrict=True):
                    if not _interactive(widget):
                        continue
                    x, y = widget.to_window(widget.x, widget.y)
                    overlap = (
                        x < region.x + region.width
                        and region.x < x + widget.width
                        and y < region.y + region.height
                        and region.y < y + widget.height
                    )
                    assert not overlap, (
                        f"{name} {size} large={large}: the corner covers {widget!r} ({getattr(widget, 'text', '')!r})"
                    )
    app.theme.large_text = False
    Window.size = (1280, 800)
    pump(2)


def _interactive(widget) -> bool:
    from kivy.uix.behaviors import ButtonBehavior, ToggleButtonBehavior
    from kivy.uix.textinput import TextInput

    return (
        isinstance(widget, (ButtonBehavior, ToggleButtonBehavior, TextInput))
        and widget.get_root_window() is not None
        and widget.opacity > 0
        and widget.width > 1
        and widget.height > 1
    )


def test_the_gesture_opens_a_visible_login_that_stays_and_times_out(kiosk) -> None:
    p = kiosk.start("maint-gesture-", admin_cards=ADMIN)
    app = p.app
    p.wait_screen("welcome")
    _hold_corner(p, 2.0)
    assert app.current_screen == "welcome"  # a short press does nothing
    _hold_corner(p)
    assert app.current_screen == "maintenance_login"
    _ticks(p, 3)
    assert app.current_screen == "maintenance_login" and app.maintenance.access.login_open
    p.screenshot("maintenance-login-real-app")
    p.clock.advance(app.maintenance.access.policy.idle_timeout_s + 1)
    app.maintenance.tick()
    pump(2)
    assert app.current_screen == "welcome" and not app.maintenance.access.login_open
    _source(app).present("ADM-777")
    p.wait_screen("maintenance")


def test_a_patron_card_at_the_login_prompt_closes_it_and_starts_the_visit(kiosk) -> None:
    p = kiosk.start("maint-patron-", admin_cards=ADMIN, pin_policy="none")
    app = p.app
    p.wait_screen("welcome")
    _hold_corner(p)
    assert app.current_screen == "maintenance_login"
    _source(app).present("LV0001")
    p.wait_screen("checkout")
    assert not app.maintenance.access.login_open
    assert app.state.patron is not None
    events = [e.kind for e in app.services.circulation.journal.events()]
    assert "admin_login_failed" not in events
