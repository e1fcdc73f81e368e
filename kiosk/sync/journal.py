"""The durable journal: every circulation transaction is written here before it is sent.

One row per transaction in SQLite (WAL, synchronous=FULL, so a commit survives a power cut),
created and upgraded by the Alembic migrations shipped in `kiosk/sync/migrations`.

Rows are claimed per item across processes (`ItemClaims`: an OS byte-range lock beside the
journal), so any number of kiosk processes can forward and circulate on one journal and each
row is sent by one of them only; docs/architecture.md says why a lock and not a lease.

Privacy choice: the full patron id is stored, because the forwarder must replay offline
checkouts against the right account; a PIN or any SIP2 password is never stored (the request
summary is scrubbed of them), and every printout and log line masks patron ids.
"""

from __future__ import annotations

import enum
import fcntl
import json
import logging
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from kiosk.core.domain import Mode, Operation
from kiosk.core.masking import mask_card
from kiosk.core.ports import Clock, SystemClock
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Keys that must never reach the journal, whatever a caller puts in a request summary.
_SECRET_KEYS = frozenset(
    {"pin", "password", "ad", "ac", "co", "patron_password", "terminal_password"}
)


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
    REVERSED = "reversed"  # applied though the patron was told it was not: undone by a later row
    STAFF = "staff"  # what the library system did cannot be known or undone: for staff


# States the forwarder still has to deal with.
OPEN_STATES = (EntryState.QUEUED, EntryState.IN_DOUBT, EntryState.SENT, EntryState.PENDING)
# The staff list: rows a person must look at, with the facts in `error`.
STAFF_STATES = (EntryState.FORWARD_REFUSED, EntryState.STAFF)


def _scrub(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in summary.items() if k.lower() not in _SECRET_KEYS}


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return "noboot"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count from its closing one.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else ""


def process_owner(pid: int | None = None) -> str:
    """Who writes rows now: boot id, pid and the process's start time.

    The start time tells a dead owner from a new process that got the same pid after it.
    """
    pid = os.getpid() if pid is None else pid
    return f"{_boot_id()}:{pid}:{_start_time(pid)}"


