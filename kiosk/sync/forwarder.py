"""The forwarder: replays queued work and settles unanswered work so the library system ends up
with what the patron was told, each transaction applied at most once.

Each entry is handled under its item's claim (`Journal.claims`), so forwarders in several
processes and live circulation never work on one item at once. Queued offline work is replayed
over one connection with its original transaction date, `no block = Y` and the promised due date
(checkout) or return date (checkin). Work that went out without an answer (`sent`/`in_doubt`) is
first settled against what the library system shows (17 item information, 63 charged items)
following the table in docs/architecture.md: re-sent only when the patron was told it was done
and the library system shows it was not; reversed (a check-in) when the patron was told a
checkout failed but it was applied; put on the staff list with the facts when it cannot be
known or undone. A row whose failure is its own (an identifier the link cannot carry, an answer
that makes no sense) holds back only its item's later rows; after `max_failures` it goes to the
staff list.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from kiosk.config import Sip2Section
from kiosk.core.domain import AlertType, Mode, Operation, Routing
from kiosk.core.masking import mask_card
from kiosk.sync.answers import (
    CHARGED_STATUSES,
    checkin_routing,
    hold_trapped,
    routing_json,
    unsendable,
)
from kiosk.sync.faults import crash_point
from kiosk.sync.journal import EntryState, Journal, JournalEntry
from kiosk.sync.sip2 import commands as cmd
from kiosk.sync.sip2.client import LinkLock, Sip2Link
from kiosk.sync.sip2.codec import (
    Message,
    Sip2Error,
    Sip2FormatError,
    Sip2LinkError,
    message,
    sip_date,
)

log = logging.getLogger(__name__)

# Rows that reached the library system as far as the journal knows (for "a later loan stands").
_SUCCEEDED = (EntryState.DONE, EntryState.FORWARDED)
MAX_FAILURES = 5


@dataclass(frozen=True)
class ForwardReport:
    """What one forwarding run did: settled (forwarded, reconciled or reversed), put on the staff
    list, and still waiting."""

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


class Holder(enum.Enum):
    """Whom the library system shows an item charged to, as far as it can be told."""

    NOBODY = "nobody"  # not charged
    PATRON = "patron"  # charged to the patron asked about
    OTHER = "other"  # charged to someone else
    CHARGED = "charged"  # charged, to whom cannot be told
    UNKNOWN_ITEM = "unknown_item"  # the library system does not know the item


@dataclass(frozen=True)
class ItemFacts:
    """What the library system says about an item now (for reconciling and for the staff list)."""

    holder: Holder
    status: str = ""
    due_date: str = ""

    def describe(self) -> str:
        due = f", due {self.due_date}" if self.due_date else ""
        return f"library system: item status {self.status or '?'} ({self.holder.value}){due}"


def _loan_before(entry: JournalEntry) -> dict[str, Any] | None:
    """What the library system showed of the item's loan just before the row was sent, if read."""
    value = entry.request.get("loan_before")
    return value if isinstance(value, dict) else None


class _Stop(Exception):
    """The link broke mid-run; what is left stays queued for the next run."""


class _ItemFailed(Exception):
    """This row cannot be handled now for a reason of its own; its item's later rows wait."""


class _LinkLost(_ItemFailed):
    """The link broke while this row was on it; other items go on over a new connection."""


