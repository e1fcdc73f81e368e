"""The durable journal: every circulation transaction is written here before it is sent.

One row per transaction in SQLite (WAL, synchronous=FULL, so a commit survives a power cut),
created and upgraded by the Alembic migrations shipped in `kiosk/sync/migrations`.

Privacy choice: the full patron id is stored, because the forwarder must replay offline
checkouts against the right account; a PIN or any SIP2 password is never stored (the request
summary is scrubbed of them), and every printout and log line masks patron ids.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import event

from kiosk.core.domain import Mode, Operation
from kiosk.core.masking import mask_card
from kiosk.core.ports import Clock, SystemClock
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Keys that must never reach the journal, whatever a caller puts in a request summary.
_SECRET_KEYS = frozenset({"pin", "password", "ad", "ac", "co", "patron_password", "terminal_password"})


class JournalError(KioskError):
    """The journal file cannot be opened, migrated or written."""


class EntryState(enum.StrEnum):
    """Where a journaled transaction stands."""

    PENDING = "pending"  # written, not yet sent
    SENT = "sent"  # about to be written to the socket / on the wire
    DONE = "done"  # the library system said ok
    REFUSED = "refused"  # the library system said no (online)
    IN_DOUBT = "in_doubt"  # sent, no answer: reconcile before re-sending
    QUEUED = "queued"  # offline, waiting to be forwarded
    FORWARDED = "forwarded"  # offline work accepted by the library system
    FORWARD_REFUSED = "forward_refused"  # offline work refused: for staff


# States the forwarder still has to deal with.
OPEN_STATES = (EntryState.QUEUED, EntryState.IN_DOUBT, EntryState.SENT, EntryState.PENDING)


def _scrub(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k.lower() not in _SECRET_KEYS}


def process_owner() -> str:
    """Who writes rows now: boot id and pid, so rows left by a dead process can be told apart."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        boot = "noboot"
    return f"{boot}:{os.getpid()}"


def _owner_alive(owner: str) -> bool:
    try:
        boot, pid_text = owner.split(":", 1)
        pid = int(pid_text)
    except ValueError:
        return False
    if boot != process_owner().split(":", 1)[0]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class JournalEntry:
    """One journaled circulation transaction."""

    id: int
    created: datetime
    operation: Operation
    patron_id: str
    item_id: str
    mode: Mode
    state: EntryState
    request: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    promised_due_date: str = ""
    attempts: int = 0
    error: str = ""
    updated: datetime | None = None
    owner: str = ""

    def to_json(self) -> dict[str, Any]:
        """A printable view; the patron id is masked."""
        return {
            "type": "transaction",
            "id": self.id,
            "created": self.created.isoformat(timespec="seconds"),
            "operation": self.operation.value,
            "patron_id": mask_card(self.patron_id),
            "item_id": self.item_id,
            "mode": self.mode.value,
            "state": self.state.value,
            "request": dict(self.request),
            "result": {k: (mask_card(v) if k == "patron_id" else v) for k, v in self.result.items()},
            "promised_due_date": self.promised_due_date,
            "attempts": self.attempts,
            "error": self.error,
            "updated": self.updated.isoformat(timespec="seconds") if self.updated else None,
        }


@dataclass(frozen=True)
class JournalEvent:
    """A device or link outage, or another event staff should see."""

    id: int
    created: datetime
    kind: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"type": "event", "id": self.id, "created": self.created.isoformat(timespec="seconds"), "kind": self.kind, "detail": self.detail}


