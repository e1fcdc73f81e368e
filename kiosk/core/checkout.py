"""Stack checkout: items on the pad (or scanned) are shown at once, checked out one by one, then unsecured.

    co = StackCheckout(circulation, security, patron_id, pin=pin, listener=cb)
    co.handle_tags(TagsChanged(...)) -> CheckoutState   # RFID pad
    co.handle_barcode(text)          -> CheckoutState   # hand scanner (no security change)
    co.confirm_fee(item_id) / co.decline_fee(item_id)  # after Refusal.FEE_REQUIRED
    co.state                          # the latest CheckoutState snapshot

Each item first appears as SEEN (before the library system answers; the listener is told), is
told again with the title the answer names while its tag is written (still SEEN), then ends
CHECKED_OUT (due date; `offline` when queued), REFUSED (a Refusal and the ACS's words),
WAITING (a set with parts missing: `parts_present` of `parts_in_set`), UNREADABLE (a reason), or
TO_DESK (the patron is told to leave it at the desk). A tag is unsecured only after the library
system agreed; if that write fails the loan is reversed (checkin) and every tag on which a write
was attempted is re-secured and verified - a write whose read-back failed may still have landed.
The item goes to the desk, and staff are told through `recorder(kind, detail)`, when the reversal
fails or a tag's state cannot be verified afterwards.
Items are keyed by item id, so a tag lifted and put back is recognised and never checked out twice.
Runs on the core worker: the circulation and security calls block.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

from kiosk.core.account import same_due_day
from kiosk.core.domain import (
    CirculationResult,
    ItemTag,
    Mode,
    Operation,
    Refusal,
    parts_present,
)

# Defined with the domain values, so the screens' module can name it without loading the
# checkout (docs/performance.md, cold start); still importable from here.
from kiosk.core.domain import ItemStatus as ItemStatus
from kiosk.core.errors import log_fault
from kiosk.core.events import TagsChanged
from kiosk.core.ports import Circulation, TagSecurity
from kiosk.core.receipt import ReceiptLine

log = logging.getLogger(__name__)

# A scanned id with SIP2 delimiters or line ends could inject fields; never send it.
_UNSAFE = re.compile(r"[|\r\n\x00-\x1f]")


class ItemSource(enum.StrEnum):
    RFID = "rfid"
    BARCODE = "barcode"


@dataclass(frozen=True)
class CheckoutItem:
    """One item of the session's checkout list."""

    key: str  # item id; "uid:<uid>" for an unreadable tag, "scan:<n>" for a rejected scan
    item_id: str
    source: ItemSource
    status: ItemStatus
    title: str = ""
    due_date: str = ""
    refusal: Refusal = Refusal.NONE
    message: str = ""  # the library system's own words, or why a tag is unreadable
    parts_in_set: int = 1
    parts_present: int = 1
    on_pad: bool = True
    offline: bool = False
    queued: bool = False
    renewal: bool = False  # the patron already had it: the checkout renewed it
    # With `renewal`: its due date before, from the patron's loan list ("" where not known).
    previous_due: str = ""
    fee_amount: str = ""
    fee_declined: bool = False
    unsecured: bool = False  # its tag(s) were switched off (verified)
    undone: bool = False  # the checkout was reversed because the tag write failed

    @property
    def due_unchanged(self) -> bool:
        """Renewed on the pad, and the library system kept the due date it had (both known)."""
        return self.renewal and same_due_day(self.previous_due, self.due_date)

    @property
    def final(self) -> bool:
        return self.status not in (ItemStatus.SEEN, ItemStatus.WAITING)

    @property
    def fee_pending(self) -> bool:
        return (
            self.status is ItemStatus.REFUSED
            and self.refusal is Refusal.FEE_REQUIRED
            and not self.fee_declined
        )

    def receipt_line(self) -> ReceiptLine:
        return ReceiptLine(
            item_id=self.item_id,
            title=self.title,
            due_date=self.due_date,
            ok=self.status is ItemStatus.CHECKED_OUT,
            refusal=self.refusal,
            message=self.message,
            renewal=self.renewal,
            offline=self.offline,
        )


