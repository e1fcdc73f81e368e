"""The `kiosk circ`, `kiosk sync` and `kiosk journal` commands: circulation by hand, forwarding, the journal.

They go through the same circulation service as the touch screen, so a technician sees exactly
what a patron would get. Output is JSON; patron ids are masked except the last four characters.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import socket
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta
from typing import Any

from kiosk import config as kiosk_config
from kiosk.config import Config
from kiosk.core.domain import BlockReason, CirculationResult, Patron, PatronResult, Refusal
from kiosk.core.masking import mask_card
from kiosk.errors import KioskError
from kiosk.sync.circulation import CirculationService, build_circulation
from kiosk.sync.journal import Journal
from kiosk.sync.sip2.codec import parse_sip_date

log = logging.getLogger(__name__)


def _print(data: dict[str, Any]) -> None:
    print(json.dumps(data, ensure_ascii=False))


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) != 0


def _maybe_embedded_acs(cfg: Config, stack: ExitStack) -> None:
    """With the demo configuration and no library system listening, run the embedded one for this command."""
    if not cfg.acs.embedded or not _port_free(cfg.sip2.host, cfg.sip2.port):
        return
    try:
        from kiosk.sync.acs.server import build_from_config  # lazy: fast `kiosk --help`
    except ImportError:
        return
    running = build_from_config(cfg, port=cfg.sip2.port)
    stack.callback(running.stop)


def _service(args: argparse.Namespace, stack: ExitStack) -> CirculationService:
    cfg = kiosk_config.load(args.config)
    if not getattr(args, "no_embedded", False):
        _maybe_embedded_acs(cfg, stack)
    service = build_circulation(cfg)
    stack.callback(service.close)
    return service


def patron_json(result: PatronResult) -> dict[str, Any]:
    """A printable view of an identification; the patron id is masked."""
    p: Patron | None = result.patron
    out: dict[str, Any] = {
        "ok": result.ok,
        "mode": result.mode.value,
        "message": result.message,
        "refusal": result.refusal.value,
    }
    if p is None:
        return out
    out.update(
        {
            "patron_id": mask_card(p.patron_id),
            "name": p.name,
            "valid": p.valid,
            "pin_ok": p.pin_ok,
            "may_borrow": p.may_borrow,
            "blocks": [b.value for b in p.blocks],
            "loans": [
                {
                    "item_id": x.item_id,
                    "title": x.title,
                    "due_date": iso_date(x.due_date),
                    "overdue": x.overdue,
                }
                for x in p.loans
            ],
            "holds": [{"item_id": h.item_id, "title": h.title, "ready": h.ready} for h in p.holds],
            "fees": [{"description": f.description, "amount": f.amount} for f in p.fees],
            "fee_total": p.fee_total,
            "currency": p.currency,
            "screen_message": p.screen_message,
        }
    )
    return out


def iso_date(text: str) -> str:
    """A date as ISO 8601, whether it came from the library system (SIP2's `YYYYMMDD    HHMMSS`)
    or from the kiosk's offline policy; "" stays "", text that is no date is passed on as it is."""
    if not text:
        return text
    parsed = parse_sip_date(text)
    return parsed.isoformat(timespec="seconds") if parsed is not None else text


def circulation_json(result: CirculationResult) -> dict[str, Any]:
    out: dict[str, Any] = result.to_json()
    due = out.get("due_date")
    if isinstance(due, str):
        out["due_date"] = iso_date(due)
    out["in_doubt"] = result.in_doubt
    out["desensitize"] = result.desensitize
    out["resensitize"] = result.resensitize
    return out


def _pin(args: argparse.Namespace) -> str | None:
    """The patron's PIN when --pin was given: asked on the terminal, else the first line of stdin.

    Never an argument's value: a command line shows in `ps` and in shell histories.
    """
    if not args.pin:
        return None
    if sys.stdin.isatty():
        return getpass.getpass("PIN: ")
    line = sys.stdin.readline()
    if not line:
        raise KioskError(
            "--pin: no terminal to ask on and no PIN on standard input (echo PIN | kiosk circ ... --pin)"
        )
    return line.rstrip("\r\n")


def _patron(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        result = _service(args, stack).identify_patron(
            args.patron_id, pin=_pin(args), language=args.language
        )
        out = patron_json(result)
        if (
            result.ok
            and result.patron is not None
            and BlockReason.CARD_LOST in result.patron.blocks
        ):
            # A card reported lost identifies nobody who may use it: a refusal, as on the screen.
            out.update(ok=False, refusal=Refusal.PATRON_BLOCKED.value)
        _print(out)
        return 0 if out["ok"] else 1


def _checkout(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        result = _service(args, stack).checkout(
            args.patron_id, args.item_id, pin=_pin(args), fee_acknowledged=args.fee_acknowledged
        )
        _print(circulation_json(result))
        return 0 if result.ok else 1


def _checkin(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        result = _service(args, stack).checkin(args.item_id)
        _print(circulation_json(result))
        return 0 if result.ok else 1


def _renew(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        result = _service(args, stack).renew(args.patron_id, args.item_id, pin=_pin(args))
        _print(circulation_json(result))
        return 0 if result.ok else 1


def _item(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        info = _service(args, stack).item_information(args.item_id)
        out = {k: getattr(info, k) for k in info.__dataclass_fields__}
        if isinstance(out.get("due_date"), str):
            out["due_date"] = iso_date(out["due_date"])
        _print(out)
        return 0 if info.found else 1


def _sync(args: argparse.Namespace) -> int:
    with ExitStack() as stack:
        report = _service(args, stack).forward_offline()
        doc = report.to_json()
        _print(doc)
        # Work still waiting or refused is not "done": a script (or the timer unit) sees it.
        return 1 if doc.get("pending") or doc.get("refused") else 0


def _journal(args: argparse.Namespace) -> int:
    cfg = kiosk_config.load(args.config)
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            raise KioskError(
                f"--since: expected a date/time like 2026-11-25 or 2026-11-25T10:00, got {args.since!r}"
            ) from None
    with Journal(cfg.resolve_path(cfg.storage.path)) as journal:
        if args.purge_days is not None:
            if args.purge_days < 1:
                raise KioskError("--purge-days: expected at least 1 day")
            from kiosk.fleet.statstore import roll_up_journal  # lazy: fast `kiosk --help`

            roll_up_journal(
                cfg, journal
            ).close()  # daily statistics outlive the purge (docs/fleet.md)
            removed = journal.purge(datetime.now() - timedelta(days=args.purge_days))
            _print(
                {
                    "purged": removed,
                    "pending": journal.pending_count(),
                    "refused": len(journal.refusals()),
                }
            )
            return 0
        if args.refusals or args.staff:
            for entry in journal.refusals():
                sys.stdout.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
            for event in journal.desk_events(since):
                sys.stdout.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(journal.to_json_lines(since))
    return 0


PIN_HELP = "ask for the patron's PIN (on the terminal, or the first line of standard input)"


def register(subparsers: Any) -> None:
    """Add `circ`, `sync` and `journal` to the `kiosk` command."""
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --config given before the sub-command must not be reset by this default.
    common.add_argument("--config", default=argparse.SUPPRESS, help="configuration file")
    common.add_argument(
        "--no-embedded", action="store_true", help="never start the embedded demo library system"
    )

    circ = subparsers.add_parser(
        "circ",
        help="circulation by hand through the kiosk's service (JSON output; exit 1 when refused)",
    )
    circ_sub = circ.add_subparsers(dest="circ_command", metavar="ACTION", required=True)

    p = circ_sub.add_parser(
        "patron", parents=[common], help="identify a patron and show status, loans, holds, fees"
    )
    p.add_argument("patron_id")
    p.add_argument("--pin", action="store_true", help=PIN_HELP)
    p.add_argument("--language", choices=("lv", "en", "ru"))
    p.set_defaults(func=_patron)

    p = circ_sub.add_parser("checkout", parents=[common], help="check an item out to a patron")
    p.add_argument("patron_id")
    p.add_argument("item_id")
    p.add_argument("--pin", action="store_true", help=PIN_HELP)
    p.add_argument(
        "--fee-acknowledged", action="store_true", help="the patron accepted a fee (SIP2 BO=Y)"
    )
    p.set_defaults(func=_checkout)

    p = circ_sub.add_parser("checkin", parents=[common], help="check an item in (return)")
    p.add_argument("item_id")
    p.set_defaults(func=_checkin)

    p = circ_sub.add_parser("renew", parents=[common], help="renew a patron's loan")
    p.add_argument("patron_id")
    p.add_argument("item_id")
    p.add_argument("--pin", action="store_true", help=PIN_HELP)
    p.set_defaults(func=_renew)

    p = circ_sub.add_parser(
        "item", parents=[common], help="what the library system knows about an item"
    )
    p.add_argument("item_id")
    p.set_defaults(func=_item)

    p = subparsers.add_parser(
        "sync",
        parents=[common],
        help="forward queued offline work once; prints forwarded/refused/pending",
    )
    p.set_defaults(func=_sync)

    p = subparsers.add_parser(
        "journal",
        parents=[common],
        help="print the journal as JSON lines (patron ids masked, never a PIN)",
    )
    p.add_argument("--since", help="only entries from this local date/time on (ISO format)")
    p.add_argument(
        "--refusals",
        action="store_true",
        help="only the staff list (the same as --staff)",
    )
    p.add_argument(
        "--staff",
        action="store_true",
        help="only the staff list: work the library system refused, work whose outcome the "
        "kiosk can neither know nor undo, with the facts, and items sent to the desk because "
        "their tag may not match their loan",
    )
    p.add_argument(
        "--purge-days",
        type=int,
        metavar="DAYS",
        help="delete finished transactions older than DAYS (open work and refusals are kept)",
    )
    p.set_defaults(func=_journal)
