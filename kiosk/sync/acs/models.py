"""SQL tables of the demo library system and its seed data from kiosk/demo_catalog.py.

Only portable SQLAlchemy types are used, so a site can point the demo at PostgreSQL as well as SQLite.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    ForeignKey,
    Integer,
    Numeric,
    String,
    inspect,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from kiosk import demo_catalog

# Hold states: waiting in the queue, waiting on this library's hold shelf, travelling to another
# branch's hold shelf, picked up (filled), cancelled.
HOLD_WAITING = "waiting"
HOLD_READY = "ready"
HOLD_IN_TRANSIT = "in_transit"
HOLD_FILLED = "filled"
HOLD_CANCELLED = "cancelled"
ACTIVE_HOLD_STATES = (HOLD_WAITING, HOLD_READY, HOLD_IN_TRANSIT)

# Transaction kinds in the log.
CHECKOUT = "checkout"
CHECKIN = "checkin"
RENEW = "renew"
CANCEL_CHECKOUT = "cancel_checkout"
CANCEL_CHECKIN = "cancel_checkin"
FEE_PAID = "fee_paid"
HOLD = "hold"

_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class Base(DeclarativeBase):
    pass


class PatronRow(Base):
    __tablename__ = "acs_patron"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    pin_hash: Mapped[str] = mapped_column(String(200), default="")  # "" = no PIN set
    email: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str] = mapped_column(String(8), default="lv")
    lost_card: Mapped[bool] = mapped_column(Boolean, default=False)
    expired: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by SIP2 01 Block Patron (a terminal retained or blocked the card); cleared by 25.
    sc_blocked: Mapped[str] = mapped_column(String(255), default="")


class ItemRow(Base):
    __tablename__ = "acs_item"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    author: Mapped[str] = mapped_column(String(255), default="")
    media_type: Mapped[str] = mapped_column(String(3), default="001")
    parts_in_set: Mapped[int] = mapped_column(Integer, default=1)
    loanable: Mapped[bool] = mapped_column(Boolean, default=True)
    owner: Mapped[str] = mapped_column(String(64), default="")
    permanent_location: Mapped[str] = mapped_column(String(100), default="")
    current_location: Mapped[str] = mapped_column(String(100), default="")
    sort_bin: Mapped[str] = mapped_column(String(16), default="")
    properties: Mapped[str] = mapped_column(String(255), default="")  # SIP2 CH, set by 19
    rental_fee: Mapped[Decimal] = mapped_column(
        Numeric(10, 2), default=Decimal("0.00")
    )  # charged per loan


class LoanRow(Base):
    __tablename__ = "acs_loan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("acs_item.id"), unique=True)
    patron_id: Mapped[str] = mapped_column(ForeignKey("acs_patron.id"), index=True)
    checked_out: Mapped[datetime] = mapped_column(DateTime)
    due: Mapped[datetime] = mapped_column(DateTime)
    renewals: Mapped[int] = mapped_column(Integer, default=0)


class HoldRow(Base):
    __tablename__ = "acs_hold"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # A copy-level hold names the item; a title-level hold names only the title until a copy
    # is trapped for it at checkin.
    item_id: Mapped[str | None] = mapped_column(
        ForeignKey("acs_item.id"), nullable=True, index=True
    )
    title: Mapped[str] = mapped_column(String(255), default="")
    patron_id: Mapped[str] = mapped_column(ForeignKey("acs_patron.id"), index=True)
    pickup_location: Mapped[str] = mapped_column(String(100), default="")
    placed: Mapped[datetime] = mapped_column(DateTime)
    state: Mapped[str] = mapped_column(String(16), default=HOLD_WAITING)
    ready_since: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class FeeRow(Base):
    __tablename__ = "acs_fee"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patron_id: Mapped[str] = mapped_column(ForeignKey("acs_patron.id"), index=True)
    description: Mapped[str] = mapped_column(String(255), default="")
    fee_type: Mapped[str] = mapped_column(String(2), default="01")
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))  # outstanding; 0 = paid


class TransactionRow(Base):
    """One applied circulation transaction, so exactly-once application can be checked and replays recognised."""

    __tablename__ = "acs_transaction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    item_id: Mapped[str] = mapped_column(String(32), index=True, default="")
    patron_id: Mapped[str] = mapped_column(String(32), default="")
    transaction_date: Mapped[str] = mapped_column(String(18), default="")  # verbatim from the SC
    no_block: Mapped[bool] = mapped_column(Boolean, default=False)
    sequence: Mapped[str] = mapped_column(String(1), default="")
    effective: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True
    )  # due or return date applied
    previous_due: Mapped[datetime | None] = mapped_column(
        DateTime, nullable=True
    )  # to undo on cancel
    applied_at: Mapped[datetime] = mapped_column(DateTime)
    renewal: Mapped[bool] = mapped_column(Boolean, default=False)


class ApplicationRow(Base):
    """One request the library applied (changed its state for), counted per item and kind.

    Unlike the transaction log, which keeps what cancels and replay checks need, this counts
    every application, including a second return of an item that was no longer on loan: tests
    assert exactly one application per transaction the kiosk journaled.
    """

    __tablename__ = "acs_application"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16), index=True)
    item_id: Mapped[str] = mapped_column(String(32), index=True, default="")
    patron_id: Mapped[str] = mapped_column(String(32), default="")
    renewal: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(100), default="")
    applied_at: Mapped[datetime] = mapped_column(DateTime)


def hash_pin(pin: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash of a PIN, as `scrypt$<salt hex>$<hash hex>`."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def pin_matches(stored: str, pin: str) -> bool:
    """Whether `pin` matches a hash made by hash_pin; a malformed stored hash never matches."""
    try:
        scheme, salt_hex, digest_hex = stored.split("$")
        salt, expected = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, dklen=len(expected), **_SCRYPT)
    return hmac.compare_digest(digest, expected)


def seed(session: Session, now: datetime, loan_days: int, branch: str) -> None:
    """Fill an empty database with the demo catalogue: patrons, fees, items, loans, holds."""
    for p in demo_catalog.PATRONS:
        session.add(
            PatronRow(
                id=p.patron_id,
                name=p.name,
                pin_hash=hash_pin(p.pin) if p.pin else "",
                email=p.email,
                language=p.language,
                lost_card=p.lost_card,
                expired=p.expired,
            )
        )
    session.flush()
    for p in demo_catalog.PATRONS:
        for description, amount in p.fees:
            session.add(
                FeeRow(patron_id=p.patron_id, description=description, amount=Decimal(amount))
            )
    session.flush()
    for i in demo_catalog.ITEMS:
        session.add(
            ItemRow(
                id=i.item_id,
                title=i.title,
                author=i.author,
                media_type=i.media_type,
                parts_in_set=i.parts_in_set,
                loanable=i.loanable,
                owner=i.owner,
                permanent_location=i.permanent_location,
                current_location=i.permanent_location,
                sort_bin=i.sort_bin,
            )
        )
    session.flush()
    for n, i in enumerate(demo_catalog.ITEMS):
        if i.on_loan_to:
            out = now - timedelta(days=loan_days + 7) if i.overdue else now - timedelta(days=3)
            session.add(
                LoanRow(
                    item_id=i.item_id,
                    patron_id=i.on_loan_to,
                    checked_out=out,
                    due=out + timedelta(days=loan_days),
                )
            )
        if i.on_hold_for:
            session.add(
                HoldRow(
                    item_id=i.item_id,
                    title=i.title,
                    patron_id=i.on_hold_for,
                    pickup_location=branch,
                    placed=now - timedelta(days=1, minutes=n),
                )
            )
    session.flush()


def schema_matches(engine: Engine) -> bool:
    """Whether every table and column of this version exists, so a database from an older version is noticed."""
    inspector = inspect(engine)
    existing = set(inspector.get_table_names())
    for table in Base.metadata.sorted_tables:
        if table.name not in existing:
            return False
        if {c.name for c in table.columns} - {c["name"] for c in inspector.get_columns(table.name)}:
            return False
    return True


def is_seeded(session: Session) -> bool:
    return session.execute(select(PatronRow.id).limit(1)).first() is not None
