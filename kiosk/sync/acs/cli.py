"""The `kiosk acs` command: run the embedded demo library system in the foreground until Ctrl-C."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiosk import config

if TYPE_CHECKING:
    from kiosk.sync.acs.server import RunningAcs

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "acs",
        help="run the demo library system (SIP2 server) in the foreground",
        description="Serve the demo library (patrons LV0001-LV0005, items 30000001-30000010) over SIP2, "
        "as [acs] and [sip2] of the configuration describe it. Stop with Ctrl-C.",
    )
    p.add_argument("--host", help="address to listen on (default: acs.host)")
    p.add_argument("--port", type=int, help="TCP port (default: acs.port; 0 = any free port)")
    p.add_argument("--reset", action="store_true", help="drop the demo database and seed it again")
    p.add_argument(
        "--database-url", help="SQLAlchemy URL of the demo database (default: acs.database_url)"
    )
    p.add_argument(
        "--repeat-guard",
        action="store_true",
        help="answer a repeat of an item's last transaction without applying it again "
        "(default: acs.strict, every request received is applied)",
    )
    p.add_argument(
        "--profile",
        help="answer like another kind of library system: NAME[,key=value...] with NAME one of "
        "standard, no-duplicate-rule, no-error-detection, late, late-no-duplicate-rule, "
        "close-after-apply and keys error_detection, duplicate_rule, reply_delay_s, "
        "close_after_apply (default: acs.profile)",
    )
    p.add_argument(
        "--applications",
        action="store_true",
        help="print how many requests of each kind were applied per item, then exit",
    )
    p.set_defaults(func=run)


def run(
    args: argparse.Namespace,
    stop: threading.Event | None = None,
    on_ready: Callable[[RunningAcs], None] | None = None,
) -> int:
    """Serve until Ctrl-C or SIGTERM (or until `stop` is set; `on_ready` gets the running server). Returns the exit code."""
    from kiosk.sync.acs.server import (  # lazy: fast `kiosk --help`
        PROFILES,
        build_from_config,
        describe,
    )

    cfg = config.load(args.config)
    if getattr(args, "applications", False):
        return print_applications(cfg, args.database_url)
    if getattr(args, "repeat_guard", False):
        cfg = dataclasses.replace(cfg, acs=dataclasses.replace(cfg.acs, strict=False))
    # One line per transaction reaches the console even without -v (root handlers pass everything).
    acs_log = logging.getLogger("kiosk.sync.acs")
    if acs_log.getEffectiveLevel() > logging.INFO:
        acs_log.setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    acs = build_from_config(
        cfg,
        host=args.host,
        port=args.port,
        fresh=args.reset,
        database_url=args.database_url,
        profile=getattr(args, "profile", None),
    )
    login = f"login {cfg.sip2.username!r}" if cfg.sip2.username else "no login"
    mode = "strict" if cfg.acs.strict else "repeat guard"
    if acs.profile != PROFILES["standard"]:
        mode += f", profile {describe(acs.profile)}"
    print(
        f"demo library system on {acs.host!s}:{acs.port} ({login}, {cfg.sip2.encoding}, {mode}); "
        "Ctrl-C stops it",
        flush=True,
    )
    if on_ready is not None:
        on_ready(acs)
    waiter = stop or threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        # systemd stops services with SIGTERM: shut down as cleanly as on Ctrl-C.
        previous = signal.signal(signal.SIGTERM, lambda *_: waiter.set())
    try:
        while not waiter.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        acs.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return 0


def print_applications(cfg: config.Config, database_url: str | None) -> int:
    """Print `item kind count` for every application the demo database recorded; 0 on success."""
    from kiosk.sync.acs.library import Library  # lazy: fast `kiosk --help`
    from kiosk.sync.acs.server import database_url_for  # lazy: fast `kiosk --help`

    library = Library.open(database_url_for(cfg, database_url))
    try:
        counts = library.application_counts()
    finally:
        library.close()
    for (item_id, kind), count in counts.items():
        print(f"{item_id or '-'}\t{kind}\t{count}")
    return 0
