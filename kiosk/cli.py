"""The `kiosk` command: run the kiosk, the demo library system, and technician tools.

Each layer contributes its own sub-commands through a `register(subparsers)` function, so
this module only knows their names. Every command ends with one of the exit codes of
`kiosk.exitcodes`; a failure a technician can cause (bad input, no terminal, no permission,
output piped to `head`) ends with one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from kiosk.errors import ConfigError, KioskError
from kiosk.exitcodes import Exit, help_table
from kiosk.ownership import DATA_COMMANDS, not_writable_message, refuse_root_on_kiosk_data

log = logging.getLogger(__name__)

# Modules that add sub-commands, each with register(subparsers), and the commands each adds. A
# command line names its command, so only its module is imported: `kiosk sip2 decode` need not
# load SQLAlchemy for `kiosk sync` (tests/tech/test_cli_commands.py keeps the names true).
COMMANDS: dict[str, tuple[str, ...]] = {
    "kiosk.runcli": ("run",),
    "kiosk.sync.acs.cli": ("acs",),  # the embedded demo library system
    "kiosk.sync.sip2.cli": ("sip2",),  # sip2 decode, sip2 check
    "kiosk.sync.cli": ("circ", "journal", "sync"),
    "kiosk.devices.tags.cli": ("tag",),  # tag decode, tag encode
    "kiosk.devices.cli": ("devices",),
    "kiosk.techcli": ("admin", "doctor", "purge", "stats"),
    "kiosk.fleet.cli": ("alert", "config", "support-bundle"),
    "kiosk.preview": ("preview",),  # screens in named states, offscreen
    "kiosk.speech.cli": ("say",),
}
COMMAND_MODULES = tuple(COMMANDS)
_GLOBAL_OPTIONS_WITH_VALUE = ("--config",)


def command_of(argv: list[str]) -> str | None:
    """The command a command line names (the first word that is not a global option), if any."""
    words = iter(argv)
    for word in words:
        if word in _GLOBAL_OPTIONS_WITH_VALUE:
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif word == "--":
            return next(words, None)
    return None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `kiosk` parser; with `command`, only the module that adds it is loaded (when known)."""
    parser = argparse.ArgumentParser(
        prog="kiosk",
        description="Self-service library terminal",
        epilog=help_table() + "\n\nJSON output and exit codes of every command: docs/operations.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", help="configuration file (else $KIOSK_CONFIG, else the embedded demo)"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    owners = [name for name, commands in COMMANDS.items() if command in commands]
    for name in owners or COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue
            raise
        module.register(sub)
    return parser


def _silence_stdout() -> None:
    """After the reader closed the pipe: point stdout at /dev/null so the final flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        _silence_stdout()
        return Exit.OUTPUT_CLOSED
    except KeyboardInterrupt:
        return Exit.INTERRUPTED


def _main(argv: list[str] | None) -> int:
    parser = build_parser(command_of(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return Exit.USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command in DATA_COMMANDS:
            _guard_data(args)
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return Exit.USAGE
    except KioskError as exc:
        print(f"error: {_journal_fix(args) or exc}", file=sys.stderr)
        return Exit.FAILED
    except EOFError:
        print("error: standard input ended before the command had what it needs", file=sys.stderr)
        return Exit.USAGE
    except PermissionError as exc:
        print(
            f"error: {exc.filename or ''}: permission denied; run as the user owning it (e.g. sudo -u kiosk kiosk ...)",
            file=sys.stderr,
        )
        return Exit.FAILED
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return Exit.FAILED
    except Exception:
        # The command's last line of defence: logged with its traceback, reported, exit 1.
        fix = _journal_fix(args)
        if fix:  # e.g. SQLite's "attempt to write a readonly database" in the middle of a command
            print(f"error: {fix}", file=sys.stderr)
            return Exit.FAILED
        log.exception("internal error in `kiosk %s`", args.command)
        print(
            "internal error: a defect in the kiosk; the traceback is above; please report it",
            file=sys.stderr,
        )
        return Exit.INTERNAL


def _journal_path(args: argparse.Namespace) -> Path | None:
    from kiosk import config as kconfig  # lazy: most commands read no configuration

    config_log = logging.getLogger("kiosk.config")
    quiet, config_log.disabled = (
        config_log.disabled,
        True,
    )  # the command loads it again and warns once
    try:
        cfg = kconfig.load(getattr(args, "config", None))
    except KioskError:
        return None  # the command itself reports the configuration
    finally:
        config_log.disabled = quiet
    return cfg.resolve_path(cfg.storage.path)


def _guard_data(args: argparse.Namespace) -> None:
    """As root, never create or take over the kiosk's data (kiosk/ownership.py)."""
    path = _journal_path(args)
    if path is not None:
        refuse_root_on_kiosk_data(path, args.command)


def _journal_fix(args: argparse.Namespace) -> str | None:
    """For a failure of a data command: one line with the fix when the journal is not writable."""
    if args.command not in DATA_COMMANDS:
        return None
    path = _journal_path(args)
    return not_writable_message(path) if path is not None else None


if __name__ == "__main__":
    sys.exit(main())
