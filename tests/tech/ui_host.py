"""A small host app for the technician screens: the theme, texts, screen manager and services the
screens use from the kiosk app, with simulated devices and an injected clock; plus a pilot to tap,
pump frames, wait on conditions and save screenshots."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.base import EventLoop
from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.screenmanager import NoTransition, Screen, ScreenManager

SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"


class HostApp(App):
    lang = StringProperty("en")
    theme = ObjectProperty(None)
    cfg = ObjectProperty(None)

    def __init__(self, cfg: Any, services: Any, prefixes: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        from kiosk.screens.theme import Theme

        self.cfg = cfg
        self.services = services
        self.theme = Theme()
        self.prefixes = prefixes
        self._screens: dict[str, Screen] = {}
        self.manager: ScreenManager | None = None
        self.kiosk_root: Any = None
        self.stopped = False
        self.maintenance: Any = None  # as KioskApp: attached by the maintenance screens

    def attach_maintenance(self, ctl: Any) -> None:
        self.maintenance = ctl

    def tr(self, msgid: str, *_bound: Any) -> str:
        """As the kiosk app: the text from the catalog of `lang` (English by default)."""
        from kiosk.i18n import translator

        return translator(self.lang).gettext(msgid)

    def ntr(self, singular: str, plural: str, n: int, *_bound: Any) -> str:
        from kiosk.i18n import translator

        return translator(self.lang).ngettext(singular, plural, n)

    def build(self) -> Any:
        from kiosk.screens.base import registered_screens

        root = FloatLayout()
        self.kiosk_root = root
        self.manager = ScreenManager(transition=NoTransition())
        root.add_widget(self.manager)
        for name in ("welcome", "out_of_service"):
            self.add_screen(name, Screen())
        for name, factory in registered_screens().items():
            if name.startswith(self.prefixes):
                self.add_screen(name, factory(self))
        self.show_screen("welcome")
        return root

    def add_screen(self, name: str, screen: Screen) -> None:
        screen.name = name
        self._screens[name] = screen
        self.manager.add_widget(screen)

    def screen(self, name: str) -> Screen:
        return self._screens[name]

    def show_screen(self, name: str) -> None:
        self.manager.current = name

    @property
    def current_screen(self) -> str:
        return self.manager.current

    def stop(self, *args: Any) -> None:
        # The real stop: it also resets kv's `app` proxy, which would otherwise keep pointing here.
        if not self.stopped:
            self.stopped = True
            super().stop(*args)


def frames(n: int = 2) -> None:
    for _ in range(n):
        EventLoop.idle()


def wait_until(predicate: Any, timeout_s: float = 10.0) -> None:
    """Pump frames until `predicate()` holds (background actions report through the Kivy clock)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s")
        frames(1)  # the clock's frame pacing gives the worker thread its time


def settle(widget: Any, limit: int = 30) -> None:
    """Pump frames until the widget's window position stops changing (layouts take a few frames)."""
    last = None
    for _ in range(limit):
        frames(1)
        now = (tuple(widget.to_window(*widget.pos)), tuple(widget.size))
        if now == last:
            return
        last = now


def tap(widget: Any) -> None:
    """A real touch at the widget's centre, through the window and hit-testing."""
    from kivy.tests.common import UnitTestTouch

    settle(widget)
    x, y = widget.to_window(*widget.center)
    touch = UnitTestTouch(x, y)
    touch.touch_down()
    frames(1)
    touch.touch_up()
    frames(2)


def screenshot(app: Any, name: str) -> Path:
    frames(3)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    app.root.export_to_png(str(path))
    return path


def find(widget: Any, predicate: Any) -> Any:
    for w in widget.walk():
        if predicate(w):
            return w
    raise AssertionError("widget not found")


def button(screen: Any, text: str) -> Any:
    from kivy.uix.button import Button

    return find(screen, lambda w: isinstance(w, Button) and w.text == text)
