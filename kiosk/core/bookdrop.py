"""The unattended book drop: one item at a time is checked in, re-secured and sorted into a bin.

    drop = BookDrop(circulation, security, sorter, clock, RoutingTable.from_config(cfg),
                    ReturnSettings.from_config(cfg), recorder=journal.record_event, staff_printer=printer)
    drop.handle(event)                 -> BookDropState   # TagsChanged, BarcodeScanned or Tick
    drop.handle_tags(TagsChanged(...)) -> BookDropState   # each new item on the reader
    drop.handle_barcode(text)          -> BookDropState
    drop.reader_failed(message) / drop.reader_ok()      # the reader's health, from the device layer
    drop.tick()                        -> BookDropState   # retries waiting hold slips, clears the big result
    drop.state                          # BookDropState: `last` (the big per-item result), outages, counts

Every item ends in exactly one FinalState: CHECKED_IN_SECURED, QUEUED_OFFLINE_SECURED or
EXCEPTION_BIN (with a ReturnOutcome as the reason). When the sorter refuses or is down, the item
goes to the exception bin and staff are alerted. Outages of the reader, printer, sorter and library
system are recorded when they start and when they end (hold slips the staff printer could not take
are kept and printed, in order, when it is back) (`recorder("outage_start"|"outage_end",
detail)`), and the drop keeps taking items through all of them.
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from kiosk.core.domain import ItemTag, Mode, Refusal
from kiosk.core.errors import log_fault
from kiosk.core.events import BarcodeScanned, TagsChanged, Tick
from kiosk.core.ports import Circulation, Clock, ReceiptPrinter, Sorter, TagSecurity
from kiosk.core.receipt import Receipt
from kiosk.core.returns import CheckinResult, Recorder, ReturnSettings, check_in
from kiosk.core.routing import ReturnOutcome, RoutingTable

log = logging.getLogger(__name__)


class FinalState(enum.StrEnum):
    CHECKED_IN_SECURED = "checked_in_secured"
    QUEUED_OFFLINE_SECURED = "queued_offline_secured"
    EXCEPTION_BIN = "exception_bin"


class Component(enum.StrEnum):
    """The parts whose outages the book drop reports."""

    READER = "reader"
    PRINTER = "printer"
    SORTER = "sorter"
    LIBRARY_SYSTEM = "library_system"


@dataclass(frozen=True)
class BookDropItem:
    """The per-item result shown big on the attract screen, and what the soak test checks."""

    sequence: int
    key: str  # item id, or "uid:<uid>" for an unreadable tag
    item_id: str
    final: FinalState
    outcome: ReturnOutcome  # the reason when final is EXCEPTION_BIN
    bin: int
    title: str = ""
    instruction: str = ""
    message: str = ""
    hold_slip_printed: bool | None = None
    at: float = 0.0  # monotonic time it was decided
    sorted: bool = (
        True  # the sorter confirmed the bin; False: it fell into the exception bin unsorted
    )


@dataclass(frozen=True)
class BookDropState:
    last: BookDropItem | None = None
    outages: frozenset[Component] = frozenset()
    counts: tuple[tuple[FinalState, int], ...] = ()
    busy: bool = False

    def count(self, final: FinalState) -> int:
        return dict(self.counts).get(final, 0)


class BookDrop:
    """See the module docstring. Runs on the core worker: every call blocks on I/O."""

    def __init__(
        self,
        circulation: Circulation,
        security: TagSecurity | None,
        sorter: Sorter | None,
        clock: Clock,
        table: RoutingTable,
        settings: ReturnSettings,
        *,
        recorder: Recorder | None = None,
        staff_printer: ReceiptPrinter | None = None,
        listener: Callable[[BookDropState], None] | None = None,
        show_result_s: float = 5.0,
    ) -> None:
        self._circ = circulation
        self._security = security
        self._sorter = sorter
        self._clock = clock
        self._table = table
        self.settings = settings
        self._recorder = recorder
        self._printer = staff_printer
        self._listener = listener
        self._show_s = show_result_s
        self._seen: dict[str, str] = {}  # uid -> key, for tags still on the reader
        self._outages: dict[Component, float] = {}
        self._counts: Counter[FinalState] = Counter()
        self._last: BookDropItem | None = None
        self._sequence = 0
        self._busy = False
        self._slips: list[Receipt] = []  # hold slips the printer could not take yet, oldest first
        self.history: list[BookDropItem] = []  # every item since start (bounded by `keep`)
        self.keep = 10_000

    # -- public API -------------------------------------------------------------------------

    @property
    def state(self) -> BookDropState:
        return BookDropState(
            last=self._last,
            outages=frozenset(self._outages),
            counts=tuple(sorted(self._counts.items())),
            busy=self._busy,
        )

    def set_listener(self, listener: Callable[[BookDropState], None] | None) -> None:
        self._listener = listener

    def handle(self, event: TagsChanged | BarcodeScanned | Tick) -> BookDropState:
        """Dispatch a pad, scanner or timer event (other events are ignored)."""
        if isinstance(event, TagsChanged):
            return self.handle_tags(event)
        if isinstance(event, BarcodeScanned):
            return self.handle_barcode(event.text)
        if isinstance(event, Tick):
            return self.tick()
        return self.state

    def handle_tags(self, event: TagsChanged) -> BookDropState:
        """Process each item newly on the reader, one after the other."""
        present = event.present if (event.present or not event.added) else event.added
        uids = {t.uid for t in present}
        # Tags gone from the reader are forgotten, so the same item dropped again later is processed.
        self._seen = {uid: key for uid, key in self._seen.items() if uid in uids}
        groups: dict[str, list[ItemTag]] = {}
        for tag in present:
            if tag.uid in self._seen:
                continue
            key = tag.key
            groups.setdefault(key, []).append(tag)
        for key, tags in groups.items():
            for tag in tags:
                self._seen[tag.uid] = key
            self._process(key, tuple(tags))
        return self.state

    def handle_barcode(self, text: str) -> BookDropState:
        item_id = (text or "").strip()
        if not item_id:
            return self.state
        self._process(item_id, ())
        return self.state

    def reader_failed(self, message: str) -> BookDropState:
        self._outage(Component.READER, True, message)
        return self._publish()

    def reader_ok(self) -> BookDropState:
        self._outage(Component.READER, False, "")
        return self._publish()

    @property
    def slips_waiting(self) -> int:
        """Hold slips kept for the staff printer while it is out of order."""
        return len(self._slips)

    def tick(self) -> BookDropState:
        """Retry waiting hold slips; clear the big result after `show_result_s`."""
        if self._slips:
            self._flush_slips()
        if self._last is not None and self._clock.monotonic() - self._last.at >= self._show_s:
            self._last = None
            return self._publish()
        return self.state

    # -- internals --------------------------------------------------------------------------

    def _publish(self) -> BookDropState:
        state = self.state
        if self._listener is not None:
            self._listener(state)
        return state

    def _process(self, key: str, tags: tuple[ItemTag, ...]) -> None:
        self._busy = True
        self._publish()
        try:
            item = self._one(key, tags)
        except Exception as exc:  # whatever broke, the item is physically here: exception bin
            log_fault(log, exc, "book drop: item %s failed", key)
            item = self._finish(
                key,
                key if not key.startswith("uid:") else "",
                FinalState.EXCEPTION_BIN,
                ReturnOutcome.REFUSED,
                self._table.exception_bin,
                message=f"internal error: {exc}",
            )
            routed = self._route(item.item_id or key, item.bin)
            if routed is not True:
                item = self._sorter_failed(item, fallback=routed == "fallback")
        self._busy = False
        self._last = item
        self._counts[item.final] += 1
        self.history.append(item)
        if len(self.history) > self.keep:
            del self.history[: len(self.history) - self.keep]
        if item.final is FinalState.EXCEPTION_BIN:
            self._record(
                f"bookdrop_{item.outcome.value}",
                f"item {item.item_id or item.key}: bin {item.bin} {item.message}".strip(),
            )
        self._publish()

    def _one(self, key: str, tags: tuple[ItemTag, ...]) -> BookDropItem:
        if key.startswith("uid:"):
            error = tags[0].error if tags else ""
            decision = self._table.decide(ReturnOutcome.UNREADABLE_TAG)
            item = self._finish(
                key,
                "",
                FinalState.EXCEPTION_BIN,
                ReturnOutcome.UNREADABLE_TAG,
                decision.bin,
                instruction=decision.instruction,
                message=error or "tag has no item id",
            )
            routed = self._route(key, decision.bin)
            if routed is not True:
                item = self._sorter_failed(item, fallback=routed == "fallback")
            return item
        res = check_in(
            self._circ, self._security, self._table, key, tags, owners=self.settings.owners
        )
        self._link_health(res)
        printed = self._print_slip(res) if res.decision.hold_slip else None
        if res.outcome is ReturnOutcome.CHECKED_IN:
            final = FinalState.CHECKED_IN_SECURED
        elif res.outcome is ReturnOutcome.QUEUED_OFFLINE:
            final = FinalState.QUEUED_OFFLINE_SECURED
        else:
            final = FinalState.EXCEPTION_BIN
        item = self._finish(
            key,
            key,
            final,
            res.outcome,
            res.decision.bin,
            title=res.title,
            instruction=res.decision.instruction,
            message=res.message,
            printed=printed,
        )
        routed = self._route(key, res.decision.bin)
        if routed is not True:
            item = self._sorter_failed(item, fallback=routed == "fallback")
        return item

    def _sorter_failed(self, item: BookDropItem, *, fallback: bool = False) -> BookDropItem:
        """The item in the exception bin; `fallback`: the sorter confirmed it took it there."""
        # A sorter that refused or is down drops everything into the exception bin.
        outcome = (
            item.outcome if item.final is FinalState.EXCEPTION_BIN else ReturnOutcome.SORTER_FAILED
        )
        message = (
            item.message
            if item.final is FinalState.EXCEPTION_BIN
            else f"sorter: meant for bin {item.bin}"
        )
        return BookDropItem(
            sequence=item.sequence,
            key=item.key,
            item_id=item.item_id,
            final=FinalState.EXCEPTION_BIN,
            outcome=outcome,
            bin=self._table.exception_bin,
            title=item.title,
            instruction=item.instruction,
            message=message,
            hold_slip_printed=item.hold_slip_printed,
            at=item.at,
            sorted=fallback,
        )

    def _finish(
        self,
        key: str,
        item_id: str,
        final: FinalState,
        outcome: ReturnOutcome,
        bin_number: int,
        *,
        title: str = "",
        instruction: str = "",
        message: str = "",
        printed: bool | None = None,
    ) -> BookDropItem:
        self._sequence += 1
        return BookDropItem(
            sequence=self._sequence,
            key=key,
            item_id=item_id,
            final=final,
            outcome=outcome,
            bin=bin_number,
            title=title,
            instruction=instruction,
            message=message,
            hold_slip_printed=printed,
            at=self._clock.monotonic(),
        )

    def _route(self, item_id: str, bin_number: int) -> bool | Literal["fallback"]:
        """True: the sorter took the item to its bin. "fallback": it refused that bin but confirmed
        the exception bin. False: the item fell into the exception bin unsorted."""
        if self._sorter is None:
            return True  # no sorter: everything falls into the one bin
        try:
            ok = bool(self._sorter.route(item_id, bin_number))
            problem = "" if ok else f"refused bin {bin_number}"
        except Exception as exc:
            # The sorter is a device boundary: whatever it raises, the item goes to the exception bin.
            log_fault(
                log,
                exc,
                "sorter: routing %s to bin %d failed",
                item_id,
                bin_number,
                level=logging.WARNING,
            )
            ok, problem = False, str(exc) or type(exc).__name__
        if ok:
            self._outage(Component.SORTER, False, "")
            return True
        self._outage(Component.SORTER, True, problem)
        if bin_number != self._table.exception_bin:
            try:
                if self._sorter.route(item_id, self._table.exception_bin):
                    return "fallback"
                log.warning("sorter refused the exception bin for item %s too", item_id)
            except Exception as exc:
                # A device boundary, as above: the item is then left for staff.
                log_fault(
                    log,
                    exc,
                    "sorter did not take item %s to the exception bin either",
                    item_id,
                    level=logging.WARNING,
                )
        return False

    def _link_health(self, res: CheckinResult) -> None:
        result = res.result
        if result is None:
            return
        down = result.mode is Mode.OFFLINE or result.refusal is Refusal.LINK_DOWN or result.in_doubt
        self._outage(
            Component.LIBRARY_SYSTEM, down, result.message or "no answer from the library system"
        )

    def _print_slip(self, res: CheckinResult) -> bool:
        """Print (or keep for later) the hold slip; True when it is printed now."""
        if self._printer is None:
            return False
        slip = self.settings.hold_slip(res, self._clock.now())
        # Slips come out in order: a new one waits behind those the printer could not take yet.
        self._slips.append(slip)
        self._flush_slips()
        return slip not in self._slips

    def _flush_slips(self) -> None:
        assert self._printer is not None
        while self._slips:
            try:
                self._printer.print_receipt(self._slips[0])
            except Exception as exc:  # paper out, printer gone: keep the slip, staff are alerted
                log_fault(log, exc, "hold slip not printed", level=logging.WARNING)
                self._outage(Component.PRINTER, True, str(exc) or type(exc).__name__)
                return
            self._slips.pop(0)
            self._outage(Component.PRINTER, False, "")

    def _outage(self, component: Component, down: bool, detail: str) -> None:
        now = self._clock.monotonic()
        if down and component not in self._outages:
            self._outages[component] = now
            log.warning("book drop: %s outage started: %s", component.value, detail)
            self._record("outage_start", f"{component.value}: {detail}".strip())
        elif not down and component in self._outages:
            started = self._outages.pop(component)
            log.info("book drop: %s back after %.0f s", component.value, now - started)
            self._record("outage_end", f"{component.value}: after {now - started:.0f} s")

    def _record(self, kind: str, detail: str) -> None:
        if self._recorder is None:
            return
        try:
            self._recorder(kind, detail)
        except Exception as exc:
            # Recording for staff must never stop a return; a bug keeps its traceback.
            log_fault(log, exc, "could not record %s", kind)
