"""Crash points: fault injection for the power-cut tests, which kill a real kiosk process at a
named point of a transaction (before sending, after sending, after the answer) and count what
the library system applied (docs/testing.md)."""

from __future__ import annotations

import os
import signal

# The environment variable a power-cut test sets to kill the process at a named point.
CRASH_ENV = "KIOSK_CRASH_AT"
_crash_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    """Fault injection for power-cut tests: SIGKILL this process when $KIOSK_CRASH_AT names this point.

    `name` or `name@N` (die at the N-th time the point is reached). Does nothing otherwise.
    """
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition("@")
    if point != name:
        return
    _crash_hits[name] = _crash_hits.get(name, 0) + 1
    if _crash_hits[name] >= (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
