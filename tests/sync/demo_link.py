"""Helpers for tests of the SIP2 link against the demo library system: client settings, a call
run in a thread, bounded waits, and fake-ACS answers that belong to another request."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from kiosk.config import Sip2Section
from kiosk.sync.acs.server import RunningAcs
from kiosk.sync.sip2.codec import Message

WAIT_S = 20.0


def settings_for(acs: RunningAcs, **overrides: Any) -> Sip2Section:
    """Kiosk settings for the demo library system at `acs` (short timeouts keep tests fast)."""
    base = Sip2Section(
        host=acs.host,
        port=acs.port,
        username="kiosk",
        password="demo",
        institution_id="DEMO",
        location_code="DEMO",
        timeout_s=0.5,
        retries=2,
    )
    return dataclasses.replace(base, **overrides)


def in_thread(call: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `call` in a thread; its return value or exception lands in the list."""
    box: list[object] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # handed to the test thread
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_for(condition: Callable[[], bool], what: str, limit_s: float = WAIT_S) -> None:
    """Wait (bounded) until `condition()` holds; fail naming `what` otherwise."""
    pause = threading.Event()
    for _ in range(int(limit_s / 0.02)):
        if condition():
            return
        pause.wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def with_field(answer: Message, fid: str, value: str) -> Message:
    """`answer` with field `fid` set to `value`: an answer that belongs to another request."""
    answer.fields = [(f, value if f == fid else v) for f, v in answer.fields]
    return answer
