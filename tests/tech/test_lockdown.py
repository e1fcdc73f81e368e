"""The Kivy lockdown: no Escape-to-exit, no window close, no settings panel, no debugging modules."""

from __future__ import annotations

import signal

import pytest

pytestmark = pytest.mark.ui


@pytest.fixture
def window():
    from kivy.base import EventLoop
    from kivy.core.window import Window

    EventLoop.ensure_window()
    return Window


class _FakeApp:
    def __init__(self):
        self.settings_opened = 0

    def _on_keyboard_settings(self, _window, key, *_args):
        if key == 282:
            self.settings_opened += 1
            return True
        return False


def test_escape_close_and_f1_are_refused(window):
    from kivy.config import Config
    from kivy.core.window import WindowBase

    from kiosk.screens.lockdown import apply_lockdown

    app = _FakeApp()
    window.bind(on_keyboard=app._on_keyboard_settings)
    stopped = []
    window.bind(on_close=lambda *_: stopped.append(True))
    lock = apply_lockdown(window, app, fullscreen=False, hide_cursor=False)
    try:
        assert Config.getint("kivy", "exit_on_escape") == 0
        assert WindowBase.on_keyboard.exit_on_escape is False
        assert (
            window.dispatch("on_keyboard", 27, 41, None, []) is True
        )  # Escape handled by the lockdown
        assert window.dispatch("on_keyboard", 282, 58, None, []) is True  # F1
        assert app.settings_opened == 0
        assert window.dispatch("on_keyboard", 285, 61, None, ["alt"]) is True  # Alt+F4
        assert window.dispatch("on_request_close", source="keyboard") is True  # refused
        assert not stopped
        assert lock.blocked == ["key 27", "key 282", "key 285", "close"]
        # ordinary typing (a hand scanner is a keyboard) still reaches the app
        assert not window.dispatch("on_keyboard", 49, 30, "1", [])
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        lock.allow_exit()
        assert not window.dispatch("on_request_close", source="keyboard")  # the admin exit
    finally:
        lock.release()
        window.unbind(on_keyboard=app._on_keyboard_settings)
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN


def test_debugging_modules_are_switched_off(window):
    from kivy.config import Config
    from kivy.modules import Modules

    from kiosk.screens.lockdown import apply_lockdown

    Config.set("modules", "showborder", "")
    Modules.register_window(window)
    Modules.update()
    assert Modules.mods["showborder"]["activated"]
    lock = apply_lockdown(window, fullscreen=False, hide_cursor=False)
    try:
        assert not Modules.mods["showborder"]["activated"]
        assert not Config.has_option("modules", "showborder")
    finally:
        lock.release()
        Modules.unregister_window(window)


def test_fullscreen_and_cursor(window):
    from kiosk.screens.lockdown import apply_lockdown

    before = (window.fullscreen, window.borderless, window.show_cursor, tuple(window.size))
    lock = apply_lockdown(window)
    try:
        assert window.fullscreen == "auto"
        assert window.borderless
        assert window.show_cursor is False
    finally:
        lock.release()
        window.fullscreen, window.borderless, window.show_cursor = before[:3]
        window.size = before[3]
