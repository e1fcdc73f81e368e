"""The frame after a snapshot: what the UI thread does between a hand-over from the core worker
or the reader's thread and the flip of the frame that shows it (docs/performance.md, "frame
drawn"). Timings are the benchmarks' business (bench/bench_card_to_greeting.py,
bench/bench_tag_to_screen.py); these tests hold the mechanisms."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest

from tests.ui.pilot import exported_pixel, pump

pytestmark = pytest.mark.skipif(
    os.environ.get("SDL_VIDEODRIVER") != "offscreen",
    reason="frames are waited for at the flip only under SDL's offscreen driver",
)


def test_other_threads_run_while_the_kiosk_waits_for_a_drawn_frame(kiosk) -> None:
    """The library system's answer and the reader's tags are handled on their own threads; the
    wait for a frame at the flip must let them run (Kivy's glFinish kept the interpreter lock
    for the whole frame: 20-40 ms of Mesa's drawing, during which nothing else ran)."""
    from kivy.core.window import Window
    from kivy.graphics import Color, InstructionGroup, Rectangle

    p = kiosk.start("frames-gil-")
    p.wait_screen("welcome")
    pump(3)
    # A frame that takes Mesa a while to draw: forty blended layers over the whole window.
    layers = InstructionGroup()
    for n in range(40):
        layers.add(Color(n / 40, 0.5, 0.5, 0.5))
        layers.add(Rectangle(pos=(0, 0), size=Window.size))
    Window.canvas.after.add(layers)
    released = threading.Lock()
    released.acquire()
    ran: list[str] = []

    def other() -> None:
        with released:  # blocked without the interpreter lock until the main thread lets go
            ran.append(threading.current_thread().name)

    interval = sys.getswitchinterval()
    # The main thread keeps the interpreter lock between blocking calls: only a call that lets
    # it go can hand it to the other thread.
    sys.setswitchinterval(60.0)
    thread = threading.Thread(target=other, name="frames-other")
    try:
        thread.start()  # it runs until it blocks on `released` (start() waits, lock-free)
        Window.dispatch("on_draw")  # the frame's draw calls, queued to Mesa
        released.release()  # the other thread is now ready, and waits for the interpreter lock
        Window.dispatch("on_flip")  # the kiosk's wait for the frame (kiosk.app)
        during_flip = list(ran)
    finally:
        sys.setswitchinterval(interval)
        Window.canvas.after.remove(layers)
    thread.join(10)
    assert ran == ["frames-other"]
    assert during_flip == ["frames-other"], "the flip kept the interpreter lock to itself"


def test_a_screen_switch_is_done_in_the_frame_it_was_asked_in(kiosk) -> None:
    """The old screen leaves at once, so the frame of the switch draws one screen and no frame
    follows only to take the old one away (Kivy's NoTransition ends at the next tick)."""
    p = kiosk.start("frames-switch-")
    p.wait_screen("welcome")
    pump(3)
    app = p.app
    welcome, keypad = app.screen("welcome"), app.screen("card_entry")
    seen: list[str] = []
    keypad.bind(on_pre_enter=lambda *_: seen.append("pre_enter"))
    keypad.bind(on_enter=lambda *_: seen.append("enter"))
    welcome.bind(on_leave=lambda *_: seen.append("leave"))
    app.show_screen("card_entry")  # no frame between this and the checks
    assert app.manager.children == [keypad]
    assert welcome.parent is None
    assert seen == ["pre_enter", "enter", "leave"]
    pump(1)
    app.show_screen("welcome")  # and back, as a visit that ends does
    assert app.manager.children == [welcome]
    assert app.current_screen == "welcome"


def test_kiosk_run_uses_the_clock_that_wakes_for_a_hand_over(monkeypatch) -> None:
    from types import SimpleNamespace

    from kiosk.runcli import KIVY_CLOCK, prepare_kivy

    monkeypatch.delenv("KIVY_CLOCK", raising=False)
    for name in ("KCFG_GRAPHICS_FULLSCREEN", "KCFG_GRAPHICS_WIDTH", "KCFG_GRAPHICS_HEIGHT"):
        monkeypatch.setenv(name, os.environ.get(name, ""))  # restored after the test
    ui = SimpleNamespace(fullscreen=False, width=1280, height=800)
    prepare_kivy(SimpleNamespace(ui=ui), windowed=True)
    assert os.environ["KIVY_CLOCK"] == KIVY_CLOCK == "interrupt"


def test_a_hand_over_from_another_thread_wakes_the_loop_before_its_next_frame() -> None:
    """The clock the kiosk runs with (this test process sets it as `kiosk run` does): a callback
    scheduled from a worker's thread runs at once, not when the clock's frame time comes. The
    frame time is stretched to 10 s so that the difference is not a matter of milliseconds."""
    import time

    from kivy.clock import Clock

    ran = threading.Event()
    Clock.tick()  # a frame just ticked: the next is due in a whole frame time
    fps = Clock._max_fps
    Clock._max_fps = 0.1
    thread = threading.Timer(0.05, lambda: Clock.schedule_once(lambda _dt: ran.set()))
    try:
        started = time.monotonic()
        thread.start()
        while not ran.is_set() and time.monotonic() - started < 30:
            Clock.tick()  # sleeps until its frame time, or until woken
        woke_after = time.monotonic() - started
    finally:
        Clock._max_fps = fps
        thread.cancel()
    assert ran.is_set()
    assert woke_after < 5, f"the loop slept {woke_after:.1f} s of its 10 s frame time"


def test_a_quick_answer_goes_straight_to_the_patrons_screen(kiosk, monkeypatch) -> None:
    """ "Checking your card" is not flashed for an answer that comes before it is due: the
    patron's screen is the next screen drawn after the welcome screen."""
    import kiosk.app as kiosk_app

    monkeypatch.setattr(kiosk_app, "IDENTIFYING_AFTER_S", 60.0)  # any answer is quicker
    p = kiosk.start("frames-quick-", pin_policy="none")  # the card is checked at once
    p.wait_screen("welcome")
    app = p.app
    shown: list[str] = []
    app.manager.bind(current=lambda _m, name: shown.append(name))
    app.present_card("LV0002")
    p.wait_screen("checkout")
    assert shown == ["checkout"]
    assert app.state.patron is not None  # identified by the library system, not by a shortcut
    assert app.screen("identifying").parent is None


def test_checking_your_card_comes_up_while_the_library_system_is_slow(kiosk, acs) -> None:
    p = kiosk.start("frames-slow-", pin_policy="none")
    p.wait_screen("welcome")
    app = p.app
    p.wait_until(lambda: app.services.circulation.status().online, what="the link up")
    acs.faults.stall_s = 10
    app.present_card("LV0002")
    p.wait_screen("identifying")
    assert acs.faults.reply_held.is_set()  # the library system holds its answer back
    assert app.state.stage.value == "identifying"
    acs.faults.stall_s = 0
    p.wait_screen("checkout", timeout=15)


def test_the_scroll_bar_dims_without_redrawing_the_window_frame_after_frame(kiosk) -> None:
    """Kivy fades a scroll view's bar with a half-second animation after every scroll or change
    of the content's size: every frame of it redraws the window, bar or no bar. The kiosk's
    scroll views dim it in one step, so after the first row of a visit the kiosk is idle again
    within a few frames instead of drawing a frame after frame for half a second."""
    from kivy.core.window import Window

    p = kiosk.start("frames-bar-")
    p.wait_screen("welcome")
    scroll = p.find(lambda w: type(w).__name__ == "ScrollList", p.screen("welcome"))
    pump(3)
    flips: list[int] = []

    def flipped(*_: object) -> None:
        flips.append(1)

    Window.bind(on_flip=flipped)
    try:
        scroll.update_from_scroll()  # as a scroll or a new row does: the bar shown
        inactive = list(scroll.bar_inactive_color)
        p.wait_until(lambda: list(scroll._bar_color) == inactive, what="the bar dimmed")
        for _ in range(10):
            pump(1)
    finally:
        Window.unbind(on_flip=flipped)
    assert len(flips) <= 3, f"{len(flips)} frames drawn for the bar"


def _layout_passes(monkeypatch) -> list[object]:
    """Every layout pass of the window's widgets from now on, as the widget laid out."""
    import functools

    from kivy.uix.layout import Layout

    passes: list[object] = []
    classes = {Layout, *Layout.__subclasses__()}
    for cls in list(classes):
        classes.update(cls.__subclasses__())
    for cls in classes:
        if "do_layout" not in vars(cls):
            continue
        original = cls.do_layout

        @functools.wraps(original)  # Kivy's triggers look the method up by its name
        def counted(layout, *args, _original=original, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            passes.append(layout)
            return _original(layout, *args, **kwargs)

        monkeypatch.setattr(cls, "do_layout", counted)
    return passes


def test_rows_already_listed_are_not_laid_out_again_as_the_list_grows_or_scrolls(
    kiosk, monkeypatch
) -> None:
    """A row placed on a long stack used to lay out every row above it again (they all move
    when the list grows and when it scrolls to the new row): about twelve layout passes a row,
    600 when the 50th item came. A row now keeps its own coordinates, and the rows already there
    are neither laid out again nor taken off the list and put back."""
    from kiosk.screens.patron import sync_rows

    p = kiosk.start("frames-rows-", pin_policy="none")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    screen = p.app.screen("checkout")
    # The rows are this test's own, in the screen's real list: the session's snapshots (one a
    # second) would otherwise sync the list to the visit's items, none.
    monkeypatch.setattr(screen, "render", lambda _state: None)
    box, rows = screen.ids.item_list, screen._rows
    entries: list[tuple[str, dict[str, object]]] = []

    def place(n: int) -> None:
        entries.append(
            (
                f"row{n}",
                {
                    "title": f"A book of the stack, number {n}",
                    "item_id": f"3999{n:04d}",
                    "status": "Checking...",
                    "state_name": "pending",
                },
            )
        )
        sync_rows(box, rows, entries)
        row = rows[f"row{n}"]
        screen.ids.main.scroll_to(row, animate=False)  # as the screen's render does
        pump(3)

    for n in range(30):
        place(n)
    old = [rows[f"row{n}"] for n in range(30)]
    parents: list[object] = []
    for row in old:
        row.bind(parent=lambda _row, parent: parents.append(parent))
    passes = _layout_passes(monkeypatch)
    place(30)
    screen.ids.main.scroll_y = 0.5  # a patron scrolling back up the list
    pump(3)

    listed = {id(w) for row in old for w in row.walk(restrict=True)}
    new_row = {id(w) for w in rows["row30"].walk(restrict=True)}

    assert passes, "no layout pass counted: the count would prove nothing"
    assert any(id(w) in new_row for w in passes)  # the new row was laid out, and counted
    again = [type(w).__name__ for w in passes if id(w) in listed]
    assert again == [], f"{len(again)} layout passes of rows already listed"
    assert parents == [], "rows already listed were taken off the list and put back"
    assert [r.item_id for r in reversed(box.children)] == [f"3999{n:04d}" for n in range(31)]


def _checkout_held(kiosk: Any, monkeypatch: Any, prefix: str) -> tuple[Any, Any]:
    """The real app on its checkout screen, showing only the states given to the renderer it
    returns: the session's own snapshots (one a second, of a visit without items) are held back."""
    p = kiosk.start(prefix, pin_policy="none")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    own = p.app.render
    monkeypatch.setattr(p.app, "render", lambda _state: None)
    return p, own


def _borrowed(count: int) -> Any:
    """A checkout state of `count` items borrowed."""
    from kiosk.preview import _checkout, _item

    return _checkout(tuple(_item(n, "checked_out") for n in range(1, count + 1)))


def test_a_new_row_at_the_foot_of_a_long_list_is_in_view_in_the_frame_that_adds_it(
    kiosk, monkeypatch
) -> None:
    """On a long stack the list stands at its foot, where each new row comes: the frame that
    adds the row shows it, without waiting for the scroll the screen asks for at the next tick
    (`docs/performance.md`, "A row that moves"). The row's place is read at that frame's flip."""
    from kivy.core.window import Window

    p, own = _checkout_held(kiosk, monkeypatch, "frames-foot-")
    screen = p.app.screen("checkout")
    own(_borrowed(30))
    pump(5)
    view = screen.ids.main
    assert view.scroll_y < 0.05  # at the foot, where the newest row is
    from kivy.clock import Clock

    seen: list[tuple[float, float, float, float]] = []  # the new row and the view, at each flip

    def flipped(*_: object) -> None:
        row = next((r for r in screen.ids.item_list.children if r.item_id == "30000031"), None)
        if row is not None:
            y = row.to_window(row.x, row.y)[1]
            seen.append((y, y + row.height, view.to_window(view.x, view.y)[1], view.height))

    # As a snapshot from the core worker is shown: rendered by a callback of Kivy's clock.
    Window.bind(on_flip=flipped)
    try:
        Clock.schedule_once(lambda _dt: own(_borrowed(31)))
        p.wait_until(lambda: seen, what="a frame with the new row")
    finally:
        Window.unbind(on_flip=flipped)
    low, high, view_y, view_h = seen[0]
    assert view_y - 1 <= low and high <= view_y + view_h + 1, (
        f"the new row at y={low:.0f}..{high:.0f} is outside the list's view "
        f"{view_y:.0f}..{view_y + view_h:.0f} in the frame that added it"
    )


def _window_pixel(x: int, y: int) -> tuple[int, int, int]:
    """The colour at (x, y) of the frame last drawn in the window (y from the bottom)."""
    from kivy.graphics.opengl import GL_RGBA, GL_UNSIGNED_BYTE, glReadPixels

    data = glReadPixels(x, y, 1, 1, GL_RGBA, GL_UNSIGNED_BYTE)
    return data[0], data[1], data[2]


def test_the_background_is_a_clear_of_the_frame_in_either_contrast_mode(kiosk) -> None:
    """No window-sized rectangle is blended over the frame (a quarter of a 1280x800 frame under
    Mesa's software renderer, docs/performance.md); the frame is cleared to the theme's
    background, in the window and in an exported screenshot, and follows the contrast mode."""
    from kivy.core.window import Window
    from kivy.graphics import (
        BorderImage,
        Rectangle,
        RoundedRectangle,
        StencilPop,
        StencilPush,
        StencilUnUse,
        StencilUse,
    )

    p = kiosk.start("frames-background-")
    p.wait_screen("welcome")
    window_area = Window.width * Window.height
    masking = [False]  # between StencilPush and StencilUse a shape draws the mask, not colour

    def large_fills(group: object) -> list[tuple[float, float]]:
        found = []
        for instruction in getattr(group, "children", None) or ():
            if isinstance(instruction, (StencilPush, StencilUnUse)):
                masking[0] = True
            elif isinstance(instruction, (StencilUse, StencilPop)):
                masking[0] = False
            elif isinstance(instruction, (Rectangle, BorderImage, RoundedRectangle)):
                w, h = instruction.size
                if w * h >= 0.9 * window_area and not masking[0]:
                    found.append((w, h))
            found += large_fills(instruction)
        return found

    assert large_fills(Window.canvas) == []
    # The welcome screen's left column under its text is background only.
    spot = (20, 20)
    for high_contrast in (False, True, False):
        if p.app.theme.high_contrast != high_contrast:
            p.tap(p.widget("contrast_toggle", "root"))
        p.settle()
        expected = tuple(round(c * 255) for c in p.app.theme.bg[:3])
        assert _window_pixel(*spot) == expected, high_contrast
        assert exported_pixel(p.app.kiosk_root, *spot) == expected, high_contrast


def _stencil_masks(group: object) -> int:
    from kivy.graphics import StencilPush

    return _count(group, StencilPush)


def _scissors(group: object) -> int:
    from kivy.graphics import ScissorPush

    return _count(group, ScissorPush)


def _count(group: object, kind: type) -> int:
    count = 0
    for instruction in getattr(group, "children", None) or ():
        count += isinstance(instruction, kind) + _count(instruction, kind)
    return count


def _exported_pixel(shot: Any, x: int, y: int) -> tuple[int, ...]:
    """A pixel of an exported image (`export_as_image().texture`) at window coordinates."""
    at = ((shot.height - 1 - y) * shot.width + x) * 4  # the image's rows run top down
    return tuple(shot.pixels[at : at + 3])


def test_a_scroll_view_clips_its_content_only_while_the_content_reaches_past_it(
    kiosk, monkeypatch
) -> None:
    """A scroll view whose content lies inside it draws no stencil (two fills of the view in
    Mesa's frame, docs/performance.md); once the list is longer than its view, or the content
    is pulled past its end, the content is clipped again and rows scrolled out of the view do
    not draw over what is above it."""
    from kivy.core.window import Window

    from kiosk.screens.widgets import KScroll

    p, own = _checkout_held(kiosk, monkeypatch, "frames-clip-")
    app = p.app
    screen = app.screen("checkout")
    own(_borrowed(3))
    p.settle()
    views = [w for w in screen.walk(restrict=True) if isinstance(w, KScroll)]
    assert len(views) == 2  # the list and the side pane with the actions
    assert not any(v.clipping for v in views)
    # No stencil in the frame: the screen manager clips by a scissor.
    assert _stencil_masks(Window.canvas) == 0

    listing = screen.ids.main
    # A point just above the list, in its column: the screen's background with three rows.
    x = int(listing.to_window(listing.center_x, listing.top)[0])
    y = int(listing.to_window(listing.x, listing.top)[1]) + 2
    background = tuple(round(c * 255) for c in app.theme.bg[:3])
    assert _window_pixel(x, y) == background

    own(_borrowed(30))
    p.settle()
    assert listing.clipping and listing.scroll_y < 0.05  # at the foot: the first rows above
    # The list clips by a scissor inside the screen manager's: still no stencil in the frame.
    assert _stencil_masks(Window.canvas) == 0 and _scissors(Window.canvas) == 2
    assert _window_pixel(x, y) == background, "a row scrolled out of the list drew above it"
    # An export to an image clips by the stencil (a scissor would cut the wrong band of an image
    # drawn upside down): the same pixels as the window's, above the list and down its column.
    column = [
        (x, y),
        *(
            (x, round(listing.to_window(0, listing.y + f * listing.height)[1]))
            for f in (0.1, 0.3, 0.5, 0.7, 0.9)
        ),
    ]
    shot = app.kiosk_root.export_as_image().texture
    assert [_exported_pixel(shot, *xy) for xy in column] == [_window_pixel(*xy) for xy in column]
    assert _scissors(Window.canvas) == 2 and _stencil_masks(Window.canvas) == 0

    own(_borrowed(3))
    p.settle()
    assert not listing.clipping and _scissors(Window.canvas) == 1

    # Content shorter than its view, pulled down past its end as a patron's finger drags it.
    from kivy.uix.widget import Widget

    view = KScroll(size_hint=(None, None), size=(200, 200))
    view.add_widget(Widget(size_hint_y=None, height=100))
    pump(2)
    assert not view.clipping
    view.scroll_y = 1.3
    pump(2)
    assert view.clipping
    view.scroll_y = 1.0
    pump(2)
    assert not view.clipping

    # The scissor follows the view when a relative layout moves it along, the view's own place
    # in its parent unchanged: the box is taken from the window as the frame is drawn.
    from kivy.uix.relativelayout import RelativeLayout

    holder = RelativeLayout(size_hint=(None, None), size=(300, 300), pos=(40, 50))
    moved = KScroll(size_hint=(None, None), size=(200, 200), pos=(10, 20))
    moved.add_widget(Widget(size_hint_y=None, height=500))
    holder.add_widget(moved)
    Window.add_widget(holder)
    try:
        pump(3)
        scissor = moved.clip.scissor
        assert moved.clipping and scissor is not None
        assert (tuple(scissor.pos), tuple(scissor.size)) == ((50, 70), (200, 200))
        holder.pos = (140, 90)
        pump(3)
        assert tuple(moved.pos) == (10, 20) and tuple(scissor.pos) == (150, 110)
    finally:
        Window.remove_widget(holder)


def test_the_screens_are_clipped_to_the_screen_manager_by_a_scissor_not_a_stencil(
    kiosk, monkeypatch
) -> None:
    """Kivy's screen manager clips its screens with the stencil buffer: its box filled twice a
    frame and every shape of the screen tested against it, the dearest part of a frame under
    Mesa's software renderer once the scroll views stopped clipping (docs/performance.md, "A
    scissor for the screens"). A scissor does the same job: a screen's content that reaches
    above its box is still kept off the top bar, in the window and in an exported screenshot."""
    from kivy.core.window import Window
    from kivy.graphics import Color, Rectangle
    from kivy.uix.widget import Widget

    from kiosk.screens import widgets
    from kiosk.screens.widgets import ClipScreenManager

    p, own = _checkout_held(kiosk, monkeypatch, "frames-scissor-")
    app = p.app
    own(_borrowed(3))
    p.settle()
    manager = app.kiosk_root.ids.manager
    scissor = manager.clip.scissor
    assert isinstance(manager, ClipScreenManager) and scissor is not None
    assert _stencil_masks(Window.canvas) == 0
    assert (tuple(scissor.pos), tuple(scissor.size)) == (
        tuple(round(v) for v in manager.to_window(*manager.pos)),
        tuple(round(v) for v in manager.size),
    )

    # Something on the screen that reaches 60 px above the screen's top, over the top bar.
    screen = app.screen("checkout")
    overflow = Widget(size_hint=(None, None), pos=(0, screen.height - 20))
    overflow.size = (screen.width, 80)
    with overflow.canvas:
        Color(1, 0, 1, 1)
        Rectangle(pos=overflow.pos, size=overflow.size)
    screen.add_widget(overflow)
    try:
        p.settle()
        x = round(manager.center_x)
        top = round(manager.to_window(manager.x, manager.top)[1])
        assert _window_pixel(x, top - 4) == (255, 0, 255)  # drawn inside the screen's box
        bar = tuple(round(c * 255) for c in app.theme.bar[:3])
        assert _window_pixel(x, top + 2) == bar, "a screen drew over the top bar"
        shot = p.app.kiosk_root.export_as_image().texture
        assert _exported_pixel(shot, x, top - 4) == (255, 0, 255)
        assert _exported_pixel(shot, x, top + 2) == bar, (
            "a screen drew over the top bar in the image"
        )
        assert _stencil_masks(Window.canvas) == 0  # the window's frames clip by scissor again
    finally:
        screen.remove_widget(overflow)
        p.settle()

    # A window that Kivy turns is not in the scissor's pixels: Kivy's stencil is kept there.
    monkeypatch.setattr(widgets, "window_turned", lambda: True)
    turned = ClipScreenManager()
    assert turned.clip.scissor is None and _stencil_masks(turned.canvas.before) == 1


def test_a_new_rows_texts_are_rendered_once_for_the_frame_that_shows_it(kiosk, monkeypatch) -> None:
    """A row's labels are laid out and fitted when the row is built, so each text is rendered
    once, at its final width and font; left to the frame's triggers, each was rendered three
    times in that frame (Kivy's default width, the fitted font, the list's width), on the UI
    thread between the tag and its row (docs/performance.md, "A row's texts rendered once")."""
    from collections import Counter

    from kivy.uix.label import Label

    p, own = _checkout_held(kiosk, monkeypatch, "frames-once-")
    screen = p.app.screen("checkout")
    own(_borrowed(2))
    p.settle()
    before = set(screen._rows)
    renders: Counter[int] = Counter()
    original = Label.texture_update

    def texture_update(label: Label, *args: Any) -> Any:
        renders[id(label)] += 1
        return original(label, *args)

    monkeypatch.setattr(Label, "texture_update", texture_update)
    own(_borrowed(3))
    (key,) = set(screen._rows) - before
    row = screen._rows[key]
    labels = [w for w in row.walk(restrict=True) if isinstance(w, Label)]
    pump(1)  # the frame that shows the row
    assert [renders[id(label)] for label in labels] == [1] * len(labels)
    title = row.ids.title_label
    assert title.texture is not None and "30000003" in title.text
    # The width the row was laid out at is the list's: settling changes no text's width.
    p.settle()
    assert [renders[id(label)] for label in labels] == [1] * len(labels)
    assert row.width == screen.ids.item_list.width


def test_a_scroll_effect_moves_at_most_once_a_frame_after_a_screen_is_shown(
    kiosk, monkeypatch
) -> None:
    """Kivy's scroll effects ask for their next step at once; under the interrupt clock the
    kiosk runs with, that was tens of thousands of steps a second, 60 % of a core for seconds
    after each screen was shown, beside the reader and the library system's answers. A step is
    now taken once a frame (60 a second), however many effects are springing back."""
    import time

    from kivy.effects.dampedscroll import DampedScrollEffect

    steps: dict[int, int] = {}
    own = DampedScrollEffect.update_velocity

    # Named as the method it counts: Kivy's clock calls a bound method back by its name.
    def update_velocity(effect: DampedScrollEffect, dt: float) -> None:
        steps[id(effect)] = steps.get(id(effect), 0) + 1
        own(effect, dt)

    monkeypatch.setattr(DampedScrollEffect, "update_velocity", update_velocity)

    def busiest_in_a_second() -> int:
        steps.clear()
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            pump(1)
        return max(steps.values(), default=0)

    p = kiosk.start("frames-effects-", pin_policy="none")
    p.wait_screen("welcome")
    assert busiest_in_a_second() <= 90
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    assert busiest_in_a_second() <= 90
