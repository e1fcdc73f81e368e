"""Statistics from journal entries, `kiosk stats` on a real journal file."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from kiosk.core import stats as kstats
from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.sync.journal import EntryState, Journal

T0 = datetime(2026, 11, 24, 9, 15)


def _record(journal, op, state, at, result=None, patron="LV0001", item="30000001"):
    return journal.begin(
        op, mode=Mode.ONLINE, state=state, patron_id=patron, item_id=item, created=at, result=result
    )


@pytest.fixture
def journal(tmp_path):
    j = Journal(tmp_path / "var" / "journal.sqlite", clock=ManualClock(T0))
    _record(j, Operation.CHECKOUT, EntryState.DONE, T0)
    _record(j, Operation.CHECKOUT, EntryState.DONE, T0 + timedelta(minutes=5))
    _record(j, Operation.CHECKOUT, EntryState.REFUSED, T0 + timedelta(minutes=6))
    _record(
        j, Operation.CHECKOUT, EntryState.DONE, T0 + timedelta(minutes=7), result={"renewal": True}
    )
    _record(
        j, Operation.CHECKIN, EntryState.QUEUED, T0 + timedelta(hours=2)
    )  # offline return counts
    _record(j, Operation.CHECKIN, EntryState.FORWARD_REFUSED, T0 + timedelta(hours=2, minutes=1))
    _record(j, Operation.RENEW, EntryState.DONE, T0 + timedelta(days=1))
    _record(
        j, Operation.PATRON, EntryState.DONE, T0
    )  # identification is not a transaction to count
    _record(j, Operation.CHECKOUT, EntryState.IN_DOUBT, T0)  # not known yet
    yield j
    j.close()


def test_counts_per_kind_hour_and_day(journal):
    s = kstats.compute(journal.entries())
    assert s.totals.to_json() == {"checkouts": 2, "returns": 1, "renewals": 2, "refusals": 2}
    assert [b.start for b in s.daily] == [datetime(2026, 11, 24), datetime(2026, 11, 25)]
    assert s.daily[0].counts == kstats.Counts(checkouts=2, returns=1, renewals=1, refusals=2)
    assert s.daily[1].counts == kstats.Counts(renewals=1)
    # hours without activity between the first and last are present as zeros
    assert s.hourly[0].start == datetime(2026, 11, 24, 9)
    assert s.hourly[0].counts.checkouts == 2
    assert s.hourly[1].counts.total == 0
    assert s.hourly[2].counts == kstats.Counts(returns=1, refusals=1)
    assert len(s.hourly) == 25
    assert s.hour_of_day[9] == kstats.Counts(checkouts=2, renewals=2, refusals=1)


def test_since_and_until_limit_the_period(journal):
    s = kstats.compute(
        journal.entries(), since=T0 + timedelta(hours=1), until=T0 + timedelta(hours=3)
    )
    assert s.totals == kstats.Counts(returns=1, refusals=1)


def test_last_days_and_hours_fill_the_window(journal):
    s = kstats.compute(journal.entries())
    days = kstats.last_days(s, datetime(2026, 11, 26).date(), 3)
    assert [b.counts.total for b in days] == [6, 1, 0]
    hours = kstats.last_hours(s, datetime(2026, 11, 24, 11, 40), 3)
    assert [b.start.hour for b in hours] == [9, 10, 11]
    assert [b.counts.total for b in hours] == [4, 0, 2]


def test_table_has_a_total_row(journal):
    s = kstats.compute(journal.entries())
    text = kstats.table(s.daily, "%Y-%m-%d")
    lines = text.splitlines()
    assert lines[0].split() == ["period", "checkouts", "returns", "renewals", "refusals"]
    assert lines[2].split() == ["2026-11-24", "2", "1", "1", "2"]
    assert lines[-1].split() == ["total", "2", "1", "2", "2"]


def test_no_patron_data_in_statistics(journal):
    text = json.dumps(kstats.compute(journal.entries()).to_json())
    assert "LV0001" not in text
    assert "30000001" not in text


def test_kiosk_stats_command_json_and_table(tmp_path, capsys):
    from kiosk import cli

    now = datetime.now().replace(microsecond=0)
    j = Journal(tmp_path / "var" / "journal.sqlite")
    _record(j, Operation.CHECKOUT, EntryState.DONE, now - timedelta(minutes=1))
    _record(j, Operation.CHECKIN, EntryState.DONE, now - timedelta(minutes=1))
    _record(j, Operation.CHECKIN, EntryState.REFUSED, now - timedelta(days=1))
    _record(j, Operation.CHECKIN, EntryState.DONE, now - timedelta(days=40))  # outside --days
    j.close()
    (tmp_path / "config").mkdir()
    cfgfile = tmp_path / "config" / "kiosk.toml"
    cfgfile.write_text('[storage]\npath = "var/journal.sqlite"\n')
    assert cli.main(["--config", str(cfgfile), "stats", "--json", "--days", "7"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"] == {"checkouts": 1, "returns": 1, "renewals": 0, "refusals": 1}
    assert len(doc["daily"]) == 7
    assert doc["daily"][-1]["checkouts"] == 1
    assert doc["daily"][-2]["refusals"] == 1
    assert sum(h["returns"] for h in doc["hourly"]) == 1
    assert cli.main(["--config", str(cfgfile), "stats", "--days", "2"]) == 0
    out = capsys.readouterr().out
    assert "Per day, last 2 days" in out
    total_line = [line for line in out.splitlines() if line.startswith("total")][0]
    assert total_line.split() == ["total", "1", "1", "0", "1"]
