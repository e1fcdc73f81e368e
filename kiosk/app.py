"""The kiosk application and its composition root: reads the configuration, builds the devices,
the circulation service, the core workflows and the worker, and hands them to the screens.

This is the only module that knows every part. Screens see the app (`App.get_running_app()`):
its theme, its language, `post(event)` to drive the patron session, and `add_screen(name, ...)`
for extra screens (maintenance, book drop) registered through kiosk.screens.base.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.properties import BooleanProperty, ObjectProperty, StringProperty
from kivy.uix.screenmanager import FadeTransition, Screen, ScreenManager

from kiosk.config import Config
from kiosk.core.ports import Clock as CoreClock
from kiosk.core.ports import SystemClock
from kiosk.i18n import LANGUAGE_NAMES, translator
from kiosk.screens.base import KioskScreen, registered_screens
from kiosk.screens.theme import Theme

log = logging.getLogger(__name__)

# Screen modules other parts contribute; each registers its screens on import (missing ones skipped).
EXTRA_SCREEN_MODULES = ("kiosk.screens.maintenance", "kiosk.screens.bookdrop")


@dataclass
class KioskServices:
    """Everything the composition root built; `close()` stops it all in reverse order."""

    cfg: Config
    clock: CoreClock = field(default_factory=SystemClock)
    worker: Any = None
    circulation: Any = None
    session: Any = None
    returns: Any = None
    reader: Any = None
    stack: Any = None
    security: Any = None
    printer: Any = None
    cards: list[Any] = field(default_factory=list)
    wedge: Any = None
    sounds: Any = None
    acs: Any = None
    pad: Any = None  # the simulated pad, when the reader is `sim:`
    card_sim: Any = None  # the simulated card source, when configured
    closers: list[Callable[[], Any]] = field(default_factory=list)

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                log.exception("error while shutting down %s", getattr(closer, "__qualname__", closer))
        self.closers.clear()


class KioskApp(App):
    """The patron's kiosk: a ScreenManager of patron screens under a top bar, plus overlays."""

    lang = StringProperty("lv")
    theme = ObjectProperty(None)
    offline = BooleanProperty(False)
    status_text = StringProperty("")
    busy = BooleanProperty(False)

    def __init__(self, cfg: Config, services: KioskServices | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.cfg = cfg
        self.services = services
        self.theme = Theme()
        self.lang = cfg.kiosk.default_language
        self.title = cfg.kiosk.library_name
        self.manager: ScreenManager | None = None
        self._screens: dict[str, Screen] = {}

    # -- texts ------------------------------------------------------------------------------

    def tr(self, msgid: str, *_bound: Any) -> str:
        """The text in the current language; kv passes `app.lang` as a second argument to re-bind."""
        return translator(self.lang).gettext(msgid)

    def ntr(self, singular: str, plural: str, n: int, *_bound: Any) -> str:
        return translator(self.lang).ngettext(singular, plural, n)

    def language_name(self, code: str) -> str:
        return LANGUAGE_NAMES.get(code, code)

    # -- screens ----------------------------------------------------------------------------

    def add_screen(self, name: str, screen: Screen) -> None:
        """Add (or replace) a screen by name; extra screens use this or `register_screen`."""
        if self.manager is None:
            raise RuntimeError("add_screen() before build()")
        old = self._screens.get(name)
        if old is not None:
            self.manager.remove_widget(old)
        screen.name = name
        self._screens[name] = screen
        self.manager.add_widget(screen)

    def screen(self, name: str) -> Screen:
        return self._screens[name]

    def show_screen(self, name: str) -> None:
        if self.manager is not None and self.manager.current != name:
            self.manager.current = name

    @property
    def current_screen(self) -> str:
        return self.manager.current if self.manager is not None else ""

    def _add_registered_screens(self) -> None:
        for module in EXTRA_SCREEN_MODULES:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name and module.startswith(exc.name):
                    continue
                raise
        for name, factory in registered_screens().items():
            self.add_screen(name, factory(self))

    # -- activity ---------------------------------------------------------------------------

    def note_activity(self) -> None:
        """A touch anywhere: the idle timer starts again (the session workflow decides what that means)."""

    def build(self) -> Any:
        from kiosk.screens.widgets import load_kv

        load_kv()
        self.manager = ScreenManager(transition=FadeTransition(duration=0.12))
        self.add_screen("welcome", KioskScreen())
        self._add_registered_screens()
        Clock.schedule_once(lambda _dt: None, 0)
        return self.manager
