"""The base class every kiosk screen derives from, and the registry through which extra screens
(maintenance, book drop) are added to the app by name and built when first shown.

A screen is thin: `show(state)` renders the latest workflow snapshot, and taps are forwarded to
the app (`self.kiosk.post(Tapped(...))`); no circulation or device call is made here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kivy.app import App
from kivy.uix.screenmanager import Screen

if TYPE_CHECKING:
    from kiosk.app import KioskApp

ScreenFactory = Callable[["KioskApp"], Screen]

# name -> factory; filled by screen modules at import time (register_screen) and read by the app.
_REGISTRY: dict[str, ScreenFactory] = {}
# What a screen module needs from its start (maintenance: the admin card and the hidden gesture),
# while its screens are built when first shown.
_SETUPS: list[Callable[[KioskApp], object]] = []


def register_screen(name: str, factory: ScreenFactory) -> None:
    """Add a screen to every app built after this call; the factory receives the KioskApp. The
    app builds it when it is first shown (`KioskApp.screen(name)`)."""
    _REGISTRY[name] = factory


def registered_screens() -> dict[str, ScreenFactory]:
    return dict(_REGISTRY)


def register_setup(setup: Callable[[KioskApp], object]) -> None:
    """Run `setup(app)` when an app starts its registered screens (once per app and setup)."""
    if setup not in _SETUPS:
        _SETUPS.append(setup)


def registered_setups() -> list[Callable[[KioskApp], object]]:
    return list(_SETUPS)


class KioskScreen(Screen):
    """A screen of the kiosk: themed through `app.theme`, texts through `app.tr(msgid, app.lang)`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    @property
    def kiosk(self) -> KioskApp:
        return App.get_running_app()

    def tr(self, msgid: str) -> str:
        return self.kiosk.tr(msgid)

    def show(self, state: Any) -> None:
        """Render a workflow snapshot; screens override it. Called on the UI thread only.

        Each screen narrows `state` to its own workflow's snapshot (SessionState, ReturnState,
        BookDropState), which a parameter typed here as their union would forbid; the app hands
        every screen only its own workflow's snapshots.
        """

    def on_touch_down(self, touch: Any) -> bool:
        app = App.get_running_app()
        if app is not None and hasattr(app, "note_activity"):
            app.note_activity()
        return super().on_touch_down(touch)
