"""Daily usage statistics kept apart from the journal, so they survive its retention purges.

Counts per day (checkouts, returns, renewals, refusals) are rolled up from the journal into their
own SQLite file (`var/stats.sqlite` next to the journal). A roll-up never lowers a stored count:
once older journal rows are purged, the day's numbers stay as they were.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.core import stats as kstats
from kiosk.errors import KioskError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS daily (
    day TEXT NOT NULL,          -- YYYY-MM-DD, the kiosk's local date
    counter TEXT NOT NULL,      -- checkouts, returns, renewals, refusals
    count INTEGER NOT NULL,
    PRIMARY KEY (day, counter)
);
"""


class StatsStoreError(KioskError):
    """The statistics file cannot be used; the message names it."""


class StatsStore:
    """Per-day counts in their own SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None, timeout=10
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StatsStoreError(f"statistics file {self.path}: cannot open ({exc})") from exc

    @classmethod
    def for_config(cls, cfg: Any) -> StatsStore:
        """The store next to the site's journal."""
        return cls(cfg.resolve_path(cfg.storage.path).with_name("stats.sqlite"))

    def add_days(self, buckets: Iterable[kstats.Bucket]) -> None:
        """Store each day's counts, keeping the larger of the stored and the new number."""
        rows = [
            (b.start.date().isoformat(), name, getattr(b.counts, name))
            for b in buckets
            for name in kstats.COUNTERS
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO daily(day, counter, count) VALUES (?, ?, ?) "
                    "ON CONFLICT(day, counter) DO UPDATE SET count = max(count, excluded.count)",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                # Undo the transaction whatever stopped it; the fault goes on unchanged.
                self._db.execute("ROLLBACK")
                raise

    def roll_up(self, entries: Iterable[kstats.EntryLike]) -> int:
        """Add the days found in journal entries; returns how many days were looked at."""
        result = kstats.compute(entries)
        self.add_days(result.daily)
        return len(result.daily)

    def days(self, first: date, last: date) -> tuple[kstats.Bucket, ...]:
        """One bucket per day from `first` to `last`, zero where nothing was stored."""
        with self._lock:
            rows = self._db.execute(
                "SELECT day, counter, count FROM daily WHERE day BETWEEN ? AND ?",
                (first.isoformat(), last.isoformat()),
            ).fetchall()
        found: dict[str, dict[str, int]] = {}
        for day, counter, count in rows:
            if counter in kstats.COUNTERS:
                found.setdefault(day, {})[counter] = int(count)
        out = []
        d = first
        while d <= last:
            out.append(
                kstats.Bucket(
                    datetime.combine(d, datetime.min.time()),
                    kstats.Counts(**found.get(d.isoformat(), {})),
                )
            )
            d += timedelta(days=1)
        return tuple(out)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def roll_up_journal(cfg: Any, journal: Any = None) -> StatsStore:
    """Roll the site's journal up into its statistics file (opening the journal if not given)."""
    store = StatsStore.for_config(cfg)
    if journal is not None:
        store.roll_up(journal.entries())
        return store
    path = cfg.resolve_path(cfg.storage.path)
    if path.exists():
        from kiosk.sync.journal import Journal  # lazy: SQLAlchemy, only with a journal

        j = Journal(path)
        try:
            store.roll_up(j.entries())
        finally:
            j.close()
    return store
