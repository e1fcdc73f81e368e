"""The core layer's exception family, and how the core logs a fault it catches.

A fault the kiosk expects (the link, a device, the journal) arrives as a KioskError and is
logged on one line. Anything else is a bug: `log_fault` logs it with its traceback, and in
strict mode (switched on by the test suite, as Textual's pilot re-raises an app's exceptions)
keeps it so the test that caused it fails instead of passing on a fallback.
"""

from __future__ import annotations

import logging
import threading

from kiosk.errors import KioskError


class CoreError(KioskError):
    """A workflow was driven wrongly or a site rule is unusable; the message says which and what to fix."""


class RoutingTableError(CoreError):
    """A `[[routing]]` row names an outcome or alert type the kiosk does not know."""


_strict = False
_unexpected: list[BaseException] = []
_unexpected_lock = threading.Lock()


def set_strict(on: bool) -> None:
    """Strict mode keeps every unexpected exception for `take_unexpected()` (tests switch it on)."""
    global _strict
    _strict = on


def is_strict() -> bool:
    return _strict


def take_unexpected() -> list[BaseException]:
    """The unexpected exceptions kept since the last call, oldest first."""
    with _unexpected_lock:
        taken = list(_unexpected)
        _unexpected.clear()
    return taken


def is_expected(exc: BaseException) -> bool:
    """A fault of the kiosk's own families (link, device, journal, configuration)."""
    return isinstance(exc, KioskError)


def log_fault(
    log: logging.Logger,
    exc: BaseException,
    what: str,
    *args: object,
    level: int = logging.ERROR,
) -> None:
    """Log a fault caught by a handler that carries on: `what % args`, then the fault.

    An expected fault is one line at `level`; an unexpected one is logged at error level with its
    traceback and, in strict mode, kept so that the test that caused it fails."""
    if is_expected(exc):
        log.log(level, what + ": %s", *args, exc)
        return
    log.error(what + " (unexpected %s)", *args, type(exc).__name__, exc_info=exc)
    if _strict:
        with _unexpected_lock:
            _unexpected.append(exc)
