"""In-memory stand-ins for the core's ports: a small honest library, tag security and a sorter.

Each records its calls and takes scripted answers or injected failures, so core tests drive every
path without sockets or devices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from kiosk.core.domain import (
    BlockReason,
    CirculationResult,
    Fee,
    Hold,
    ItemInfo,
    ItemTag,
    LinkStatus,
    Loan,
    Mode,
    Operation,
    Patron,
    PatronResult,
    Refusal,
    RenewAllResult,
    Routing,
)
from kiosk.core.ports import Clock, SecurityResult
from kiosk.devices.errors import DeviceError


@dataclass
class LibPatron:
    patron_id: str
    name: str = ""
    pin: str = ""
    blocks: tuple[BlockReason, ...] = ()
    valid: bool = True
    fees: tuple[Fee, ...] = ()
    holds: tuple[Hold, ...] = ()
    email: str = ""
    language: str = ""


@dataclass
class LibItem:
    item_id: str
    title: str = ""
    loanable: bool = True
    on_loan_to: str = ""
    hold_for: str = ""
    due_date: str = ""
    fee: str = ""  # a checkout fee that must be acknowledged
    renewals_left: int = 2
    routing: Routing = field(default_factory=Routing)
    overdue: bool = False


class FakeCirculation:
    """A tiny library system with an offline mode that queues, like the real service's policy."""

    def __init__(
        self, clock: Clock, offline_policy: str = "checkin-only", max_offline_checkouts: int = 5
    ) -> None:
        self.clock = clock
        self.patrons: dict[str, LibPatron] = {}
        self.items: dict[str, LibItem] = {}
        self.online = True
        self.offline_policy = offline_policy
        self.max_offline_checkouts = max_offline_checkouts
        self.renewal_ok = True
        self.supported: frozenset[str] = frozenset()
        self.calls: list[tuple[str, tuple[object, ...]]] = []
        self.queue: list[tuple[str, str, str]] = []
        self.fail_next: dict[str, Exception] = {}  # operation -> exception raised once
        self.script: dict[
            tuple[str, str], Callable[..., object]
        ] = {}  # (operation, item id) -> answer
        self.end_session_error: Exception | None = None
        self.item_information_error: Exception | None = None
        self.script_identify: PatronResult | None = None  # the next identify answer, once

    # world building
    def add_patron(self, patron_id: str, **kw: object) -> LibPatron:
        p = LibPatron(patron_id, **kw)  # type: ignore[arg-type]
        self.patrons[patron_id] = p
        return p

    def add_item(self, item_id: str, **kw: object) -> LibItem:
        i = LibItem(item_id, **kw)  # type: ignore[arg-type]
        self.items[item_id] = i
        return i

    def _due(self, days: int = 21) -> str:
        return (self.clock.now() + timedelta(days=days)).strftime("%Y%m%d    235959")

    def _raise(self, op: str) -> None:
        exc = self.fail_next.pop(op, None)
        if exc is not None:
            raise exc

    def _patron(self, p: LibPatron, pin_ok: bool | None) -> Patron:
        loans = tuple(
            Loan(i.item_id, i.title, i.due_date, i.overdue)
            for i in self.items.values()
            if i.on_loan_to == p.patron_id
        )
        total = sum(float(f.amount) for f in p.fees)
        return Patron(
            patron_id=p.patron_id,
            name=p.name,
            valid=p.valid,
            pin_ok=pin_ok,
            blocks=p.blocks,
            loans=loans,
            holds=p.holds,
            fees=p.fees,
            fee_total=f"{total:.2f}" if p.fees else "",
            email=p.email,
            language=p.language,
        )

    # the Circulation protocol
    def identify_patron(self, patron_id: str, pin: str | None = None) -> PatronResult:
        self.calls.append(("identify_patron", (patron_id, pin is not None)))
        self._raise("identify_patron")
        if self.script_identify is not None:
            answer, self.script_identify = self.script_identify, None
            return answer
        if not self.online:
            if self.offline_policy == "checkin-and-checkout":
                return PatronResult(ok=True, mode=Mode.OFFLINE, patron=Patron(patron_id=patron_id))
            return PatronResult(
                ok=False, mode=Mode.OFFLINE, refusal=Refusal.OFFLINE_NOT_ALLOWED, message="offline"
            )
        p = self.patrons.get(patron_id)
        # Like the SIP2 service: an invalid patron or a wrong/missing PIN (CQ=N) is "not ok, blocked".
        if p is None:
            return PatronResult(
                ok=False,
                mode=Mode.ONLINE,
                patron=Patron(patron_id=patron_id, valid=False),
                message="Unknown patron",
                refusal=Refusal.PATRON_BLOCKED,
            )
        pin_ok: bool | None = None
        if p.pin:
            pin_ok = pin == p.pin
        patron = self._patron(p, pin_ok)
        ok = patron.valid and pin_ok is not False
        return PatronResult(
            ok=ok,
            mode=Mode.ONLINE,
            patron=patron,
            refusal=Refusal.NONE if ok else Refusal.PATRON_BLOCKED,
        )

    def checkout(
        self, patron_id: str, item_id: str, pin: str | None = None, fee_acknowledged: bool = False
    ) -> CirculationResult:
        self.calls.append(("checkout", (patron_id, item_id, pin is not None, fee_acknowledged)))
        self._raise("checkout")
        if ("checkout", item_id) in self.script:
            return self.script[("checkout", item_id)](patron_id, item_id, fee_acknowledged)  # type: ignore[return-value]
        base = CirculationResult(
            Operation.CHECKOUT, ok=False, mode=Mode.ONLINE, item_id=item_id, patron_id=patron_id
        )
        if not self.online:
            if self.offline_policy != "checkin-and-checkout":
                return replace(base, mode=Mode.OFFLINE, refusal=Refusal.OFFLINE_NOT_ALLOWED)
            if sum(1 for q in self.queue if q[0] == "checkout") >= self.max_offline_checkouts:
                return replace(base, mode=Mode.OFFLINE, refusal=Refusal.OFFLINE_LIMIT)
            self.queue.append(("checkout", patron_id, item_id))
            return replace(
                base,
                ok=True,
                mode=Mode.OFFLINE,
                queued=True,
                due_date=self._due(14),
                desensitize=True,
            )
        item = self.items.get(item_id)
        if item is None:
            return replace(base, refusal=Refusal.UNKNOWN_ITEM, message="Item not found")
        base = replace(base, title=item.title)
        if not item.loanable:
            return replace(
                base, refusal=Refusal.NOT_FOR_LOAN, message="Not for loan", desensitize=False
            )
        if item.hold_for and item.hold_for != patron_id:
            return replace(
                base, refusal=Refusal.ON_HOLD_FOR_OTHER, message="Reserved for another patron"
            )
        if item.on_loan_to and item.on_loan_to != patron_id:
            return replace(
                base, refusal=Refusal.ALREADY_ON_LOAN, message="On loan to another patron"
            )
        if item.fee and not fee_acknowledged:
            return replace(
                base,
                refusal=Refusal.FEE_REQUIRED,
                fee_amount=item.fee,
                message=f"Fee {item.fee} EUR",
            )
        renewal = item.on_loan_to == patron_id
        item.on_loan_to, item.due_date, item.hold_for = patron_id, self._due(), ""
        return replace(
            base,
            ok=True,
            due_date=item.due_date,
            desensitize=True,
            renewal=renewal,
            fee_amount=item.fee if fee_acknowledged else "",
        )

    def checkin(self, item_id: str) -> CirculationResult:
        self.calls.append(("checkin", (item_id,)))
        self._raise("checkin")
        if ("checkin", item_id) in self.script:
            return self.script[("checkin", item_id)](item_id)  # type: ignore[return-value]
        base = CirculationResult(Operation.CHECKIN, ok=False, mode=Mode.ONLINE, item_id=item_id)
        if not self.online:
            if self.offline_policy == "disabled":
                return replace(
                    base, mode=Mode.OFFLINE, refusal=Refusal.OFFLINE_NOT_ALLOWED, message="offline"
                )
            self.queue.append(("checkin", "", item_id))
            return replace(base, ok=True, mode=Mode.OFFLINE, queued=True, resensitize=True)
        item = self.items.get(item_id)
        if item is None:
            return replace(base, refusal=Refusal.UNKNOWN_ITEM, message="Item not found")
        base = replace(base, title=item.title, routing=item.routing)
        if not item.on_loan_to:
            return replace(
                base,
                refusal=Refusal.NOT_ON_LOAN,
                message="Item was not checked out",
                resensitize=True,
            )
        item.on_loan_to, item.due_date = "", ""
        return replace(base, ok=True, resensitize=True)

    def renew(self, patron_id: str, item_id: str, pin: str | None = None) -> CirculationResult:
        self.calls.append(("renew", (patron_id, item_id)))
        self._raise("renew")
        base = CirculationResult(
            Operation.RENEW, ok=False, mode=Mode.ONLINE, item_id=item_id, patron_id=patron_id
        )
        item = self.items.get(item_id)
        if not self.online:
            return replace(base, mode=Mode.OFFLINE, refusal=Refusal.LINK_DOWN)
        if item is None or item.on_loan_to != patron_id:
            return replace(base, refusal=Refusal.NOT_ON_LOAN)
        if item.renewals_left <= 0 or item.hold_for:
            return replace(
                base, title=item.title, refusal=Refusal.RENEWAL_LIMIT, message="No more renewals"
            )
        item.renewals_left -= 1
        item.due_date, item.overdue = self._due(28), False
        return replace(base, ok=True, title=item.title, due_date=item.due_date, renewal=True)

    def renew_all(self, patron_id: str, pin: str | None = None) -> RenewAllResult:
        self.calls.append(("renew_all", (patron_id,)))
        self._raise("renew_all")
        renewed, unrenewed = [], []
        for item in [i for i in self.items.values() if i.on_loan_to == patron_id]:
            res = self.renew(patron_id, item.item_id)
            (renewed if res.ok else unrenewed).append(item.item_id)
        return RenewAllResult(
            ok=True, mode=Mode.ONLINE, renewed=tuple(renewed), unrenewed=tuple(unrenewed)
        )

    def item_information(self, item_id: str) -> ItemInfo:
        self.calls.append(("item_information", (item_id,)))
        if self.item_information_error is not None:
            raise self.item_information_error
        item = self.items.get(item_id)
        return ItemInfo(item_id=item_id, title=item.title if item else "", found=item is not None)

    def end_session(self, patron_id: str) -> None:
        self.calls.append(("end_session", (patron_id,)))
        if self.end_session_error is not None:
            raise self.end_session_error

    def status(self) -> LinkStatus:
        return LinkStatus(
            online=self.online,
            renewal_ok=self.renewal_ok,
            supported=self.supported,
            offline_ok=True,
            pending=len(self.queue),
            since=datetime(2026, 1, 1),
        )

    def ops(self, name: str) -> list[tuple[object, ...]]:
        return [args for op, args in self.calls if op == name]


