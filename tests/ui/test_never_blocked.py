"""The UI thread is never blocked by a device: while the reader's tag write, the reader's
inventory or the printer hangs, the screen still answers a touch (the text-size toggle), and the
work finishes once the device does. Plus a bounded leak check over repeated patron sessions
(bench/bench_leak.py runs 1,000)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from kiosk.core.checkout import ItemStatus
from kiosk.core.events import Action, Tapped
from kiosk.devices.readers.sim import demo_tag

pytestmark = pytest.mark.ui

STALL_BOUND_S = 20.0  # a stall that is never released ends here, so a failing test cannot hang


def _items(app):
    return (
        {i.item_id: i for i in app.state.checkout.items} if app.state and app.state.checkout else {}
    )


@contextmanager
def stalled_pad(pad, *operations: str) -> Iterator[tuple[threading.Event, threading.Event]]:
    """The simulated reader hangs in `operations` until released: (entered, release)."""
    entered, release = threading.Event(), threading.Event()
    sleep = pad._sleep

    def hang(_seconds: float) -> None:
        entered.set()
        release.wait(STALL_BOUND_S)

    pad._sleep = hang
    for op in operations:
        pad.set_delay(op, 1.0)
    try:
        yield entered, release
    finally:
        release.set()
        for op in operations:
            pad.set_delay(op, 0.0)
        pad._sleep = sleep


def _answers_a_touch(p) -> None:
    before = p.widget("finish", "checkout").font_size
    p.tap_id("large_text_toggle", "root")
    p.wait_until(
        lambda: p.widget("finish", "checkout").font_size != before,
        timeout=5,
        what="the text size changes while a device hangs",
    )


def _checkout_screen(kiosk):
    p = kiosk.start(pin_policy="optional")
    p.wait_screen("welcome")
    p.app.present_card("LV0002")
    p.wait_screen("checkout")
    return p


def test_screen_answers_while_the_tag_write_hangs(kiosk) -> None:
    p = _checkout_screen(kiosk)
    with stalled_pad(p.pad, "afi", "write", "eas") as (entered, release):
        p.pad.place(demo_tag("30000003"))
        assert entered.wait(10), "the tag write never started"
        _answers_a_touch(p)
        assert _items(p.app)["30000003"].status is ItemStatus.SEEN  # its write is still hanging
        release.set()
        p.wait_until(
            lambda: _items(p.app)["30000003"].status is ItemStatus.CHECKED_OUT,
            timeout=15,
            what="checked out once the write finished",
        )
    assert _items(p.app)["30000003"].unsecured


def test_screen_answers_while_the_reader_inventory_hangs(kiosk) -> None:
    p = _checkout_screen(kiosk)
    with stalled_pad(p.pad, "inventory") as (entered, release):
        p.pad.place(demo_tag("30000001"))
        assert entered.wait(10), "the inventory never started"
        _answers_a_touch(p)
        release.set()
        p.wait_until(
            lambda: "30000001" in _items(p.app),
            timeout=15,
            what="the tag read once the reader answered",
        )


def test_screen_answers_while_the_printer_hangs(kiosk) -> None:
    p = _checkout_screen(kiosk)
    p.pad.place(demo_tag("30000003"))
    p.wait_until(
        lambda: _items(p.app).get("30000003") is not None and _items(p.app)["30000003"].final,
        timeout=15,
        what="checked out",
    )
    device = p.app.services.printer
    entered, release = threading.Event(), threading.Event()
    printed = device.print_receipt

    def hang(document):  # noqa: ANN001, ANN202 (the printer device's signature)
        entered.set()
        release.wait(STALL_BOUND_S)
        return printed(document)

    device.print_receipt = hang
    try:
        p.tap_id("finish", "checkout")
        p.wait_screen("finish")
        p.wait_until(lambda: not p.widget("print_receipt", "finish").disabled, what="printer ready")
        p.tap_id("print_receipt", "finish")
        assert entered.wait(10), "the receipt was never sent to the printer"
        before = p.app.screen("finish").ids.print_receipt.font_size
        p.tap_id("large_text_toggle", "root")
        p.wait_until(
            lambda: p.app.screen("finish").ids.print_receipt.font_size != before,
            timeout=5,
            what="the text size changes while the printer hangs",
        )
        release.set()
        p.wait_screen("goodbye", timeout=15)
    finally:
        release.set()
        device.print_receipt = printed


def _live(kind: type) -> int:
    gc.collect()
    return sum(
        1 for o in gc.get_objects() if issubclass(type(o), kind)
    )  # type(): no weak proxy lookups


SESSIONS = 28  # bench/bench_leak.py runs 1,000


def test_repeated_sessions_leave_no_widgets_threads_or_item_rows_behind(kiosk) -> None:
    from kivy.uix.widget import Widget

    from kiosk.core.checkout import CheckoutItem

    p = kiosk.start(pin_policy="optional")
    app = p.app

    def session(n: int) -> None:
        p.wait_screen("welcome")
        app.present_card("LV0002")
        p.wait_screen("checkout")
        item = "30000003" if n % 2 else "30000004"
        p.pad.place(demo_tag(item))
        p.wait_until(
            lambda: item in _items(app) and _items(app)[item].final,
            timeout=15,
            what="item answered",
        )
        p.pad.clear()
        p.wait_until(lambda: not app.services.stack.current(), timeout=10, what="pad empty")
        app.post(Tapped(Action.LOGOUT))
        p.wait_screen("welcome")

    for n in range(3):  # warm-up: every screen and cache built once
        session(n)
    widgets, threads, items = _live(Widget), threading.active_count(), _live(CheckoutItem)
    gc.collect()
    objects = len(gc.get_objects())
    for n in range(3, SESSIONS):
        session(n)
    assert threading.active_count() == threads
    assert _live(CheckoutItem) <= items
    assert _live(Widget) <= widgets
    gc.collect()
    # Every live object the collector tracks, whatever its kind. Some come and go (callbacks
    # waiting on the clock: about 5 a session here, none over bench_leak's 1,000 sessions);
    # a session's snapshot or screen kept alive would add hundreds.
    grown = len(gc.get_objects()) - objects
    assert grown < (SESSIONS - 3) * 40, f"{grown} more live objects after {SESSIONS - 3} sessions"