def owner_alive(owner: str) -> bool:
    """Whether the process that wrote `owner` is still running (same boot, pid and start time)."""
    parts = owner.split(":")
    try:
        boot, pid = parts[0], int(parts[1])
    except (IndexError, ValueError):
        return False
    if boot != _boot_id():
        return False
    if len(parts) >= 3 and parts[2]:
        return _start_time(pid) == parts[2]
    # A row from an older kiosk version (boot:pid): the pid alone is all there is to go on.
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _ClaimFile:
    """One open lock file per process (POSIX record locks are dropped when any descriptor of the
    file is closed, so the process must hold exactly one), with the slots its threads hold."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
        self.cond = threading.Condition()
        self.holders: dict[int, tuple[int, int]] = {}  # slot -> (thread id, depth)
        self.users = 0


_CLAIM_FILES: dict[Path, _ClaimFile] = {}
_CLAIM_FILES_LOCK = threading.Lock()
_SLOTS = 1 << 30


class ItemClaims:
    """Per-item claims across processes: an exclusive byte-range lock on `<journal>.claims`.

    Byte `crc32(item id)` of the file stands for the item; the kernel drops a dead process's
    locks, so no claim outlives its holder and no pid can be mistaken for another. Claims are
    re-entrant per thread; other threads of the process wait as other processes do.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        key = path.resolve()
        with _CLAIM_FILES_LOCK:
            cf = _CLAIM_FILES.get(key)
            if cf is None:
                cf = _CLAIM_FILES[key] = _ClaimFile(path)
            cf.users += 1
        self._key = key
        self._file = cf

    @staticmethod
    def slot(item_id: str) -> int:
        return zlib.crc32(item_id.encode("utf-8", "surrogatepass")) % _SLOTS

    def _try_os_lock(self, slot: int) -> bool:
        try:
            fcntl.lockf(self._file.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot, os.SEEK_SET)
        except OSError:
            return False
        return True

    def acquire(self, item_id: str, wait_s: float = 0.0) -> bool:
        """Claim the item; False when another thread or process still holds it after `wait_s`."""
        cf, slot, me = self._file, self.slot(item_id), threading.get_ident()
        deadline = time.monotonic() + max(0.0, wait_s)
        with cf.cond:
            while True:
                holder = cf.holders.get(slot)
                if holder is not None and holder[0] == me:
                    cf.holders[slot] = (me, holder[1] + 1)
                    return True
                if holder is None and self._try_os_lock(slot):
                    cf.holders[slot] = (me, 1)
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                # Another thread here is woken by release(); another process is polled.
                cf.cond.wait(min(left, 0.005 if holder is None else left))

    def release(self, item_id: str) -> None:
        cf, slot, me = self._file, self.slot(item_id), threading.get_ident()
        with cf.cond:
            holder = cf.holders.get(slot)
            if holder is None or holder[0] != me:
                log.error(
                    "journal claims: release of %s by a thread that does not hold it", item_id
                )
                return
            if holder[1] > 1:
                cf.holders[slot] = (me, holder[1] - 1)
                return
            del cf.holders[slot]
            fcntl.lockf(cf.fd, fcntl.LOCK_UN, 1, slot, os.SEEK_SET)
            cf.cond.notify_all()

    @contextmanager
    def hold(self, item_id: str, wait_s: float = 0.0) -> Iterator[bool]:
        """`with claims.hold(item) as got:` - released on leaving when `got`."""
        got = self.acquire(item_id, wait_s)
        try:
            yield got
        finally:
            if got:
                self.release(item_id)

    def held_here(self, item_id: str) -> bool:
        """Whether this thread holds the item's claim."""
        holder = self._file.holders.get(self.slot(item_id))
        return holder is not None and holder[0] == threading.get_ident()

    def close(self) -> None:
        with _CLAIM_FILES_LOCK:
            cf = self._file
            cf.users -= 1
            if cf.users <= 0 and not cf.holders:
                os.close(cf.fd)
                _CLAIM_FILES.pop(self._key, None)


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
    failures: int = 0

    @property
    def reversal_of(self) -> int | None:
        """The row this one undoes (a check-in reversing a checkout the patron was told had failed)."""
        value = self.request.get("reversal_of")
        return value if isinstance(value, int) else None

    @property
    def on_staff_list(self) -> bool:
        return self.state in STAFF_STATES

    def to_json(self) -> dict[str, Any]:
        """A printable view; the patron id is masked."""
        out = {
            "type": "transaction",
            "id": self.id,
            "created": self.created.isoformat(timespec="seconds"),
            "operation": self.operation.value,
            "patron_id": mask_card(self.patron_id),
            "item_id": self.item_id,
            "mode": self.mode.value,
            "state": self.state.value,
            "request": dict(self.request),
            "result": {
                k: (mask_card(v) if k == "patron_id" else v) for k, v in self.result.items()
            },
            "promised_due_date": self.promised_due_date,
            "attempts": self.attempts,
            "error": self.error,
            "updated": self.updated.isoformat(timespec="seconds") if self.updated else None,
            "failures": self.failures,
            "staff_list": self.on_staff_list,
        }
        if self.reversal_of is not None:
            out["reversal_of"] = self.reversal_of
        if self.state is EntryState.REVERSED:
            out["reversed_by"] = self.result.get("reversed_by")
        return out


# Events naming an item whose tag may not match its loan (a checkout undone with a tag whose
# state could not be verified, a return whose tag could not be re-secured): staff must look at the
# item itself, so these belong on the staff list beside the refused transactions.
DESK_EVENT_KINDS = ("security_to_desk", "return_security_failed")


