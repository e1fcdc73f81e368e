"""Kiosk lockdown on the Kivy side: no Escape-to-exit, no window close, no F1 settings panel, no
debugging modules (inspector, console, ...), no terminal signals, full screen without a cursor.

The app calls `apply_lockdown(Window, app)` in `on_start`; the maintenance screen's restart is
the only way out, through `Lockdown.allow_exit()`.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from kivy.config import Config
from kivy.modules import Modules

log = logging.getLogger(__name__)

# Keys Kivy or its modules act on by themselves: Escape (exit, close settings), F1 (settings
# panel), F11/F12 (the `screen`/screenshot modules), and the macOS quit shortcuts Cmd+Q/W.
BLOCKED_KEYS = frozenset({27, 282, 292, 293})
_CMD_KEYS = frozenset({113, 119})  # q, w
# Terminal signals a keyboard on the console could send; systemd stops the kiosk with SIGTERM.
BLOCKED_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTSTP)


@dataclass
class Lockdown:
    """What apply_lockdown changed, so the admin exit (and tests) can undo it."""

    window: Any
    app: Any = None
    exit_allowed: bool = False
    blocked: list[str] = field(default_factory=list)
    _saved_signals: dict[int, Any] = field(default_factory=dict)
    _unbound_settings: bool = False

    def _on_request_close(self, *_args: Any, **_kwargs: Any) -> bool:
        if self.exit_allowed:
            return False
        self.blocked.append("close")
        log.info("window close refused (kiosk lockdown)")
        return True  # handled: Kivy does not close

    def _on_keyboard(
        self,
        _window: Any,
        key: int,
        _scancode: Any = None,
        _codepoint: Any = None,
        modifier: Any = None,
        *_: Any,
    ) -> bool:
        if self.exit_allowed:
            return False
        mods = set(modifier or ())
        if (
            key in BLOCKED_KEYS
            or (key in _CMD_KEYS and mods & {"meta", "super"})
            or (key == 285 and "alt" in mods)
        ):  # Alt+F4
            self.blocked.append(f"key {key}")
            return True
        return False

    def allow_exit(self) -> None:
        """The technician's exit: closing the window now stops the app."""
        self.exit_allowed = True

    def release(self) -> None:
        """Undo the window bindings and signal handlers (tests; the window outlives an app)."""
        self.window.unbind(on_request_close=self._on_request_close, on_keyboard=self._on_keyboard)
        if self._unbound_settings and self.app is not None:
            self.window.bind(on_keyboard=self.app._on_keyboard_settings)
        if threading.current_thread() is threading.main_thread():
            for sig, handler in self._saved_signals.items():
                signal.signal(sig, handler)
        self._saved_signals.clear()


def _disable_modules(window: Any) -> list[str]:
    names = [name for name, _ in Config.items("modules")] if Config.has_section("modules") else []
    for name in names:
        Config.remove_option("modules", name)
    for name, mod in list(Modules.mods.items()):
        if mod.get("activated"):
            Modules.deactivate_module(name, window)
            names.append(name)
    return sorted(set(names))


def apply_lockdown(
    window: Any, app: Any = None, *, fullscreen: bool = True, hide_cursor: bool = True
) -> Lockdown:
    """Lock the kiosk's window down (call once, from the UI thread, after the window exists)."""
    Config.set("kivy", "exit_on_escape", "0")  # Kivy's config callback updates the window's handler
    Config.set("kivy", "pause_on_minimize", "0")
    lock = Lockdown(window, app)
    removed = _disable_modules(window)
    if removed:
        log.warning("debugging modules disabled by the kiosk lockdown: %s", ", ".join(removed))
    if app is not None and hasattr(app, "_on_keyboard_settings"):
        window.unbind(on_keyboard=app._on_keyboard_settings)
        lock._unbound_settings = True
    if app is not None:
        app.open_settings = lambda *_a, **_k: False  # F1 / menu key: no settings panel
    # Bound last, so these run before other handlers and before Kivy's own on_keyboard.
    window.bind(on_request_close=lock._on_request_close, on_keyboard=lock._on_keyboard)
    if threading.current_thread() is threading.main_thread():
        for sig in BLOCKED_SIGNALS:
            lock._saved_signals[sig] = signal.signal(sig, signal.SIG_IGN)
    if fullscreen:
        window.fullscreen = "auto"
        window.borderless = True
    if hide_cursor:
        window.show_cursor = False
    return lock
