"""The `kiosk` command: run the kiosk, the demo library system, and technician tools.

Each layer contributes its own sub-commands through a `register(subparsers)` function, so
this module only knows their names.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from kiosk.errors import ConfigError, KioskError

# Modules that add sub-commands; each has register(subparsers) and sets args.func.
COMMAND_MODULES = (
    "kiosk.runcli",  # run
    "kiosk.sync.acs.cli",  # acs (embedded demo library system)
    "kiosk.sync.sip2.cli",  # sip2 decode, sip2 check
    "kiosk.sync.cli",  # circ, sync, journal
    "kiosk.devices.tags.cli",  # tag decode, tag encode
    "kiosk.devices.cli",  # devices
    "kiosk.techcli",  # doctor, stats, admin
    "kiosk.fleet.cli",  # config show, support-bundle, alert
    "kiosk.preview",  # preview (screens in named states, offscreen)
    "kiosk.speech.cli",  # say
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk", description="Self-service library terminal")
    parser.add_argument("--config", help="configuration file (else $KIOSK_CONFIG, else the embedded demo)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except KioskError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
