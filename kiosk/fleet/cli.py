"""Fleet sub-commands of `kiosk`: `config show`, `support-bundle` and `alert` (send, list)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from kiosk import config as kconfig


def register(subparsers: Any) -> None:
    cfg = subparsers.add_parser(
        "config", help="the configuration in effect (site file + kiosk file)"
    )
    cfg_sub = cfg.add_subparsers(dest="config_command", metavar="ACTION")
    show = cfg_sub.add_parser("show", help="print the configuration")
    show.add_argument(
        "--resolved",
        action="store_true",
        help="the merged configuration with every key and its origin (secrets masked)",
    )
    show.add_argument("--json", action="store_true", help="as JSON: key, value, origin")
    show.set_defaults(func=cmd_config_show)
    cfg.set_defaults(func=lambda args: (cfg.print_help(), 2)[1])

    bundle = subparsers.add_parser(
        "support-bundle",
        help="doctor output, masked logs, redacted configuration and journal summary, for a ticket",
    )
    bundle.add_argument("out", help="the .tar.gz file to write")
    bundle.add_argument(
        "--timeout", type=float, default=5.0, help="seconds for each doctor check (default 5)"
    )
    bundle.set_defaults(func=cmd_support_bundle)

    alert = subparsers.add_parser("alert", help="alerts for staff: send one now, list the queue")
    alert_sub = alert.add_subparsers(dest="alert_command", metavar="ACTION")
    send = alert_sub.add_parser(
        "send", help="raise an alert and deliver it to the configured sinks"
    )
    send.add_argument("kind", help="e.g. call_staff, test")
    send.add_argument("summary")
    send.add_argument("--label", action="append", default=[], metavar="NAME=VALUE")
    send.add_argument(
        "--wait",
        type=float,
        default=15.0,
        help="seconds to try delivering before leaving it queued (default 15)",
    )
    send.set_defaults(func=cmd_alert_send)
    lst = alert_sub.add_parser("list", help="the queued and delivered alerts")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_alert_list)
    alert.set_defaults(func=lambda args: (alert.print_help(), 2)[1])


def cmd_config_show(args: argparse.Namespace) -> int:
    from kiosk import config_layers  # lazy: fast `kiosk --help`

    cfg = kconfig.load(args.config)
    if args.json:
        rep = config_layers.report_for(cfg)
        doc = {
            "kiosk_file": rep.kiosk_file,
            "site_file": rep.site_file,
            "site_used": rep.site_used,
            "problems": list(rep.problems),
            "config_hash": config_layers.config_hash(cfg),
            "site_hash": rep.site_hash,
            "values": [
                {"key": v.key, "value": v.value, "origin": v.origin}
                for v in config_layers.resolved_values(cfg)
            ],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    text = config_layers.show(cfg)
    if not args.resolved:
        # Without --resolved: only what the files set, not every default.
        text = (
            "\n".join(
                line
                for line in text.splitlines()
                if not line.endswith(f"# {config_layers.DEFAULT}")
            )
            + "\n"
        )
    print(text, end="")
    return 0


def cmd_support_bundle(args: argparse.Namespace) -> int:
    from kiosk.fleet.support import write_bundle  # lazy: fast `kiosk --help`

    path = write_bundle(args.config, args.out, timeout_s=args.timeout)
    print(f"support bundle written to {path}")
    return 0


def _alert_service(args: argparse.Namespace) -> Any:
    from kiosk.fleet.alerts import AlertService  # lazy: fast `kiosk --help`

    return AlertService.from_config(kconfig.load(args.config))


def cmd_alert_send(args: argparse.Namespace) -> int:
    from kiosk.fleet.alerts import AlertError  # lazy: fast `kiosk --help`

    labels = {}
    for item in args.label:
        name, sep, value = item.partition("=")
        if not sep:
            raise AlertError(f"--label {item!r}: expected NAME=VALUE")
        labels[name] = value
    svc = _alert_service(args)
    try:
        uid = svc.raise_alert(args.kind, args.summary, **labels)
        deadline = time.monotonic() + max(0.0, args.wait)
        while True:
            svc.deliver_due()
            left = [d for d in svc.queue.all() if d.alert.uid == uid and d.state == "pending"]
            if not left or time.monotonic() >= deadline:
                break
            time.sleep(min(1.0, max(0.05, (svc.queue.next_due() or 0) - time.time())))
        for d in svc.queue.all():
            if d.alert.uid == uid:
                print(
                    f"{d.sink}: {d.state}"
                    + (f" ({d.last_error})" if d.last_error and d.state != "delivered" else "")
                )
    finally:
        svc.close()
    return 0


def cmd_alert_list(args: argparse.Namespace) -> int:
    from kiosk.fleet.alerts import deliveries_json  # lazy: fast `kiosk --help`

    svc = _alert_service(args)
    try:
        rows = deliveries_json(svc.queue.all())
    finally:
        svc.close()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        for r in rows:
            print(
                f"{r['created']}  {r['kind']:<22} {r['sink']:<13} {r['state']:<10} {r['summary']}"
            )
    return 0
