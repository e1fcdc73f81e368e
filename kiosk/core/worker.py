"""The core worker: one thread that runs workflow calls (and so circulation I/O) in order, off the UI thread.

    worker = CoreWorker(idle=forwarder.step, idle_interval_s=1.0)
    worker.submit(session.handle, event, on_done=ui_callback, on_error=ui_error_callback)
    worker.stop()

`on_done(result)` and `on_error(exc)` run on the worker thread; the screens wrap them with Kivy's
`Clock.schedule_once` (or `mainthread`) before touching widgets. `ImmediateWorker` has the same
interface and runs everything inline, for tests and command-line tools.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol

from kiosk.core.errors import CoreError, log_fault

log = logging.getLogger(__name__)

Done = Callable[[Any], None]
Failed = Callable[[BaseException], None]


class Worker(Protocol):
    """What the app and the fleet use of a worker: CoreWorker, ImmediateWorker, or a stand-in."""

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Done | None = None,
        on_error: Failed | None = None,
        **kwargs: Any,
    ) -> Future[Any]: ...

    def stop(self, timeout: float = 5.0) -> bool: ...


class _Stop:
    pass


_STOP = _Stop()


def _run(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    future: Future[Any],
    on_done: Done | None,
    on_error: Failed | None,
) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # a failing job must not kill the worker; its caller is told
        future.set_exception(exc)
        # A bug is logged with its traceback (and fails a test in strict mode) even when the
        # caller's on_error shows the patron something.
        log_fault(log, exc, "core job %s failed", getattr(fn, "__qualname__", fn))
        if on_error is not None:
            _safe(on_error, exc)
        return
    future.set_result(result)
    if on_done is not None:
        _safe(on_done, result)


def _safe(callback: Callable[[Any], None], value: Any) -> None:
    try:
        callback(value)
    except Exception as exc:
        # The worker thread's last line of defence: a callback's fault must not end the thread.
        log_fault(
            log, exc, "core job callback %s failed", getattr(callback, "__qualname__", callback)
        )


class CoreWorker:
    """A single daemon thread with a FIFO queue; `idle()` runs when nothing was queued for `idle_interval_s`."""

    def __init__(
        self,
        idle: Callable[[], None] | None = None,
        idle_interval_s: float = 1.0,
        name: str = "kiosk-core",
    ) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self._idle = idle
        self._idle_interval = idle_interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Done | None = None,
        on_error: Failed | None = None,
        **kwargs: Any,
    ) -> Future[Any]:
        """Queue `fn(*args, **kwargs)`; returns a Future as well as calling the callbacks."""
        if self._stopped.is_set():
            raise CoreError(
                "the core worker is stopped; restart the kiosk to run circulation again"
            )
        future: Future[Any] = Future()
        self._queue.put((fn, args, kwargs, future, on_done, on_error))
        return future

    def set_idle(self, idle: Callable[[], None] | None) -> None:
        """Install the idle hook (e.g. the forwarder's step) after construction."""
        self._idle = idle

    def stop(self, timeout: float = 5.0) -> bool:
        """Finish queued jobs, then end the thread; True if it ended within `timeout`."""
        if not self._stopped.is_set():
            self._stopped.set()
            self._queue.put(_STOP)
        if threading.current_thread() is self._thread:
            return False  # asked from one of its own jobs: it ends after that job
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=self._idle_interval if self._idle else None)
            except queue.Empty:
                idle = self._idle
                if idle is not None and not self._stopped.is_set():
                    try:
                        idle()
                    except Exception as exc:
                        # The worker thread's last line of defence, as for a callback.
                        log_fault(log, exc, "core idle task failed")
                continue
            if job is _STOP:
                return
            _run(*job)


class ImmediateWorker:
    """Same interface as CoreWorker, running each job inline on the caller's thread."""

    def __init__(self, idle: Callable[[], None] | None = None) -> None:
        self._idle = idle

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        on_done: Done | None = None,
        on_error: Failed | None = None,
        **kwargs: Any,
    ) -> Future[Any]:
        future: Future[Any] = Future()
        _run(fn, args, kwargs, future, on_done, on_error)
        return future

    def set_idle(self, idle: Callable[[], None] | None) -> None:
        self._idle = idle

    def run_idle(self) -> None:
        """Run the idle hook once (tests drive it by hand)."""
        if self._idle is not None:
            self._idle()

    def stop(self, timeout: float = 5.0) -> bool:
        return True

    @property
    def running(self) -> bool:
        return True
