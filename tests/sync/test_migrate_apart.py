"""`kiosk run` migrates a journal that needs it in a child process (kiosk/sync/migrate.py), so
Alembic and Mako never take memory in the long-running kiosk: a new journal, an older schema
with rows in it, and a file that is no journal at all."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.core.domain import Mode, Operation
from kiosk.sync.journal import EntryState, Journal, JournalError, schema_stamp
from kiosk.sync.migrate import migrate_apart, needs_migration
from tests.sync.test_journal_stamp import user_version

ROOT = Path(__file__).resolve().parents[2]

# As `kiosk run` starts its parts: the composition root with migrate_apart, in a fresh process,
# and whether Alembic was loaded there.
BUILD = """
import sys
from kiosk import config
from kiosk.app import build_services
cfg = config.load(sys.argv[1])
services = build_services(cfg, start_acs=False, migrate_apart=True)
print("alembic" in sys.modules, "mako" in sys.modules)
services.close()
"""


def test_a_new_journal_is_created_in_a_child_and_opens_here_without_alembic(
    tmp_path: Path,
) -> None:
    path = tmp_path / "var" / "journal.sqlite"
    assert needs_migration(path)
    assert not path.exists()  # asking does not create it
    migrate_apart(path)
    assert user_version(path) == schema_stamp()
    assert not needs_migration(path)
    with Journal(path) as journal:
        assert journal.pending_count() == 0


def test_kiosk_runs_parts_start_without_alembic_in_its_process(tmp_path: Path) -> None:
    text = (ROOT / "config" / "kiosk.toml").read_text(encoding="utf-8")
    (tmp_path / "config").mkdir()
    site = tmp_path / "config" / "kiosk.toml"
    site.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", BUILD, str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_NO_ARGS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["False", "False"], done.stdout
    journals = list(tmp_path.rglob("*.sqlite"))
    assert journals and all(user_version(j) == schema_stamp() for j in journals)


def test_an_older_schema_is_brought_up_to_date_with_its_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        entry_id = journal.begin(
            Operation.CHECKOUT,
            mode=Mode.OFFLINE,
            state=EntryState.QUEUED,
            patron_id="LV0002",
            item_id="ITEM-1",
        )
    # Back to the first schema, as a kiosk installed before the second migration left it.
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE transactions DROP COLUMN failures")
    con.execute("UPDATE alembic_version SET version_num = '0001'")
    con.execute("PRAGMA user_version = 0")
    con.commit()
    con.close()
    assert needs_migration(path)
    migrate_apart(path)
    assert user_version(path) == schema_stamp()
    with Journal(path) as journal:
        row = journal.get(entry_id)
        assert row.item_id == "ITEM-1" and row.state == EntryState.QUEUED and row.failures == 0


def test_a_file_that_is_no_journal_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    assert needs_migration(path)
    with pytest.raises(JournalError, match=r"journal .*journal\.sqlite"):
        migrate_apart(path)
    assert path.read_bytes().startswith(b"this is not a database")  # left for a technician
