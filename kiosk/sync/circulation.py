"""The circulation service: SIP2 transactions answered as domain values, online first, offline fallback.

Every state-changing transaction is journaled before it is sent (write ahead), marked `sent`
just before it goes on the wire and updated after the answer. When the library system cannot
be reached, work the offline policy allows is queued for the forwarder; a request that went
out without an answer is left `in_doubt` for reconciliation, never blindly re-sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from kiosk.clock import DEFAULT_MAX_DRIFT
from kiosk.config import Config, OfflineSection, Sip2Section
from kiosk.configfaults import login_refused, sip2_file_faults, tls_failed
from kiosk.core.domain import (
    BlockReason,
    CirculationResult,
    Hold,
    ItemInfo,
    LinkStatus,
    Loan,
    Mode,
    OfflinePolicy,
    Operation,
    Patron,
    PatronResult,
    Refusal,
    RenewAllResult,
)
from kiosk.core.masking import mask_card
from kiosk.core.money import is_nonzero
from kiosk.core.ports import Clock, SystemClock
from kiosk.sync.answers import (
    CHARGED_STATUSES,
    ON_HOLD_STATUSES,
    blocks_from_status,
    checkin_routing,
    count_value,
    fee_from_text,
    hold_trapped,
    over_limit,
    patron_name,
    pin_accepted,
    refusal_from_text,
    refuses,
    routing_json,
    says_card_expired,
    screen_text,
    unsendable,
    yes,
)
from kiosk.sync.faults import crash_point
from kiosk.sync.forwarder import Forwarder, ForwardReport
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2 import commands as cmd
from kiosk.sync.sip2.client import (
    LinkLock,
    Sip2Client,
    Sip2Link,
    Sip2LoginError,
    Sip2TlsError,
    link_lock,
)
from kiosk.sync.sip2.codec import Message, Sip2Error, Sip2LinkError, message, sip_date

log = logging.getLogger(__name__)

# SIP2 has no Latvian language code: 000 (unknown) for Latvian, 001 English, 015 Russian.
LANGUAGE_CODES = {"lv": "000", "en": "001", "ru": "015"}


@dataclass(frozen=True)
class _Link:
    """What the service last learnt about the link (for LinkStatus)."""

    online: bool
    error: str = ""
    since: datetime | None = None


class CirculationService:
    """kiosk.core.ports.Circulation over SIP2, with the journal and the offline policy."""

    def __init__(
        self,
        client: Sip2Link,
        journal: Journal,
        *,
        sip2: Sip2Section | None = None,
        offline: OfflineSection | None = None,
        location: str = "",
        language: str = "lv",
        clock: Clock | None = None,
        reconnect_after_s: float = 5.0,
        loan_details: bool = True,
        currency: str = "",
        max_drift: timedelta = DEFAULT_MAX_DRIFT,
    ) -> None:
        self.client = client
        self.journal = journal
        self.sip2 = sip2 or Sip2Section()
        self.offline = offline or OfflineSection()
        self.location = location or self.sip2.location_code
        self.language = language
        self.clock = clock or SystemClock()
        self.max_drift = max_drift
        # Set while the link fails for a reason waiting will not mend (kiosk/configfaults.py).
        self.config_fault: str | None = None
        self.reconnect_after_s = reconnect_after_s
        self.loan_details = loan_details
        # The site's currency for answers without BH; empty rather than a guess.
        self.currency = currency
        self._link = _Link(online=False)
        self._next_connect = float("-inf")
        # Waiting for the link counts against each call's deadline: kiosk/sync/sip2/client.py.
        self._lock: LinkLock | threading.RLock = link_lock(client)
        self.forwarder: Forwarder = Forwarder(
            journal,
            lambda: self.client,
            settings=self.sip2,
            location=self.location,
            loan_days=self.offline.loan_days,
            close_client=False,
            lock=self._lock,
            connect=self._connect,
        )
        recovered = journal.recover()
        if recovered:
            journal.record_event(
                "recovered", f"{recovered} interrupted transaction(s) handed to the forwarder"
            )

    # -- link --------------------------------------------------------------------------------

    def _supported(self, command: str) -> bool:
        status = self.client.acs_status
        return status is None or not status.supported or command in status.supported

    def _connect(self, force: bool = False) -> bool:
        """Connect if needed; False when the library system cannot be reached now."""
        if self.client.connected:
            try:
                # A quiet link may have been dropped by the ACS (idle timeouts); a harmless 99 finds
                # out before a checkout would go out on a dead socket and end up in doubt.
                self.client.keepalive_if_due()
            except Sip2Error as exc:
                self._link_down(str(exc))
                return False
            return True
        if not force and self.clock.monotonic() < self._next_connect:
            return False
        fault = "; ".join(sip2_file_faults(self.sip2))
        if fault:
            self._config_fault(fault)
            return False
        try:
            status = self.client.connect()
        except Sip2LoginError:
            self.client.close()
            self._config_fault(login_refused(self.sip2))
            return False
        except Sip2TlsError as exc:
            self.client.close()
            self._config_fault(tls_failed(self.sip2, str(exc)))
            return False
        except Sip2Error as exc:
            # A login or status that timed out can leave the socket open; a half-set-up session
            # must not look connected to the next transaction.
            self.client.close()
            self._link_down(str(exc))
            return False
        if status is not None and not status.online:
            self._link_down("the library system reports it is off-line (SIP2 98 on-line = N)")
            return False
        self._link_up()
        return True

    def _config_fault(self, line: str) -> None:
        """A configuration fault: out of service (nothing queued on it), one line for the technician."""
        if self.config_fault != line:
            log.error("configuration fault, out of service: %s", line)
        self.config_fault = line
        self._link_down(line)

    def _link_down(self, error: str) -> None:
        self._next_connect = self.clock.monotonic() + self.reconnect_after_s
        if self._link.online or not self._link.error:
            self.journal.record_event("link_down", error)
            log.warning("library system not reachable: %s", error)
        self._link = _Link(online=False, error=error, since=self.clock.now())

    def _link_up(self) -> None:
        self.config_fault = None
        if not self._link.online:
            if self._link.error:
                self.journal.record_event("link_up", "library system reachable again")
            self._link = _Link(online=True, since=self.clock.now())

    def _lang(self, language: str | None) -> str:
        return LANGUAGE_CODES.get(language or self.language, "000")

    def _base(self, patron_id: str | None = None) -> list[tuple[str, str]]:
        fields = [("AO", self.sip2.institution_id)]
        if patron_id is not None:
            fields.append(("AA", patron_id))
        return fields

    def _request(self, msg: Message) -> Message:
        """A request outside the journal (reads); raises Sip2LinkError if the link is down."""
        if not self._connect():
            raise Sip2LinkError(self._link.error or "library system not reachable")
        try:
            return self.client.request(msg)
        except Sip2LinkError as exc:
            self._link_down(str(exc))
            raise

    # -- patrons -----------------------------------------------------------------------------

    def patron_language(self, msg: Message) -> str:
        """The kiosk language of the patron's preferred language in a 24/64 answer, by the
        site's `[sip2] patron_languages`; "" for a code not listed (000: the system does not say)."""
        code = msg.fixed.get("language", "")
        for entry in self.sip2.patron_languages:
            listed, _, lang = entry.partition("=")
            if listed == code:
                return lang
        return ""

    def set_language(self, language: str) -> None:
        self.language = language

    def identify_patron(
        self, patron_id: str, pin: str | None = None, language: str | None = None
    ) -> PatronResult:
        """Look the patron up (63 with item lists, or 23); offline only when checkouts are allowed."""
        with self._lock:
            try:
                patron = self._patron_information(patron_id, pin, language)
            except Sip2LinkError:
                return self._identify_offline(patron_id)
            except Sip2Error as exc:
                log.error(
                    "patron %s: unusable answer from the library system: %s",
                    mask_card(patron_id),
                    exc,
                )
                return PatronResult(
                    ok=False,
                    mode=Mode.ONLINE,
                    message=f"The library system gave an unusable answer ({exc})",
                    refusal=Refusal.OTHER,
                )
        refusal = Refusal.NONE
        if not patron.valid or patron.pin_ok is False:
            refusal = Refusal.PATRON_BLOCKED
        self.journal.begin(
            Operation.PATRON,
            mode=Mode.ONLINE,
            state=EntryState.DONE if refusal is Refusal.NONE else EntryState.REFUSED,
            patron_id=patron_id,
            result={
                "ok": refusal is Refusal.NONE,
                "valid": patron.valid,
                "pin_ok": patron.pin_ok,
                "blocks": [b.value for b in patron.blocks],
            },
        )
        return PatronResult(
            ok=refusal is Refusal.NONE,
            mode=Mode.ONLINE,
            patron=patron,
            message=patron.screen_message,
            refusal=refusal,
        )

    def _identify_offline(self, patron_id: str) -> PatronResult:
        if OfflinePolicy(self.offline.policy) is not OfflinePolicy.CHECKIN_AND_CHECKOUT:
            return PatronResult(
                ok=False,
                mode=Mode.OFFLINE,
                message="The library system cannot be reached; borrowing is not possible now. Returns may still be possible.",
                refusal=Refusal.OFFLINE_NOT_ALLOWED,
            )
        patron = Patron(
            patron_id=patron_id,
            valid=True,
            screen_message="The library system cannot be reached: account details are unavailable. Loans are recorded and sent later.",
        )
        return PatronResult(
            ok=True, mode=Mode.OFFLINE, patron=patron, message=patron.screen_message
        )

    def _patron_information(self, patron_id: str, pin: str | None, language: str | None) -> Patron:
        if not self._supported(cmd.PATRON_INFORMATION):
            return self._patron_status(patron_id, pin, language)
        lang = self._lang(language)
        charged, first = self._summary_list(patron_id, pin, lang, 2, "AU")
        valid = first.get("BL", "Y").upper() != "N"
        pin_ok = pin_accepted(first, pin)
        # An unknown or refused patron gets no account screen, so their lists are not worth a
        # round trip each (Sierra sends blank counts for an unknown card, which would ask for all).
        refused = refuses(first, pin)
        counts = {
            "hold": count_value(first.fixed.get("hold_items_count", "")),
            "overdue": count_value(first.fixed.get("overdue_items_count", "")),
            "fine": count_value(first.fixed.get("fine_items_count", "")),
            "unavailable": count_value(first.fixed.get("unavailable_holds_count", "")),
        }

        def lst(key: str, position: int, fid: str) -> list[str]:
            if refused or counts[key] == 0:
                return []
            return self._summary_list(patron_id, pin, lang, position, fid)[0]

        overdue = lst("overdue", 1, "AT")
        ready = lst("hold", 0, "AS")
        unavailable = lst("unavailable", 5, "CD")
        fines = lst("fine", 3, "AV")
        loans = [Loan(item_id=i, overdue=i in overdue) for i in dict.fromkeys(charged + overdue)]
        # Evergreen lists every hold in AS and the ones not yet available in CD as well (unless
        # msg64_hold_items_available is set); other ACSs keep the two apart. Either way a hold in
        # CD is not ready, and each hold is shown once, ready ones first.
        waiting = list(dict.fromkeys(unavailable))
        holds = [Hold(item_id=i, ready=True) for i in dict.fromkeys(ready) if i not in waiting]
        holds += [Hold(item_id=i, ready=False) for i in waiting]
        if self.loan_details and not refused and self._supported(cmd.ITEM_INFORMATION):
            # Titles and due dates for the account screen; bounded so a huge account stays quick.
            loans = [self._loan_details(loan) for loan in loans[:100]] + loans[100:]
            holds = [self._hold_details(hold) for hold in holds[:50]] + holds[50:]
        return Patron(
            patron_id=patron_id,
            name=patron_name(first.get("AE")),
            valid=valid,
            pin_ok=pin_ok,
            blocks=self._blocks(first, pin),
            loans=tuple(loans),
            holds=tuple(holds),
            fees=tuple(fee_from_text(t) for t in fines),
            fee_total=first.get("BV"),
            fee_limit=first.get("CC"),
            currency=first.get("BH") or self.currency,
            email=first.get("BE"),
            charged_limit=count_value(first.get("CB")),
            screen_message=screen_text(first),
            language=self.patron_language(first),
        )

    def _blocks(self, msg: Message, pin: str | None) -> tuple[BlockReason, ...]:
        blocks = list(blocks_from_status(msg.fixed.get("patron_status", "")))
        excessive = (BlockReason.EXCESSIVE_FEES, BlockReason.EXCESSIVE_FINES)
        if not any(b in blocks for b in excessive) and over_limit(msg.get("BV"), msg.get("CC")):
            # Fees above the patron's limit block borrowing (as NYPL reads it) even when the ACS
            # leaves the flags blank, as Sierra does.
            blocks.append(BlockReason.EXCESSIVE_FEES)
        if says_card_expired(screen_text(msg)):
            blocks.append(BlockReason.CARD_EXPIRED)
        if msg.get("BL").upper() == "N":
            blocks.append(BlockReason.UNKNOWN_PATRON)
        # Without a PIN many ACSs answer CQ=N; that says nothing about a wrong PIN.
        if pin and msg.has("CQ") and not yes(msg.get("CQ")):
            blocks.append(BlockReason.WRONG_PIN)
        return tuple(blocks)

    def _summary_list(
        self, patron_id: str, pin: str | None, lang: str, position: int, fid: str
    ) -> tuple[list[str], Message]:
        """One 63 summary category, paged with BP/BQ; returns the items and the first response."""
        page = max(1, self.sip2.summary_page_size)
        items: list[str] = []
        first: Message | None = None
        start = 1
        while True:
            summary = "".join("Y" if i == position else " " for i in range(10))
            fields = self._base(patron_id) + [("AC", self.sip2.terminal_password)]
            if pin:
                fields.append(("AD", pin))
            fields += [("BP", str(start)), ("BQ", str(start + page - 1))]
            resp = self._request(
                message(
                    cmd.PATRON_INFORMATION,
                    language=lang,
                    transaction_date=sip_date(self.clock.now()),
                    summary=summary,
                    fields=fields,
                )
            )
            if resp.command != cmd.PATRON_INFORMATION_RESPONSE:
                raise Sip2Error(f"expected a 64 patron information response, got {resp.command}")
            first = first or resp
            got = resp.get_all(fid)
            items += got
            if len(got) < page or start > 10_000 or refuses(first, pin):
                break
            start += page
        assert first is not None
        return items, first

    def _patron_status(self, patron_id: str, pin: str | None, language: str | None) -> Patron:
        fields = self._base(patron_id) + [("AC", self.sip2.terminal_password), ("AD", pin or "")]
        resp = self._request(
            message(
                cmd.PATRON_STATUS,
                language=self._lang(language),
                transaction_date=sip_date(self.clock.now()),
                fields=fields,
            )
        )
        return Patron(
            patron_id=patron_id,
            name=patron_name(resp.get("AE")),
            valid=resp.get("BL", "Y").upper() != "N",
            pin_ok=pin_accepted(resp, pin),
            blocks=self._blocks(resp, pin),
            fee_total=resp.get("BV"),
            currency=resp.get("BH") or self.currency,
            screen_message=screen_text(resp),
            language=self.patron_language(resp),
        )

    def _hold_details(self, hold: Hold) -> Hold:
        try:
            info = self._item_info(hold.item_id)
        except Sip2Error:
            return hold
        return Hold(item_id=hold.item_id, title=info.title, ready=hold.ready)

    def _loan_details(self, loan: Loan) -> Loan:
        try:
            info = self._item_info(loan.item_id)
        except Sip2Error:
            return loan
        return Loan(
            item_id=loan.item_id, title=info.title, due_date=info.due_date, overdue=loan.overdue
        )

    def end_session(self, patron_id: str) -> None:
        """Tell the library system the patron is done (35); failures do not matter to the patron."""
        with self._lock:
            if not self._supported(cmd.END_PATRON_SESSION):
                return
            try:
                self._request(
                    message(
                        cmd.END_PATRON_SESSION,
                        transaction_date=sip_date(self.clock.now()),
                        fields=self._base(patron_id) + [("AC", self.sip2.terminal_password)],
                    )
                )
            except Sip2Error as exc:
                log.info("end session for %s not confirmed: %s", mask_card(patron_id), exc)

    # -- items ----------------------------------------------------------------------------------

    def item_information(self, item_id: str) -> ItemInfo:
        with self._lock:
            try:
                return self._item_info(item_id)
            except Sip2LinkError:
                return ItemInfo(
                    item_id=item_id,
                    found=False,
                    screen_message="The library system cannot be reached; item details are unavailable.",
                )
            except Sip2Error as exc:
                return ItemInfo(
                    item_id=item_id,
                    found=False,
                    screen_message=f"The library system gave an unusable answer ({exc})",
                )

    def _item_info(self, item_id: str) -> ItemInfo:
        fields = self._base() + [("AB", item_id), ("AC", self.sip2.terminal_password)]
        resp = self._request(
            message(
                cmd.ITEM_INFORMATION, transaction_date=sip_date(self.clock.now()), fields=fields
            )
        )
        if resp.command != cmd.ITEM_INFORMATION_RESPONSE:
            raise Sip2Error(f"expected an 18 item information response, got {resp.command}")
        status = resp.fixed.get("circulation_status", "").strip()
        title = resp.get("AJ")
        return ItemInfo(
            item_id=item_id,
            title=title,
            circulation_status=status,
            due_date=resp.get("AH"),
            hold_queue_length=count_value(resp.get("CF")),
            owner=resp.get("BG"),
            media_type=resp.get("CK"),
            permanent_location=resp.get("AQ"),
            current_location=resp.get("AP"),
            screen_message=screen_text(resp),
            found=bool(title) or status not in ("", "00", "01"),
        )

    def checkout(
        self, patron_id: str, item_id: str, pin: str | None = None, fee_acknowledged: bool = False
    ) -> CirculationResult:
        fields = self._base(patron_id) + [("AB", item_id), ("AC", self.sip2.terminal_password)]
        if pin:
            fields.append(("AD", pin))
        fields.append(("BO", "Y" if fee_acknowledged else "N"))

        def build(when: datetime) -> Message:
            now = sip_date(when)
            return message(
                cmd.CHECKOUT,
                sc_renewal_policy="Y",
                no_block="N",
                transaction_date=now,
                nb_due_date=now,
                fields=fields,
            )

        request = {"fee_acknowledged": fee_acknowledged, "with_pin": bool(pin)}
        return self._transact(Operation.CHECKOUT, patron_id, item_id, build, request, pin)

    def checkin(self, item_id: str) -> CirculationResult:
        def build(when: datetime) -> Message:
            now = sip_date(when)
            fields = (
                [("AP", self.location)]
                + self._base()
                + [("AB", item_id), ("AC", self.sip2.terminal_password)]
            )
            return message(
                cmd.CHECKIN, no_block="N", transaction_date=now, return_date=now, fields=fields
            )

        return self._transact(Operation.CHECKIN, "", item_id, build, {}, None)

    def renew(self, patron_id: str, item_id: str, pin: str | None = None) -> CirculationResult:
        if not self._supported(cmd.RENEW):
            return CirculationResult(
                Operation.RENEW,
                ok=False,
                mode=Mode.ONLINE,
                item_id=item_id,
                patron_id=patron_id,
                message="Renewal is not offered by this library system.",
                refusal=Refusal.OTHER,
            )
        fields = self._base(patron_id) + [("AB", item_id), ("AC", self.sip2.terminal_password)]
        if pin:
            fields.append(("AD", pin))

        def build(when: datetime) -> Message:
            now = sip_date(when)
            return message(
                cmd.RENEW,
                third_party_allowed="N",
                no_block="N",
                transaction_date=now,
                nb_due_date=now,
                fields=fields,
            )

        return self._transact(
            Operation.RENEW, patron_id, item_id, build, {"with_pin": bool(pin)}, pin
        )

    def renew_all(self, patron_id: str, pin: str | None = None) -> RenewAllResult:
        with self._lock:
            if not self._supported(cmd.RENEW_ALL):
                return RenewAllResult(
                    ok=False,
                    mode=Mode.ONLINE,
                    message="Renewing everything is not offered by this library system.",
                )
            if not self._connect():
                return RenewAllResult(
                    ok=False,
                    mode=Mode.OFFLINE,
                    message="The library system cannot be reached; renewals are not possible now.",
                )
            eid = self.journal.begin(
                Operation.RENEW_ALL,
                mode=Mode.ONLINE,
                state=EntryState.PENDING,
                patron_id=patron_id,
                request={"with_pin": bool(pin)},
            )
            fields = self._base(patron_id) + [("AC", self.sip2.terminal_password)]
            if pin:
                fields.append(("AD", pin))
            msg = message(cmd.RENEW_ALL, transaction_date=sip_date(self.clock.now()), fields=fields)
            self.journal.mark_sent(eid)
            try:
                resp = self.client.request(msg)
            except Sip2LinkError as exc:
                self._link_down(str(exc))
                state = EntryState.IN_DOUBT if exc.maybe_delivered else EntryState.REFUSED
                self.journal.update(eid, state, error=str(exc))
                return RenewAllResult(
                    ok=False,
                    mode=Mode.OFFLINE,
                    message="The library system did not answer; please check your loans at the desk.",
                )
            except Sip2Error as exc:
                self.journal.update(eid, EntryState.IN_DOUBT, error=str(exc))
                return RenewAllResult(
                    ok=False,
                    mode=Mode.ONLINE,
                    message=f"The library system gave an unusable answer ({exc})",
                )
            ok = resp.fixed.get("ok", "0") == "1"
            result = RenewAllResult(
                ok=ok,
                mode=Mode.ONLINE,
                renewed=tuple(resp.get_all("BM")),
                unrenewed=tuple(resp.get_all("BN")),
                message=screen_text(resp),
            )
            self.journal.update(
                eid,
                EntryState.DONE if ok else EntryState.REFUSED,
                result={
                    "ok": ok,
                    "renewed": list(result.renewed),
                    "unrenewed": list(result.unrenewed),
                    "message": result.message,
                },
            )
            return result

    # -- the write-ahead transaction ------------------------------------------------------------

    def _transact(
        self,
        op: Operation,
        patron_id: str,
        item_id: str,
        build: Callable[[datetime], Message],
        request: dict[str, Any],
        pin: str | None,
    ) -> CirculationResult:
        bad = unsendable(item_id, self.sip2, "item id") or (
            unsendable(patron_id, self.sip2, "patron id") if op is not Operation.CHECKIN else ""
        )
        if bad:
            return self._unsendable(op, patron_id, item_id, request, bad)
        with self._lock:
            # The item's claim keeps a forwarder in another process off this item meanwhile; one
            # holding it now is waited for, within the link's own time bound.
            with self.journal.claims.hold(item_id, wait_s=self._claim_wait_s()) as claimed:
                if not claimed:
                    return self._busy(op, patron_id, item_id, request)
                return self._transact_claimed(op, patron_id, item_id, build, request, pin)

    def _claim_wait_s(self) -> float:
        # One SIP2 timeout: the call's overall deadline allows one for queueing (client.py).
        return max(0.5, self.sip2.timeout_s)

    def _transact_claimed(
        self,
        op: Operation,
        patron_id: str,
        item_id: str,
        build: Callable[[datetime], Message],
        request: dict[str, Any],
        pin: str | None,
    ) -> CirculationResult:
        # Earlier work for this item goes first, so an online request never overtakes it: rows
        # another process left half-done are handed over (this claim says nobody works on them).
        self.journal.recover_item(item_id)
        if self.journal.pending_count(item_id) and self._connect():
            self.forwarder.forward_once(item_id=item_id)
        if self.journal.pending_count(item_id) or not self._connect():
            return self._offline(op, patron_id, item_id, request, None)
        if op is Operation.RENEW and self._supported(cmd.ITEM_INFORMATION):
            # The loan as it stands before, so a renewal left without an answer can be told
            # applied or not. (Not for returns: a book drop must not wait twice for a stalled
            # library system; their reconciliation asks whose loan it is instead.)
            try:
                info = self._item_info(item_id)
                request = {
                    **request,
                    "loan_before": {
                        "charged": info.circulation_status in CHARGED_STATUSES,
                        "due": info.due_date,
                    },
                }
            except Sip2Error as exc:
                log.info("%s of %s: the loan before is not known: %s", op.value, item_id, exc)
        # One timestamp for the journal and the wire, so a replay carries the original date.
        when = self.clock.now().replace(microsecond=0)
        eid = self.journal.begin(
            op,
            mode=Mode.ONLINE,
            state=EntryState.PENDING,
            patron_id=patron_id,
            item_id=item_id,
            request=request,
            created=when,
        )
        crash_point("after_journal_write")
        msg = build(when)
        self.journal.mark_sent(eid)
        crash_point("after_mark_sent")
        try:
            resp = self.client.request(msg)
        except Sip2LinkError as exc:
            self._link_down(str(exc))
            if exc.maybe_delivered:
                return self._in_doubt(op, eid, patron_id, item_id, str(exc))
            return self._offline(op, patron_id, item_id, request, eid)
        except Sip2Error as exc:
            # An answer came but made no sense: the ACS may well have applied the request.
            log.error("%s of %s: unusable answer: %s", op.value, item_id, exc)
            return self._in_doubt(op, eid, patron_id, item_id, str(exc))
        crash_point("after_answer")
        result = self._interpret(
            op, resp, patron_id, item_id, pin, eid, bool(request.get("fee_acknowledged"))
        )
        # A hold trapped on return is handled (the item goes to the hold), not refused: it
        # must not reach the staff refusal list or count as a refusal in the statistics.
        handled = result.ok or (op is Operation.CHECKIN and hold_trapped(result.ok, result.routing))
        self.journal.update(
            eid,
            EntryState.DONE if handled else EntryState.REFUSED,
            result=_result_json(result),
        )
        return result

    def _unsendable(
        self, op: Operation, patron_id: str, item_id: str, request: dict[str, Any], why: str
    ) -> CirculationResult:
        """Refused before journaling anything that could be queued: it can never be sent."""
        log.warning("%s refused before sending: %s", op.value, why)
        if "patron id" in why:
            text, refusal = (
                "This card number cannot be sent to the library system.",
                Refusal.PATRON_BLOCKED,
            )
        else:
            text, refusal = (
                "This tag's item id cannot be sent to the library system.",
                Refusal.UNKNOWN_ITEM,
            )
        return self._refused_unsent(
            op,
            patron_id,
            item_id,
            request,
            f"{text} Please ask at the desk.",
            refusal,
            f"never sent: {why}",
        )

    def _busy(
        self, op: Operation, patron_id: str, item_id: str, request: dict[str, Any]
    ) -> CirculationResult:
        """Another kiosk process holds this item's claim (sending its queued work) for too long."""
        return self._refused_unsent(
            op,
            patron_id,
            item_id,
            request,
            "The kiosk is still sending earlier work for this item. Please try again in a moment.",
            Refusal.OTHER,
            "item claimed by another kiosk process",
        )

    def _refused_unsent(
        self,
        op: Operation,
        patron_id: str,
        item_id: str,
        request: dict[str, Any],
        text: str,
        refusal: Refusal,
        why: str,
    ) -> CirculationResult:
        """A refusal the kiosk gives without sending anything, journaled with its reason."""
        result = CirculationResult(
            op,
            ok=False,
            mode=Mode.ONLINE,
            item_id=item_id,
            patron_id=patron_id,
            message=text,
            refusal=refusal,
        )
        eid = self.journal.begin(
            op,
            mode=Mode.ONLINE,
            state=EntryState.REFUSED,
            patron_id=patron_id,
            item_id=item_id,
            request=request,
            result=_result_json(result),
        )
        self.journal.update(eid, EntryState.REFUSED, error=why)
        return _with_id(result, eid)

    def _in_doubt(
        self, op: Operation, eid: int, patron_id: str, item_id: str, error: str
    ) -> CirculationResult:
        self.journal.update(eid, EntryState.IN_DOUBT, error=error)
        self.journal.record_event("in_doubt", f"#{eid} {op.value} {item_id}: {error}")
        # What the patron is told is what the library system must end up with (the forwarder
        # reverses a checkout that was applied after all; a renewal it cannot undo goes to staff).
        told = {
            Operation.CHECKOUT: "No answer from the library system: this item is not borrowed. Please try again or ask at the desk.",
            Operation.RENEW: "No answer from the library system: this loan is not renewed. Please try again or ask at the desk.",
        }.get(
            op,
            "No answer from the library system; this return will be checked and completed by the kiosk.",
        )
        return CirculationResult(
            op,
            ok=False,
            mode=Mode.ONLINE,
            item_id=item_id,
            patron_id=patron_id,
            message=told,
            refusal=Refusal.LINK_DOWN,
            journal_id=eid,
            in_doubt=True,
        )

    def _offline(
        self, op: Operation, patron_id: str, item_id: str, request: dict[str, Any], eid: int | None
    ) -> CirculationResult:
        """Apply the offline policy; `eid` is the row of an online attempt that never left the kiosk."""
        now = self.clock.now()
        refusal = Refusal.NONE
        message_text = ""
        due = ""
        policy = OfflinePolicy(self.offline.policy)
        if self.config_fault:
            # Not an outage: nothing is queued on a wrong password or certificate.
            refusal = Refusal.OTHER
            message_text = "This kiosk is out of service; please see staff."
        elif op is Operation.CHECKIN and policy is OfflinePolicy.DISABLED:
            refusal = Refusal.OFFLINE_NOT_ALLOWED
        elif op is Operation.CHECKOUT and policy is not OfflinePolicy.CHECKIN_AND_CHECKOUT:
            refusal = Refusal.OFFLINE_NOT_ALLOWED
        elif (
            op is Operation.CHECKOUT
            and self.client.acs_status is not None
            and not self.client.acs_status.offline_ok
        ):
            # 98 off-line ok = N: this ACS will not accept no-block loans later (docs/protocols/sip2.md §10).
            refusal = Refusal.OFFLINE_NOT_ALLOWED
            message_text = (
                "The library system cannot be reached and does not accept loans recorded offline."
            )
        elif op is Operation.CHECKOUT and self.untrusted_clock() is not None:
            # A due date from a clock that is off would be wrong (docs/operations.md, "Clock").
            refusal = Refusal.OFFLINE_NOT_ALLOWED
            message_text = (
                "The library system cannot be reached and the kiosk's clock cannot be trusted "
                "for a due date; please borrow at the desk."
            )
            self.journal.record_event(
                "clock", f"offline loan refused: the kiosk's clock is {self.untrusted_clock()}"
            )
        elif (
            op is Operation.CHECKOUT
            # Counted from the journal: per patron across the whole outage (every login, every
            # process), not per session.
            and self.journal.open_offline_checkouts(patron_id) >= self.offline.max_checkouts
        ):
            refusal = Refusal.OFFLINE_LIMIT
            message_text = f"While the library system cannot be reached, at most {self.offline.max_checkouts} items can be borrowed."
        elif op not in (Operation.CHECKOUT, Operation.CHECKIN):
            refusal = Refusal.OFFLINE_NOT_ALLOWED
        if refusal is not Refusal.NONE:
            message_text = (
                message_text or "The library system cannot be reached; this is not possible now."
            )
            result = CirculationResult(
                op,
                ok=False,
                mode=Mode.OFFLINE,
                item_id=item_id,
                patron_id=patron_id,
                message=message_text,
                refusal=refusal,
            )
            eid = self._journal_offline(
                result, EntryState.REFUSED, request, eid, error=self._link.error
            )
            return _with_id(result, eid)
        if op is Operation.CHECKOUT:
            due = (now + timedelta(days=self.offline.loan_days)).date().isoformat()
            message_text = (
                f"Recorded while the library system cannot be reached. Provisional due date {due}."
            )
        else:
            message_text = (
                "Return recorded while the library system cannot be reached; it will be sent later."
            )
        result = CirculationResult(
            op,
            ok=True,
            mode=Mode.OFFLINE,
            item_id=item_id,
            patron_id=patron_id,
            due_date=due,
            message=message_text,
            desensitize=True if op is Operation.CHECKOUT else None,
            resensitize=True if op is Operation.CHECKIN else None,
            queued=True,
        )
        drift = self.untrusted_clock()
        if drift is not None:
            # Stamped as such: the return's time is the kiosk's, which is off by this much.
            request = {**request, "clock_untrusted": drift}
        eid = self._journal_offline(result, EntryState.QUEUED, request, eid, due=due)
        return _with_id(result, eid)

    def untrusted_clock(self) -> str | None:
        """How far off the kiosk's clock was at the last status exchange, when beyond the limit."""
        drift = self.client.clock_drift
        if drift is not None and drift.beyond(self.max_drift):
            return drift.describe()
        return None

    def _journal_offline(
        self,
        result: CirculationResult,
        state: EntryState,
        request: dict[str, Any],
        eid: int | None,
        *,
        due: str | None = None,
        error: str | None = None,
    ) -> int:
        """Record an offline outcome: a new row, or the row of the online attempt that never left."""
        if eid is None:
            return self.journal.begin(
                result.operation,
                mode=Mode.OFFLINE,
                state=state,
                patron_id=result.patron_id,
                item_id=result.item_id,
                request=request,
                promised_due_date=due or "",
                result=_result_json(result),
            )
        self.journal.update(
            eid,
            state,
            mode=Mode.OFFLINE,
            promised_due_date=due,
            result=_result_json(result),
            error=error,
        )
        return eid

    # -- answers -> domain values ---------------------------------------------------------------

    def _interpret(
        self,
        op: Operation,
        resp: Message,
        patron_id: str,
        item_id: str,
        pin: str | None,
        eid: int,
        fee_acknowledged: bool = False,
    ) -> CirculationResult:
        expected = {
            Operation.CHECKOUT: cmd.CHECKOUT_RESPONSE,
            Operation.CHECKIN: cmd.CHECKIN_RESPONSE,
            Operation.RENEW: cmd.RENEW_RESPONSE,
        }[op]
        if resp.command != expected:
            return CirculationResult(
                op,
                ok=False,
                mode=Mode.ONLINE,
                item_id=item_id,
                patron_id=patron_id,
                message=f"Unexpected answer {resp.command} from the library system",
                refusal=Refusal.OTHER,
                journal_id=eid,
            )
        ok = resp.fixed.get("ok", "0") == "1"
        text = screen_text(resp)
        common: dict[str, Any] = {
            "item_id": resp.get("AB") or item_id,
            "patron_id": patron_id,
            "title": resp.get("AJ"),
            "message": text,
            "print_lines": tuple(resp.get_all("AG")),
            "journal_id": eid,
            "fee_amount": resp.get("BV"),
        }
        if op is Operation.CHECKIN:
            routing = checkin_routing(resp)
            if ok:
                refusal = Refusal.NONE
            elif hold_trapped(ok, routing):
                # Koha (bug 13411) answers ok=0 "not checked out" for an item that was not on
                # loan even as it traps a hold for it: the item still goes to the hold shelf, so
                # this is no refusal; the return workflow routes it by the alert.
                refusal = Refusal.NONE
            else:
                refusal = self._classify(op, item_id, patron_id, pin, text)
            return CirculationResult(
                op,
                ok=ok,
                mode=Mode.ONLINE,
                resensitize=yes(resp.fixed.get("resensitize", "")),
                routing=routing,
                refusal=refusal,
                **common,
            )
        refusal = Refusal.NONE
        if not ok:
            fee = resp.get("BV").strip()
            if op is Operation.CHECKOUT and fee and is_nonzero(fee) and not fee_acknowledged:
                # docs/protocols/sip2.md §6: the ACS wants the patron to accept a fee; ask, then re-send with BO=Y.
                refusal = Refusal.FEE_REQUIRED
            else:
                refusal = self._classify(op, item_id, patron_id, pin, text)
        return CirculationResult(
            op,
            ok=ok,
            mode=Mode.ONLINE,
            due_date=resp.get("AH"),
            renewal=yes(resp.fixed.get("renewal_ok", "")) if op is Operation.CHECKOUT else ok,
            desensitize=yes(resp.fixed.get("desensitize", "")),
            refusal=refusal,
            **common,
        )

    def _classify(
        self, op: Operation, item_id: str, patron_id: str, pin: str | None, text: str
    ) -> Refusal:
        """Why the ACS said no: ask it about the item, then the patron, then read its words."""
        info: ItemInfo | None = None
        if self._supported(cmd.ITEM_INFORMATION):
            try:
                info = self._item_info(item_id)
            except Sip2Error as exc:
                log.info("could not classify refusal of %s: %s", item_id, exc)
        if info is not None:
            if not info.found:
                return Refusal.UNKNOWN_ITEM
            if op in (Operation.CHECKOUT, Operation.RENEW) and (
                info.circulation_status in ON_HOLD_STATUSES or (info.hold_queue_length or 0) > 0
            ):
                return Refusal.ON_HOLD_FOR_OTHER
            if op is Operation.CHECKOUT and info.circulation_status in CHARGED_STATUSES:
                return Refusal.ALREADY_ON_LOAN
            if (
                op in (Operation.CHECKIN, Operation.RENEW)
                and info.circulation_status
                and info.circulation_status not in CHARGED_STATUSES
            ):
                return Refusal.NOT_ON_LOAN
        if op in (Operation.CHECKOUT, Operation.RENEW) and patron_id:
            try:
                patron = (
                    self._patron_status(patron_id, pin, None)
                    if self._supported(cmd.PATRON_STATUS)
                    else None
                )
            except Sip2Error:
                patron = None
            if patron is not None:
                if BlockReason.TOO_MANY_CHARGED in patron.blocks and op is Operation.CHECKOUT:
                    return Refusal.LIMIT_REACHED
                if BlockReason.TOO_MANY_RENEWALS in patron.blocks and op is Operation.RENEW:
                    return Refusal.RENEWAL_LIMIT
                if not patron.may_borrow:
                    return Refusal.PATRON_BLOCKED
        return refusal_from_text(text) if text else Refusal.OTHER

    # -- offline work ---------------------------------------------------------------------------

    def forward_offline(self) -> ForwardReport:
        """Forward queued offline work now (and reconcile in-doubt work), in original order."""
        try:
            with self._lock:
                self._connect(force=True)
        except Sip2LinkError as exc:
            # The link stayed busy with another thread's call past this call's deadline.
            log.info("forwarding postponed: %s", exc)
        return self.forwarder.forward_once()

    def status(self) -> LinkStatus:
        acs = self.client.acs_status
        connected = self.client.connected
        if acs is None:
            # Not yet connected: nothing is known to be refused.
            return LinkStatus(
                online=connected,
                library_name="",
                checkin_ok=True,
                checkout_ok=True,
                renewal_ok=True,
                offline_ok=False,
                supported=frozenset(),
                pending=self.journal.pending_count(),
                last_error=self._link.error,
                since=self._link.since,
                config_fault=self.config_fault or "",
            )
        return LinkStatus(
            online=connected and acs.online,
            library_name=acs.library_name,
            checkin_ok=acs.checkin_ok,
            checkout_ok=acs.checkout_ok,
            renewal_ok=acs.renewal_ok and self._supported(cmd.RENEW),
            offline_ok=acs.offline_ok,
            supported=acs.supported,
            pending=self.journal.pending_count(),
            last_error=self._link.error,
            since=self._link.since,
            config_fault=self.config_fault or "",
        )

    def close(self) -> None:
        self.forwarder.stop()
        try:
            self.client.close()
        finally:
            self.journal.close()


def _with_id(result: CirculationResult, eid: int) -> CirculationResult:
    return replace(result, journal_id=eid)


def _result_json(result: CirculationResult) -> dict[str, Any]:
    """What the journal keeps of an answer (no patron id: the row has it already)."""
    return {
        "ok": result.ok,
        "title": result.title,
        "due_date": result.due_date,
        "message": result.message,
        "refusal": result.refusal.value,
        "renewal": result.renewal,
        "routing": routing_json(result.routing),
    }


def build_circulation(
    cfg: Config, *, clock: Clock | None = None, client: Sip2Link | None = None
) -> CirculationService:
    """The circulation service for a site: its journal at [storage] path and a SIP2 client for [sip2]."""
    if client is None:
        client = Sip2Client(cfg.sip2, clock=clock)
    journal = Journal(cfg.resolve_path(cfg.storage.path), clock=clock)
    return CirculationService(
        client,
        journal,
        sip2=cfg.sip2,
        offline=cfg.offline,
        location=cfg.sip2.location_code or cfg.kiosk.terminal_id,
        language=cfg.kiosk.default_language,
        currency=cfg.kiosk.currency,
        clock=clock,
        max_drift=timedelta(seconds=cfg.clock.max_drift_s),
    )
