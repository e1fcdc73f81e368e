"""The core worker runs jobs in order off the caller's thread; ImmediateWorker runs them inline."""

from __future__ import annotations

import threading

import pytest

from kiosk.core import errors as core_errors
from kiosk.core.errors import CoreError
from kiosk.core.worker import CoreWorker, ImmediateWorker


@pytest.fixture
def worker() -> CoreWorker:
    w = CoreWorker(idle_interval_s=0.01)
    yield w
    w.stop()


def test_jobs_run_in_order_on_the_worker_thread(worker: CoreWorker) -> None:
    order: list[int] = []
    threads: set[str] = set()
    done = threading.Event()

    def job(n: int) -> int:
        order.append(n)
        threads.add(threading.current_thread().name)
        return n * 2

    results: list[int] = []
    futures = [worker.submit(job, n, on_done=results.append) for n in range(20)]
    worker.submit(done.set)
    assert done.wait(5)
    assert order == list(range(20))
    assert results == [n * 2 for n in range(20)]
    assert threads == {"kiosk-core"}
    assert futures[3].result(1) == 6


def test_a_failing_job_reports_and_the_worker_survives(
    worker: CoreWorker, unexpected_faults
) -> None:
    errors: list[BaseException] = []

    def boom() -> None:
        raise ValueError("bad answer")

    f = worker.submit(boom, on_error=errors.append)
    assert isinstance(f.exception(5), ValueError)
    assert worker.submit(lambda: 7).result(5) == 7
    assert len(errors) == 1
    assert str(errors[0]) == "bad answer"
    assert unexpected_faults() == [errors[0]]  # a bug fails a test even when on_error was told


def test_failing_job_without_error_callback_is_logged(
    worker: CoreWorker, caplog: pytest.LogCaptureFixture, unexpected_faults
) -> None:
    f = worker.submit(lambda: 1 / 0)
    assert isinstance(f.exception(5), ZeroDivisionError)
    assert worker.submit(lambda: "alive").result(5) == "alive"
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert failed
    assert failed[0].exc_info is not None  # the traceback is kept
    assert [type(e) for e in unexpected_faults()] == [ZeroDivisionError]


def test_an_expected_fault_is_not_taken_for_a_bug(
    worker: CoreWorker, caplog: pytest.LogCaptureFixture
) -> None:
    def link_down() -> None:
        raise CoreError("library system not answering")

    errors: list[BaseException] = []
    f = worker.submit(link_down, on_error=errors.append)
    assert isinstance(f.exception(5), CoreError)
    assert worker.submit(lambda: 1).result(5) == 1
    assert len(errors) == 1
    assert core_errors.take_unexpected() == []  # the strict fixture would fail the test otherwise


def test_outside_strict_mode_a_bug_is_only_logged(worker: CoreWorker) -> None:
    core_errors.set_strict(False)
    try:
        f = worker.submit(lambda: [][0])
        assert isinstance(f.exception(5), IndexError)
        assert worker.submit(lambda: 1).result(5) == 1
        assert core_errors.take_unexpected() == []
    finally:
        core_errors.set_strict(True)


def test_idle_hook_runs_when_nothing_is_queued() -> None:
    ran = threading.Event()
    w = CoreWorker(idle=ran.set, idle_interval_s=0.01)
    try:
        assert ran.wait(5)
    finally:
        assert w.stop()
    assert not w.running


def test_stop_finishes_queued_jobs_then_refuses_new_ones() -> None:
    w = CoreWorker()
    gate = threading.Event()
    done: list[int] = []
    w.submit(gate.wait, 5)
    w.submit(done.append, 1)
    gate.set()
    assert w.stop(5)
    assert done == [1]
    with pytest.raises(CoreError, match="stopped"):
        w.submit(done.append, 2)


def test_stop_from_a_job_does_not_deadlock() -> None:
    w = CoreWorker()
    f = w.submit(lambda: w.stop(1))
    assert f.result(5) is False
    assert w.stop(5)
    assert not w.running


def test_immediate_worker_runs_inline(unexpected_faults) -> None:
    w = ImmediateWorker(idle=lambda: None)
    got: list[object] = []
    f = w.submit(lambda a, b=0: a + b, 2, b=3, on_done=got.append)
    assert f.result(0) == 5
    assert got == [5]
    errs: list[BaseException] = []
    w.submit(lambda: 1 / 0, on_error=errs.append)
    assert isinstance(errs[0], ZeroDivisionError)
    assert unexpected_faults() == errs
    calls: list[int] = []
    w.set_idle(lambda: calls.append(1))
    w.run_idle()
    assert calls == [1]
