"""Usage statistics from journal entries: checkouts, returns, refusals and renewals per hour and per day.

Pure over a list of entries (anything with `created`, `operation`, `state` and `result`), so
the same numbers feed `kiosk stats`, its JSON and the maintenance screen's bar charts. No
patron ids are kept: only counts leave this module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

# Journal states (kiosk.sync.journal.EntryState values), as text so core needs no sync import.
_ACCEPTED = frozenset({"done", "queued", "forwarded"})
_REFUSED = frozenset({"refused", "forward_refused"})

COUNTERS = ("checkouts", "returns", "renewals", "refusals")


class EntryLike(Protocol):
    # Read-only members, so frozen journal entries match.
    @property
    def created(self) -> datetime: ...

    @property
    def operation(self) -> Any: ...

    @property
    def state(self) -> Any: ...

    @property
    def result(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Counts:
    """How many of each kind of transaction in one period."""

    checkouts: int = 0
    returns: int = 0
    renewals: int = 0
    refusals: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, k) + getattr(other, k) for k in COUNTERS))

    @property
    def total(self) -> int:
        return self.checkouts + self.returns + self.renewals + self.refusals

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNTERS}


@dataclass(frozen=True)
class Bucket:
    """Counts for the period starting at `start` (an hour or a day)."""

    start: datetime
    counts: Counts

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(timespec="minutes"), **self.counts.to_json()}


@dataclass(frozen=True)
class Statistics:
    """Totals, per-hour and per-day buckets (each in time order, without gaps in its range)."""

    totals: Counts = field(default_factory=Counts)
    hourly: tuple[Bucket, ...] = ()
    daily: tuple[Bucket, ...] = ()
    hour_of_day: tuple[Counts, ...] = ()  # 24 entries: the day's shape summed over all days

    def to_json(self) -> dict[str, Any]:
        return {
            "totals": self.totals.to_json(),
            "daily": [b.to_json() for b in self.daily],
            "hourly": [b.to_json() for b in self.hourly],
            "hour_of_day": [{"hour": h, **c.to_json()} for h, c in enumerate(self.hour_of_day)],
        }


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def classify(entry: EntryLike) -> str | None:
    """Which counter an entry adds to, or None (identification, item information, in-doubt work)."""
    op, state = _value(entry.operation), _value(entry.state)
    if op not in ("checkout", "checkin", "renew", "renew_all"):
        return None
    if state in _REFUSED:
        return "refusals"
    if state not in _ACCEPTED:
        return None
    if op == "checkin":
        return "returns"
    result = entry.result if isinstance(entry.result, Mapping) else {}
    if op in ("renew", "renew_all") or result.get("renewal") is True:
        return "renewals"
    return "checkouts"


def _bump(counts: Counts, key: str) -> Counts:
    return Counts(**{k: getattr(counts, k) + (1 if k == key else 0) for k in COUNTERS})


def _fill(found: dict[datetime, Counts], step: timedelta) -> tuple[Bucket, ...]:
    if not found:
        return ()
    start, end = min(found), max(found)
    out = []
    t = start
    while t <= end:
        out.append(Bucket(t, found.get(t, Counts())))
        t += step
    return tuple(out)


def compute(
    entries: Iterable[EntryLike], since: datetime | None = None, until: datetime | None = None
) -> Statistics:
    """The statistics of the entries created in [since, until)."""
    hourly: dict[datetime, Counts] = {}
    daily: dict[datetime, Counts] = {}
    profile = [Counts() for _ in range(24)]
    totals = Counts()
    for e in entries:
        created = e.created
        if since is not None and created < since or until is not None and created >= until:
            continue
        key = classify(e)
        if key is None:
            continue
        hour = created.replace(minute=0, second=0, microsecond=0)
        day = datetime.combine(created.date(), datetime.min.time())
        hourly[hour] = _bump(hourly.get(hour, Counts()), key)
        daily[day] = _bump(daily.get(day, Counts()), key)
        profile[created.hour] = _bump(profile[created.hour], key)
        totals = _bump(totals, key)
    return Statistics(
        totals, _fill(hourly, timedelta(hours=1)), _fill(daily, timedelta(days=1)), tuple(profile)
    )


def last_hours(stats: Statistics, now: datetime, hours: int = 24) -> tuple[Bucket, ...]:
    """The `hours` hourly buckets up to and including the current hour, zero where nothing happened."""
    end = now.replace(minute=0, second=0, microsecond=0)
    found = {b.start: b.counts for b in stats.hourly}
    return tuple(
        Bucket(t, found.get(t, Counts()))
        for t in (end - timedelta(hours=h) for h in range(hours - 1, -1, -1))
    )


def last_days(stats: Statistics, today: date, days: int = 14) -> tuple[Bucket, ...]:
    """The `days` daily buckets up to and including `today`."""
    end = datetime.combine(today, datetime.min.time())
    found = {b.start: b.counts for b in stats.daily}
    return tuple(
        Bucket(t, found.get(t, Counts()))
        for t in (end - timedelta(days=d) for d in range(days - 1, -1, -1))
    )


def to_csv(buckets: Iterable[Bucket], fmt: str = "%Y-%m-%d") -> str:
    """Buckets as CSV (a header, then one row per period), for spreadsheets and reports."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("period", *COUNTERS))
    for b in buckets:
        writer.writerow((b.start.strftime(fmt), *(getattr(b.counts, k) for k in COUNTERS)))
    return out.getvalue()


def table(buckets: Iterable[Bucket], fmt: str = "%Y-%m-%d %H:00") -> str:
    """A plain-text table of buckets, with a total row."""
    rows: list[tuple[str, ...]] = [("period", *COUNTERS)]
    total = Counts()
    for b in buckets:
        rows.append((b.start.strftime(fmt), *(str(getattr(b.counts, k)) for k in COUNTERS)))
        total = total + b.counts
    rows.append(("total", *(str(getattr(total, k)) for k in COUNTERS)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for n, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            ).rstrip()
        )
        if n == 0 or n == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)
