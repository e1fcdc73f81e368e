"""A journal whose schema is current opens without Alembic: the migrations applied are stamped in
SQLite's user_version, and a journal without this version's stamp goes through Alembic as before
and is stamped."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from kiosk.sync.journal import Journal, schema_stamp

ROOT = Path(__file__).resolve().parents[2]
OPEN = (
    "import sys; from kiosk.sync.journal import Journal; Journal(sys.argv[1]).close(); "
    "print('alembic' in sys.modules)"
)


def opened_with_alembic(path: Path) -> bool:
    done = subprocess.run(
        [sys.executable, "-c", OPEN, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip() == "True"


def user_version(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return int(con.execute("PRAGMA user_version").fetchone()[0])
    finally:
        con.close()


def test_a_current_journal_opens_without_alembic(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    assert opened_with_alembic(path)  # created: migrated
    assert user_version(path) == schema_stamp() != 0
    assert not opened_with_alembic(path)  # current: the stamp is enough


def test_an_unstamped_or_differently_stamped_journal_goes_through_alembic(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    con = sqlite3.connect(path)
    head = con.execute("select version_num from alembic_version").fetchall()
    con.close()
    for older in (0, 12345):  # before the stamp existed; another set of migrations
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA user_version = {older}")
        con.commit()
        con.close()
        assert opened_with_alembic(path)
        assert user_version(path) == schema_stamp()
    con = sqlite3.connect(path)
    assert con.execute("select version_num from alembic_version").fetchall() == head
    con.close()
