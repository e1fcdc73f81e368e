"""Retention of personal data: finished work leaves the journal after `[storage] retention_days`
(default 30), so card numbers are not kept longer than the library needs them.

Before anything is deleted the day counts are rolled up into the statistics file that outlives
the journal (kiosk/fleet/statstore.py), so statistics are never lost to a purge. Open work
(queued, sent, in doubt) and entries on the staff list (refused on forwarding) are kept whatever
their age: purging never loses a transaction. `kiosk purge` runs it; the kiosk-purge.timer unit
runs that daily (docs/operations.md, "Retention of personal data").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kiosk.fleet.statstore import roll_up_journal

DEFAULT_RETENTION_DAYS = 30


@dataclass(frozen=True)
class PurgeReport:
    """What one purge did and what the journal still holds."""

    retention_days: int
    before: datetime
    purged: int
    pending: int
    refused: int

    def to_json(self) -> dict[str, Any]:
        return {
            "retention_days": self.retention_days,
            "before": self.before.isoformat(timespec="seconds"),
            "purged": self.purged,
            "pending": self.pending,
            "refused": self.refused,
        }


def purge_expired(cfg: Any, *, now: datetime | None = None) -> PurgeReport | None:
    """Roll statistics up, then delete finished work older than the retention; None without a journal."""
    from kiosk.sync.journal import Journal  # lazy: SQLAlchemy, only with a journal

    days = int(getattr(cfg.storage, "retention_days", DEFAULT_RETENTION_DAYS))
    before = (now or datetime.now()) - timedelta(days=days)
    path = cfg.resolve_path(cfg.storage.path)
    if not path.exists():
        return None
    journal = Journal(path)
    try:
        roll_up_journal(cfg, journal).close()  # the day counts first: they outlive the purge
        purged = journal.purge(before)
        return PurgeReport(days, before, purged, journal.pending_count(), len(journal.refusals()))
    finally:
        journal.close()
