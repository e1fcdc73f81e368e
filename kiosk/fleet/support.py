"""`kiosk support-bundle OUT.tar.gz`: what a technician attaches to a ticket, with nothing personal.

The bundle holds the doctor's checks, the resolved configuration (secrets masked), versions,
the attached devices, a journal summary (counts and events, never a patron id or PIN), the
daily statistics and the kiosk's recent log lines; every text goes through the log scrubber
(card numbers masked, SIP2 secrets and PIN-like values removed) on its way in.
"""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from kiosk import __version__, config_layers, doctor
from kiosk import config as kconfig
from kiosk.core import stats as kstats
from kiosk.devices.cli import collect, render_table
from kiosk.fleet.statstore import roll_up_journal
from kiosk.logsetup import card_regex, scrub

log = logging.getLogger(__name__)

LOG_LINES = 2000
PACKAGES = (
    "kivy",
    "sqlalchemy",
    "alembic",
    "pyserial",
    "requests",
    "python-escpos",
    "prometheus-client",
    "pyscard",
    "nfcpy",
)


def _versions() -> str:
    lines = [
        f"kiosk {__version__}",
        f"python {platform.python_version()}",
        f"platform {platform.platform()}",
    ]
    for name in PACKAGES:
        try:
            lines.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            lines.append(f"{name} (not installed)")
    return "\n".join(lines) + "\n"


def _doctor(cfg: kconfig.Config, timeout_s: float) -> str:
    checks = doctor.run_checks(cfg, timeout_s=timeout_s)
    return "\n".join(c.line() for c in checks) + "\n"


def _devices() -> str:
    return render_table(collect()) + "\n"


def _journal_summary(cfg: kconfig.Config) -> str:
    path = cfg.resolve_path(cfg.storage.path)
    if not path.exists():
        return json.dumps({"journal": str(path), "note": "no journal yet"}, indent=2) + "\n"
    from kiosk.sync.journal import Journal  # lazy: SQLAlchemy, only with a journal

    with Journal(path) as journal:
        entries = journal.entries()
        by_state = Counter(f"{e.operation.value} {e.state.value}" for e in entries)
        pending = journal.pending_offline()
        events = journal.events(datetime.now() - timedelta(days=7))[-100:]
        doc = {
            "journal": str(path),
            "transactions": len(entries),
            "first": entries[0].created.isoformat(timespec="seconds") if entries else None,
            "last": entries[-1].created.isoformat(timespec="seconds") if entries else None,
            "by_operation_and_state": dict(sorted(by_state.items())),
            "pending": len(pending),
            "oldest_pending": pending[0].created.isoformat(timespec="seconds") if pending else None,
            "refused_for_staff": len(journal.refusals()),
            "sqlite": {
                "journal_mode": journal.pragma("journal_mode"),
                "integrity": journal.pragma("quick_check"),
            },
            "events_last_7_days": [ev.to_json() for ev in events],
        }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"


def _statistics(cfg: kconfig.Config) -> str:
    store = roll_up_journal(cfg)
    try:
        return kstats.to_csv(store.days(date.today() - timedelta(days=89), date.today()))
    finally:
        store.close()


def _logs(cfg: kconfig.Config) -> str:
    if not cfg.logging.file:
        return (
            "no log file configured ([logging] file); on an appliance see `journalctl -u kiosk`\n"
        )
    path = cfg.resolve_path(cfg.logging.file)
    files = [
        p for p in (Path(f"{path}.{n}") for n in range(cfg.logging.backups, 0, -1)) if p.exists()
    ]
    if path.exists():
        files.append(path)
    lines: list[str] = []
    for p in files:
        try:
            lines += p.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            lines.append(f"({p}: {exc})")
    return "\n".join(lines[-LOG_LINES:]) + "\n"


def _config(cfg: kconfig.Config) -> str:
    return config_layers.show(cfg)


def write_bundle(
    config_arg: str | None, out: str | os.PathLike[str], *, timeout_s: float = 5.0
) -> Path:
    """Collect everything into `out` (a .tar.gz); a part that fails is replaced by its error."""
    cfg = kconfig.load(config_arg)
    card_re = card_regex(cfg.patron.card_pattern)
    parts: list[tuple[str, Callable[[], str]]] = [
        ("doctor.txt", lambda: _doctor(cfg, timeout_s)),
        ("config-resolved.toml", lambda: _config(cfg)),
        ("versions.txt", _versions),
        ("devices.txt", _devices),
        ("journal-summary.json", lambda: _journal_summary(cfg)),
        ("statistics-daily.csv", lambda: _statistics(cfg)),
        ("kiosk.log", lambda: _logs(cfg)),
    ]
    files: dict[str, str] = {}
    for name, make in parts:
        try:
            text = make()
        except Exception as exc:
            # A bundle is collected when things are broken: one failing part must not lose the rest.
            log.exception("support bundle: %s failed", name)
            text = f"could not collect {name}: {exc!r}\n"
        files[name] = scrub(text, card_re)
    manifest = {
        "terminal": cfg.kiosk.terminal_id,
        "library": cfg.kiosk.library_name,
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "kiosk_version": __version__,
        "files": sorted(files),
    }
    files["manifest.json"] = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    prefix = f"kiosk-support-{cfg.kiosk.terminal_id}-{datetime.now():%Y%m%d-%H%M%S}"
    with tarfile.open(tmp, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode("utf-8")
            info = tarfile.TarInfo(f"{prefix}/{name}")
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o600
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, target)
    return target


def read_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The bundle's files by name (for tests and for a technician's script)."""
    out: dict[str, Any] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            f = tar.extractfile(member)
            if f is not None:
                out[member.name.split("/", 1)[1]] = f.read().decode("utf-8")
    return out
