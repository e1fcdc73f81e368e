"""Checks a site configuration before `systemd/install.sh` puts it in place: every file the kiosk
writes must be an absolute path in a folder its systemd sandbox lets it write.

Under `ProtectSystem=strict` only /var/lib/kiosk and /var/log/kiosk are writable
(systemd/kiosk.service), and a relative path would be taken from /etc/kiosk, which the kiosk
must not write. Run as `python -m kiosk.installcheck CONFIG`; exit 0 when every path is usable,
2 with one line per wrong key otherwise.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import PurePosixPath

from kiosk import config as kconfig
from kiosk.errors import KioskError
from kiosk.exitcodes import Exit

WRITABLE = (PurePosixPath("/var/lib/kiosk"), PurePosixPath("/var/log/kiosk"))


@dataclass(frozen=True)
class DataPath:
    """One setting that names a file or folder the kiosk writes."""

    key: str
    path: str


def data_paths(cfg: kconfig.Config) -> list[DataPath]:
    """The settings of `cfg` that name a place the kiosk writes, as far as they are in use."""
    out = [DataPath("storage.path", cfg.storage.path)]
    for key, url in (
        ("printer.url", cfg.printer.url),
        ("printer.staff_url", cfg.printer.staff_url),
    ):
        if url.startswith("file:"):
            out.append(DataPath(key, url.removeprefix("file:")))
    if cfg.printer.email_receipts and cfg.printer.email_url.startswith("file:"):
        out.append(DataPath("printer.email_url", cfg.printer.email_url.removeprefix("file:")))
    if cfg.acs.embedded and cfg.acs.database_url.startswith("sqlite:///"):
        out.append(DataPath("acs.database_url", cfg.acs.database_url.removeprefix("sqlite:///")))
    if cfg.logging.file:
        out.append(DataPath("logging.file", cfg.logging.file))
    return out


def problems(cfg: kconfig.Config) -> list[str]:
    """One line per data path that is relative or outside the folders the kiosk may write."""
    found = []
    for item in data_paths(cfg):
        p = PurePosixPath(item.path)
        if not p.is_absolute():
            found.append(
                f"{item.key}: {item.path!r} is relative (it would be taken from the config's folder); "
                f"use an absolute path under {WRITABLE[0]}"
            )
        elif not any(p == w or w in p.parents for w in WRITABLE):
            found.append(
                f"{item.key}: {item.path} is outside {WRITABLE[0]} and {WRITABLE[1]}, the only folders "
                "the kiosk's sandbox may write"
            )
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kiosk.installcheck CONFIG", file=sys.stderr)
        return Exit.USAGE
    try:
        cfg = kconfig.load(args[0])
    except KioskError as exc:
        print(f"{args[0]}: {exc}", file=sys.stderr)
        return Exit.USAGE
    lines = problems(cfg)
    for line in lines:
        print(f"{args[0]}: {line}", file=sys.stderr)
    if lines:
        return Exit.USAGE
    for item in data_paths(cfg):
        print(f"{item.key} = {item.path}")
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
