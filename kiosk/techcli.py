"""Technician sub-commands of `kiosk`: `doctor`, `stats` and `admin set-pin`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import warnings
from datetime import datetime, timedelta
from typing import Any

from kiosk import config as kconfig
from kiosk.cliargs import positive_int, positive_seconds
from kiosk.errors import KioskError


def register(subparsers: Any) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check the configuration, library system link, devices and journal"
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")
    doctor.add_argument(
        "--timeout",
        type=positive_seconds,
        default=5.0,
        help="seconds to wait for each device or the library system (default 5)",
    )
    doctor.set_defaults(func=cmd_doctor)

    stats = subparsers.add_parser(
        "stats", help="checkouts, returns, renewals and refusals per day and hour, from the journal"
    )
    stats.add_argument("--json", action="store_true", help="print JSON instead of tables")
    stats.add_argument(
        "--days", type=positive_int, default=14, help="how many days back (default 14)"
    )
    stats.add_argument(
        "--hours",
        type=positive_int,
        default=24,
        help="how many hours in the hourly table (default 24)",
    )
    stats.add_argument(
        "--csv",
        action="store_true",
        help="one CSV row per day, from the daily statistics that outlive journal purges",
    )
    stats.set_defaults(func=cmd_stats)

    purge = subparsers.add_parser(
        "purge",
        help="delete finished transactions older than [storage] retention_days (statistics are kept)",
    )
    purge.set_defaults(func=cmd_purge)

    admin = subparsers.add_parser("admin", help="technician access")
    admin_sub = admin.add_subparsers(dest="admin_command", metavar="ACTION")
    set_pin = admin_sub.add_parser(
        "set-pin", help="set the admin PIN (stored as a salted scrypt hash in [admin] pin_hash)"
    )
    set_pin.add_argument(
        "--stdin",
        action="store_true",
        help="read the PIN from the first line of standard input (for scripts)",
    )
    set_pin.set_defaults(func=cmd_set_pin)
    admin.set_defaults(func=lambda args: (admin.print_help(), 2)[1])


def _read_pin(args: argparse.Namespace) -> str:
    from kiosk.adminpin import AdminPinError  # lazy: fast `kiosk --help`

    if args.stdin:
        line = sys.stdin.readline()
        if not line:
            raise AdminPinError("admin PIN: nothing on standard input")
        return line.rstrip("\r\n")
    no_terminal = AdminPinError(
        "admin PIN: no terminal to ask on; in a script use `echo PIN | kiosk admin set-pin --stdin`; nothing was changed"
    )
    try:
        with warnings.catch_warnings():
            # Without a terminal getpass would read stdin with the PIN echoed: refuse instead.
            warnings.simplefilter("error", getpass.GetPassWarning)
            first = getpass.getpass("New admin PIN: ")
            second = getpass.getpass("Repeat the admin PIN: ")
    except (EOFError, getpass.GetPassWarning):
        raise no_terminal from None
    if first != second:
        raise AdminPinError("admin PIN: the two entries differ; nothing was changed")
    return first


def cmd_set_pin(args: argparse.Namespace) -> int:
    from kiosk.adminpin import hash_pin, validate_pin, write_pin_hash  # lazy: fast `kiosk --help`

    path = kconfig.config_path(args.config)
    kconfig.load(path)  # a broken file is reported as such before asking for a PIN
    pin = _read_pin(args)
    validate_pin(pin)
    target = write_pin_hash(path, hash_pin(pin))
    print(f"admin PIN set in {target} ([admin] pin_hash); restart the kiosk to use it")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    from kiosk.retention import purge_expired  # lazy: fast `kiosk --help`

    cfg = kconfig.load(args.config)
    report = purge_expired(cfg)
    if report is None:
        print(json.dumps({"purged": 0, "note": "no journal yet"}))
        return 0
    print(json.dumps(report.to_json()))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from kiosk.core import stats as kstats  # lazy: fast `kiosk --help`

    cfg = kconfig.load(args.config)
    now = datetime.now()
    since = datetime.combine(
        (now - timedelta(days=max(args.days, 1) - 1)).date(), datetime.min.time()
    )
    if args.csv:
        from kiosk.fleet.statstore import roll_up_journal  # lazy: fast `kiosk --help`

        store = roll_up_journal(cfg)
        try:
            print(kstats.to_csv(store.days(since.date(), now.date())), end="")
        finally:
            store.close()
        return 0
    path = cfg.resolve_path(cfg.storage.path)
    if path.exists():
        from kiosk.sync.journal import Journal  # lazy: fast `kiosk --help`

        journal = Journal(path)
        try:
            entries = journal.entries(since)
        finally:
            journal.close()
    else:
        print(
            f"note: no journal at {path} yet; the kiosk has not recorded anything", file=sys.stderr
        )
        entries = []
    result = kstats.compute(entries, since=since)
    daily = kstats.last_days(result, now.date(), max(args.days, 1))
    hourly = kstats.last_hours(result, now, max(args.hours, 1))
    if args.json:
        doc = {
            "since": since.isoformat(timespec="minutes"),
            "totals": result.totals.to_json(),
            "daily": [b.to_json() for b in daily],
            "hourly": [b.to_json() for b in hourly],
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"Per day, last {len(daily)} days")
    print(kstats.table(daily, "%Y-%m-%d"))
    print()
    print(f"Per hour, last {len(hourly)} hours")
    print(kstats.table(hourly, "%Y-%m-%d %H:00"))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from kiosk import doctor  # lazy: fast `kiosk --help`

    try:
        cfg = kconfig.load(args.config)
    except KioskError as exc:
        checks = [
            doctor.Check(
                "config",
                doctor.Status.FAIL,
                str(exc),
                "fix the named key, or point --config / $KIOSK_CONFIG at the right file",
            )
        ]
    else:
        checks = doctor.run_checks(cfg, timeout_s=args.timeout)
    if args.json:
        print(json.dumps([c.to_json() for c in checks], indent=2, ensure_ascii=False))
    else:
        for c in checks:
            print(c.line())
    return doctor.exit_code(checks)