@dataclass(frozen=True)
class JournalEvent:
    """A device or link outage, or another event staff should see."""

    id: int
    created: datetime
    kind: str
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "event",
            "id": self.id,
            "created": self.created.isoformat(timespec="seconds"),
            "kind": self.kind,
            "detail": self.detail,
            "staff_list": self.kind in DESK_EVENT_KINDS,
        }


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
    sa.Column("failures", sa.Integer, nullable=False),
)
events_table = sa.Table(
    "events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created", sa.DateTime, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


# The statements of the forwarding path, written once as SQLite's own SQL with positional
# parameters and run on the journal's own connection (`Journal._connection`). Building a
# SQLAlchemy expression and its cache key cost more than SQLite's own work on the row (about
# 60 µs a statement here), and even a statement built once spends most of a forwarded row's
# database time in SQLAlchemy's execution and the pool's checkout; the SQL strings skip both
# (docs/performance.md, "Forwarding"). Column names and states are fixed words of this module,
# never input.
_BY_ID = sa.select(transactions).where(
    transactions.c.id == sa.bindparam("entry_id", type_=sa.Integer)
)
_MARK_SENT_SQL = (
    "UPDATE transactions SET state = ?, attempts = attempts + 1, owner = ?, updated = ? "
    "WHERE id = ?"
)


def _states(states: tuple[EntryState, ...]) -> str:
    """A set of states written into SQL (fixed words of this module, never input): an `in_()` of
    a list is expanded again at every execution."""
    return "(" + ", ".join(f"'{s.value}'" for s in states) + ")"


_HALF_DONE = (EntryState.PENDING, EntryState.SENT)
# Named, not `*`: a textual select's columns are matched to the result by position.
_COLUMN_NAMES = tuple(c.name for c in transactions.c)
_COLUMNS = ", ".join(_COLUMN_NAMES)
_DATETIME_COLUMNS = frozenset(c.name for c in transactions.c if isinstance(c.type, sa.DateTime))
_HALF_DONE_OF_ITEM = sa.text(
    f"SELECT {_COLUMNS} FROM transactions WHERE item_id = :item_id "
    f"AND state IN {_states(_HALF_DONE)} "
    "ORDER BY id"
).columns(*transactions.c)
# The rows `take_turn` needs to decide whether an item's row may go: its half-done rows (any
# writer), the item's earlier rows still open, and the row itself.
_TURN_SQL = (
    f"SELECT {_COLUMNS} FROM transactions WHERE item_id = ? AND ("
    f"state IN {_states(_HALF_DONE)} "
    f"OR (id < ? AND state IN {_states(OPEN_STATES)}) "
    "OR id = ?) ORDER BY id"
)

# `update()`'s statements, one per set of columns it sets (a handful occur), built on first use.
_UPDATES: dict[tuple[tuple[str, ...], bool], str] = {}


def _update_sql(columns: tuple[str, ...], failed: bool) -> str:
    key = (columns, failed)
    sql = _UPDATES.get(key)
    if sql is None:
        sets = [f"{transactions.c[c].name} = ?" for c in columns]
        if failed:
            sets.append("failures = failures + 1")
        # setdefault is atomic: a thread that built the same statement meanwhile loses nothing.
        sql = _UPDATES.setdefault(key, f"UPDATE transactions SET {', '.join(sets)} WHERE id = ?")
    return sql


def _set_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so a committed row survives a power cut.
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA busy_timeout=10000")
    finally:
        cur.close()


def schema_stamp() -> int:
    """A number for the set of migrations shipped (their file names and contents), kept in
    SQLite's `user_version` once they are applied: a journal that carries it needs no Alembic."""
    digest = 0
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        digest = zlib.crc32(path.name.encode() + path.read_bytes(), digest)
    return digest & 0x7FFFFFFF or 1  # user_version is a signed 32-bit number; 0 means unset


def upgrade(engine: sa.Engine) -> None:
    """Bring the schema to the newest version (idempotent). A journal stamped with this version's
    migrations (`schema_stamp`) is left as it is without loading Alembic: that check cost 0.8 s of
    every start, while a journal is migrated once per software update."""
    stamp = schema_stamp()
    with engine.connect() as conn:
        if conn.exec_driver_sql("PRAGMA user_version").scalar() == stamp:
            return
    # Alembic is loaded only to migrate: `kiosk --help` reaches this module and should stay fast.
    from alembic import command  # lazy: Alembic, only to migrate
    from alembic.config import Config as AlembicConfig  # lazy: Alembic, only to migrate

    acfg = AlembicConfig()
    acfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        acfg.attributes["connection"] = conn
        command.upgrade(acfg, "head")
        conn.exec_driver_sql(f"PRAGMA user_version = {stamp}")


class Journal:
    """The durable record of circulation transactions; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.clock = clock or SystemClock()
        self.owner = process_owner()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._engine = sa.create_engine(
                f"sqlite:///{self.path}", connect_args={"check_same_thread": False}
            )
            event.listen(self._engine, "connect", _set_pragmas)
            upgrade(self._engine)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise JournalError(
                f"journal {self.path}: cannot open or migrate ({exc}); check the [storage] path and free disk space"
            ) from exc
        self._lock = threading.RLock()
        # The journal's own connection, for its writes and the forwarder's read of a row's turn
        # (under `_lock`); other reads take one from the pool. Made on first use.
        self._conn: sa.Connection | None = None
        # The SQLite dialect's own conversions of a DateTime, so SQL written here stores and reads
        # the same text as SQLAlchemy's statements do.
        dialect = self._engine.dialect
        datetime_type = sa.DateTime().dialect_impl(dialect)
        datetime_in = datetime_type.bind_processor(dialect)
        datetime_out = datetime_type.result_processor(dialect, None)
        if datetime_in is None or datetime_out is None:
            raise JournalError(f"journal {self.path}: the database driver stores no dates")
        self._datetime_in = datetime_in
        self._datetime_out = datetime_out
        # Updates that ride on the next commit, durable no later than the next write, whoever
        # makes it (docs/architecture.md, "One fsynced commit per forwarded row").
        self._deferred: list[tuple[Any, Any]] = []
        try:
            self.claims = ItemClaims(self.path.with_name(self.path.name + ".claims"))
        except OSError as exc:
            raise JournalError(
                f"journal {self.path}: cannot open its claims file ({exc}); check the [storage] path"
            ) from exc

    # -- writing -------------------------------------------------------------------------

    def _connection(self) -> sa.Connection:
        """The journal's own connection (the caller holds `_lock`): a write or a row's turn takes
        no connection from the pool, and SQLAlchemy's events still see every statement and commit."""
        if self._conn is None:
            self._conn = self._engine.connect()
        return self._conn

    def _drop_connection(self) -> None:
        """After a failed statement: roll back, or close a connection that cannot even do that (the
        next write opens another)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.rollback()
        except sa.exc.SQLAlchemyError:
            log.warning("journal %s: rollback failed; the connection is closed", self.path)
            conn.invalidate()
            conn.close()
            return
        self._conn = conn

    @staticmethod
    def _execute(conn: sa.Connection, stmt: Any, params: Any) -> Any:
        """A statement of this module's SQL (a string, positional parameters) or SQLAlchemy's."""
        if isinstance(stmt, str):
            return conn.exec_driver_sql(stmt, params)
        return conn.execute(stmt, params)

    def _write(self, stmt: Any, params: Any = None) -> Any:
        """One commit: the deferred updates (`update(defer=True)`) first, then `stmt`."""
        with self._lock:
            try:
                conn = self._connection()
                for deferred, deferred_params in self._deferred:
                    self._execute(conn, deferred, deferred_params)
                res = self._execute(conn, stmt, params) if stmt is not None else None
                conn.commit()
            except sa.exc.SQLAlchemyError as exc:
                self._drop_connection()
                raise JournalError(
                    f"journal {self.path}: write failed ({exc}); check free disk space"
                ) from exc
            self._deferred.clear()
            return res

    def flush(self) -> None:
        """Commit the deferred updates now (one commit; nothing when there are none)."""
        with self._lock:
            if self._deferred:
                self._write(None)

    @property
    def deferred(self) -> int:
        """How many updates wait for the next commit."""
        return len(self._deferred)

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
                failures=0,
                error="",
                owner=self.owner,
                updated=now,
            )
        )
        entry_id = int(res.inserted_primary_key[0])
        log.debug(
            "journal #%d %s %s patron %s item %s",
            entry_id,
            operation.value,
            state.value,
            mask_card(patron_id),
            item_id,
        )
        return entry_id

    def begin_reversal(
        self, entry_id: int, *, patron_id: str, item_id: str, request: Mapping[str, Any], how: str
    ) -> int:
        """Journal the check-in that undoes row `entry_id` and mark that row reversed, in one commit.

        The new row carries the patron whose loan it ends, so its own reconciliation (should its
        answer be lost too) knows whose loan to look for.
        """
        now = self.clock.now()
        with self._lock:
            try:
                with self._engine.begin() as conn:
                    res = conn.execute(
                        transactions.insert().values(
                            created=now.replace(microsecond=0),
                            operation=Operation.CHECKIN.value,
                            patron_id=patron_id,
                            item_id=item_id,
                            mode=Mode.ONLINE.value,
                            state=EntryState.PENDING.value,
                            request=json.dumps(_scrub(request), ensure_ascii=False),
                            result="{}",
                            promised_due_date="",
                            attempts=0,
                            failures=0,
                            error="",
                            owner=self.owner,
                            updated=now,
                        )
                    )
                    key = res.inserted_primary_key
                    assert key is not None
                    rid = int(key[0])
                    old = conn.execute(
                        sa.select(transactions.c.result).where(transactions.c.id == entry_id)
                    ).scalar_one()
                    result = {
                        **json.loads(old or "{}"),
                        "ok": False,
                        "reconciled": True,
                        "reconciliation": how,
                        "reversed_by": rid,
                    }
                    conn.execute(
                        transactions.update()
                        .where(transactions.c.id == entry_id)
                        .values(
                            state=EntryState.REVERSED.value,
                            result=json.dumps(result, ensure_ascii=False),
                            error=f"reversed by #{rid}: {how}",
                            updated=now,
                        )
                    )
            except (sa.exc.SQLAlchemyError, json.JSONDecodeError) as exc:
                raise JournalError(
                    f"journal {self.path}: write failed ({exc}); check free disk space"
                ) from exc
        return rid

    def mark_sent(self, entry_id: int) -> None:
        """Record that the request is about to go on the wire (counts an attempt)."""
        self._write(
            _MARK_SENT_SQL,
            (EntryState.SENT.value, self.owner, self._datetime_in(self.clock.now()), entry_id),
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
        failed: bool = False,
        request: Mapping[str, Any] | None = None,
        defer: bool = False,
    ) -> None:
        """Move a transaction to `state`, optionally storing the answer; `failed` counts a forwarding failure.

        `defer`: not committed now but with the next write (or `flush()`), in the same commit. Only
        for an answer whose loss is already provided for: a row left `sent` by a crash is settled
        by asking the library system, as if the answer itself had been lost on the line."""
        values: dict[str, Any] = {
            "state": state.value,
            "updated": self._datetime_in(self.clock.now()),
        }
        if result is not None:
            values["result"] = json.dumps(dict(result), ensure_ascii=False)
        if error is not None:
            values["error"] = error
        if mode is not None:
            values["mode"] = mode.value
        if promised_due_date is not None:
            values["promised_due_date"] = promised_due_date
        if request is not None:
            values["request"] = json.dumps(_scrub(request), ensure_ascii=False)
        stmt = _update_sql(tuple(values), failed)
        params = (*values.values(), entry_id)
        if defer:
            with self._lock:
                self._deferred.append((stmt, params))
            return
        self._write(stmt, params)

    def record_event(self, kind: str, detail: str) -> None:
        """Record a device or link outage (or recovery) for staff and diagnostics."""
        self._write(
            events_table.insert().values(created=self.clock.now(), kind=kind, detail=detail)
        )

    def purge(self, before: datetime) -> int:
        """Delete finished transactions (and events) created before `before`; returns how many rows went.

        Work still to forward or reconcile and refusals staff have not handled are always kept,
        so purging never loses a transaction; it only limits how long patron ids are kept.
        """
        finished = [EntryState.DONE.value, EntryState.REFUSED.value, EntryState.FORWARDED.value]
        res = self._write(
            transactions.delete().where(
                transactions.c.created < before, transactions.c.state.in_(finished)
            )
        )
        self._write(events_table.delete().where(events_table.c.created < before))
        return int(res.rowcount or 0)

    def recover(self) -> int:
        """Hand over rows a dead process left half-done; returns how many rows changed.

        A row is another process's while that process runs (same boot id, pid and start time)
        or holds the item's claim. Never-sent online checkouts and renewals are settled as not
        done (the patron was never told they were); other never-sent rows are queued; sent ones
        are in doubt, for the forwarder to reconcile.
        """
        changed = 0
        with self._lock:
            for entry in self._select(
                transactions.c.state.in_([EntryState.PENDING.value, EntryState.SENT.value])
            ):
                if entry.owner == self.owner or owner_alive(entry.owner):
                    continue
                with self.claims.hold(entry.item_id) as got:
                    if not got:
                        continue
                    entry = self.get(entry.id)
                    if entry.owner != self.owner and not owner_alive(entry.owner):
                        changed += self._hand_over(entry)
        return changed

    def recover_item(self, item_id: str) -> int:
        """Under the item's claim (held by the caller): hand over every half-done row of the item.

        Whoever holds an item's claim is the only one working on it, so a `pending` or `sent` row
        of the item that is not this process's is abandoned even if its writer still runs (it
        failed between its write and its answer). Rows without an item (renew all) take no
        claim, so for them the writer must be gone.
        """
        with self._lock:
            return self._recover_rows(item_id, self._rows(_HALF_DONE_OF_ITEM, {"item_id": item_id}))

    def _recover_rows(self, item_id: str, rows: list[JournalEntry]) -> int:
        changed = 0
        for entry in rows:
            if entry.state not in _HALF_DONE:
                continue
            if entry.owner == self.owner or (not item_id and owner_alive(entry.owner)):
                continue
            changed += self._hand_over(entry)
        return changed

    def take_turn(self, item_id: str, entry_id: int) -> tuple[bool, JournalEntry]:
        """Under the item's claim (held by the caller): `recover_item`, then whether an earlier
        row of the item is still open (the row must wait), and the row as it is now.

        One read where those were three (the forwarder asks this for every row it sends); a
        second only when a half-done row was handed over."""
        with self._lock:
            rows = self._turn_rows(item_id, entry_id)
            if self._recover_rows(item_id, rows):
                rows = self._turn_rows(item_id, entry_id)
        entry = next((e for e in rows if e.id == entry_id), None)
        if entry is None:
            raise JournalError(
                f"journal {self.path}: no transaction #{entry_id} of item {item_id!r}"
            )
        waits = any(e.id < entry_id and e.state in OPEN_STATES for e in rows)
        return waits, entry

    def _turn_rows(self, item_id: str, entry_id: int) -> list[JournalEntry]:
        """`take_turn`'s read, on the journal's own connection (the caller holds `_lock`)."""
        try:
            # Straight on the driver's connection: SQLAlchemy's result object costs more than the
            # read. Outside a transaction the driver reads in autocommit, holding no snapshot.
            driver = self._connection().connection.driver_connection
            if driver is None:  # only a connection SQLAlchemy has invalidated has none
                raise sqlite3.OperationalError("the journal's connection is closed")
            cursor = driver.execute(_TURN_SQL, (item_id, entry_id, entry_id))
            rows = cursor.fetchall()
        except (sqlite3.Error, sa.exc.SQLAlchemyError) as exc:
            self._drop_connection()
            raise JournalError(f"journal {self.path}: read failed ({exc})") from exc
        out = self._datetime_out
        return [
            self._entry(
                {
                    name: out(value) if name in _DATETIME_COLUMNS else value
                    for name, value in zip(_COLUMN_NAMES, row, strict=True)
                }
            )
            for row in rows
        ]

    def _hand_over(self, entry: JournalEntry) -> int:
        if entry.state not in _HALF_DONE:
            return 0
        why = f"interrupted while {entry.state.value}; recovered"
        if entry.state is EntryState.SENT:
            new = EntryState.IN_DOUBT
        elif entry.mode is Mode.ONLINE and entry.operation in (
            Operation.CHECKOUT,
            Operation.RENEW,
            Operation.RENEW_ALL,
        ):
            new = EntryState.REFUSED
            why += "; never sent, and the patron was not told it was done"
        else:
            new = EntryState.QUEUED
        self.update(entry.id, new, error=why)
        log.warning(
            "journal #%d: interrupted while %s, now %s", entry.id, entry.state.value, new.value
        )
        return 1

    # -- reading -------------------------------------------------------------------------

    def _select(self, *where: Any, limit: int | None = None) -> list[JournalEntry]:
        stmt = sa.select(transactions).where(*where).order_by(transactions.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return self._rows(stmt)

    def _rows(self, stmt: Any, params: Mapping[str, Any] | None = None) -> list[JournalEntry]:
        try:
            with self._engine.connect() as conn:
                rows = conn.execute(stmt, params).mappings().all()
        except sa.exc.SQLAlchemyError as exc:
            raise JournalError(f"journal {self.path}: read failed ({exc})") from exc
        return [self._entry(r) for r in rows]

    def _entry(self, r: Any) -> JournalEntry:
        def load(text: str) -> dict[str, Any]:
            try:
                value = json.loads(text or "{}")
            except json.JSONDecodeError:
                log.error("journal: unreadable JSON in a row; showing it as text")
                return {"unreadable": text}
            return value if isinstance(value, dict) else {"value": value}

        try:
            operation, mode, state = (
                Operation(r["operation"]),
                Mode(r["mode"]),
                EntryState(r["state"]),
            )
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
            failures=r["failures"],
        )

    def get(self, entry_id: int) -> JournalEntry:
        rows = self._rows(_BY_ID, {"entry_id": entry_id})
        if not rows:
            raise JournalError(f"journal {self.path}: no transaction #{entry_id}")
        return rows[0]

    def entries(self, since: datetime | None = None) -> list[JournalEntry]:
        """All transactions in the order they were journaled, optionally from `since` on."""
        return self._select(transactions.c.created >= since) if since else self._select()

    def pending_offline(
        self, item_id: str | None = None, limit: int | None = None
    ) -> list[JournalEntry]:
        """Work still to forward or reconcile (queued, in doubt, interrupted), oldest first."""
        where: list[Any] = [
            transactions.c.state.in_([EntryState.QUEUED.value, EntryState.IN_DOUBT.value])
        ]
        if item_id is not None:
            where.append(transactions.c.item_id == item_id)
        return self._select(*where, limit=limit)

    def pending_count(self, item_id: str | None = None) -> int:
        stmt = (
            sa.select(sa.func.count())
            .select_from(transactions)
            .where(transactions.c.state.in_([EntryState.QUEUED.value, EntryState.IN_DOUBT.value]))
        )
        if item_id is not None:
            stmt = stmt.where(transactions.c.item_id == item_id)
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def open_offline_checkouts(self, patron_id: str) -> int:
        """Offline checkouts of a patron not yet settled with the library system (the outage's loans)."""
        stmt = (
            sa.select(sa.func.count())
            .select_from(transactions)
            .where(
                transactions.c.patron_id == patron_id,
                transactions.c.operation == Operation.CHECKOUT.value,
                transactions.c.mode == Mode.OFFLINE.value,
                transactions.c.state.in_([s.value for s in OPEN_STATES]),
            )
        )
        with self._engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def refusals(self) -> list[JournalEntry]:
        """The staff list: forwarded work the library system refused, and rows whose outcome at the
        library system cannot be known or undone by the kiosk. Staff handle these by hand."""
        return self._select(transactions.c.state.in_([s.value for s in STAFF_STATES]))

    def item_history(self, item_id: str) -> list[JournalEntry]:
        """Every row of one item, oldest first (for reconciling an entry against its neighbours)."""
        return self._select(transactions.c.item_id == item_id)

    def events(
        self, since: datetime | None = None, kinds: tuple[str, ...] = ()
    ) -> list[JournalEvent]:
        """Events oldest first; from `since` on, and only of `kinds` when given."""
        stmt = sa.select(events_table).order_by(events_table.c.id)
        if since:
            stmt = stmt.where(events_table.c.created >= since)
        if kinds:
            stmt = stmt.where(events_table.c.kind.in_(kinds))
        with self._engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
        return [JournalEvent(r["id"], r["created"], r["kind"], r["detail"]) for r in rows]

    def desk_events(self, since: datetime | None = None) -> list[JournalEvent]:
        """The items staff must look at by hand (DESK_EVENT_KINDS), oldest first."""
        return self.events(since, DESK_EVENT_KINDS)

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
        try:
            self.flush()
        except JournalError:
            log.exception("journal %s: deferred updates lost at close", self.path)
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()
        self._engine.dispose()
        self.claims.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
