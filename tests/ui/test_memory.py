"""What keeps the kiosk's memory down, in the real KioskApp (docs/performance.md, memory): the
technician's and the book drop's screens are built when first shown, not at the start; the C
heap's free pages go back after the start and after each visit; and under SDL's offscreen driver
each frame is waited for, so Mesa's software renderer does not keep every frame's draw data."""

from __future__ import annotations

import logging

import pytest

from kiosk import memory
from kiosk.core.events import Action, Tapped
from kiosk.devices.cards.sim import get_shared_card_source
from kiosk.screens.base import _REGISTRY, register_screen
from kiosk.screens.bookdrop import BOOKDROP, CLOSED
from kiosk.screens.maintenance import SCREEN_CLASSES
from tests.ui.pilot import pump

pytestmark = pytest.mark.ui

ADMIN = '["ADM-777"]'
TECHNICIAN_SCREENS = set(SCREEN_CLASSES)
BOOKDROP_SCREENS = {BOOKDROP, CLOSED}


def built(app) -> set[str]:
    return set(app.manager.screen_names)


def test_technician_screens_are_built_when_first_entered_and_work(kiosk) -> None:
    p = kiosk.start("memory-maint-", admin_cards=ADMIN)
    app = p.app
    p.wait_screen("welcome")
    assert TECHNICIAN_SCREENS <= set(app._factories)  # registered...
    assert not (TECHNICIAN_SCREENS | BOOKDROP_SCREENS) & built(app)  # ...but none built
    assert app.maintenance is not None  # the admin card and the hidden gesture work from start

    source = get_shared_card_source(app.cfg.patron.card_sources[0].removeprefix("sim:"))
    source.present("ADM-777")
    p.wait_screen("maintenance")
    assert "maintenance" in built(app)
    assert "maintenance_diag" not in built(app)  # only what was entered
    p.tap(
        next(
            b
            for b in app.screen("maintenance").walk()
            if getattr(b, "text", "") == app.tr("Diagnostics")
        )
    )
    p.wait_screen("maintenance_diag")
    assert "maintenance_diag" in built(app)
    app.maintenance.leave()
    p.wait_screen("welcome")
    assert not BOOKDROP_SCREENS & built(app)  # a checkout kiosk never builds the book drop's


def test_a_registered_screen_that_cannot_be_built_leaves_the_kiosk_where_it_was(
    kiosk, caplog
) -> None:
    def broken(_app):
        raise RuntimeError("a screen module's bug")

    register_screen("broken_extra", broken)
    try:
        p = kiosk.start("memory-broken-")
        app = p.app
        p.wait_screen("welcome")
        with caplog.at_level(logging.ERROR, logger="kiosk.app"):
            app.show_screen("broken_extra")
        pump(2)
        assert app.current_screen == "welcome"
        records = [r for r in caplog.records if "broken_extra" in r.getMessage()]
        assert records and records[0].exc_info is not None  # logged with its traceback
        app.present_card("LV0002")  # the patron kiosk goes on
        p.wait_until(lambda: app.current_screen in ("pin", "checkout"), 20, "login")
    finally:
        _REGISTRY.pop("broken_extra", None)


def test_the_heap_is_trimmed_after_the_start_and_after_each_visit(kiosk, monkeypatch) -> None:
    trims: list[bool] = []
    real = memory.trim
    monkeypatch.setattr(memory, "trim", lambda: trims.append(real()) or trims[-1])
    p = kiosk.start("memory-trim-", pin_policy="none")
    app = p.app
    p.wait_screen("welcome")
    for visit in range(2):
        before = len(trims)
        app.present_card("LV0002")
        p.wait_screen("checkout", 20)
        assert len(trims) == before  # not during a visit
        app.post(Tapped(Action.LOGOUT))
        p.wait_until(lambda: app.current_screen == "welcome", 20, f"visit {visit} ended")
        p.wait_until(lambda before=before: len(trims) > before, 20, "the trim after a visit")
    assert app.state is not None and app.state.stage.value == "welcome"


@pytest.mark.skipif(memory.heap_in_use() is None, reason="glibc's mallinfo2 is not available")
def test_frames_drawn_offscreen_are_waited_for_so_their_draw_data_does_not_pile_up(
    kiosk,
) -> None:
    import os

    from kivy.core.window import Window

    if os.environ.get("SDL_VIDEODRIVER") != "offscreen":
        pytest.skip("only SDL's offscreen driver swaps without waiting for the frame")
    p = kiosk.start("memory-frames-")
    p.wait_screen("welcome")  # a scroll view: without the wait, about 2 MiB a frame stays
    pump(5)
    before = memory.heap_in_use()
    for _ in range(60):
        Window.canvas.ask_update()
        pump(1)
    after = memory.heap_in_use()
    assert before is not None and after is not None
    assert after - before < 30 * 2**20, f"{(after - before) / 2**20:.0f} MiB over 60 frames"
