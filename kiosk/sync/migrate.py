"""`python -m kiosk.sync.migrate PATH`: bring the journal at PATH to the newest schema in a
process of its own, so that Alembic (and Mako, which it loads) never sit in the memory of the
long-running kiosk (docs/performance.md, memory). `kiosk run` uses it through
`migrate_apart()`; everything else migrates in its own process, as `Journal()` does."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from kiosk.sync.journal import Journal, JournalError, schema_stamp

# A migration rewrites a table at most; a minute is far beyond any kiosk's journal.
MIGRATE_TIMEOUT_S = 120.0


def needs_migration(path: str | Path) -> bool:
    """Whether the journal at `path` is missing or not stamped with this version's migrations.
    Read with the standard library's sqlite3, read-only: the check must not create the file."""
    path = Path(path)
    if not path.exists():
        return True
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return True  # the migration's own open says what is wrong with the file
    return bool(version != schema_stamp())


def migrate_apart(path: str | Path) -> None:
    """Migrate the journal at `path` in a child process if it needs it; JournalError with the
    child's reason if it could not."""
    if not needs_migration(path):
        return
    try:
        done = subprocess.run(
            [sys.executable, "-m", "kiosk.sync.migrate", str(path)],
            capture_output=True,
            text=True,
            timeout=MIGRATE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise JournalError(f"journal {path}: the migration could not run ({exc})") from exc
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise JournalError(reason if reason.startswith("journal ") else f"journal {path}: {reason}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kiosk.sync.migrate JOURNAL_PATH", file=sys.stderr)
        return 2
    try:
        Journal(args[0]).close()
    except JournalError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
