"""`kiosk support-bundle` holds what a ticket needs and nothing personal; `kiosk stats --csv` reads
daily statistics that survive a journal purge."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from kiosk import cli, config
from kiosk.core.domain import Mode, Operation
from kiosk.fleet.support import read_bundle
from kiosk.sync.journal import EntryState, Journal
from tests.fleet.conftest import write_kiosk
from tests.fleet.kiosk_process import HeadlessKiosk
from tests.tech.conftest import ADMIN_CARD


def test_support_bundle_has_the_parts_and_no_patron_data(
    tmp_path: Path, demo_acs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_kiosk(tmp_path, port=demo_acs.port, extra='[logging]\nfile = "var/kiosk.log"\n')
    text = f.read_text().replace(
        'password = "demo"', 'password = "demo"\nterminal_password = "TP-s3cret-42"'
    )
    f.write_text(text.replace(f'"{ADMIN_CARD}"', '"ADM99887766"'))
    k = HeadlessKiosk(config.load(f))
    try:
        assert k.checkout("LV0002", "30000001") == "checked_out"
    finally:
        k.close()
    (tmp_path / "var").mkdir(exist_ok=True)
    (tmp_path / "var" / "kiosk.log").write_text(
        "2026-12-07 10:00:00 INFO kiosk.core.session: patron LV000212 logged in\n"
        "2026-12-07 10:00:01 WARNING kiosk.sync.sip2.client: sent 63...|AALV000212|ADpin9911|\n"
    )
    out = tmp_path / "ticket" / "bundle.tar.gz"
    assert cli.main(["--config", str(f), "support-bundle", str(out), "--timeout", "2"]) == 0
    assert str(out) in capsys.readouterr().out
    files = read_bundle(out)
    assert set(files) == {
        "manifest.json",
        "doctor.txt",
        "config-resolved.toml",
        "versions.txt",
        "devices.txt",
        "journal-summary.json",
        "statistics-daily.csv",
        "kiosk.log",
    }
    assert "library" in files["doctor.txt"] and "kiosk 0.1.0" in files["versions.txt"]
    assert '"checkout done": 1' in files["journal-summary.json"]
    assert f"{date.today().isoformat()},1,0,0,0" in files["statistics-daily.csv"]
    assert "logged in" in files["kiosk.log"] and "**0212" in files["kiosk.log"]
    everything = "\n".join(files.values())
    for secret in ("LV0002", "LV000212", "pin9911", "TP-s3cret-42", "ADM99887766", "John Smith"):
        assert secret not in everything, f"{secret!r} in the support bundle"


def _old_checkout(journal: Journal, when: datetime, item: str) -> None:
    eid = journal.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.PENDING,
        patron_id="LV0001",
        item_id=item,
        created=when,
    )
    journal.update(eid, EntryState.DONE, result={"ok": True})


def test_stats_csv_survives_a_journal_purge(
    tmp_path: Path, demo_acs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_kiosk(tmp_path, port=demo_acs.port)
    cfg = config.load(f)
    old = datetime.combine(date.today() - timedelta(days=10), datetime.min.time()) + timedelta(
        hours=11
    )
    (tmp_path / "var").mkdir(exist_ok=True)
    with Journal(cfg.resolve_path(cfg.storage.path)) as journal:
        _old_checkout(journal, old, "30000001")
        _old_checkout(journal, old + timedelta(minutes=5), "30000002")
    row = f"{old.date().isoformat()},2,0,0,0"

    # No statistics read before the purge: the purge itself must keep the days.
    assert cli.main(["--config", str(f), "journal", "--purge-days", "5"]) == 0
    assert '"purged": 2' in capsys.readouterr().out
    with Journal(cfg.resolve_path(cfg.storage.path)) as journal:
        assert journal.entries() == []

    assert cli.main(["--config", str(f), "stats", "--csv", "--days", "14"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "period,checkouts,returns,renewals,refusals"
    assert len(text.splitlines()) == 15 and row in text


def test_a_roll_up_never_lowers_a_day(tmp_path: Path) -> None:
    from kiosk.core import stats as kstats
    from kiosk.fleet.statstore import StatsStore

    store = StatsStore(tmp_path / "stats.sqlite")
    day = datetime(2026, 11, 2)
    store.add_days([kstats.Bucket(day, kstats.Counts(checkouts=5, returns=2))])
    store.add_days([kstats.Bucket(day, kstats.Counts(checkouts=3, returns=4))])
    [bucket] = store.days(day.date(), day.date())
    assert bucket.counts == kstats.Counts(checkouts=5, returns=4)
    store.close()
