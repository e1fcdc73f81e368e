"""Retention: `kiosk purge` deletes finished work older than [storage] retention_days (default 30)
with its card numbers, keeps open work and the staff list, and the day counts survive in the
statistics file. Real journal and statistics files, the command through its dispatcher."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from kiosk import config as kconfig
from kiosk.cli import main
from kiosk.core.domain import Mode, Operation
from kiosk.core.ports import ManualClock
from kiosk.fleet.statstore import StatsStore
from kiosk.sync.journal import EntryState, Journal
from tests.tech.conftest import write_site

NOW = datetime.now().replace(microsecond=0)


def seeded(tmp_path, extra: str = ""):
    f = write_site(tmp_path, port=6001, extra=extra)
    cfg = kconfig.load(f)
    old = Journal(cfg.resolve_path(cfg.storage.path), clock=ManualClock(NOW - timedelta(days=40)))
    ids = {
        "old done": old.begin(
            Operation.CHECKOUT,
            mode=Mode.ONLINE,
            state=EntryState.DONE,
            patron_id="LV00001111",
            item_id="30000001",
        ),
        "old queued": old.begin(
            Operation.CHECKOUT,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            patron_id="LV00002222",
            item_id="30000002",
        ),
        "old staff list": old.begin(
            Operation.CHECKOUT,
            mode=Mode.OFFLINE,
            state=EntryState.FORWARD_REFUSED,
            patron_id="LV00003333",
            item_id="30000003",
        ),
    }
    old.close()
    recent = Journal(cfg.resolve_path(cfg.storage.path), clock=ManualClock(NOW - timedelta(days=5)))
    ids["recent done"] = recent.begin(
        Operation.CHECKIN,
        mode=Mode.ONLINE,
        state=EntryState.DONE,
        item_id="30000004",
        patron_id="LV00004444",
    )
    recent.close()
    return f, cfg, ids


def remaining(cfg) -> dict[int, str]:
    with Journal(cfg.resolve_path(cfg.storage.path)) as j:
        return {e.id: e.patron_id for e in j.entries()}


def test_purge_keeps_open_work_the_staff_list_and_the_statistics(tmp_path, capsys):
    f, cfg, ids = seeded(tmp_path)
    assert main(["--config", str(f), "purge"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["retention_days"] == 30
    assert report["purged"] == 1
    left = remaining(cfg)
    assert ids["old done"] not in left
    assert {ids["old queued"], ids["old staff list"], ids["recent done"]} <= set(left)
    assert "LV00001111" not in json.dumps(list(left.values()))
    store = StatsStore.for_config(cfg)
    try:
        day = (NOW - timedelta(days=40)).date()
        counts = {b.start.date(): b.counts for b in store.days(day, date.today())}
        assert counts[day].checkouts >= 1  # the purged loan still counts in its day
    finally:
        store.close()


def test_the_retention_is_configurable(tmp_path, capsys):
    f, cfg, ids = seeded(tmp_path, extra="[storage]\nretention_days = 3\n")
    assert main(["--config", str(f), "purge"]) == 0
    assert json.loads(capsys.readouterr().out)["purged"] == 2
    assert ids["recent done"] not in remaining(cfg)


def test_without_a_journal_nothing_is_created(tmp_path, capsys):
    f = write_site(tmp_path, port=6001)
    assert main(["--config", str(f), "purge"]) == 0
    assert json.loads(capsys.readouterr().out)["purged"] == 0
    assert not (tmp_path / "var" / "journal.sqlite").exists()
