"""Circulation rules of the demo library system: checkout, checkin with hold routing, renewals,
patron status, item information, holds and fees, applied over SQLAlchemy sessions.

Every method opens its own transaction and returns a frozen value; nothing here knows SIP2 wire
details, so the rules can be tested directly and the server stays a thin translation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine, and_, create_engine, event, func, inspect, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from kiosk.core.domain import AlertType, BlockReason
from kiosk.core.ports import Clock, SystemClock
from kiosk.errors import KioskError
from kiosk.sync.acs import models
from kiosk.sync.acs.models import (
    ACTIVE_HOLD_STATES,
    ApplicationRow,
    FeeRow,
    HoldRow,
    ItemRow,
    LoanRow,
    PatronRow,
    TransactionRow,
)

log = logging.getLogger(__name__)

# SIP2 circulation status codes (docs/protocols/sip2.md §7).
STATUS_OTHER = "01"
STATUS_AVAILABLE = "03"
STATUS_CHARGED = "04"
STATUS_ON_HOLD_SHELF = "08"
STATUS_IN_TRANSIT = "10"

# Media types whose security is magnetic (SIP2 "magnetic media"): tapes and diskettes.
_MAGNETIC = frozenset({"004", "005", "007", "008", "010"})

_DENY_ALL = (
    BlockReason.CHARGE_DENIED,
    BlockReason.RENEWAL_DENIED,
    BlockReason.RECALL_DENIED,
    BlockReason.HOLD_DENIED,
)


_CIRCULATION_KINDS = (
    models.CHECKOUT,
    models.CHECKIN,
    models.RENEW,
    models.CANCEL_CHECKOUT,
    models.CANCEL_CHECKIN,
)


class AcsError(KioskError):
    """The demo library system cannot do what was asked (database unreachable, bad seed, bad value)."""


@dataclass(frozen=True)
class Policy:
    """The library's circulation policy."""

    loan_days: int = 21
    max_loans: int = 10
    max_renewals: int = 3
    fee_limit: Decimal = Decimal("10.00")
    currency: str = "EUR"
    branch: str = "DEMO"  # this library's location code: holds picked up here go to its hold shelf
    hold_shelf_days: int = 7


@dataclass(frozen=True)
class LoanView:
    item_id: str
    title: str
    patron_id: str
    due: datetime
    renewals: int
    overdue: bool


@dataclass(frozen=True)
class HoldView:
    hold_id: int
    patron_id: str
    item_id: str
    title: str
    pickup_location: str
    state: str
    queue_position: int
    ready_since: datetime | None = None


@dataclass(frozen=True)
class FeeView:
    fee_id: int
    description: str
    amount: Decimal
    fee_type: str


@dataclass(frozen=True)
class TransactionView:
    kind: str
    item_id: str
    patron_id: str
    transaction_date: str
    no_block: bool
    sequence: str
    effective: datetime | None
    renewal: bool


@dataclass(frozen=True)
class PatronView:
    """A patron's standing: blocks (SIP2 status positions), PIN check, lists for 63/64."""

    patron_id: str
    found: bool
    name: str = ""
    email: str = ""
    language: str = ""
    pin_ok: bool | None = None  # None: no PIN was given to check
    has_pin: bool = False  # the patron has a PIN, so a terminal that sent none gets CQ N
    card_expired: bool = False  # SIP2 has no flag for it: only charge privileges denied
    blocks: tuple[BlockReason, ...] = ()
    fee_total: Decimal = Decimal("0.00")
    currency: str = "EUR"
    loans: tuple[LoanView, ...] = ()
    holds_ready: tuple[str, ...] = ()  # item ids waiting on the hold shelf
    holds_waiting: tuple[str, ...] = ()  # item ids or titles not yet available
    fees: tuple[FeeView, ...] = ()
    charged_limit: int = 0
    fee_limit: Decimal = Decimal("0.00")
    message: str = ""

    @property
    def overdue(self) -> tuple[str, ...]:
        return tuple(loan.item_id for loan in self.loans if loan.overdue)

    @property
    def charged(self) -> tuple[str, ...]:
        return tuple(loan.item_id for loan in self.loans)

    @property
    def may_borrow(self) -> bool:
        return (
            self.found
            and BlockReason.CHARGE_DENIED not in self.blocks
            and BlockReason.TOO_MANY_CHARGED not in self.blocks
        )