_meta = sa.MetaData()
transactions = sa.Table(
    "transactions",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("operation", sa.String(16), nullable=False),
    sa.Column("patron_id", sa.String(64), nullable=False),
    sa.Column("item_id", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=False),
    sa.Column("promised_due_date", sa.String(32), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("owner", sa.String(80), nullable=False),
    sa.Column("updated", sa.DateTime, nullable=False),
)
events_table = sa.Table(
    "events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so a committed row survives a power cut.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
    finally:
        cur.close()


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest version (idempotent)."""
    from alembic import command
    from alembic.config import Config as AlembicConfig

    acfg = AlembicConfig()
    acfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        acfg.attributes["connection"] = conn
        command.upgrade(acfg, "head")


class Journal:
    """The durable record of circulation transactions; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self.owner = process_owner()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(f"sqlite:///{self.path}", connect_args={"check_same_thread": False})
            event.listen(self._engine, "connect", _set_pragmas)
            upgrade(self._engine)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise JournalError(f"journal {self.path}: cannot open or migrate ({exc}); check the [storage] path and free disk space") from exc
        self._lock = threading.RLock()

    # -- writing -------------------------------------------------------------------------

    def _write(self, stmt: Any) -> Any:
        with self._lock:
            try:
                with self._engine.begin() as conn:
                    return conn.execute(stmt)
            except sa.exc.SQLAlchemyError as exc:
                raise JournalError(f"journal {self.path}: write failed ({exc}); check free disk space") from exc

    def begin(
        self,
        operation: Operation,
        *,
        mode: Mode,
        state: EntryState,
        patron_id: str = "",
        item_id: str = "",
        request: Mapping[str, Any] | None = None,
        promised_due_date: str = "",
        created: datetime | None = None,
        result: Mapping[str, Any] | None = None,
    ) -> int:
        """Durably record a new transaction and return its id (committed before returning)."""
        now = self.clock.now()
        res = self._write(
            transactions.insert().values(
                created=created or now,
                operation=operation.value,
                patron_id=patron_id,
                item_id=item_id,
                mode=mode.value,
                state=state.value,
                request=json.dumps(_scrub(request or {}), ensure_ascii=False),
                result=json.dumps(dict(result or {}), ensure_ascii=False),
                promised_due_date=promised_due_date,
                attempts=0,
                error="",
                owner=self.owner,
                updated=now,
            )
        )
        entry_id = int(res.inserted_primary_key[0])
        log.debug("journal #%d %s %s patron %s item %s", entry_id, operation.value, state.value, mask_card(patron_id), item_id)
        return entry_id

    def mark_sent(self, entry_id: int) -> None:
        """Record that the request is about to go on the wire (counts an attempt)."""
        self._write(
            transactions.update()
            .where(transactions.c.id == entry_id)
            .values(state=EntryState.SENT.value, attempts=transactions.c.attempts + 1, owner=self.owner, updated=self.clock.now())
        )

    def update(
        self,
        entry_id: int,
        state: EntryState,
        *,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        mode: Mode | None = None,
        promised_due_date: str | None = None,
    ) -> None:
        """Move a transaction to `state`, optionally storing the answer."""
        values: dict[str, Any] = {"state": state.value, "updated": self.clock.now()}
        if result is not None:
            values["result"] = json.dumps(dict(result), ensure_ascii=False)
        if error is not None:
            values["error"] = error
        if mode is not None:
            values["mode"] = mode.value
        if promised_due_date is not None:
            values["promised_due_date"] = promised_due_date
        self._write(transactions.update().where(transactions.c.id == entry_id).values(**values))

    def record_event(self, kind: str, detail: str) -> None:
        """Record a device or link outage (or recovery) for staff and diagnostics."""
        self._write(events_table.insert().values(created=self.clock.now(), kind=kind, detail=detail))

    def purge(self, before: datetime) -> int:
        """Delete finished transactions (and events) created before `before`; returns how many rows went.

        Work still to forward or reconcile and refusals staff have not handled are always kept,
        so purging never loses a transaction; it only limits how long patron ids are kept.
        """
        finished = [EntryState.DONE.value, EntryState.REFUSED.value, EntryState.FORWARDED.value]
        res = self._write(transactions.delete().where(transactions.c.created < before, transactions.c.state.in_(finished)))
        self._write(events_table.delete().where(events_table.c.created < before))
        return int(res.rowcount or 0)

    def recover(self) -> int:
        """Hand over rows a dead process left half-done: never-sent ones are queued, sent ones in doubt.

        Returns how many rows changed. Rows of a live process (another kiosk command running
        now) are left alone.
        """
        changed = 0
        with self._lock:
            for entry in self._select(transactions.c.state.in_([EntryState.PENDING.value, EntryState.SENT.value])):
                if entry.owner == self.owner or _owner_alive(entry.owner):
                    continue
                new = EntryState.QUEUED if entry.state is EntryState.PENDING else EntryState.IN_DOUBT
                self.update(entry.id, new, error=f"interrupted while {entry.state.value}; recovered at restart")
                log.warning("journal #%d: interrupted while %s, now %s", entry.id, entry.state.value, new.value)
                changed += 1
        return changed

    # -- reading -------------------------------------------------------------------------

    def _select(self, *where: Any, limit: int | None = None) -> list[JournalEntry]:
        stmt = sa.select(transactions).where(*where).order_by(transactions.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(stmt).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise JournalError(f"journal {self.path}: read failed ({exc})") from exc
        return [self._entry(cast(Mapping[str, Any], r)) for r in rows]

    def _entry(self, r: Mapping[str, Any]) -> JournalEntry:
        def load(text: str) -> dict[str, Any]:
            try:
                value = json.loads(text or "{}")
            except json.JSONDecodeError:
                log.error("journal: unreadable JSON in a row; showing it as text")
                return {"unreadable": text}
            return value if isinstance(value, dict) else {"value": value}

        try:
            operation, mode, state = Operation(r["operation"]), Mode(r["mode"]), EntryState(r["state"])
        except ValueError as exc:
            raise JournalError(
                f"journal {self.path}: row #{r['id']} is not readable by this kiosk version ({exc}); "
                "the file may come from a newer version: keep it and update the kiosk"
            ) from None
        return JournalEntry(
            id=r["id"],
            created=r["created"],
            operation=operation,
            patron_id=r["patron_id"],
            item_id=r["item_id"],
            mode=mode,
            state=state,
            request=load(r["request"]),
            result=load(r["result"]),
            promised_due_date=r["promised_due_date"],
            attempts=r["attempts"],
            error=r["error"],
            updated=r["updated"],
            owner=r["owner"],
        )

    def get(self, entry_id: int) -> JournalEntry:
        rows = self._select(transactions.c.id == entry_id)
        if not rows:
            raise JournalError(f"journal {self.path}: no transaction #{entry_id}")
        return rows[0]

    def entries(self, since: datetime | None = None) -> list[JournalEntry]:
        """All transactions in the order they were journaled, optionally from `since` on."""
        return self._select(transactions.c.created >= since) if since else self._select()

    def pending_offline(self, item_id: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        """Work still to forward or reconcile (queued, in doubt, interrupted), oldest first."""
        where: list[sa.ColumnElement[bool]] = [transactions.c.state.in_([EntryState.QUEUED.value, EntryState.IN_DOUBT.value])]
        if item_id is not None:
            where.append(transactions.c.item_id == item_id)
        return self._select(*where, limit=limit)

    def pending_count(self, item_id: str | None = None) -> int:
        stmt = sa.select(sa.func.count()).select_from(transactions).where(
            transactions.c.state.in_([EntryState.QUEUED.value, EntryState.IN_DOUBT.value])
        )
        if item_id is not None:
            stmt = stmt.where(transactions.c.item_id == item_id)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def refusals(self) -> list[JournalEntry]:
        """Forwarded offline work the library system refused: staff must handle these by hand."""
        return self._select(transactions.c.state == EntryState.FORWARD_REFUSED.value)

    def events(self, since: datetime | None = None) -> list[JournalEvent]:
        stmt = sa.select(events_table).order_by(events_table.c.id)
        if since:
            stmt = stmt.where(events_table.c.created >= since)
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [JournalEvent(r["id"], r["created"], r["kind"], r["detail"]) for r in rows]

    def to_json_lines(self, since: datetime | None = None) -> str:
        """The journal as JSON lines, transactions then events; patron ids masked, no PINs."""
        lines = [json.dumps(e.to_json(), ensure_ascii=False) for e in self.entries(since)]
        lines += [json.dumps(ev.to_json(), ensure_ascii=False) for ev in self.events(since)]
        return "".join(line + "\n" for line in lines)

    def pragma(self, name: str) -> Any:
        """The value of a SQLite pragma on a journal connection (for diagnostics and tests)."""
        if not name.isidentifier():
            raise JournalError(f"not a pragma name: {name!r}")
        with self._engine.connect() as conn:
            return conn.exec_driver_sql(f"PRAGMA {name}").scalar()

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
