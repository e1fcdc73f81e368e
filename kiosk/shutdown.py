"""Clean stops: SIGTERM (systemctl stop, restart, reboot) and SIGINT end the kiosk within a
bounded time, also under the kiosk lockdown, which refuses window-close requests.

SDL would turn both signals into a window-close request that the lockdown refuses, so the kiosk
sat out systemd's TimeoutStopSec and was killed. Instead `GracefulStop` takes the signals
itself: it tells systemd the kiosk is stopping, stops the app from the Kivy loop (the running
transaction finishes on the core worker; the link and the journal are closed by the app's
`on_stop`), and keeps a deadline. A transaction still running at the deadline is already in the
journal (it is written before it is sent), so the process may end there: the transaction is
reconciled as in doubt at the next start. See docs/operations.md, "Stopping".
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

# systemd's TimeoutStopSec for kiosk.service is 15 s; the kiosk promises to be gone in 5 s.
STOP_BUDGET_S = 4.5
SIGNALS = (signal.SIGTERM, signal.SIGINT)
# SDL installs its own SIGINT/SIGTERM handlers at start-up unless told not to (a hint read from
# the environment); its handlers are what turned a SIGTERM into a refused window close.
SDL_NO_SIGNAL_HANDLERS = "SDL_NO_SIGNAL_HANDLERS"
OVERTIME_EXIT = 130
STATUS_READY = "serving; SIGTERM or SIGINT stop it cleanly"


def keep_signals_from_sdl(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Set before Kivy creates the window, so SDL leaves SIGTERM and SIGINT to the kiosk."""
    env[SDL_NO_SIGNAL_HANDLERS] = "1"


class GracefulStop:
    """Stops a Kivy app on SIGTERM/SIGINT; `install()` from the main thread once the app has started."""

    def __init__(
        self,
        app: Any,
        *,
        budget_s: float = STOP_BUDGET_S,
        schedule: Callable[[Callable[[Any], None]], Any] | None = None,
        hard_exit: Callable[[int], Any] = os._exit,
    ) -> None:
        self.app = app
        self.budget_s = budget_s
        self._schedule = schedule
        self._hard_exit = hard_exit
        self.signal_received: int | None = None
        self.deadline: threading.Timer | None = None

    def install(self) -> None:
        """Take SIGTERM and SIGINT (again: the lockdown ignores SIGINT when it starts)."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        for sig in SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self.signal_received is not None:
            log.info("%s again: the kiosk is already stopping", signal.Signals(signum).name)
            return
        self.signal_received = signum
        log.warning(
            "%s received: stopping the kiosk (at most %.1f s)",
            signal.Signals(signum).name,
            self.budget_s,
        )
        notifier = getattr(self.app, "_notifier", None)
        if notifier is not None:
            notifier.stopping()
        self.deadline = threading.Timer(self.budget_s, self._overtime)
        self.deadline.daemon = True
        self.deadline.start()
        schedule = self._schedule or _kivy_schedule
        # Handed over from a thread: the handler runs on the UI thread between two bytecodes,
        # maybe while that thread holds the lock of Kivy's interrupt clock (its wake-up event),
        # which scheduling takes too: called here, it could wait on itself for ever.
        threading.Thread(
            target=schedule, args=(self._stop_app,), name="kiosk-stop", daemon=True
        ).start()

    def _stop_app(self, *_args: Any) -> None:
        lockdown = getattr(self.app, "lockdown", None)
        if lockdown is not None:
            lockdown.allow_exit()
        self.app.stop()

    def finished(self) -> None:
        """The app and its services are closed: the deadline is no longer needed."""
        if self.deadline is not None:
            self.deadline.cancel()
        if self.signal_received is not None:
            log.warning("kiosk stopped cleanly after %s", signal.Signals(self.signal_received).name)

    def _overtime(self) -> None:
        log.error(
            "the kiosk did not stop within %.1f s; ending now. A transaction still running is in the "
            "journal and is reconciled (in doubt) at the next start",
            self.budget_s,
        )
        for handler in logging.getLogger().handlers:
            try:
                handler.flush()
            except Exception:
                # Past the deadline, on the way out: a failing log handler must not keep the
                # process alive, and there is no log left to write its traceback to.
                pass
        self._hard_exit(OVERTIME_EXIT)


def _kivy_schedule(callback: Callable[[Any], None]) -> Any:
    from kivy.clock import Clock  # lazy: CLI tools must not need Kivy

    return Clock.schedule_once(callback, 0)


def install_on_start(app: Any, stop: GracefulStop) -> None:
    """Install the handlers now (SDL has none: keep_signals_from_sdl) and again on the first frame
    after `on_start`, where the lockdown sets SIGINT to be ignored."""
    stop.install()

    def after_start(_dt: Any) -> None:
        stop.install()
        notifier = getattr(app, "_notifier", None)
        if notifier is not None and notifier.enabled:
            notifier.status(STATUS_READY)  # systemctl status shows it; tests wait for it

    def again(
        *_args: Any,
    ) -> None:  # returns None: a true value would keep the app's own on_start from running
        if getattr(app, "parts_started", True):
            _kivy_schedule(after_start)
        else:  # the kiosk starts its parts (and its lockdown) after its first frame
            app.bind(parts_started=lambda *_: _kivy_schedule(after_start))

    app.bind(on_start=again)