@dataclass(frozen=True)
class CheckoutState:
    """A snapshot of the checkout list, in the order items were first seen."""

    items: tuple[CheckoutItem, ...] = ()
    blocked: Refusal = (
        Refusal.NONE
    )  # every item is refused for this (patron blocked, offline not allowed)

    @property
    def checked_out(self) -> tuple[CheckoutItem, ...]:
        return tuple(i for i in self.items if i.status is ItemStatus.CHECKED_OUT)

    @property
    def problems(self) -> tuple[CheckoutItem, ...]:
        return tuple(
            i
            for i in self.items
            if i.status
            in (ItemStatus.REFUSED, ItemStatus.TO_DESK, ItemStatus.UNREADABLE, ItemStatus.WAITING)
        )

    @property
    def pending(self) -> tuple[CheckoutItem, ...]:
        return tuple(i for i in self.items if i.status is ItemStatus.SEEN)

    @property
    def fee_pending(self) -> tuple[CheckoutItem, ...]:
        return tuple(i for i in self.items if i.fee_pending)

    @property
    def busy(self) -> bool:
        return bool(self.pending)

    def item(self, key: str) -> CheckoutItem | None:
        return next((i for i in self.items if i.key == key), None)


Listener = Callable[[CheckoutState], None]


class StackCheckout:
    """The checkout list of one patron session; see the module docstring."""

    def __init__(
        self,
        circulation: Circulation,
        security: TagSecurity | None,
        patron_id: str,
        *,
        pin: str | None = None,
        item_pattern: str = r"^[0-9A-Z-]{3,32}$",
        refuse_all: Refusal = Refusal.NONE,
        listener: Listener | None = None,
        recorder: Callable[[str, str], None] | None = None,
        known_due: Mapping[str, str] | None = None,
    ) -> None:
        self._circ = circulation
        self._known_due = dict(known_due or {})  # the patron's loans: item id -> due date
        self._recorder = recorder
        self._security = security
        self._patron_id = patron_id
        self._pin = pin
        self._item_re = re.compile(item_pattern)
        self._refuse_all = refuse_all
        self._listener = listener
        self._items: dict[str, CheckoutItem] = {}
        self._present: dict[str, dict[str, ItemTag]] = {}  # item id -> uid -> tag now on the pad
        self._uids: dict[str, dict[str, ItemTag]] = {}  # item id -> every tag seen for it
        self._ack: set[str] = set()
        self._titles_asked: set[str] = set()  # item ids whose title was asked for already
        self._scans = 0

    # -- public API -------------------------------------------------------------------------

    @property
    def state(self) -> CheckoutState:
        return CheckoutState(items=tuple(self._items.values()), blocked=self._refuse_all)

    def set_listener(self, listener: Listener | None) -> None:
        self._listener = listener

    def handle_tags(self, event: TagsChanged) -> CheckoutState:
        """Take the pad's new tag set: show new items at once, then check out what is ready."""
        self._sync_present(event)
        self._notify()
        self._process_ready()
        return self.state

    def handle_barcode(self, text: str) -> CheckoutState:
        """Check out a scanned item id (no security change: barcode items carry no tag)."""
        item_id = (text or "").strip()
        if _UNSAFE.search(item_id) or not self._item_re.match(item_id):
            self._scans += 1
            key = f"scan:{self._scans}"
            self._items[key] = CheckoutItem(
                key=key,
                item_id="",
                source=ItemSource.BARCODE,
                status=ItemStatus.UNREADABLE,
                refusal=Refusal.UNKNOWN_ITEM,
                message="not an item number",
            )
            self._notify()
            return self.state
        if item_id in self._items:
            return self.state  # scanned again: recognised, never checked out twice
        self._items[item_id] = CheckoutItem(
            key=item_id,
            item_id=item_id,
            source=ItemSource.BARCODE,
            status=ItemStatus.SEEN,
            on_pad=False,
        )
        self._notify()
        self._checkout(item_id)
        return self.state

    def confirm_fee(self, item_id: str) -> CheckoutState:
        """The patron accepted the fee: re-send the checkout with fee acknowledged."""
        item = self._items.get(item_id)
        if item is None or not item.fee_pending:
            return self.state
        self._ack.add(item_id)
        self._items[item_id] = replace(
            item, status=ItemStatus.SEEN, refusal=Refusal.NONE, message=""
        )
        self._notify()
        self._checkout(item_id)
        return self.state

    def decline_fee(self, item_id: str) -> CheckoutState:
        """The patron declined the fee: the item stays refused."""
        item = self._items.get(item_id)
        if item is not None and item.fee_pending:
            self._items[item_id] = replace(item, fee_declined=True)
            self._notify()
        return self.state

    def receipt_lines(self) -> tuple[ReceiptLine, ...]:
        """Every item with a final answer, for the session's receipt."""
        return tuple(
            i.receipt_line()
            for i in self._items.values()
            if i.status
            in (ItemStatus.CHECKED_OUT, ItemStatus.REFUSED, ItemStatus.TO_DESK, ItemStatus.WAITING)
        )

    def wipe(self) -> None:
        """Forget the list and the PIN (logout)."""
        self._items.clear()
        self._present.clear()
        self._uids.clear()
        self._ack.clear()
        self._titles_asked.clear()
        self._pin = None

    # -- internals --------------------------------------------------------------------------

    def _notify(self) -> None:
        if self._listener is not None:
            self._listener(self.state)

    def _sync_present(self, event: TagsChanged) -> None:
        present = event.present if (event.present or not event.added) else event.added
        now: dict[str, dict[str, ItemTag]] = {}
        unreadable: set[str] = set()
        for tag in present:
            if tag.readable:
                now.setdefault(tag.item_id, {})[tag.uid] = tag
                self._uids.setdefault(tag.item_id, {})[tag.uid] = tag
            else:
                key = tag.key
                unreadable.add(key)
                if key not in self._items:
                    self._items[key] = CheckoutItem(
                        key=key,
                        item_id="",
                        source=ItemSource.RFID,
                        status=ItemStatus.UNREADABLE,
                        refusal=Refusal.UNREADABLE_TAG,
                        message=tag.error or "tag has no item id",
                    )
        self._present = now
        for key, item in list(self._items.items()):
            if item.source is not ItemSource.RFID:
                continue
            if item.status is ItemStatus.UNREADABLE:
                on_pad = key in unreadable
                if item.on_pad != on_pad:
                    self._items[key] = replace(item, on_pad=on_pad)
                continue
            parts = now.get(item.item_id, {})
            updated = replace(item, on_pad=bool(parts), parts_present=parts_present(parts.values()))
            if updated != item:
                self._items[key] = updated
        for item_id, parts in now.items():
            if item_id not in self._items:
                first = next(iter(parts.values()))
                self._items[item_id] = CheckoutItem(
                    key=item_id,
                    item_id=item_id,
                    source=ItemSource.RFID,
                    status=ItemStatus.SEEN,
                    parts_in_set=max(1, first.parts_in_set),
                    parts_present=parts_present(parts.values()),
                )

    def _process_ready(self) -> None:
        # Pipelined: the verified tag write of item n runs on a writer thread while the library
        # system is asked about item n+1 (the reader and the SIP2 link are separate resources).
        # At most one write is in flight and it is settled - reversed if it failed - before the
        # next one starts, so a reversal's checkin still goes over the link in order and its
        # re-secure writes never race another write (docs/performance.md).
        candidates = [
            key
            for key, item in self._items.items()
            if item.source is ItemSource.RFID
            and item.status in (ItemStatus.SEEN, ItemStatus.WAITING)
        ]
        writer = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="tag-write")
            if len(candidates) > 1 and self._security is not None
            else None
        )
        pending: tuple[str, CheckoutItem, list[ItemTag], Future[tuple[list[str], str]]] | None
        pending = None
        try:
            for key in candidates:
                item = self._items[key]
                if item.parts_in_set > 1 and item.parts_present < item.parts_in_set:
                    waiting = replace(
                        item, status=ItemStatus.WAITING, refusal=Refusal.SET_INCOMPLETE
                    )
                    if waiting != item:
                        self._items[key] = waiting
                        self._notify()
                    self._fetch_title(key)
                    continue
                done = self._ask(key)
                if pending is not None:
                    self._settle(pending)
                    pending = None
                if done is None:
                    continue
                tags = self._tags_of(done)
                if writer is None:
                    self._items[key] = self._written(done, *self._write_tags(done, tags))
                    self._notify()
                else:
                    pending = (key, done, tags, writer.submit(self._write_tags, done, tags))
            if pending is not None:
                self._settle(pending)
        finally:
            if writer is not None:
                writer.shutdown(wait=True)

    def _settle(
        self, pending: tuple[str, CheckoutItem, list[ItemTag], Future[tuple[list[str], str]]]
    ) -> None:
        key, done, tags, future = pending
        try:
            attempted, failure = future.result()
        except Exception as exc:  # _write_tags catches reader faults; this is a defect
            log_fault(log, exc, "tag write for item %s failed", done.item_id)
            attempted, failure = [t.uid for t in tags], str(exc) or "tag write not verified"
        self._items[key] = self._written(done, attempted, failure)
        self._notify()

    def _fetch_title(self, key: str) -> None:
        """A waiting set's title, asked of the library system once (nothing else would ask it)."""
        item = self._items[key]
        if item.title or item.item_id in self._titles_asked:
            return
        self._titles_asked.add(item.item_id)
        try:
            title = self._circ.item_information(item.item_id).title
        except Exception as exc:  # no title is no reason to stop: the item id is shown instead
            log_fault(log, exc, "no title for waiting set %s", item.item_id, level=logging.INFO)
            return
        current = self._items.get(key)
        if title and current is not None and not current.title:
            self._items[key] = replace(current, title=title)
            self._notify()

    def _checkout(self, key: str) -> None:
        done = self._ask(key)
        if done is not None:
            self._items[key] = self._written(done, *self._write_tags(done, self._tags_of(done)))
            self._notify()

    def _ask(self, key: str) -> CheckoutItem | None:
        """Check the item out at the library system; the item still to be unsecured, or None
        when its state is final already (refused, or no tag write needed)."""
        item = self._items[key]
        if self._refuse_all is not Refusal.NONE:
            self._items[key] = replace(item, status=ItemStatus.REFUSED, refusal=self._refuse_all)
            self._notify()
            return None
        result = self._call_checkout(item.item_id, fee_acknowledged=item.item_id in self._ack)
        item = replace(item, title=result.title or item.title)
        if not result.ok:
            refusal = result.refusal if result.refusal is not Refusal.NONE else Refusal.OTHER
            self._items[key] = replace(
                item,
                status=ItemStatus.REFUSED,
                refusal=refusal,
                message=result.message,
                fee_amount=result.fee_amount,
                offline=result.mode is Mode.OFFLINE,
            )
            self._notify()
            return None
        done = replace(
            item,
            status=ItemStatus.CHECKED_OUT,
            refusal=Refusal.NONE,
            message=result.message,
            due_date=result.due_date,
            offline=result.mode is Mode.OFFLINE,
            queued=result.queued,
            renewal=result.renewal,
            previous_due=self._known_due.get(item.item_id, "")
            if (result.renewal and result.due_date)
            else "",
            fee_amount=result.fee_amount,
        )
        if (
            item.source is ItemSource.RFID
            and self._security is not None
            and result.desensitize is not False
        ):
            if item.title != self._items[key].title:
                # The title as soon as the library system names it, one round trip after the
                # stack was believed; the item stays "checking" until its tag is unsecured and
                # verified (_written), which takes the air time of a write and its read-back.
                self._items[key] = item
                self._notify()
            return done
        self._items[key] = done
        self._notify()
        return None

    def _call_checkout(self, item_id: str, fee_acknowledged: bool) -> CirculationResult:
        try:
            return self._circ.checkout(
                self._patron_id, item_id, pin=self._pin, fee_acknowledged=fee_acknowledged
            )
        except Exception as exc:
            # The circulation service should answer, but an item must never hang in SEEN.
            log_fault(log, exc, "checkout of item %s failed in the circulation service", item_id)
            return CirculationResult.service_failed(Operation.CHECKOUT, item_id, exc)

    def _tags_of(self, item: CheckoutItem) -> list[ItemTag]:
        return list(self._present.get(item.item_id, {}).values()) or list(
            self._uids.get(item.item_id, {}).values()
        )

    def _write_tags(self, item: CheckoutItem, tags: list[ItemTag]) -> tuple[list[str], str]:
        """Unsecure each tag, verified; (uids attempted, why it failed or ""). Touches no state
        of the list, so it may run on the writer thread."""
        assert self._security is not None
        attempted: list[str] = []
        for tag in tags:
            attempted.append(tag.uid)  # before the call: a write may land and still report failure
            try:
                res = self._security.unsecure(tag.uid)
                ok, msg = res.ok and not res.secured, res.message
            except Exception as exc:  # a reader fault is a failed write, handled by _written
                log_fault(log, exc, "tag %s: unsecuring item %s failed", tag.uid, item.item_id)
                ok, msg = False, str(exc)
            if not ok:
                return attempted, msg or "tag write not verified"
        return attempted, ""

    def _written(self, item: CheckoutItem, attempted: list[str], failure: str) -> CheckoutItem:
        if not failure:
            return replace(item, unsecured=True)
        log.warning(
            "could not unsecure item %s (%s); reversing the checkout", item.item_id, failure
        )
        return self._undo(item, attempted, failure)

    def _undo(self, item: CheckoutItem, attempted: list[str], failure: str) -> CheckoutItem:
        assert self._security is not None
        try:
            reversal = self._circ.checkin(item.item_id)
            reversed_ok = reversal.ok
        except Exception as exc:
            # The undo of a failed unsecure: whatever happens, the item goes to staff below.
            reversed_ok = False
            log_fault(log, exc, "reversing the checkout of %s failed", item.item_id)
        if not reversed_ok:
            # The library system has it on loan: leave the tags as they are, staff must sort it out.
            self._report(
                item.item_id,
                f"on loan at the library system but its tag(s) {', '.join(attempted)} could not "
                f"be unsecured ({failure}) and the checkout could not be reversed; the patron "
                "was told to leave it at the desk",
            )
            return replace(
                item,
                status=ItemStatus.TO_DESK,
                refusal=Refusal.SECURITY_WRITE_FAILED,
                message=failure,
                unsecured=False,
            )
        unknown: list[str] = []
        for uid in attempted:
            try:
                res = self._security.secure(uid)
                verified = res.ok and res.secured
            except Exception as exc:
                # A device boundary: an unverified tag sends the item to the desk.
                log_fault(log, exc, "tag %s: re-securing item %s failed", uid, item.item_id)
                verified = False
            if not verified:
                unknown.append(uid)
        detail = ""
        if unknown:
            # Checked in, but a tag may still be off: the shelf would hold an item the gates ignore.
            log.error(
                "item %s: checkout reversed but tag(s) %s not verified secured",
                item.item_id,
                unknown,
            )
            detail = (
                f"checkout reversed (not borrowed) but the security state of tag(s) "
                f"{', '.join(unknown)} is unknown ({failure})"
            )
        elif item.renewal:
            # The patron had it on loan before: the reversal returned a loan they never asked to end.
            detail = (
                f"renewed, but its tag(s) could not be unsecured ({failure}); the reversal "
                "checked in the loan the patron already had, and the tags are secured again"
            )
        if detail:
            self._report(item.item_id, detail + "; the patron was told to leave it at the desk")
            return replace(
                item,
                status=ItemStatus.TO_DESK,
                refusal=Refusal.SECURITY_WRITE_FAILED,
                message=failure,
                due_date="",
                undone=True,
            )
        return replace(
            item,
            status=ItemStatus.REFUSED,
            refusal=Refusal.SECURITY_WRITE_FAILED,
            message=failure,
            due_date="",
            unsecured=False,
            undone=True,
        )

    def _report(self, item_id: str, detail: str) -> None:
        """Tell staff about an item whose tag and loan may disagree (the maintenance events)."""
        if self._recorder is None:
            return
        try:
            self._recorder("security_to_desk", f"item {item_id}: {detail}")
        except Exception as exc:
            # Recording for staff must never stop the checkout; a bug keeps its traceback.
            log_fault(log, exc, "could not record the desk item %s for staff", item_id)
