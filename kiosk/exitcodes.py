"""The exit codes every `kiosk` command uses, in one table (printed by `kiosk --help`, listed in
README.md and docs/operations.md), so a technician's script can tell the cases apart."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    """Process exit codes of the `kiosk` command."""

    OK = 0  # done; every check passed
    FAILED = 1  # a check failed, a transaction was refused, work is still pending or refused
    USAGE = (
        2  # bad command line, bad input text, or a configuration fault (the message names the key)
    )
    UNREACHABLE = 3  # the library system could not be reached (network, timeout)
    INTERNAL = 70  # a defect in the kiosk: the traceback is logged; please report it
    INTERRUPTED = 130  # stopped by Ctrl+C (SIGINT) or SIGTERM before it finished
    OUTPUT_CLOSED = (
        141  # the reader of the output went away (e.g. `| head`); like a shell's SIGPIPE
    )


DESCRIPTIONS: dict[Exit, str] = {
    Exit.OK: "done; every check passed",
    Exit.FAILED: "a check failed, a transaction was refused, or work is still pending or refused",
    Exit.USAGE: "usage error, unreadable input, or a configuration fault (the message names the key and the fix)",
    Exit.UNREACHABLE: "the library system could not be reached (network, timeout)",
    Exit.INTERNAL: "internal error (a defect: the traceback is logged; please report it)",
    Exit.INTERRUPTED: "interrupted (Ctrl+C) before it finished",
    Exit.OUTPUT_CLOSED: "the output was closed early by its reader (e.g. piped to head)",
}


def help_table() -> str:
    """The table as `kiosk --help` prints it after the command list."""
    lines = ["exit codes:"]
    lines += [f"  {int(code):<4} {text}" for code, text in DESCRIPTIONS.items()]
    return "\n".join(lines)