class FakeSecurity:
    """Tag security by UID with per-UID failure injection; `state[uid]` is True when secured."""

    def __init__(self) -> None:
        self.state: dict[str, bool] = {}
        self.fail_unsecure: set[str] = set()
        self.fail_secure: set[str] = set()
        self.raise_on: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def secure(self, uid: str) -> SecurityResult:
        return self._write("secure", uid, True, self.fail_secure)

    def unsecure(self, uid: str) -> SecurityResult:
        return self._write("unsecure", uid, False, self.fail_unsecure)

    def _write(self, call: str, uid: str, secured: bool, failing: set[str]) -> SecurityResult:
        self.calls.append((call, uid))
        if uid in self.raise_on:
            raise DeviceError("reader timeout")
        if uid in failing:
            # A failed write leaves the tag as it was; unknown tags are taken to be the opposite.
            return SecurityResult(
                uid,
                ok=False,
                secured=self.state.get(uid, not secured),
                attempts=3,
                message="write not verified",
            )
        self.state[uid] = secured
        return SecurityResult(uid, ok=True, secured=secured)


class FakeSorter:
    """A sorter with `bins` bins; `down` makes it raise, `refuse` makes it answer False."""

    def __init__(self, bins: int = 4) -> None:
        self.bins = bins
        self.down = False
        self.refuse = False
        self.routed: list[tuple[str, int]] = []

    def route(self, item_id: str, bin_number: int) -> bool:
        if self.down:
            raise DeviceError("sorter not answering")
        if self.refuse or not 0 <= bin_number < self.bins:
            return False
        self.routed.append((item_id, bin_number))
        return True


class FakePrinter:
    def __init__(self) -> None:
        self.printed: list[object] = []
        self.error: Exception | None = None

    def print_receipt(self, receipt: object) -> None:
        if self.error is not None:
            raise self.error
        self.printed.append(receipt)


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def __call__(self, kind: str, detail: str) -> None:
        self.events.append((kind, detail))

    def kinds(self) -> list[str]:
        return [k for k, _ in self.events]


def tag(
    item_id: str, uid: str | None = None, part: int = 1, parts: int = 1, owner: str = ""
) -> ItemTag:
    return ItemTag(
        uid=uid or f"E004{item_id}{part:02d}",
        item_id=item_id,
        part_number=part,
        parts_in_set=parts,
        owner_institution=owner,
    )


def bad_tag(uid: str, error: str = "CRC mismatch") -> ItemTag:
    return ItemTag(uid=uid, error=error)