class Forwarder:
    """Replays the journal's queued work and settles its unanswered work over one SIP2 connection."""

    def __init__(
        self,
        journal: Journal,
        client_factory: Callable[[], Sip2Link],
        *,
        settings: Sip2Section | None = None,
        location: str = "",
        loan_days: int = 14,
        close_client: bool = True,
        lock: LinkLock | threading.RLock | None = None,
        connect: Callable[..., bool] | None = None,
        max_failures: int = MAX_FAILURES,
        backdate_reversals: bool = True,
    ) -> None:
        self.journal = journal
        self.client_factory = client_factory
        self.settings = settings or Sip2Section()
        self.location = location or self.settings.location_code
        self.loan_days = loan_days
        self.close_client = close_client
        self.max_failures = max(1, max_failures)
        # A reversal check-in carries the checkout's own date as its return date, so the patron
        # owes nothing for a loan they were told did not happen (where the ACS honours it).
        self.backdate_reversals = backdate_reversals
        # Shared with the circulation service, so an online request and the replay of the
        # same item never interleave within this process; the item claim does it across processes.
        self.lock = lock or threading.RLock()
        self._connect = connect
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The row whose answer waits for the next commit (Journal.update(defer=True)): its item's
        # claim and the link lock stay held until that commit, so nobody sees it half-done.
        self._carried: JournalEntry | None = None
        self._chain = 0  # answers carried one after another since the lock was last let go

    # -- one run -------------------------------------------------------------------------------

    def forward_once(self, item_id: str | None = None) -> ForwardReport:
        """Forward everything open (or only `item_id`'s entries) once; never raises on link trouble.

        Each entry is handled under the shared lock and its item's claim, and re-read first, so
        runs in this and other processes may overlap safely; an item claimed elsewhere is left
        (with its later entries) for the next run.
        """
        if item_id is not None:
            return self._run(item_id)
        with self._run_lock:
            return self._run(None)

    def _run(self, item_id: str | None) -> ForwardReport:
        try:
            return self._run_locked(item_id)
        except Sip2LinkError as exc:
            # The shared link stayed busy past the call's deadline (another thread's long call):
            # nothing was sent; the work stays for the next run.
            log.info("forwarding postponed: %s", exc)
            return ForwardReport(pending=self.journal.pending_count(item_id))

    def _run_locked(self, item_id: str | None) -> ForwardReport:
        with self.lock:
            self.journal.recover()
        entries = self.journal.pending_offline(item_id=item_id)
        if not entries:
            return ForwardReport(pending=0)
        forwarded = refused = 0
        held_back: set[str] = set()
        client = None
        try:
            with self.lock:
                client = self.client_factory()
                connected = self._ensure_connected(client)
            if not connected:
                return ForwardReport(pending=self.journal.pending_count(item_id))
            for entry in entries:
                if entry.item_id in held_back:
                    continue  # an earlier entry of this item is still open: keep the order
                if self._carried is not None and self._carried.item_id == entry.item_id:
                    self._settle_carried()  # the item's next row must see the answer of this one
                with self.lock, self.journal.claims.hold(entry.item_id) as claimed:
                    if not claimed:
                        log.info(
                            "journal #%d: item %s is being handled by another process; next run",
                            entry.id,
                            entry.item_id,
                        )
                        held_back.add(entry.item_id)
                        continue
                    # Rows of the item another process left half-done are handed over now, and
                    # an earlier row of the item still open (one that was not in this run's
                    # list) goes first: the item waits for the next run.
                    waits, current = self.journal.take_turn(entry.item_id, entry.id)
                    if waits:
                        held_back.add(entry.item_id)
                        continue
                    try:
                        state = self._forward_entry(client, current)
                    except _ItemFailed as exc:
                        log.warning("%s", exc)
                        held_back.add(entry.item_id)
                        if isinstance(exc, _LinkLost) and not self._ensure_connected(client):
                            raise _Stop(str(exc)) from exc
                        continue
                if state is None:
                    continue
                if state in (EntryState.FORWARD_REFUSED, EntryState.STAFF):
                    refused += 1
                elif state in (EntryState.QUEUED, EntryState.IN_DOUBT):
                    held_back.add(entry.item_id)
                else:
                    forwarded += 1
        except _Stop as exc:
            log.warning("forwarding stopped: %s", exc)
            self.journal.record_event("forward_stopped", str(exc))
        finally:
            self._settle_carried()
            if client is not None and self.close_client:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken link must not hide the report
                    log.debug("closing the forwarding connection failed", exc_info=True)
        report = ForwardReport(
            forwarded=forwarded, refused=refused, pending=self.journal.pending_count(item_id)
        )
        if forwarded or refused:
            self.journal.record_event("forwarded", json.dumps(report.to_json()))
        log.info("forwarding: %s", report.to_json())
        return report

    def _ensure_connected(self, client: Sip2Link) -> bool:
        if self._connect is not None:
            return self._connect()
        if client.connected:
            return True
        try:
            client.connect()
        except Sip2Error as exc:
            log.info("forwarding postponed, library system not reachable: %s", exc)
            return False
        return True

    def _forward_entry(self, client: Sip2Link, entry: JournalEntry) -> EntryState | None:
        if entry.state not in (EntryState.QUEUED, EntryState.IN_DOUBT, EntryState.SENT):
            return None  # someone else finished it meanwhile
        bad = unsendable(entry.item_id, self.settings, "item id") or (
            unsendable(entry.patron_id, self.settings, "patron id")
            if entry.operation is not Operation.CHECKIN
            else ""
        )
        if bad:
            return self._to_staff(entry, f"never sent: {bad}")
        if entry.state is EntryState.QUEUED:
            return self._send(client, entry)
        return self._settle(client, entry)

    # -- sending -------------------------------------------------------------------------------

    def _done_state(self, entry: JournalEntry) -> EntryState:
        return EntryState.FORWARDED if entry.mode is Mode.OFFLINE else EntryState.DONE

    def _send(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        """Send the entry once and record the answer."""
        if entry.operation is Operation.CHECKIN and _loan_before(entry) is None:
            # The loan this return ends, read before it goes out: should its answer be lost,
            # a loan found later with another due date is someone else's and is left alone.
            facts = self._facts(client, entry, "")
            before = {
                "charged": facts.holder in (Holder.PATRON, Holder.OTHER, Holder.CHARGED),
                "due": facts.due_date,
            }
            # Durable with the "sent" mark below, in its commit: before the request goes out.
            request = {**entry.request, "loan_before": before}
            self.journal.update(entry.id, entry.state, request=request, defer=True)
            entry = dataclasses.replace(entry, request=request)
        msg = self._replay_message(entry)
        # One commit: this row in flight, and the answer of the row before it (if carried).
        self.journal.mark_sent(entry.id)
        self._release_carried()
        crash_point("forward_after_mark_sent")
        try:
            resp = client.request(msg)
        except Sip2LinkError as exc:
            if not exc.maybe_delivered:
                self.journal.update(
                    entry.id,
                    entry.state if entry.state is not EntryState.SENT else EntryState.IN_DOUBT,
                    error=str(exc),
                )
                raise _Stop(f"link lost at journal #{entry.id}: {exc}") from exc
            # The line broke with this row on it: the row is in doubt and counts a failure (a
            # row the library system chokes on must not stop the queue for ever); the run goes
            # on with other items over a new connection.
            self.journal.update(entry.id, EntryState.IN_DOUBT, error=str(exc), failed=True)
            worn_out = self._staff_if_worn_out(self.journal.get(entry.id), str(exc))
            raise _LinkLost(
                f"journal #{entry.id}: link lost with it on the line ({exc})"
                + ("; now on the staff list" if worn_out else f"; item {entry.item_id} waits")
            ) from exc
        except Sip2FormatError as exc:
            # Raised before a byte was written: the row never left; it goes back as it was.
            self.journal.update(entry.id, entry.state, error=str(exc), failed=True)
            self._item_failed(entry, f"cannot be written for the library system: {exc}")
        except Sip2Error as exc:
            self.journal.update(entry.id, EntryState.IN_DOUBT, error=str(exc), failed=True)
            self._item_failed(entry, f"unusable answer: {exc}")
        crash_point("forward_after_answer")
        ok = resp.fixed.get("ok", "0") == "1"
        text = " ".join(v for v in resp.get_all("AF") if v.strip())
        result = {
            **entry.result,
            "ok": ok,
            "forward_message": text,
            "title": resp.get("AJ") or entry.result.get("title", ""),
            "forward_due_date": resp.get("AH"),
        }
        routing = checkin_routing(resp) if entry.operation is Operation.CHECKIN else None
        if routing is not None:
            # The item was sorted without this answer: keep where the library system wants it.
            result["routing"] = routing_json(routing)
        # A hold trapped on an item that was not on loan (Koha: ok=0 with CV 01/02) is handled.
        accepted = ok or (routing is not None and hold_trapped(ok, routing))
        state = self._done_state(entry) if accepted else EntryState.FORWARD_REFUSED
        # The answer rides on the next row's "sent" commit; one that staff must act on is
        # committed at once, with its event.
        carry = not (accepted and routing is not None and needs_handling(routing))
        self.journal.update(
            entry.id,
            state,
            result=result,
            error="" if accepted else (text or "refused by the library system"),
            defer=carry,
        )
        if carry:
            self._carry(entry)
        if not accepted:
            log.warning(
                "journal #%d %s of %s for %s refused on forwarding: %s",
                entry.id,
                entry.operation.value,
                entry.item_id,
                mask_card(entry.patron_id),
                text,
            )
        elif routing is not None and needs_handling(routing):
            self._tell_staff(entry, routing, result["title"], text)
        return state

    # -- one commit per forwarded row ------------------------------------------------------------

    # After this many answers carried one after another the lock is let go once, so live
    # circulation in this process is not kept waiting for a whole queue.
    MAX_CHAIN = 32

    def _carry(self, entry: JournalEntry) -> None:
        """Keep the row's item claim and the link lock until its deferred answer is committed."""
        self.lock.acquire()  # re-entrant: both are held by this thread already
        self.journal.claims.acquire(entry.item_id)
        self._carried = entry
        self._chain += 1
        crash_point("forward_answer_carried")
        if self._chain >= self.MAX_CHAIN:
            self._settle_carried()

    def _release_carried(self) -> None:
        """The carried answer is committed (it went with the last write): let its holds go."""
        carried, self._carried = self._carried, None
        if carried is None:
            return
        self.journal.claims.release(carried.item_id)
        self.lock.release()

    def _settle_carried(self) -> None:
        """Commit the carried answer on its own (no next row to ride on) and let its holds go."""
        if self._carried is None:
            return
        try:
            self.journal.flush()
        finally:
            self._release_carried()
            self._chain = 0

    def _item_failed(self, entry: JournalEntry, why: str) -> None:
        """A failure of this row alone: on the staff list after max_failures, else its item waits."""
        if self._staff_if_worn_out(entry, why):
            raise _ItemFailed(f"journal #{entry.id}: {why}; now on the staff list")
        raise _ItemFailed(
            f"journal #{entry.id}: {why}; item {entry.item_id} waits for the next run"
        )

    def _staff_if_worn_out(self, entry: JournalEntry, why: str) -> bool:
        now = self.journal.get(entry.id)
        if now.failures < self.max_failures:
            return False
        self._to_staff(now, f"failed {now.failures} times, last: {why}")
        return True

    def _to_staff(
        self, entry: JournalEntry, why: str, facts: dict[str, Any] | None = None
    ) -> EntryState:
        self.journal.update(
            entry.id, EntryState.STAFF, error=why, result={**entry.result, **(facts or {})}
        )
        detail = f"journal #{entry.id} {entry.operation.value} of item {entry.item_id} for {mask_card(entry.patron_id) or 'no patron'}: {why}"
        self.journal.record_event("staff", detail)
        log.warning("%s", detail)
        return EntryState.STAFF

    def _unplaced(self, entry: JournalEntry, facts: ItemFacts, what: str) -> EntryState:
        """The item is on loan and whose loan it is cannot be told: staff decide, with the facts."""
        return self._to_staff(
            entry,
            f"{what}; the item is on loan and whose loan it is cannot be told ({facts.describe()})",
            {"library_system": facts.describe()},
        )

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

    def _due(self, entry: JournalEntry) -> datetime:
        if entry.promised_due_date:
            try:
                return datetime.combine(
                    datetime.fromisoformat(entry.promised_due_date).date(), time(23, 59, 59)
                )
            except ValueError:
                log.error(
                    "journal #%d: unreadable promised due date %r; using the loan period",
                    entry.id,
                    entry.promised_due_date,
                )
        return datetime.combine(
            (entry.created + timedelta(days=self.loan_days)).date(), time(23, 59, 59)
        )

    def _replay_message(self, entry: JournalEntry) -> Message:
        s = self.settings
        when = sip_date(entry.created)
        # Offline work was already done at the kiosk (the patron left with the item): no block = Y
        # with the promised due date. A return is physically back either way.
        offline = entry.mode is Mode.OFFLINE
        if entry.operation is Operation.CHECKOUT:
            fields = [
                ("AO", s.institution_id),
                ("AA", entry.patron_id),
                ("AB", entry.item_id),
                ("AC", s.terminal_password),
            ]
            due = sip_date(self._due(entry)) if offline else when
            return message(
                cmd.CHECKOUT,
                sc_renewal_policy="Y",
                no_block="Y" if offline else "N",
                transaction_date=when,
                nb_due_date=due,
                fields=fields,
            )
        if entry.operation is Operation.CHECKIN:
            fields = [
                ("AP", self.location),
                ("AO", s.institution_id),
                ("AB", entry.item_id),
                ("AC", s.terminal_password),
            ]
            returned = when
            original = entry.request.get("return_date")
            if isinstance(original, str) and original:
                try:
                    returned = sip_date(datetime.fromisoformat(original))
                except ValueError:
                    log.error(
                        "journal #%d: unreadable return date %r; using the row's date",
                        entry.id,
                        original,
                    )
            return message(
                cmd.CHECKIN,
                no_block="Y",
                transaction_date=when,
                return_date=returned,
                fields=fields,
            )
        if entry.operation is Operation.RENEW:
            fields = [
                ("AO", s.institution_id),
                ("AA", entry.patron_id),
                ("AB", entry.item_id),
                ("AC", s.terminal_password),
            ]
            due = sip_date(self._due(entry)) if offline else when
            return message(
                cmd.RENEW,
                third_party_allowed="N",
                no_block="Y" if offline else "N",
                transaction_date=when,
                nb_due_date=due,
                fields=fields,
            )
        raise Sip2Error(f"journal #{entry.id}: {entry.operation.value} cannot be forwarded")

    # -- settling unanswered work ----------------------------------------------------------------

    def _settle(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        """An entry that went out without an answer: decide from what the patron was told and
        what the library system shows now (docs/architecture.md, reconciliation table)."""
        op, online = entry.operation, entry.mode is Mode.ONLINE
        if op is Operation.CHECKIN:
            return self._settle_checkin(client, entry)
        if op is Operation.CHECKOUT and online:
            return self._settle_unconfirmed_checkout(client, entry)
        if op is Operation.CHECKOUT:
            return self._settle_promised_checkout(client, entry)
        if op is Operation.RENEW and online:
            return self._settle_unconfirmed_renewal(client, entry)
        return self._to_staff(
            entry, f"{op.value} without an answer cannot be confirmed; check the patron's account"
        )

    def _settled(
        self, entry: JournalEntry, state: EntryState, how: str, facts: ItemFacts, **extra: Any
    ) -> EntryState:
        result = {
            **entry.result,
            "reconciled": True,
            "reconciliation": how,
            "library_system": facts.describe(),
            **extra,
        }
        if state is EntryState.REFUSED:
            result["ok"] = False
        elif state in (EntryState.DONE, EntryState.FORWARDED):
            result["ok"] = True
        self.journal.update(
            entry.id, state, result=result, error="" if state is not EntryState.REFUSED else how
        )
        log.info("journal #%d: %s", entry.id, how)
        return state

    def _settle_unconfirmed_checkout(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        # The patron was told "not borrowed" and the tag stayed secured.
        facts = self._facts(client, entry, entry.patron_id)
        if facts.holder is Holder.PATRON:
            later = self._later(entry, Operation.CHECKOUT, entry.patron_id)
            if later is not None:
                return self._settled(
                    entry,
                    EntryState.REFUSED,
                    f"no answer; the later checkout #{later.id} by the same patron stands",
                    facts,
                )
            return self._reverse(client, entry, facts)
        if facts.holder is Holder.CHARGED:
            return self._unplaced(
                entry, facts, "no answer; the patron was told it was not borrowed"
            )
        return self._settled(
            entry,
            EntryState.REFUSED,
            "no answer; not applied by the library system, as the patron was told",
            facts,
        )

    def _settle_promised_checkout(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        # Offline work: the patron left with the item and a provisional due date.
        facts = self._facts(client, entry, entry.patron_id)
        if facts.holder is Holder.PATRON:
            return self._settled(
                entry,
                EntryState.FORWARDED,
                "already applied by the library system; not re-sent",
                facts,
            )
        if facts.holder is Holder.CHARGED:
            return self._unplaced(entry, facts, "sent without an answer")
        return self._send(client, entry)

    def _settle_unconfirmed_renewal(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        # The patron was told "not renewed". SIP2 cannot undo a renewal.
        facts = self._facts(client, entry, entry.patron_id)
        if facts.holder is not Holder.PATRON:
            if facts.holder is Holder.CHARGED:
                return self._unplaced(entry, facts, "renewal without an answer")
            return self._settled(
                entry,
                EntryState.REFUSED,
                "no answer; the item is not on this patron's loans, so not renewed",
                facts,
            )
        before = _loan_before(entry)
        due_before = before.get("due", "") if before else ""
        # A renewal on the day the loan (or its last renewal) was made leaves the due date where
        # it was: then an unchanged due date proves nothing.
        same_day = any(
            row.id < entry.id
            and row.operation in (Operation.CHECKOUT, Operation.RENEW)
            and row.patron_id == entry.patron_id
            and row.state in _SUCCEEDED
            and row.created.date() == entry.created.date()
            for row in self.journal.item_history(entry.item_id)
        )
        if due_before and facts.due_date == due_before and not same_day:
            return self._settled(
                entry,
                EntryState.REFUSED,
                "no answer; the due date is unchanged, so not renewed, as the patron was told",
                facts,
            )
        was = f" (was {due_before})" if due_before else " (the due date before is not known)"
        if same_day and facts.due_date == due_before:
            was += ", which a renewal on the day of the loan would not move"
        return self._to_staff(
            entry,
            f"renewal without an answer; the patron was told it was not renewed, the library system now shows due {facts.due_date or '?'}{was}; SIP2 cannot undo a renewal",
            {
                "library_system": facts.describe(),
                "due_now": facts.due_date,
                "due_before": due_before,
            },
        )

    def _settle_checkin(self, client: Sip2Link, entry: JournalEntry) -> EntryState:
        # The item is back in the library (the patron was told it is returned, or it will be).
        done = self._done_state(entry)
        owner = entry.patron_id or self._loan_patron(entry)
        facts = self._facts(client, entry, owner)
        if facts.holder in (Holder.NOBODY, Holder.UNKNOWN_ITEM):
            return self._settled(
                entry, done, "already applied by the library system; not re-sent", facts
            )
        later = self._later(entry, Operation.CHECKOUT, None)
        if later is not None or facts.holder is Holder.OTHER:
            # A later loan (by someone else, or by the same patron after this return) must never be
            # discharged by this return: it counts as applied.
            why = (
                f"the later checkout #{later.id}"
                if later is not None
                else "a later loan by another patron"
            )
            return self._settled(
                entry, done, f"counted as applied: {why} stands; not re-sent", facts
            )
        before = _loan_before(entry)
        if before is not None and not before.get("charged"):
            # Not on loan when it was returned: whatever loan there is now came later.
            return self._settled(
                entry,
                done,
                "counted as applied: the loan there is now came after this return",
                facts,
            )
        if before is not None and before.get("due") and facts.holder is not Holder.PATRON:
            if facts.due_date == before["due"]:
                return self._send(client, entry)  # the very loan it was returning is still there
            return self._settled(
                entry,
                done,
                "counted as applied: the loan there now (another due date) came after this return",
                facts,
            )
        if facts.holder is Holder.PATRON:
            return self._send(client, entry)
        return self._unplaced(entry, facts, "return without an answer")

    def _reverse(self, client: Sip2Link, entry: JournalEntry, facts: ItemFacts) -> EntryState:
        """Undo a checkout the patron was told had failed: a check-in journaled as its reversal."""
        request: dict[str, Any] = {"reversal_of": entry.id}
        if self.backdate_reversals:
            request["return_date"] = entry.created.isoformat()
        rid = self.journal.begin_reversal(
            entry.id,
            patron_id=entry.patron_id,
            item_id=entry.item_id,
            request=request,
            how=f"applied without an answer; {facts.describe()}",
        )
        log.warning(
            "journal #%d: checkout applied though the patron was told it was not; reversing it (#%d)",
            entry.id,
            rid,
        )
        self.journal.record_event(
            "reversal",
            f"journal #{entry.id}: checkout of {entry.item_id} for {mask_card(entry.patron_id)} applied without an answer; checked in again as #{rid}",
        )
        state = self._send(client, self.journal.get(rid))
        return EntryState.REVERSED if state is EntryState.DONE else state

    # -- what the library system shows -----------------------------------------------------------

    def _facts(self, client: Sip2Link, entry: JournalEntry, patron_id: str) -> ItemFacts:
        s = self.settings
        req = message(
            cmd.ITEM_INFORMATION,
            transaction_date=sip_date(self.journal.clock.now()),
            fields=[("AO", s.institution_id), ("AB", entry.item_id), ("AC", s.terminal_password)],
        )
        resp = self._ask(client, entry, req, cmd.ITEM_INFORMATION_RESPONSE)
        status = resp.fixed.get("circulation_status", "").strip()
        due = resp.get("AH")
        if not resp.get("AJ") and status in ("", "00", "01"):
            return ItemFacts(Holder.UNKNOWN_ITEM, status, due)
        if status not in CHARGED_STATUSES:
            return ItemFacts(Holder.NOBODY, status, due)
        named = resp.get("AA")  # not in SIP2's 18, but some library systems send it
        if named:
            return ItemFacts(
                Holder.PATRON if patron_id and named == patron_id else Holder.OTHER, status, due
            )
        if not patron_id:
            return ItemFacts(Holder.CHARGED, status, due)
        charged = self._charged_to(client, entry, patron_id)
        if charged is None:
            return ItemFacts(Holder.CHARGED, status, due)
        return ItemFacts(Holder.PATRON if charged else Holder.OTHER, status, due)

    def _ask(self, client: Sip2Link, entry: JournalEntry, req: Message, expected: str) -> Message:
        try:
            resp = client.request(req)
        except Sip2LinkError as exc:
            if not exc.maybe_delivered:
                raise _Stop(f"link lost while reconciling journal #{entry.id}: {exc}") from exc
            raise _LinkLost(f"link lost while reconciling journal #{entry.id}: {exc}") from exc
        except Sip2Error as exc:
            self.journal.update(entry.id, entry.state, error=str(exc), failed=True)
            self._item_failed(entry, f"unusable answer while reconciling: {exc}")
        if resp.command != expected:
            self.journal.update(
                entry.id, entry.state, error=f"expected {expected}, got {resp.command}", failed=True
            )
            self._item_failed(entry, f"answer {resp.command} to {req.command} while reconciling")
        return resp

    def _charged_to(self, client: Sip2Link, entry: JournalEntry, patron_id: str) -> bool | None:
        """Whether the item is among the patron's charged items (63, paged); None without 63."""
        status = client.acs_status
        supported = status.supported if status is not None else None
        if supported and cmd.PATRON_INFORMATION not in supported:
            return None
        s = self.settings
        page = max(1, s.summary_page_size)
        start = 1
        while start < 10_000:
            fields = [
                ("AO", s.institution_id),
                ("AA", patron_id),
                ("AC", s.terminal_password),
                ("BP", str(start)),
                ("BQ", str(start + page - 1)),
            ]
            req = message(
                cmd.PATRON_INFORMATION,
                language="000",
                transaction_date=sip_date(self.journal.clock.now()),
                summary="  Y       ",
                fields=fields,
            )
            items = self._ask(client, entry, req, cmd.PATRON_INFORMATION_RESPONSE).get_all("AU")
            if entry.item_id in items:
                return True
            if len(items) < page:
                return False
            start += page
        return False

    def _later(
        self, entry: JournalEntry, op: Operation, patron_id: str | None
    ) -> JournalEntry | None:
        """A later row of the same item, of kind `op` (by `patron_id` if given), that succeeded."""
        for row in self.journal.item_history(entry.item_id):
            if (
                row.id > entry.id
                and row.operation is op
                and row.state in _SUCCEEDED
                and (patron_id is None or row.patron_id == patron_id)
            ):
                return row
        return None

    def _loan_patron(self, entry: JournalEntry) -> str:
        """The patron the loan being returned belongs to: the last loan of the item in the journal."""
        owner = ""
        for row in self.journal.item_history(entry.item_id):
            if row.id >= entry.id:
                break
            if row.operation in (Operation.CHECKOUT, Operation.RENEW) and row.state in _SUCCEEDED:
                owner = row.patron_id
            elif row.operation is Operation.CHECKIN and row.state in _SUCCEEDED:
                owner = ""
            elif row.state is EntryState.REVERSED:
                owner = ""
        return owner

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
