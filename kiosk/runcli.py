"""`kiosk run`: start the patron kiosk (or the book drop) full screen; on the embedded default the
demo library system runs beside it in a child process (kiosk/acschild.py).

Without a display it stops with one line saying how to run it (a display, or
SDL_VIDEODRIVER=offscreen for a smoke test without a screen).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
from typing import Any

from kiosk import config
from kiosk.errors import KioskError
from kiosk.shutdown import GracefulStop, install_on_start, keep_signals_from_sdl

log = logging.getLogger(__name__)

# SDL video drivers that need no X or Wayland display.
_HEADLESS_DRIVERS = ("offscreen", "kmsdrm", "wayland", "x11")

# Kivy's clock. "interrupt" wakes the loop as soon as the core worker or a device thread hands
# the UI thread a snapshot (Clock.schedule_once from that thread); Kivy's default clock sleeps
# out the rest of the frame first, up to 1/maxfps (docs/performance.md, "frame drawn"). An idle
# kiosk ticks as often with either, since the scroll views' effects step once a frame
# (kiosk/screens/widgets.py, FrameScrollEffect).
KIVY_CLOCK = "interrupt"


class DisplayMissing(KioskError):
    """No screen to draw on."""


def register(subparsers: Any) -> None:
    run = subparsers.add_parser("run", help="start the kiosk (the demo on the embedded default)")
    run.add_argument("--mode", choices=("checkout", "bookdrop"), help="override [kiosk] mode")
    run.add_argument(
        "--windowed", action="store_true", help="a window instead of full screen (development)"
    )
    run.set_defaults(func=run_command)


def check_display(env: os._Environ[str] | dict[str, str] = os.environ) -> None:
    """Raise DisplayMissing with how to run when nothing can show the kiosk's window."""
    if (
        env.get("DISPLAY")
        or env.get("WAYLAND_DISPLAY")
        or env.get("SDL_VIDEODRIVER") in _HEADLESS_DRIVERS
    ):
        return
    raise DisplayMissing(
        "no display: run `kiosk run` on a desktop or with DISPLAY set, on a kiosk console with "
        "SDL_VIDEODRIVER=kmsdrm, or for a smoke test without a screen with SDL_VIDEODRIVER=offscreen"
    )


def prepare_kivy(cfg: Any, windowed: bool) -> None:
    """Kivy's environment, set before the first `import kivy` (Kivy reads it once at import)."""
    fullscreen = cfg.ui.fullscreen and not windowed
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")  # Kivy's records go through our logging setup
    os.environ.setdefault("KIVY_NO_CONFIG", "1")  # no ~/.kivy/config.ini: the site config is ours
    os.environ.setdefault("KIVY_HOME", os.path.join(tempfile.gettempdir(), "kiosk-kivy"))
    os.environ.setdefault("KIVY_CLIPBOARD", "dummy")  # no clipboard helpers on a kiosk
    os.environ.setdefault("KIVY_CLOCK", KIVY_CLOCK)
    keep_signals_from_sdl()  # SIGTERM must stop the kiosk, not ask the locked-down window to close
    os.environ["KCFG_GRAPHICS_FULLSCREEN"] = "auto" if fullscreen else "0"
    os.environ["KCFG_GRAPHICS_WIDTH"] = str(cfg.ui.width)
    os.environ["KCFG_GRAPHICS_HEIGHT"] = str(cfg.ui.height)


def run_command(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    if args.mode:
        cfg = dataclasses.replace(cfg, kiosk=dataclasses.replace(cfg.kiosk, mode=args.mode))
    if args.windowed:
        cfg = dataclasses.replace(cfg, ui=dataclasses.replace(cfg.ui, fullscreen=False))
    from kiosk.doctor import check_secrets  # lazy: fast `kiosk --help`

    check_secrets(cfg)  # warns, or raises ConfigError under [admin] secrets_policy = "refuse"
    check_display()
    prepare_kivy(cfg, args.windowed)
    import kivy  # noqa: F401  # lazy: after its setup; Kivy sets its log level on import

    from kiosk.logsetup import setup_logging  # lazy: fast `kiosk --help`

    setup_logging(cfg, verbose=args.verbose)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("kivy").setLevel(logging.WARNING)
        logging.getLogger("kiosk").setLevel(logging.INFO)

    from kiosk.app import KioskApp  # lazy: Kivy only after its setup

    # The app draws its welcome screen first and starts its parts (the demo library system on
    # the embedded default, the journal, the devices) after that frame; it closes them on stop.
    app = KioskApp(cfg)
    stop = GracefulStop(app)
    install_on_start(app, stop)  # SIGTERM/SIGINT stop the kiosk cleanly, lockdown or not
    try:
        app.run()
    finally:
        app.wait_started(30.0)  # a stop during the start: its parts are closed, not left running
        if app.services is not None:
            app.services.close()
        stop.finished()
    if app.start_error is not None:
        raise app.start_error
    return 0
