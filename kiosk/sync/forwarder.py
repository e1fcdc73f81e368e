"""The forwarder: replays queued offline work to the library system, in original order, exactly once.

Each entry is replayed over one connection with its original transaction date; offline work
with `no block = Y` and the promised due date (checkout) or return date (checkin), interrupted
online loans under the library system's rules (`no block = N`). An entry is marked `sent`
before it goes on the wire; an entry left `sent`/`in_doubt` (no answer, or a crash) is first
reconciled with item information (17) and only re-sent when the library system shows it was
not applied.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from kiosk.config import Sip2Section
from kiosk.core.domain import AlertType, Mode, Operation, Routing
from kiosk.core.masking import mask_card
from kiosk.sync.circulation import checkin_routing, crash_point, hold_trapped, routing_json
from kiosk.sync.journal import EntryState, Journal, JournalEntry
from kiosk.sync.sip2.codec import Message, Sip2Error, Sip2LinkError, message, sip_date

log = logging.getLogger(__name__)

CHARGED_STATUSES = frozenset({"04", "05"})


@dataclass(frozen=True)
class ForwardReport:
    """What one forwarding run did: accepted, refused (for staff), and still waiting."""

    forwarded: int = 0
    refused: int = 0
    pending: int = 0

    def to_json(self) -> dict[str, int]:
        return {"forwarded": self.forwarded, "refused": self.refused, "pending": self.pending}

    def to_json_text(self) -> str:
        return json.dumps(self.to_json())


def needs_handling(routing: Routing) -> bool:
    """Whether a check-in answer asks for more than shelving (an alert; CV 00 alone is no alert)."""
    return routing.alert or routing.alert_type not in (AlertType.NONE, AlertType.UNKNOWN)


def staff_instruction(routing: Routing) -> str:
    """What staff do with an item the library system routed after it was already sorted."""
    where = routing.destination
    if routing.alert_type is AlertType.HOLD_HERE:
        return "take it from the returns to the hold shelf"
    if routing.alert_type in (AlertType.HOLD_OTHER_BRANCH, AlertType.HOLD_ILL):
        where = where or "the pickup library"
        return f"take it from the returns and send it to {where} for the hold"
    if routing.alert_type is AlertType.TRANSIT:
        where = where or routing.permanent_location or "its home library"
        return f"take it from the returns and send it to {where}"
    if routing.hold_patron_id:
        return "take it from the returns to the hold shelf"
    return "take it from the returns and check it at the desk"


class _Stop(Exception):
    """The link broke mid-run; what is left stays queued for the next run."""


class Forwarder:
    """Replays the journal's queued and in-doubt work over one SIP2 connection."""

    def __init__(
        self,
        journal: Journal,
        client_factory: Callable[[], Any],
        *,
        settings: Sip2Section | None = None,
        location: str = "",
        loan_days: int = 14,
        close_client: bool = True,
        lock: AbstractContextManager[Any] | None = None,
        connect: Callable[..., bool] | None = None,
    ) -> None:
        self.journal = journal
        self.client_factory = client_factory
        self.settings = settings or Sip2Section()
        self.location = location or self.settings.location_code
        self.loan_days = loan_days
        self.close_client = close_client
        # Shared with the circulation service, so an online request and the replay of the
        # same item never interleave.
        self.lock = lock or threading.RLock()
        self._connect = connect
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one run -------------------------------------------------------------------------------

    def forward_once(self, item_id: str | None = None) -> ForwardReport:
        """Forward everything queued (or only `item_id`'s entries) once; never raises on link trouble.

        Each entry is handled under the shared lock and re-read first, so a full run (background
        thread) and an item run (the service, before an online request) may overlap safely; only
        full runs are serialised, and an item run never waits for one (no lock-order deadlock).
        """
        if item_id is not None:
            return self._run(item_id)
        with self._run_lock:
            return self._run(None)

    def _run(self, item_id: str | None) -> ForwardReport:
        with self.lock:
            self.journal.recover()
        entries = self.journal.pending_offline(item_id=item_id)
        if not entries:
            return ForwardReport(pending=0)
        forwarded = refused = 0
        client = None
        try:
            with self.lock:
                client = self.client_factory()
                connected = self._ensure_connected(client)
            if not connected:
                return ForwardReport(pending=self.journal.pending_count(item_id))
            for entry in entries:
                with self.lock:
                    state = self._forward_entry(client, self.journal.get(entry.id))
                if state in (EntryState.FORWARDED, EntryState.DONE):
                    forwarded += 1
                elif state is EntryState.FORWARD_REFUSED:
                    refused += 1
        except _Stop as exc:
            log.warning("forwarding stopped: %s", exc)
            self.journal.record_event("forward_stopped", str(exc))
        finally:
            if client is not None and self.close_client:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken link must not hide the report
                    log.debug("closing the forwarding connection failed", exc_info=True)
        report = ForwardReport(forwarded=forwarded, refused=refused, pending=self.journal.pending_count(item_id))
        if forwarded or refused:
            self.journal.record_event("forwarded", json.dumps(report.to_json()))
        log.info("forwarding: %s", report.to_json())
        return report

    def _ensure_connected(self, client: Any) -> bool:
        if self._connect is not None:
            return self._connect()
        if getattr(client, "connected", False):
            return True
        try:
            client.connect()
        except Sip2Error as exc:
            log.info("forwarding postponed, library system not reachable: %s", exc)
            return False
        return True

    def _forward_entry(self, client: Any, entry: JournalEntry) -> EntryState | None:
        if entry.state not in (EntryState.QUEUED, EntryState.IN_DOUBT, EntryState.SENT):
            return None  # someone else finished it meanwhile
        done_state = EntryState.FORWARDED if entry.mode is Mode.OFFLINE else EntryState.DONE
        if entry.state in (EntryState.IN_DOUBT, EntryState.SENT):
            verdict = self._reconcile(client, entry)
            if verdict == "applied":
                self.journal.update(entry.id, done_state, result={**entry.result, "ok": True, "reconciled": True}, error="")
                log.info("journal #%d: already applied by the library system; not re-sent", entry.id)
                return done_state
            if verdict != "not_applied":
                self.journal.update(entry.id, EntryState.FORWARD_REFUSED, error=verdict)
                return EntryState.FORWARD_REFUSED
        msg = self._replay_message(entry)
        self.journal.mark_sent(entry.id)
        crash_point("forward_after_mark_sent")
        try:
            resp = client.request(msg)
        except Sip2LinkError as exc:
            if exc.maybe_delivered:
                self.journal.update(entry.id, EntryState.IN_DOUBT, error=str(exc))
            else:
                self.journal.update(entry.id, entry.state if entry.state is not EntryState.SENT else EntryState.IN_DOUBT, error=str(exc))
            raise _Stop(f"link lost at journal #{entry.id}: {exc}") from exc
        except Sip2Error as exc:
            self.journal.update(entry.id, EntryState.IN_DOUBT, error=str(exc))
            raise _Stop(f"unusable answer at journal #{entry.id}: {exc}") from exc
        crash_point("forward_after_answer")
        ok = resp.fixed.get("ok", "0") == "1"
        text = " ".join(v for v in resp.get_all("AF") if v.strip())
        result = {**entry.result, "ok": ok, "forward_message": text, "title": resp.get("AJ") or entry.result.get("title", ""), "forward_due_date": resp.get("AH")}
        routing = checkin_routing(resp) if entry.operation is Operation.CHECKIN else None
        if routing is not None:
            # The item was sorted without this answer: keep where the library system wants it.
            result["routing"] = routing_json(routing)
        # A hold trapped on an item that was not on loan (Koha: ok=0 with CV 01/02) is handled.
        accepted = ok or (routing is not None and hold_trapped(ok, routing))
        state = done_state if accepted else EntryState.FORWARD_REFUSED
        self.journal.update(entry.id, state, result=result, error="" if accepted else (text or "refused by the library system"))
        if not accepted:
            log.warning("journal #%d %s of %s for %s refused on forwarding: %s", entry.id, entry.operation.value, entry.item_id, mask_card(entry.patron_id), text)
        elif routing is not None and needs_handling(routing):
            self._tell_staff(entry, routing, result["title"], text)
        return state

    def _tell_staff(self, entry: JournalEntry, routing: Routing, title: str, text: str) -> None:
        """A forwarded return the library system routes (hold, transit): staff must fetch the item."""
        what = f"item {entry.item_id}" + (f" ({title})" if title else "")
        hold = f" for patron {mask_card(routing.hold_patron_id)}" if routing.hold_patron_id else ""
        detail = (
            f"journal #{entry.id}: {what}, returned {entry.created:%Y-%m-%d %H:%M} and sorted "
            f"without an answer, is now routed by the library system{hold}: "
            f"{staff_instruction(routing)}" + (f" (library system: {text})" if text else "")
        )
        self.journal.record_event("forward_routing", detail)
        log.warning("%s", detail)

    # -- building and reconciling --------------------------------------------------------------

    def _due(self, entry: JournalEntry) -> datetime:
        if entry.promised_due_date:
            try:
                return datetime.combine(datetime.fromisoformat(entry.promised_due_date).date(), time(23, 59, 59))
            except ValueError:
                log.error("journal #%d: unreadable promised due date %r; using the loan period", entry.id, entry.promised_due_date)
        return datetime.combine((entry.created + timedelta(days=self.loan_days)).date(), time(23, 59, 59))

    def _replay_message(self, entry: JournalEntry) -> Message:
        s = self.settings
        when = sip_date(entry.created)
        # Offline work was already done at the kiosk (the patron left with the item): no block = Y
        # with the promised due date. An online loan or renewal interrupted before its answer was
        # never confirmed to the patron, so the library system's rules still apply: no block = N
        # with a real date. A return is physically back either way.
        offline = entry.mode is Mode.OFFLINE
        if entry.operation is Operation.CHECKOUT:
            fields = [("AO", s.institution_id), ("AA", entry.patron_id), ("AB", entry.item_id), ("AC", s.terminal_password)]
            due = sip_date(self._due(entry)) if offline else when
            return message("11", sc_renewal_policy="Y", no_block="Y" if offline else "N", transaction_date=when, nb_due_date=due, fields=fields)
        if entry.operation is Operation.CHECKIN:
            fields = [("AP", self.location), ("AO", s.institution_id), ("AB", entry.item_id), ("AC", s.terminal_password)]
            return message("09", no_block="Y", transaction_date=when, return_date=when, fields=fields)
        if entry.operation is Operation.RENEW:
            fields = [("AO", s.institution_id), ("AA", entry.patron_id), ("AB", entry.item_id), ("AC", s.terminal_password)]
            due = sip_date(self._due(entry)) if offline else when
            return message("29", third_party_allowed="N", no_block="Y" if offline else "N", transaction_date=when, nb_due_date=due, fields=fields)
        raise Sip2Error(f"journal #{entry.id}: {entry.operation.value} cannot be forwarded")

    def _reconcile(self, client: Any, entry: JournalEntry) -> str:
        """'applied', 'not_applied', or a reason staff must look at it."""
        if entry.operation not in (Operation.CHECKOUT, Operation.CHECKIN):
            return f"{entry.operation.value} without an answer cannot be confirmed; check the patron's account"
        s = self.settings
        req = message("17", transaction_date=sip_date(self.journal.clock.now()), fields=[("AO", s.institution_id), ("AB", entry.item_id), ("AC", s.terminal_password)])
        try:
            resp = client.request(req)
        except Sip2LinkError as exc:
            raise _Stop(f"link lost while reconciling journal #{entry.id}: {exc}") from exc
        except Sip2Error as exc:
            raise _Stop(f"unusable answer while reconciling journal #{entry.id}: {exc}") from exc
        status = resp.fixed.get("circulation_status", "").strip()
        if not resp.get("AJ") and status in ("", "00", "01"):
            return "not_applied"  # unknown item: sending it once gives a definitive refusal
        charged = status in CHARGED_STATUSES
        if entry.operation is Operation.CHECKOUT:
            if charged and self._charged_to(client, entry):
                return "applied"
            return "not_applied"
        return "not_applied" if charged else "applied"

    def _charged_to(self, client: Any, entry: JournalEntry) -> bool:
        """Whether the item is among the patron's charged items (63, paged); True if 63 is unsupported."""
        status = getattr(client, "acs_status", None)
        supported = getattr(status, "supported", None)
        if supported and "63" not in supported:
            return True
        s = self.settings
        page = max(1, s.summary_page_size)
        start = 1
        while start < 10_000:
            fields = [("AO", s.institution_id), ("AA", entry.patron_id), ("AC", s.terminal_password), ("BP", str(start)), ("BQ", str(start + page - 1))]
            try:
                resp = client.request(message("63", language="000", transaction_date=sip_date(self.journal.clock.now()), summary="  Y       ", fields=fields))
            except Sip2Error as exc:
                raise _Stop(f"cannot reconcile journal #{entry.id}: {exc}") from exc
            items = resp.get_all("AU")
            if entry.item_id in items:
                return True
            if len(items) < page:
                return False
            start += page
        return False

    # -- background ----------------------------------------------------------------------------

    def start(self, interval_s: float) -> None:
        """Forward in a background thread every `interval_s` seconds until stop()."""
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.forward_once()
                except Exception:  # noqa: BLE001 - the thread must survive a bad run; the journal keeps the work
                    log.exception("forwarding run failed; will retry")

        self._thread = threading.Thread(target=run, name="kiosk-forwarder", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)
            self._thread = None
