"""Returns without login: each item is checked in, its tag re-secured (verified) and routed to a bin.

    rs = ReturnStation(circulation, security, clock, RoutingTable.from_config(cfg), ReturnSettings.from_config(cfg),
                       recorder=journal.record_event, staff_printer=printer, listener=cb)
    rs.handle(event)                 -> ReturnState   # TagsChanged or BarcodeScanned
    rs.handle_tags(TagsChanged(...)) -> ReturnState
    rs.handle_barcode(text)          -> ReturnState
    rs.receipt()                     -> Receipt | None   (optional return receipt)
    rs.clear()                       -> ReturnState      (next patron)

`check_in(...)` is the per-item step shared with the book drop: set completeness and owner checks,
the checkin (the circulation service applies the offline policy: an offline answer is queued; an
unanswered one is in doubt and completed by the journal, so it counts as queued), re-securing every part, then the routing decision. Exceptions (unreadable tag, unknown item, another
library's item, not on loan, refused, unreachable, security write failed, incomplete set) each have
their own ReturnOutcome, bin (the exception bin unless a `[[routing]]` row says otherwise) and are
recorded through `recorder(kind, detail)` (the journal's record_event).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kiosk.core.domain import (
    CirculationResult,
    ItemTag,
    Mode,
    Operation,
    Refusal,
    Routing,
    parts_present,
)
from kiosk.core.errors import log_fault
from kiosk.core.events import BarcodeScanned, TagsChanged
from kiosk.core.ports import Circulation, Clock, ReceiptPrinter, TagSecurity
from kiosk.core.receipt import Receipt, ReceiptLine, hold_slip, return_receipt
from kiosk.core.routing import Instruction, ReturnOutcome, RouteDecision, RoutingTable

log = logging.getLogger(__name__)

Recorder = Callable[[str, str], None]

_UNSAFE = re.compile(r"[|\r\n\x00-\x1f]")


@dataclass(frozen=True)
class ReturnSettings:
    """What returns need from the site configuration."""

    library_name: str = "Library"
    language: str = "lv"
    owners: tuple[str, ...] = ()  # the site's owner institutions (ISIL); empty = accept any
    item_pattern: str = r"^[0-9A-Z-]{3,32}$"
    show_patron_name: bool = False

    @classmethod
    def from_config(cls, cfg: Any) -> ReturnSettings:
        return cls(
            library_name=cfg.kiosk.library_name,
            language=cfg.kiosk.default_language,
            owners=tuple(getattr(cfg.kiosk, "owner_institutions", ())),
            item_pattern=cfg.patron.item_pattern,
            show_patron_name=cfg.printer.show_patron_name,
        )

    def hold_slip(self, res: CheckinResult, when: datetime) -> Receipt:
        """The staff slip for a returned item another patron is waiting for."""
        return hold_slip(
            self.library_name,
            when,
            self.language,
            res.item_id,
            res.title,
            res.routing,
            show_patron_name=self.show_patron_name,
        )


@dataclass(frozen=True)
class CheckinResult:
    """The full outcome of returning one item."""

    outcome: ReturnOutcome
    item_id: str
    decision: RouteDecision
    title: str = ""
    secured: bool = False  # every part's tag verified secured
    message: str = ""  # the library system's words, or what went wrong
    routing: Routing = Routing()
    result: CirculationResult | None = None
    parts_present: int = 1
    parts_in_set: int = 1

    @property
    def offline(self) -> bool:
        return self.outcome is ReturnOutcome.QUEUED_OFFLINE


def _outcome_for_refusal(result: CirculationResult) -> ReturnOutcome:
    if result.refusal is Refusal.UNKNOWN_ITEM:
        return ReturnOutcome.UNKNOWN_ITEM
    if result.refusal is Refusal.NOT_ON_LOAN:
        return ReturnOutcome.NOT_ON_LOAN
    if result.refusal is Refusal.OTHER_LIBRARY:
        return ReturnOutcome.OTHER_LIBRARY
    if result.refusal in (Refusal.LINK_DOWN, Refusal.OFFLINE_NOT_ALLOWED):
        return ReturnOutcome.LINK_DOWN
    return ReturnOutcome.REFUSED


def secure_all(security: TagSecurity | None, tags: tuple[ItemTag, ...]) -> tuple[bool, str]:
    """Secure every tag, each one tried even after another failed (a set must not leave the
    library half unsecured); (all verified, first failure message). Barcode returns have no tags."""
    if security is None or not tags:
        return (not tags), ("" if not tags else "no tag security device")
    failure = ""
    for tag in tags:
        try:
            res = security.secure(tag.uid)
            if not (res.ok and res.secured):
                failure = failure or res.message or f"tag {tag.uid} not verified secured"
        except Exception as exc:  # any reader fault is a failed write: the item goes to staff
            log_fault(log, exc, "tag %s: securing a returned item failed", tag.uid)
            failure = failure or str(exc) or type(exc).__name__
    return not failure, failure


def check_in(
    circulation: Circulation,
    security: TagSecurity | None,
    table: RoutingTable,
    item_id: str,
    tags: tuple[ItemTag, ...] = (),
    *,
    owners: tuple[str, ...] = (),
    on_title: Callable[[str], None] | None = None,
) -> CheckinResult:
    """Return one item whose tags (all parts on the reader) are `tags`; never raises for bad answers.
    `on_title` is given the title the library system's answer names, before the tags are written
    (their air time), so a screen can show it while the item is still being returned."""
    first = tags[0] if tags else None
    parts_in_set = max((t.parts_in_set for t in tags), default=1) or 1
    present = parts_present(tags) or 1
    owner = next((t.owner_institution for t in tags if t.owner_institution), "")

    def finish(outcome: ReturnOutcome, **kw: Any) -> CheckinResult:
        routing = kw.get("routing") or Routing()
        decision = table.decide(outcome, routing, owner=owner)
        return CheckinResult(
            outcome, item_id, decision, parts_present=present, parts_in_set=parts_in_set, **kw
        )

    if owners and owner and owner not in owners:
        return finish(ReturnOutcome.OTHER_LIBRARY, message=f"owner {owner}")
    if first is not None and parts_in_set > 1 and present < parts_in_set:
        return finish(ReturnOutcome.SET_INCOMPLETE, message=f"{present} of {parts_in_set} parts")
    try:
        result = circulation.checkin(item_id)
    except Exception as exc:  # the service should answer; the item must still end somewhere known
        log_fault(log, exc, "checkin of %s failed in the circulation service", item_id)
        result = CirculationResult.service_failed(Operation.CHECKIN, item_id, exc)
    common = {
        "title": result.title,
        "routing": result.routing,
        "result": result,
        "message": result.message,
    }

    def secure() -> tuple[bool, str]:
        if on_title is not None and result.title and tags and security is not None:
            on_title(result.title)
        return secure_all(security, tags)

    if result.in_doubt and not result.ok:
        # Sent but unanswered: the journal completes it (reconciled, never blindly re-sent), so the
        # item is as good as queued. It is in the library either way: re-secure it.
        secured, failure = secure()
        if tags and not secured:
            common["message"] = failure
            return finish(ReturnOutcome.SECURITY_FAILED, secured=False, **common)
        return finish(ReturnOutcome.QUEUED_OFFLINE, secured=secured, **common)
    # Not checked in, yet not refused and with a routing alert: there was no loan to end but the
    # library system wants the item routed (Koha traps a hold this way: ok=0, CV 01/02).
    routed = not result.ok and result.refusal is Refusal.NONE and result.routing.alert
    if (not result.ok and not routed) or result.refusal is Refusal.NOT_ON_LOAN:
        outcome = _outcome_for_refusal(result)
        secured = False
        if outcome is ReturnOutcome.NOT_ON_LOAN:
            # The library system says it is in: its tag must say so too.
            secured, _ = secure()
        return finish(outcome, secured=secured, **common)
    secured, failure = secure()
    if tags and not secured:
        log.warning("item %s checked in but not re-secured: %s", item_id, failure)
        common["message"] = failure
        return finish(ReturnOutcome.SECURITY_FAILED, secured=False, **common)
    queued = result.mode is Mode.OFFLINE or result.queued
    return finish(
        ReturnOutcome.QUEUED_OFFLINE if queued else ReturnOutcome.CHECKED_IN,
        secured=secured,
        **common,
    )


@dataclass(frozen=True)
class ReturnItem:
    """One item on the return screen."""

    key: str  # item id, or "uid:<uid>" for an unreadable tag
    item_id: str
    outcome: ReturnOutcome | None = None  # None: the library system has not answered yet
    title: str = ""
    bin: int | None = None
    instruction: str = ""
    hold_slip: bool = False
    hold_slip_printed: bool | None = None
    secured: bool = False
    offline: bool = False
    message: str = ""
    parts_present: int = 1
    parts_in_set: int = 1
    on_pad: bool = True

    @property
    def pending(self) -> bool:
        return self.outcome is None


@dataclass(frozen=True)
class ReturnState:
    items: tuple[ReturnItem, ...] = ()

    @property
    def returned(self) -> tuple[ReturnItem, ...]:
        return tuple(
            i
            for i in self.items
            if i.outcome in (ReturnOutcome.CHECKED_IN, ReturnOutcome.QUEUED_OFFLINE)
        )

    @property
    def problems(self) -> tuple[ReturnItem, ...]:
        return tuple(i for i in self.items if i.outcome is not None and i.outcome.is_exception)

    def item(self, key: str) -> ReturnItem | None:
        return next((i for i in self.items if i.key == key), None)


class ReturnStation:
    """The return screen of a checkout kiosk: no login, items on the pad, an instruction for each."""

    def __init__(
        self,
        circulation: Circulation,
        security: TagSecurity | None,
        clock: Clock,
        table: RoutingTable,
        settings: ReturnSettings,
        *,
        recorder: Recorder | None = None,
        staff_printer: ReceiptPrinter | None = None,
        listener: Callable[[ReturnState], None] | None = None,
    ) -> None:
        self._circ = circulation
        self._security = security
        self._clock = clock
        self._table = table
        self.settings = settings
        self._recorder = recorder
        self._printer = staff_printer
        self._listener = listener
        self._item_re = re.compile(settings.item_pattern)
        self._items: dict[str, ReturnItem] = {}
        self._present: dict[str, dict[str, ItemTag]] = {}

    @property
    def state(self) -> ReturnState:
        return ReturnState(tuple(self._items.values()))

    def set_listener(self, listener: Callable[[ReturnState], None] | None) -> None:
        self._listener = listener

    def clear(self) -> ReturnState:
        """Start over for the next patron (items on the pad stay known until lifted)."""
        self._items = {k: v for k, v in self._items.items() if v.on_pad}
        self._notify()
        return self.state

    def handle(self, event: TagsChanged | BarcodeScanned) -> ReturnState:
        """Dispatch a pad or scanner event (other events are ignored)."""
        if isinstance(event, TagsChanged):
            return self.handle_tags(event)
        if isinstance(event, BarcodeScanned):
            return self.handle_barcode(event.text)
        return self.state

    def handle_tags(self, event: TagsChanged) -> ReturnState:
        present = event.present if (event.present or not event.added) else event.added
        now: dict[str, dict[str, ItemTag]] = {}
        bad: list[ItemTag] = []
        for tag in present:
            if tag.readable:
                now.setdefault(tag.item_id, {})[tag.uid] = tag
            else:
                bad.append(tag)
        self._present = now
        for key, known in list(self._items.items()):
            if key.startswith("uid:"):
                on = any(t.key == key for t in bad)
                count = known.parts_present
            else:
                on = key in now
                count = parts_present(now.get(key, {}).values()) or known.parts_present
            self._items[key] = replace(known, on_pad=on, parts_present=count)
        fresh: list[str] = []
        for tag in bad:
            key = tag.key
            if key not in self._items:
                decision = self._table.decide(ReturnOutcome.UNREADABLE_TAG)
                self._items[key] = ReturnItem(
                    key=key,
                    item_id="",
                    outcome=ReturnOutcome.UNREADABLE_TAG,
                    bin=decision.bin,
                    instruction=decision.instruction,
                    message=tag.error or "tag has no item id",
                )
                self._record(
                    ReturnOutcome.UNREADABLE_TAG, f"uid {tag.uid}: {tag.error or 'no item id'}"
                )
        for item_id, parts in now.items():
            item = self._items.get(item_id)
            if item is None:
                first = next(iter(parts.values()))
                self._items[item_id] = ReturnItem(
                    key=item_id,
                    item_id=item_id,
                    parts_present=parts_present(parts.values()),
                    parts_in_set=max(1, first.parts_in_set),
                )
                fresh.append(item_id)
            elif (
                item.outcome is ReturnOutcome.SET_INCOMPLETE
                and parts_present(parts.values()) >= item.parts_in_set
            ):
                fresh.append(item_id)  # the missing part arrived
        self._notify()
        for item_id in fresh:
            self._process(item_id, tuple(self._present.get(item_id, {}).values()))
        return self.state

    def handle_barcode(self, text: str) -> ReturnState:
        item_id = (text or "").strip()
        if _UNSAFE.search(item_id) or not self._item_re.match(item_id):
            return self.state
        if item_id in self._items and not self._items[item_id].pending:
            return self.state
        self._items[item_id] = ReturnItem(key=item_id, item_id=item_id, on_pad=False)
        self._notify()
        self._process(item_id, ())
        return self.state

    def receipt(self) -> Receipt | None:
        """A return receipt for the items returned so far, or None when nothing was returned."""
        lines = tuple(
            ReceiptLine(
                item_id=i.item_id, title=i.title, ok=not i.outcome.is_exception, offline=i.offline
            )
            for i in self._items.values()
            if i.outcome is not None and i.item_id
        )
        if not any(line.ok for line in lines):
            return None
        return return_receipt(
            self.settings.library_name, self._clock.now(), self.settings.language, lines
        )

    def _process(self, item_id: str, tags: tuple[ItemTag, ...]) -> None:
        def titled(title: str) -> None:
            current = self._items.get(item_id)
            if current is not None and current.title != title:
                self._items[item_id] = replace(current, title=title)
                self._notify()

        res = check_in(
            self._circ,
            self._security,
            self._table,
            item_id,
            tags,
            owners=self.settings.owners,
            on_title=titled,
        )
        printed = None
        if res.decision.hold_slip:
            printed = self._print_slip(res)
        instruction = res.decision.instruction
        if res.outcome is ReturnOutcome.SET_INCOMPLETE:
            instruction = Instruction.PLACE_ALL_PARTS
        self._items[item_id] = replace(
            self._items[item_id],
            outcome=res.outcome,
            title=res.title,
            bin=res.decision.bin,
            instruction=instruction,
            hold_slip=res.decision.hold_slip,
            hold_slip_printed=printed,
            secured=res.secured,
            offline=res.offline,
            message=res.message,
            parts_present=res.parts_present,
            parts_in_set=res.parts_in_set,
        )
        if res.outcome.is_exception and res.outcome is not ReturnOutcome.SET_INCOMPLETE:
            self._record(
                res.outcome, f"item {item_id}: bin {res.decision.bin} {res.message}".strip()
            )
        self._notify()

    def _print_slip(self, res: CheckinResult) -> bool:
        if self._printer is None:
            return False
        slip = self.settings.hold_slip(res, self._clock.now())
        try:
            self._printer.print_receipt(slip)
            return True
        except Exception as exc:  # the slip is lost but the item is shelved by its instruction
            log_fault(log, exc, "hold slip for %s not printed", res.item_id)
            self._record_raw("printer_failed", f"hold slip for item {res.item_id}: {exc}")
            return False

    def _record(self, outcome: ReturnOutcome, detail: str) -> None:
        self._record_raw(f"return_{outcome.value}", detail)

    def _record_raw(self, kind: str, detail: str) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder(kind, detail)
        except Exception as exc:
            # Recording for staff must never stop a return; a bug keeps its traceback.
            log_fault(log, exc, "could not record %s", kind)

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener(self.state)