@dataclass(frozen=True)
class LoanOutcome:
    """The result of a checkout or a renewal."""

    ok: bool
    item_id: str
    patron_id: str
    title: str = ""
    due: datetime | None = None
    renewal: bool = False  # the patron already had the item
    message: str = ""
    media_type: str = ""
    magnetic: bool = False
    fee_amount: Decimal | None = None
    replayed: bool = False  # recognised as a re-sent transaction that had already been applied

    @property
    def desensitize(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class CheckinOutcome:
    """The result of a checkin, with where the item goes next."""

    ok: bool
    item_id: str
    title: str = ""
    message: str = ""
    resensitize: bool = False
    magnetic: bool = False
    media_type: str = ""
    permanent_location: str = ""
    sort_bin: str = ""
    previous_patron: str = ""
    alert: bool = False
    alert_type: AlertType = AlertType.NONE
    destination: str = ""
    hold_patron_id: str = ""
    hold_patron_name: str = ""
    collection: str = ""
    replayed: bool = False


@dataclass(frozen=True)
class RenewAllOutcome:
    ok: bool
    patron_id: str
    renewed: tuple[str, ...] = ()
    unrenewed: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class ItemView:
    """What the library knows about an item (SIP2 17/18)."""

    item_id: str
    found: bool
    title: str = ""
    author: str = ""
    circulation_status: str = STATUS_OTHER
    due: datetime | None = None
    hold_queue_length: int = 0
    hold_pickup_date: datetime | None = None
    owner: str = ""
    media_type: str = ""
    permanent_location: str = ""
    current_location: str = ""
    properties: str = ""
    parts_in_set: int = 1
    loanable: bool = True
    message: str = ""


@dataclass(frozen=True)
class HoldOutcome:
    ok: bool
    patron_id: str
    item_id: str = ""
    title: str = ""
    available: bool = False
    queue_position: int = 0
    pickup_location: str = ""
    expires: datetime | None = None
    message: str = ""


@dataclass(frozen=True)
class FeeOutcome:
    accepted: bool
    patron_id: str
    paid: Decimal = Decimal("0.00")
    remaining: Decimal = Decimal("0.00")
    transaction_id: str = ""
    message: str = ""


def _is_real_date(text: str) -> bool:
    return bool(text.strip()) and set(text) - {"0", " "} != set()


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(Decimal("0.01"))


def _loan_base(item_id: str, patron_id: str, item: ItemRow | None) -> dict[str, Any]:
    """The fields every loan answer carries: the ids, and the item's details once it is known."""
    base: dict[str, Any] = {"item_id": item_id, "patron_id": patron_id}
    if item is not None:
        base.update(
            title=item.title, media_type=item.media_type, magnetic=item.media_type in _MAGNETIC
        )
    return base


def make_engine(database_url: str) -> Engine:
    """An engine for the demo database; SQLite gets thread-safe settings, anything else is left as is."""
    try:
        url = make_url(database_url)
    except Exception as exc:  # make_url raises ArgumentError and ValueError variants
        raise AcsError(
            f"acs.database_url: {database_url!r} is not a database URL ({exc})"
        ) from None
    kwargs: dict = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if url.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool
    try:
        engine = create_engine(url, **kwargs)
    except Exception as exc:  # missing driver, bad options
        raise AcsError(
            f"acs.database_url: cannot use {url.render_as_string(hide_password=True)} ({exc})"
        ) from None
    if url.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL with synchronous=NORMAL survives a crash of the process (the failure tests simulate) at a
    # fraction of the fsync cost per transaction; foreign keys are off in SQLite unless asked for.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class Library:
    """The demo library: circulation rules plus queries for tests and technicians. Thread-safe.

    Operations are serialised by one lock: the demo serves a handful of kiosks, and one writer at a
    time keeps SQLite free of lock errors and every rule free of races.

    `strict` (the default) applies every request received, as a library system without repeat
    detection does: a repeated checkout by the same patron is a renewal, a repeated checkin a
    second return. `strict=False` brings back the repeat guard: a checkout, renewal or checkin
    repeating the item's last applied transaction (same kind, patron and transaction date) is
    answered without being applied again. Either way every application is counted
    (`applications()`, `application_counts()`) and logged with its count.
    """

    def __init__(
        self,
        engine: Engine,
        policy: Policy | None = None,
        clock: Clock | None = None,
        *,
        strict: bool = True,
    ) -> None:
        self.engine = engine
        self.policy = policy or Policy()
        self.clock: Clock = clock or SystemClock()
        self.strict = strict
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._lock = threading.RLock()

    # --- set-up --------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        database_url: str,
        policy: Policy | None = None,
        clock: Clock | None = None,
        *,
        fresh: bool = False,
        strict: bool = True,
    ) -> Library:
        """Open (and on first use create and seed) the demo database; `fresh` drops and reseeds it."""
        lib = cls(make_engine(database_url), policy, clock, strict=strict)
        lib.prepare(fresh=fresh)
        return lib

    def prepare(self, *, fresh: bool = False) -> None:
        try:
            with self._lock:
                if (
                    not fresh
                    and inspect(self.engine).get_table_names()
                    and not models.schema_matches(self.engine)
                ):
                    # A demo database holds nothing worth migrating: start it again from the catalogue.
                    log.warning("demo library database is from an older version; seeding it again")
                    fresh = True
                if fresh:
                    models.Base.metadata.drop_all(self.engine)
                models.Base.metadata.create_all(self.engine)
                with self._sessions.begin() as s:
                    if not models.is_seeded(s):
                        models.seed(s, self.clock.now(), self.policy.loan_days, self.policy.branch)
                        log.info("demo library database seeded from the demo catalogue")
        except SQLAlchemyError as exc:
            raise AcsError(
                f"demo library database {self.engine.url.render_as_string(hide_password=True)}: {exc}"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._lock:
            try:
                with self._sessions.begin() as s:
                    yield s
            except SQLAlchemyError as exc:
                raise AcsError(f"demo library database error: {exc}") from None

    # --- helpers over a session ------------------------------------------------------------

    def _now(self) -> datetime:
        now = self.clock.now()
        return now.replace(tzinfo=None) if now.tzinfo else now

    def _due(self, start: datetime) -> datetime:
        # Due at the end of the day, so a loan taken in the evening is not shorter than one taken in the morning.
        return (start + timedelta(days=self.policy.loan_days)).replace(
            hour=23, minute=59, second=59, microsecond=0
        )

    def _fee_total(self, s: Session, patron_id: str) -> Decimal:
        total = s.scalar(
            select(func.coalesce(func.sum(FeeRow.amount), 0)).where(FeeRow.patron_id == patron_id)
        )
        return _money(Decimal(str(total or 0)))

    def _loan_count(self, s: Session, patron_id: str) -> int:
        return int(
            s.scalar(
                select(func.count()).select_from(LoanRow).where(LoanRow.patron_id == patron_id)
            )
            or 0
        )

    def _blocks(
        self, s: Session, p: PatronRow, *, word_expiry: bool = True
    ) -> tuple[tuple[BlockReason, ...], str]:
        """The patron's blocks and why; `word_expiry=False` leaves the expiry out of the words
        (the SIP2 server says it in the terminal's language)."""
        blocks: list[BlockReason] = []
        messages: list[str] = []
        if p.lost_card:
            blocks += [*_DENY_ALL, BlockReason.CARD_LOST]
            messages.append("Card reported lost; please see staff")
        if p.expired:
            blocks += list(_DENY_ALL)
            if word_expiry:
                messages.append("Card expired; please see staff")
        if p.sc_blocked:
            blocks += list(_DENY_ALL)
            messages.append(f"Card blocked: {p.sc_blocked}")
        total = self._fee_total(s, p.id)
        if total > self.policy.fee_limit:
            blocks += [
                BlockReason.CHARGE_DENIED,
                BlockReason.RENEWAL_DENIED,
                BlockReason.EXCESSIVE_FEES,
            ]
            messages.append(
                f"Fees of {total} {self.policy.currency} exceed the limit of {self.policy.fee_limit}"
            )
        if self._loan_count(s, p.id) >= self.policy.max_loans:
            blocks.append(BlockReason.TOO_MANY_CHARGED)
            messages.append(f"Loan limit of {self.policy.max_loans} items reached")
        unique = tuple(dict.fromkeys(blocks))
        return unique, "; ".join(messages)

    def _pin_ok(self, p: PatronRow, pin: str | None) -> bool | None:
        if pin is None:
            return None
        if not p.pin_hash:
            return True  # no PIN set: nothing to check
        if not pin:
            return False
        return models.pin_matches(p.pin_hash, pin)

    def _loan_view(self, loan: LoanRow, title: str, now: datetime) -> LoanView:
        return LoanView(
            loan.item_id, title, loan.patron_id, loan.due, loan.renewals, loan.due < now
        )

    def _active_holds(self, s: Session, item: ItemRow) -> list[HoldRow]:
        """Holds this copy could fill, first in line first: trapped ones, then by placement."""
        rows = s.scalars(
            select(HoldRow).where(
                HoldRow.state.in_(ACTIVE_HOLD_STATES),
                or_(
                    HoldRow.item_id == item.id,
                    and_(HoldRow.item_id.is_(None), HoldRow.title == item.title),
                ),
            )
        ).all()
        return sorted(rows, key=lambda h: (h.state == models.HOLD_WAITING, h.placed, h.id))

    def _item_holds(self, s: Session, item_id: str) -> list[HoldRow]:
        rows = s.scalars(
            select(HoldRow).where(HoldRow.item_id == item_id, HoldRow.state.in_(ACTIVE_HOLD_STATES))
        ).all()
        return sorted(rows, key=lambda h: (h.state == models.HOLD_WAITING, h.placed, h.id))

    def _last_transaction(self, s: Session, item_id: str) -> TransactionRow | None:
        return s.scalars(
            select(TransactionRow)
            .where(TransactionRow.item_id == item_id, TransactionRow.kind.in_(_CIRCULATION_KINDS))
            .order_by(TransactionRow.id.desc())
            .limit(1)
        ).first()

    def _is_replay(
        self, s: Session, kind: str, item_id: str, patron_id: str, transaction_date: str
    ) -> TransactionRow | None:
        """The logged transaction this request repeats, if the item's last applied transaction is this very one.

        A kiosk that lost an answer re-sends the same transaction (same kind, item, patron and
        original transaction date), possibly on a new connection with a new sequence number; it
        must not be applied twice. Requiring it to be the item's last transaction keeps a genuine
        later transaction from being mistaken for a replay.
        """
        if self.strict or not _is_real_date(transaction_date):
            return None
        last = self._last_transaction(s, item_id)
        if (
            last
            and last.kind == kind
            and last.transaction_date == transaction_date
            and (kind == models.CHECKIN or last.patron_id == patron_id)
        ):
            return last
        return None

    def _log(
        self,
        s: Session,
        kind: str,
        item_id: str,
        patron_id: str,
        transaction_date: str,
        no_block: bool,
        sequence: str,
        effective: datetime | None,
        renewal: bool = False,
        previous_due: datetime | None = None,
    ) -> None:
        self._count(s, kind, item_id, patron_id, renewal=renewal)
        s.add(
            TransactionRow(
                kind=kind,
                item_id=item_id,
                patron_id=patron_id,
                transaction_date=transaction_date[:18],
                no_block=no_block,
                sequence=sequence[:1],
                effective=effective,
                applied_at=self._now(),
                renewal=renewal,
                previous_due=previous_due,
            )
        )

    def _count(
        self,
        s: Session,
        kind: str,
        item_id: str,
        patron_id: str,
        *,
        renewal: bool = False,
        note: str = "",
    ) -> None:
        """Count one application of a request and log it with its running count for the item and kind."""
        s.add(
            ApplicationRow(
                kind=kind,
                item_id=item_id,
                patron_id=patron_id,
                renewal=renewal,
                note=note[:100],
                applied_at=self._now(),
            )
        )
        s.flush()
        count = s.scalar(
            select(func.count())
            .select_from(ApplicationRow)
            .where(ApplicationRow.item_id == item_id, ApplicationRow.kind == kind)
        )
        log.info(
            "applied %s%s of item %s (application %d of this kind for the item%s)",
            kind,
            " as a renewal" if renewal else "",
            item_id or "-",
            count or 0,
            f"; {note}" if note else "",
        )

    # --- patrons ---------------------------------------------------------------------------

    def patron_status(self, patron_id: str, pin: str | None = None) -> PatronView:
        """A patron's standing and lists (SIP2 23/63); unknown patrons come back with found=False."""
        with self._tx() as s:
            return self._patron_view(s, patron_id, pin)

    def _patron_view(self, s: Session, patron_id: str, pin: str | None) -> PatronView:
        p = s.get(PatronRow, patron_id) if patron_id else None
        if p is None:
            return PatronView(
                patron_id,
                False,
                blocks=_DENY_ALL,
                currency=self.policy.currency,
                message="Unknown patron card; please see staff",
            )
        now = self._now()
        blocks, message = self._blocks(s, p, word_expiry=False)
        loans = tuple(
            self._loan_view(loan, title, now)
            for loan, title in s.execute(
                select(LoanRow, ItemRow.title)
                .join(ItemRow, ItemRow.id == LoanRow.item_id)
                .where(LoanRow.patron_id == p.id)
                .order_by(LoanRow.due, LoanRow.item_id)
            ).all()
        )
        holds = s.scalars(
            select(HoldRow)
            .where(HoldRow.patron_id == p.id, HoldRow.state.in_(ACTIVE_HOLD_STATES))
            .order_by(HoldRow.placed, HoldRow.id)
        ).all()
        fees = tuple(
            FeeView(f.id, f.description, _money(f.amount), f.fee_type)
            for f in s.scalars(
                select(FeeRow)
                .where(FeeRow.patron_id == p.id, FeeRow.amount > 0)
                .order_by(FeeRow.id)
            ).all()
        )
        pin_ok = self._pin_ok(p, pin)
        if pin_ok is False:
            message = "; ".join(filter(None, ["Wrong PIN", message]))
        return PatronView(
            patron_id=p.id,
            found=True,
            name=p.name,
            email=p.email,
            language=p.language,
            pin_ok=pin_ok,
            has_pin=bool(p.pin_hash),
            card_expired=p.expired,
            blocks=blocks,
            fee_total=self._fee_total(s, p.id),
            currency=self.policy.currency,
            loans=loans,
            holds_ready=tuple(h.item_id or h.title for h in holds if h.state == models.HOLD_READY),
            holds_waiting=tuple(
                h.item_id or h.title for h in holds if h.state != models.HOLD_READY
            ),
            fees=fees,
            charged_limit=self.policy.max_loans,
            fee_limit=self.policy.fee_limit,
            message=message,
        )

    def block_patron(
        self, patron_id: str, reason: str = "blocked by a self-service terminal"
    ) -> PatronView:
        """SIP2 01: block the card until staff (or 25 Patron Enable) lift it."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id)
            if p is not None:
                p.sc_blocked = (reason or "blocked by a self-service terminal")[:255]
                s.flush()
            return self._patron_view(s, patron_id, None)

    def enable_patron(self, patron_id: str) -> PatronView:
        """SIP2 25: lift a block set by a terminal (not lost/expired, which are staff matters)."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id)
            if p is not None:
                p.sc_blocked = ""
                s.flush()
            return self._patron_view(s, patron_id, None)

    def set_patron_flags(
        self, patron_id: str, *, lost_card: bool | None = None, expired: bool | None = None
    ) -> None:
        """Staff actions on a card (tests and technicians)."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id)
            if p is None:
                raise AcsError(f"no patron {patron_id!r} in the demo library")
            if lost_card is not None:
                p.lost_card = lost_card
            if expired is not None:
                p.expired = expired

    def add_fee(
        self, patron_id: str, amount: Decimal | str, description: str = "Fee", fee_type: str = "01"
    ) -> int:
        try:
            value = _money(Decimal(amount))
        except InvalidOperation:
            raise AcsError(f"fee amount {amount!r} is not a number like 2.50") from None
        with self._tx() as s:
            if s.get(PatronRow, patron_id) is None:
                raise AcsError(f"no patron {patron_id!r} in the demo library")
            fee = FeeRow(
                patron_id=patron_id, description=description, amount=value, fee_type=fee_type
            )
            s.add(fee)
            s.flush()
            return fee.id

    # --- checkout and renewal --------------------------------------------------------------

    def checkout(
        self,
        patron_id: str,
        item_id: str,
        *,
        pin: str | None = None,
        no_block: bool = False,
        transaction_date: str = "",
        when: datetime | None = None,
        nb_due: datetime | None = None,
        sequence: str = "",
        renewal_allowed: bool = True,
        fee_acknowledged: bool = False,
    ) -> LoanOutcome:
        """SIP2 11. A no-block replay (`no_block`) is applied without the patron's blocks, limits,
        holds or PIN, with the given checkout time `when` and due date `nb_due` (else one loan
        period from `when`); only what cannot be a loan at all (unknown patron or item, an item
        not for loan) is still refused."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id) if patron_id else None
            item = s.get(ItemRow, item_id) if item_id else None
            base = _loan_base(item_id, patron_id, item)
            if item is None:
                return LoanOutcome(
                    False, **base, message="Unknown item; please take it to the desk"
                )
            if p is None:
                return LoanOutcome(False, **base, message="Unknown patron card; please see staff")

            replay = self._is_replay(s, models.CHECKOUT, item_id, patron_id, transaction_date)
            loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
            if replay is not None and loan is not None and loan.patron_id == patron_id:
                log.info(
                    "checkout of %s repeats an applied transaction; answering without applying again",
                    item_id,
                )
                return LoanOutcome(
                    True, **base, due=loan.due, renewal=replay.renewal, replayed=True
                )

            # Not for loan is a property of the item, not a policy a no-block replay may override
            # (Koha refuses such "issuing impossible" cases too): staff must recover the item.
            if not item.loanable:
                return LoanOutcome(
                    False, **base, message="This item is for use in the library only (not for loan)"
                )
            if no_block:
                return self._checkout_no_block(
                    s, p, item, loan, transaction_date, when, nb_due, sequence, base
                )

            if pin and self._pin_ok(p, pin) is False:
                return LoanOutcome(False, **base, message="Wrong PIN")
            blocks, why = self._blocks(s, p)
            if BlockReason.CHARGE_DENIED in blocks:
                return LoanOutcome(
                    False, **base, message=why or "Borrowing is blocked; please see staff"
                )
            if loan is not None and loan.patron_id == patron_id:
                if not renewal_allowed:
                    return LoanOutcome(
                        False,
                        **base,
                        renewal=True,
                        due=loan.due,
                        message="You already have this item; renew it at the desk",
                    )
                return self._renew(
                    s, p, item, loan, transaction_date, sequence, base, via_checkout=True
                )
            if loan is not None:
                return LoanOutcome(
                    False,
                    **base,
                    message="This item is checked out to another patron; please take it to the desk",
                )
            holds = self._item_holds(s, item.id)
            if holds and holds[0].patron_id != patron_id:
                return LoanOutcome(
                    False,
                    **base,
                    message="This item is on hold for another patron; please take it to the desk",
                )
            if self._loan_count(s, p.id) >= self.policy.max_loans:
                return LoanOutcome(
                    False, **base, message=f"Loan limit of {self.policy.max_loans} items reached"
                )
            fee = _money(item.rental_fee or Decimal("0"))
            if fee > 0 and not fee_acknowledged:
                # SIP2 fee acknowledgement: refuse with the fee, the terminal asks and re-sends with BO Y.
                return LoanOutcome(
                    False,
                    **base,
                    fee_amount=fee,
                    message=f"This item has a rental fee of {fee} {self.policy.currency}; please confirm",
                )

            now = self._now()
            due = self._due(now)
            s.add(LoanRow(item_id=item.id, patron_id=p.id, checked_out=now, due=due, renewals=0))
            if holds:
                holds[0].state = models.HOLD_FILLED
            if fee > 0:
                s.add(
                    FeeRow(
                        patron_id=p.id,
                        description=f"Rental: {item.title}"[:255],
                        fee_type="06",
                        amount=fee,
                    )
                )
            item.current_location = ""
            self._log(s, models.CHECKOUT, item.id, p.id, transaction_date, False, sequence, due)
            return LoanOutcome(True, **base, due=due, fee_amount=fee if fee > 0 else None)

    def set_rental_fee(self, item_id: str, amount: Decimal | str) -> None:
        """Make an item charge a rental fee per loan (exercises the terminal's fee acknowledgement)."""
        try:
            value = _money(Decimal(str(amount)))
        except InvalidOperation:
            raise AcsError(f"rental fee {amount!r} is not a number like 1.00") from None
        with self._tx() as s:
            item = s.get(ItemRow, item_id)
            if item is None:
                raise AcsError(f"no item {item_id!r} in the demo library")
            item.rental_fee = value

    def _checkout_no_block(
        self,
        s: Session,
        p: PatronRow,
        item: ItemRow,
        loan: LoanRow | None,
        transaction_date: str,
        when: datetime | None,
        nb_due: datetime | None,
        sequence: str,
        base: dict,
    ) -> LoanOutcome:
        # The item already left the library while the ACS was off-line: record what happened.
        start = when.replace(tzinfo=None) if when and when.tzinfo else (when or self._now())
        due = (
            nb_due.replace(tzinfo=None)
            if nb_due and nb_due.tzinfo
            else (nb_due or self._due(start))
        )
        renewal = loan is not None and loan.patron_id == p.id
        if loan is not None and not renewal:
            log.warning(
                "no-block checkout of %s: closing the loan it still had to another patron", item.id
            )
            s.delete(loan)
            s.flush()
            loan = None
        previous = None
        if loan is None:
            s.add(LoanRow(item_id=item.id, patron_id=p.id, checked_out=start, due=due, renewals=0))
        else:
            previous = loan.due
            loan.due = due
            loan.renewals += 1
        for hold in self._item_holds(s, item.id):
            if hold.patron_id == p.id:
                hold.state = models.HOLD_FILLED
        item.current_location = ""
        self._log(
            s,
            models.CHECKOUT,
            item.id,
            p.id,
            transaction_date,
            True,
            sequence,
            due,
            renewal,
            previous,
        )
        return LoanOutcome(True, **base, due=due, renewal=renewal)

    def _renew(
        self,
        s: Session,
        p: PatronRow,
        item: ItemRow,
        loan: LoanRow,
        transaction_date: str,
        sequence: str,
        base: dict,
        *,
        via_checkout: bool = False,
    ) -> LoanOutcome:
        if loan.renewals >= self.policy.max_renewals:
            return LoanOutcome(
                False,
                **base,
                renewal=via_checkout,
                due=loan.due,
                message=f"Renewal limit of {self.policy.max_renewals} reached",
            )
        if any(h.patron_id != p.id for h in self._active_holds(s, item)):
            return LoanOutcome(
                False,
                **base,
                renewal=via_checkout,
                due=loan.due,
                message="Cannot renew: another patron has placed a hold on this item",
            )
        kind = models.CHECKOUT if via_checkout else models.RENEW
        due = max(self._due(self._now()), loan.due)
        return self._apply_renewal(
            s, kind, p, item, loan, due, transaction_date, False, sequence, base
        )

    def _apply_renewal(
        self,
        s: Session,
        kind: str,
        p: PatronRow,
        item: ItemRow,
        loan: LoanRow,
        due: datetime,
        transaction_date: str,
        no_block: bool,
        sequence: str,
        base: dict,
    ) -> LoanOutcome:
        previous = loan.due
        loan.due = due
        loan.renewals += 1
        self._log(
            s,
            kind,
            item.id,
            p.id,
            transaction_date,
            no_block,
            sequence,
            loan.due,
            renewal=True,
            previous_due=previous,
        )
        return LoanOutcome(True, **base, due=loan.due, renewal=True)

    def renew(
        self,
        patron_id: str,
        item_id: str,
        *,
        pin: str | None = None,
        no_block: bool = False,
        transaction_date: str = "",
        nb_due: datetime | None = None,
        sequence: str = "",
        title: str = "",
    ) -> LoanOutcome:
        """SIP2 29 (by item id, or by title when the item id is empty). A no-block replay sets the
        due date to `nb_due` without policy checks."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id) if patron_id else None
            if not item_id and title and p is not None:
                item_id = (
                    s.scalar(
                        select(LoanRow.item_id)
                        .join(ItemRow, ItemRow.id == LoanRow.item_id)
                        .where(LoanRow.patron_id == patron_id, ItemRow.title == title)
                        .limit(1)
                    )
                    or ""
                )
            item = s.get(ItemRow, item_id) if item_id else None
            base = _loan_base(item_id, patron_id, item)
            if item is None:
                return LoanOutcome(False, **base, message="Unknown item")
            if p is None:
                return LoanOutcome(False, **base, message="Unknown patron card; please see staff")
            loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
            if loan is None or loan.patron_id != patron_id:
                return LoanOutcome(False, **base, message="This item is not on loan to you")
            replay = self._is_replay(s, models.RENEW, item_id, patron_id, transaction_date)
            if replay is not None:
                return LoanOutcome(True, **base, due=loan.due, renewal=True, replayed=True)
            if no_block:
                due = (
                    nb_due.replace(tzinfo=None)
                    if nb_due and nb_due.tzinfo
                    else (nb_due or self._due(self._now()))
                )
                return self._apply_renewal(
                    s, models.RENEW, p, item, loan, due, transaction_date, True, sequence, base
                )
            if pin and self._pin_ok(p, pin) is False:
                return LoanOutcome(False, **base, due=loan.due, message="Wrong PIN")
            blocks, why = self._blocks(s, p)
            if BlockReason.RENEWAL_DENIED in blocks:
                return LoanOutcome(
                    False,
                    **base,
                    due=loan.due,
                    message=why or "Renewals are blocked; please see staff",
                )
            return self._renew(s, p, item, loan, transaction_date, sequence, base)

    def renew_all(
        self,
        patron_id: str,
        *,
        pin: str | None = None,
        transaction_date: str = "",
        sequence: str = "",
    ) -> RenewAllOutcome:
        """SIP2 65: renew every loan the patron has; each one follows the renewal rules."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id) if patron_id else None
            if p is None:
                return RenewAllOutcome(
                    False, patron_id, message="Unknown patron card; please see staff"
                )
            if pin and self._pin_ok(p, pin) is False:
                return RenewAllOutcome(False, patron_id, message="Wrong PIN")
            blocks, why = self._blocks(s, p)
            loans = s.scalars(
                select(LoanRow).where(LoanRow.patron_id == patron_id).order_by(LoanRow.item_id)
            ).all()
            if BlockReason.RENEWAL_DENIED in blocks:
                return RenewAllOutcome(
                    False, patron_id, unrenewed=tuple(loan.item_id for loan in loans), message=why
                )
            renewed: list[str] = []
            unrenewed: list[str] = []
            for loan in loans:
                item = s.get(ItemRow, loan.item_id)
                if item is None:  # a loan row always has its item (foreign key)
                    continue
                out = self._renew(
                    s,
                    p,
                    item,
                    loan,
                    transaction_date,
                    sequence,
                    {"item_id": loan.item_id, "patron_id": patron_id},
                )
                (renewed if out.ok else unrenewed).append(loan.item_id)
            message = f"{len(renewed)} renewed, {len(unrenewed)} not renewed"
            return RenewAllOutcome(True, patron_id, tuple(renewed), tuple(unrenewed), message)

    def cancel_checkout(
        self, patron_id: str, item_id: str, *, transaction_date: str = "", sequence: str = ""
    ) -> LoanOutcome:
        """SIP2 11 with cancel (BI Y): undo the patron's last checkout or renewal of the item, as a
        terminal does when it could not switch the item's security off."""
        with self._tx() as s:
            item = s.get(ItemRow, item_id) if item_id else None
            base = _loan_base(item_id, patron_id, item)
            if item is None:
                return LoanOutcome(False, **base, message="Unknown item")
            loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
            last = self._last_transaction(s, item_id)
            if (
                loan is None
                or loan.patron_id != patron_id
                or last is None
                or last.kind not in (models.CHECKOUT, models.RENEW)
                or last.patron_id != patron_id
            ):
                return LoanOutcome(
                    False,
                    **base,
                    message="Nothing to cancel: the item's last transaction is not a checkout to this patron",
                )
            if last.renewal and last.previous_due is not None:
                loan.due = last.previous_due
                loan.renewals = max(0, loan.renewals - 1)
                due = loan.due
            else:
                s.delete(loan)
                due = None
            self._log(
                s,
                models.CANCEL_CHECKOUT,
                item.id,
                patron_id,
                transaction_date,
                False,
                sequence,
                due,
            )
            return LoanOutcome(
                True, **base, due=due, renewal=last.renewal, message="Checkout cancelled"
            )

    def cancel_checkin(
        self, item_id: str, *, transaction_date: str = "", sequence: str = ""
    ) -> CheckinOutcome:
        """SIP2 09 with cancel (BI Y): put the item back on loan to the patron who returned it."""
        with self._tx() as s:
            item = s.get(ItemRow, item_id) if item_id else None
            if item is None:
                return CheckinOutcome(False, item_id, message="Unknown item")
            base: dict[str, Any] = {
                "item_id": item.id,
                "title": item.title,
                "media_type": item.media_type,
                "permanent_location": item.permanent_location,
                "sort_bin": item.sort_bin,
            }
            last = self._last_transaction(s, item_id)
            loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
            if (
                loan is not None
                or last is None
                or last.kind != models.CHECKIN
                or not last.patron_id
            ):
                return CheckinOutcome(
                    False,
                    **base,
                    message="Nothing to cancel: the item's last transaction is not a checkin",
                )
            now = self._now()
            s.add(
                LoanRow(
                    item_id=item.id,
                    patron_id=last.patron_id,
                    checked_out=now,
                    due=last.previous_due or self._due(now),
                    renewals=0,
                )
            )
            for hold in self._item_holds(s, item.id):
                if hold.state != models.HOLD_WAITING:
                    hold.state, hold.ready_since = models.HOLD_WAITING, None
            self._log(
                s,
                models.CANCEL_CHECKIN,
                item.id,
                last.patron_id,
                transaction_date,
                False,
                sequence,
                None,
            )
            return CheckinOutcome(
                True, **base, previous_patron=last.patron_id, message="Checkin cancelled"
            )

    # --- checkin ---------------------------------------------------------------------------

    def checkin(
        self,
        item_id: str,
        *,
        current_location: str = "",
        no_block: bool = False,
        transaction_date: str = "",
        return_date: datetime | None = None,
        sequence: str = "",
    ) -> CheckinOutcome:
        """SIP2 09. An item that was not on loan is still checked in (ok) with a note, as Koha's
        `checked_in_ok` and Evergreen do: the item is in the library, so it is re-secured and
        routed rather than sent to the desk. An item a hold is waiting for is trapped and routed
        (alert, CV 01 here / 02 another branch)."""
        with self._tx() as s:
            item = s.get(ItemRow, item_id) if item_id else None
            if item is None:
                return CheckinOutcome(
                    False,
                    item_id,
                    message="Unknown item; please take it to the desk",
                    alert=True,
                    alert_type=AlertType.OTHER,
                )
            base: dict[str, Any] = {
                "item_id": item.id,
                "title": item.title,
                "media_type": item.media_type,
                "magnetic": item.media_type in _MAGNETIC,
                "permanent_location": item.permanent_location,
                "sort_bin": item.sort_bin,
            }
            loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
            replay = self._is_replay(s, models.CHECKIN, item_id, "", transaction_date)
            if replay is not None and loan is None:
                log.info(
                    "checkin of %s repeats an applied transaction; answering without applying again",
                    item_id,
                )
                return CheckinOutcome(
                    True,
                    **base,
                    resensitize=True,
                    previous_patron=replay.patron_id,
                    replayed=True,
                    **self._routing(s, item, current_location, trap=False),
                )

            returned = (
                (
                    return_date.replace(tzinfo=None)
                    if return_date and return_date.tzinfo
                    else return_date
                )
                if no_block
                else None
            )
            returned = returned or self._now()
            previous = ""
            messages: list[str] = []
            if loan is not None:
                previous = loan.patron_id
                s.delete(loan)
                s.flush()
                self._log(
                    s,
                    models.CHECKIN,
                    item.id,
                    previous,
                    transaction_date,
                    no_block,
                    sequence,
                    returned,
                    previous_due=loan.due,
                )
            else:
                # Applied all the same (the item is shelved again): a repeated return counts twice.
                self._count(s, models.CHECKIN, item.id, "", note="item was not on loan")
                messages.append("Item was not on loan")
            item.current_location = current_location or self.policy.branch
            routing = self._routing(s, item, current_location, trap=True)
            if item.parts_in_set > 1:
                messages.append(
                    f"Set of {item.parts_in_set} parts: check that all parts are returned"
                )
            return CheckinOutcome(
                True,
                **base,
                resensitize=True,
                previous_patron=previous,
                message="; ".join(messages),
                **routing,
            )

    def _routing(self, s: Session, item: ItemRow, current_location: str, *, trap: bool) -> dict:
        holds = self._active_holds(s, item)
        if not holds:
            return {}
        hold = holds[0]
        if hold.state == models.HOLD_WAITING:
            if not trap:
                return {}
            here = hold.pickup_location in ("", self.policy.branch, current_location)
            hold.item_id = item.id
            hold.state = models.HOLD_READY if here else models.HOLD_IN_TRANSIT
            hold.ready_since = self._now()
        patron = s.get(PatronRow, hold.patron_id)
        if hold.state == models.HOLD_READY:
            return {
                "alert": True,
                "alert_type": AlertType.HOLD_HERE,
                "hold_patron_id": hold.patron_id,
                "hold_patron_name": patron.name if patron else "",
            }
        return {
            "alert": True,
            "alert_type": AlertType.HOLD_OTHER_BRANCH,
            "destination": hold.pickup_location,
            "hold_patron_id": hold.patron_id,
            "hold_patron_name": patron.name if patron else "",
        }

    # --- items -----------------------------------------------------------------------------

    def item_information(self, item_id: str) -> ItemView:
        """SIP2 17: circulation status (spec §7 codes), hold queue, due date."""
        with self._tx() as s:
            return self._item_view(s, item_id)

    def _item_view(self, s: Session, item_id: str) -> ItemView:
        item = s.get(ItemRow, item_id) if item_id else None
        if item is None:
            return ItemView(item_id, False, message="Unknown item")
        loan = s.scalar(select(LoanRow).where(LoanRow.item_id == item_id))
        holds = self._active_holds(s, item)
        trapped = next(
            (h for h in holds if h.item_id == item.id and h.state != models.HOLD_WAITING), None
        )
        if loan is not None:
            status = STATUS_CHARGED
        elif trapped is not None and trapped.state == models.HOLD_READY:
            status = STATUS_ON_HOLD_SHELF
        elif trapped is not None:
            status = STATUS_IN_TRANSIT
        else:
            status = STATUS_AVAILABLE
        pickup = None
        if trapped is not None and trapped.ready_since is not None:
            pickup = trapped.ready_since + timedelta(days=self.policy.hold_shelf_days)
        return ItemView(
            item_id=item.id,
            found=True,
            title=item.title,
            author=item.author,
            circulation_status=status,
            due=loan.due if loan else None,
            hold_queue_length=len(holds),
            hold_pickup_date=pickup,
            owner=item.owner,
            media_type=item.media_type,
            permanent_location=item.permanent_location,
            current_location=item.current_location,
            properties=item.properties,
            parts_in_set=item.parts_in_set,
            loanable=item.loanable,
            message="" if item.loanable else "Not for loan",
        )

    def set_item_properties(self, item_id: str, properties: str) -> ItemView:
        """SIP2 19: store the item properties (CH) the terminal sent."""
        with self._tx() as s:
            item = s.get(ItemRow, item_id) if item_id else None
            if item is not None:
                item.properties = properties[:255]
                s.flush()
            return self._item_view(s, item_id)

    # --- holds and fees --------------------------------------------------------------------

    def place_hold(
        self, item_id: str, patron_id: str, pickup_location: str = "", *, title: str = ""
    ) -> HoldOutcome:
        """Place a hold on a copy (item_id) or, with item_id empty, on any copy of `title`."""
        with self._tx() as s:
            p = s.get(PatronRow, patron_id) if patron_id else None
            if p is None:
                return HoldOutcome(False, patron_id, item_id, title, message="Unknown patron card")
            item = s.get(ItemRow, item_id) if item_id else None
            if item_id and item is None:
                return HoldOutcome(False, patron_id, item_id, title, message="Unknown item")
            if item is None and not title:
                return HoldOutcome(False, patron_id, message="A hold needs an item or a title")
            blocks, why = self._blocks(s, p)
            if BlockReason.HOLD_DENIED in blocks:
                return HoldOutcome(False, patron_id, item_id, title, message=why)
            pickup = pickup_location or self.policy.branch
            hold = HoldRow(
                item_id=item.id if item else None,
                title=item.title if item else title,
                patron_id=p.id,
                pickup_location=pickup,
                placed=self._now(),
            )
            s.add(hold)
            s.flush()
            self._count(s, models.HOLD, hold.item_id or "", p.id, note=hold.title)
            if item is not None:
                queue = self._item_holds(s, item.id)
                position = 1 + [h.id for h in queue].index(hold.id)
                available = (
                    position == 1
                    and s.scalar(select(LoanRow.id).where(LoanRow.item_id == item.id)) is None
                )
            else:
                position = int(
                    s.scalar(
                        select(func.count())
                        .select_from(HoldRow)
                        .where(
                            HoldRow.item_id.is_(None),
                            HoldRow.title == title,
                            HoldRow.state.in_(ACTIVE_HOLD_STATES),
                        )
                    )
                    or 1
                )
                available = False
            return HoldOutcome(
                True, patron_id, hold.item_id or "", hold.title, available, position, pickup
            )

    def cancel_hold(self, patron_id: str, item_id: str = "", *, title: str = "") -> HoldOutcome:
        with self._tx() as s:
            conds = [HoldRow.patron_id == patron_id, HoldRow.state.in_(ACTIVE_HOLD_STATES)]
            conds.append(HoldRow.item_id == item_id if item_id else HoldRow.title == title)
            rows = s.scalars(select(HoldRow).where(*conds)).all()
            for h in rows:
                h.state = models.HOLD_CANCELLED
            if not rows:
                return HoldOutcome(False, patron_id, item_id, title, message="No such hold")
            return HoldOutcome(True, patron_id, item_id, rows[0].title, message="Hold cancelled")

    def change_hold(
        self, patron_id: str, item_id: str = "", pickup_location: str = "", *, title: str = ""
    ) -> HoldOutcome:
        with self._tx() as s:
            conds = [HoldRow.patron_id == patron_id, HoldRow.state == models.HOLD_WAITING]
            conds.append(HoldRow.item_id == item_id if item_id else HoldRow.title == title)
            rows = s.scalars(select(HoldRow).where(*conds)).all()
            if not rows:
                return HoldOutcome(False, patron_id, item_id, title, message="No such hold waiting")
            for h in rows:
                if pickup_location:
                    h.pickup_location = pickup_location
            return HoldOutcome(
                True, patron_id, item_id, rows[0].title, pickup_location=rows[0].pickup_location
            )

    def pay_fee(
        self,
        patron_id: str,
        amount: Decimal | str,
        *,
        fee_id: str = "",
        transaction_id: str = "",
        transaction_date: str = "",
    ) -> FeeOutcome:
        """SIP2 37: pay a fee (CG names one) or the oldest fees first."""
        try:
            value = _money(Decimal(str(amount).strip().replace(",", ".")))
        except InvalidOperation:
            return FeeOutcome(False, patron_id, message=f"Fee amount {amount!r} is not a number")
        with self._tx() as s:
            if not patron_id or s.get(PatronRow, patron_id) is None:
                return FeeOutcome(False, patron_id, message="Unknown patron card")
            if value <= 0:
                return FeeOutcome(False, patron_id, message="Fee amount must be more than zero")
            query = (
                select(FeeRow)
                .where(FeeRow.patron_id == patron_id, FeeRow.amount > 0)
                .order_by(FeeRow.id)
            )
            if fee_id:
                if not fee_id.isdigit():
                    return FeeOutcome(False, patron_id, message=f"No fee {fee_id!r}")
                query = query.where(FeeRow.id == int(fee_id))
            fees = s.scalars(query).all()
            owed = sum((f.amount for f in fees), Decimal("0"))
            if value > owed:
                return FeeOutcome(
                    False, patron_id, message=f"Payment {value} exceeds the {_money(owed)} owed"
                )
            left = value
            for f in fees:
                part = min(left, f.amount)
                f.amount = _money(f.amount - part)
                left -= part
                if left <= 0:
                    break
            s.flush()
            txid = (
                transaction_id
                or f"DEMO{s.scalar(select(func.count()).select_from(TransactionRow)) or 0:06d}"
            )
            self._log(s, models.FEE_PAID, "", patron_id, transaction_date, False, "", None)
            return FeeOutcome(
                True,
                patron_id,
                value,
                self._fee_total(s, patron_id),
                txid,
                f"Paid {value} {self.policy.currency}",
            )

    # --- queries for tests and technicians -------------------------------------------------

    def loans_of(self, patron_id: str) -> list[str]:
        with self._tx() as s:
            return list(
                s.scalars(
                    select(LoanRow.item_id)
                    .where(LoanRow.patron_id == patron_id)
                    .order_by(LoanRow.item_id)
                )
            )

    def loan(self, item_id: str) -> LoanView | None:
        with self._tx() as s:
            row = s.execute(
                select(LoanRow, ItemRow.title)
                .join(ItemRow, ItemRow.id == LoanRow.item_id)
                .where(LoanRow.item_id == item_id)
            ).first()
            return self._loan_view(row[0], row[1], self._now()) if row else None

    def item_status(self, item_id: str) -> str:
        """The SIP2 circulation status code of an item ("01" for an unknown one)."""
        return self.item_information(item_id).circulation_status

    def holds(
        self, item_id: str = "", patron_id: str = "", *, include_closed: bool = False
    ) -> list[HoldView]:
        with self._tx() as s:
            query = select(HoldRow).order_by(HoldRow.placed, HoldRow.id)
            if item_id:
                query = query.where(HoldRow.item_id == item_id)
            if patron_id:
                query = query.where(HoldRow.patron_id == patron_id)
            if not include_closed:
                query = query.where(HoldRow.state.in_(ACTIVE_HOLD_STATES))
            rows = s.scalars(query).all()
            return [
                HoldView(
                    h.id,
                    h.patron_id,
                    h.item_id or "",
                    h.title,
                    h.pickup_location,
                    h.state,
                    n + 1,
                    h.ready_since,
                )
                for n, h in enumerate(rows)
            ]

    def fee_total(self, patron_id: str) -> Decimal:
        with self._tx() as s:
            return self._fee_total(s, patron_id)

    def applications(self, item_id: str, kind: str) -> int:
        """How many requests of `kind` (checkout, checkin, renew, cancel_checkout, cancel_checkin,
        fee_paid, hold) were applied to the item ("" for fees). A checkout applied as a renewal
        counts as a checkout; a return of an item no longer on loan counts as a checkin."""
        return self._count_rows(ApplicationRow, item_id, kind)

    def applied(self, item_id: str, kind: str) -> int:
        """How many transactions of `kind` changed a loan of the item (the transaction log): unlike
        `applications()`, a return of an item that was not on loan is not one."""
        return self._count_rows(TransactionRow, item_id, kind)

    def _count_rows(
        self, table: type[ApplicationRow] | type[TransactionRow], item_id: str, kind: str
    ) -> int:
        with self._tx() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.item_id == item_id, table.kind == kind)
                )
                or 0
            )

    def application_counts(self) -> dict[tuple[str, str], int]:
        """Every (item id, kind) the library applied a request for, with how many times."""
        with self._tx() as s:
            rows = s.execute(
                select(ApplicationRow.item_id, ApplicationRow.kind, func.count())
                .group_by(ApplicationRow.item_id, ApplicationRow.kind)
                .order_by(ApplicationRow.item_id, ApplicationRow.kind)
            ).all()
            return {(item_id, kind): int(n) for item_id, kind, n in rows}

    def transactions(self, item_id: str = "") -> list[TransactionView]:
        with self._tx() as s:
            query = select(TransactionRow).order_by(TransactionRow.id)
            if item_id:
                query = query.where(TransactionRow.item_id == item_id)
            return [
                TransactionView(
                    t.kind,
                    t.item_id,
                    t.patron_id,
                    t.transaction_date,
                    t.no_block,
                    t.sequence,
                    t.effective,
                    t.renewal,
                )
                for t in s.scalars(query).all()
            ]
