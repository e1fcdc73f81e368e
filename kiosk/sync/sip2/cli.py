"""Technician commands for SIP2: `kiosk sip2 decode` (wire text → JSON) and `kiosk sip2 check` (ask the ACS)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Iterable

from kiosk import config as kiosk_config
from kiosk.sync.sip2.codec import Sip2Error, Sip2FormatError, decode


def register(subparsers: argparse._SubParsersAction) -> None:
    sip2 = subparsers.add_parser("sip2", help="SIP2 technician tools")
    sub = sip2.add_subparsers(dest="sip2_command", metavar="SUBCOMMAND")

    dec = sub.add_parser(
        "decode", help="decode raw SIP2 messages from stdin, one per line, to JSON lines"
    )
    dec.add_argument(
        "--encoding", default="utf-8", help="character encoding of the messages (default utf-8)"
    )
    dec.add_argument("--delimiter", default="|", help="field delimiter (default |)")
    dec.set_defaults(func=_decode)

    chk = sub.add_parser(
        "check", help="connect to the configured ACS and print its status and capabilities"
    )
    chk.add_argument("--host", help="override sip2.host")
    chk.add_argument("--port", type=int, help="override sip2.port")
    chk.add_argument("--timeout", type=float, help="override sip2.timeout_s (seconds)")
    chk.add_argument(
        "--duplicate-rule",
        action="store_true",
        help="also find out whether the ACS honours the SIP2 duplicate rule (sends one 99 "
        "twice); set sip2.duplicate_rule = true only when it does",
    )
    chk.set_defaults(func=_check)


def _lines(stream) -> Iterable[bytes | str]:
    # Prefer raw bytes so the checksum is verified over exactly what was captured.
    source = getattr(stream, "buffer", None) or stream
    yield from source


def _decode(args: argparse.Namespace) -> int:
    out = sys.stdout
    for line in _lines(sys.stdin):
        text = line.rstrip(b"\r\n") if isinstance(line, bytes) else line.rstrip("\r\n")
        if not text:
            continue
        try:
            result = decode(text, encoding=args.encoding, delimiter=args.delimiter).to_json()
        except Sip2FormatError as exc:
            result = {"error": str(exc)}
        out.write(json.dumps(result, ensure_ascii=False) + "\n")
        out.flush()
    return 0


def _check(args: argparse.Namespace) -> int:
    from kiosk.sync.sip2.client import Sip2Client

    cfg = kiosk_config.load(args.config)
    settings = cfg.sip2
    overrides = {
        k: v
        for k, v in (("host", args.host), ("port", args.port), ("timeout_s", args.timeout))
        if v is not None
    }
    if overrides:
        settings = dataclasses.replace(settings, **overrides)
    client = Sip2Client(settings)
    honoured: bool | None = None
    try:
        status = client.connect()
        if getattr(args, "duplicate_rule", False):
            honoured = client.probe_duplicate_rule()
    except Sip2Error as exc:
        print(f"sip2 check failed: {exc}", file=sys.stderr)
        return 1
    finally:
        client.close()
    report = {
        "host": settings.host,
        "port": settings.port,
        "tls": settings.tls,
        "encoding": settings.encoding,
        "error_detection": settings.error_detection,
        "logged_in": bool(settings.send_login and settings.username),
        "acs": status.to_json(),
        "duplicate_rule": settings.duplicate_rule,
    }
    if honoured is not None:
        report["duplicate_rule_honoured"] = honoured
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0
