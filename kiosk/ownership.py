"""Who may touch the kiosk's data: a command run as root must never create or take over the
journal and its folder, or the kiosk (running as its own user) could no longer write them.

`kiosk` commands that open the journal call `refuse_root_on_kiosk_data` first: as root, when the
data folder or the journal belongs to another user (the "kiosk" user on an installed appliance),
they stop with one line that says how to run the command as that user.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from kiosk.errors import ConfigError

# Sub-commands that open the journal or write other data of the kiosk.
DATA_COMMANDS = frozenset({"run", "circ", "sync", "journal", "stats", "acs", "purge"})


class DataOwnerError(ConfigError):
    """Run as the wrong user for the kiosk's data; the message says which user to use."""


def _name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def data_owner(journal: Path) -> int | None:
    """The uid owning the journal, else its folder; None when neither exists yet."""
    for path in (journal, journal.parent):
        try:
            return path.stat().st_uid
        except FileNotFoundError:
            continue
    return None


def refuse_root_on_kiosk_data(journal: Path, command: str, *, euid: int | None = None) -> None:
    """Raise DataOwnerError when root would open data that belongs to another user."""
    if (os.geteuid() if euid is None else euid) != 0:
        return
    owner = data_owner(journal)
    if owner is None or owner == 0:
        return  # root's own data (a development checkout) or nothing there yet
    user = _name(owner)
    raise DataOwnerError(
        f"{journal.parent} belongs to {user}; as root `kiosk {command}` would leave files there {user} cannot "
        f"write: run it as {user}: sudo -u {user} kiosk {command} ..."
    )


def not_writable_message(journal: Path) -> str | None:
    """One line with the fix when the journal (or its folder) cannot be written by this process."""
    folder = journal.parent
    targets = [p for p in (journal, Path(f"{journal}-wal"), Path(f"{journal}-shm")) if p.exists()]
    if not folder.exists() or all(os.access(p, os.W_OK) for p in [*targets, folder]):
        return None
    me = _name(os.geteuid())
    owner = _name(data_owner(journal) or 0)
    return (
        f"journal {journal} is not writable by {me}: run the command as {owner} (sudo -u {owner} kiosk ...), "
        f"or give the files back to the kiosk: sudo chown kiosk:kiosk {folder} {journal}*"
    )
