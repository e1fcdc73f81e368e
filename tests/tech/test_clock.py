"""The kiosk's clock against the library system's: `kiosk doctor` fails beyond the allowed drift.

The demo library system answers `98` with its own (real) time; the kiosk's clock is injected,
ten minutes off, as a Pi booted without network would be.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kiosk import config as kconfig
from kiosk import doctor
from kiosk.clock import Drift, SyncState, kernel_sync_state
from kiosk.core.ports import SystemClock
from tests.tech.conftest import write_site


class OffsetClock(SystemClock):
    """The kiosk's clock, off by a fixed amount from the real one the demo library system uses."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.now() + self.offset


def clock_check(checks: list[doctor.Check]) -> doctor.Check:
    return next(c for c in checks if c.name == "clock")


def test_doctor_fails_when_the_kiosk_clock_is_ten_minutes_off(tmp_path, demo_acs):
    cfg = kconfig.load(write_site(tmp_path, port=demo_acs.port))
    checks = doctor.run_checks(
        cfg, timeout_s=2, clock=OffsetClock(-timedelta(minutes=10, seconds=30))
    )
    check = clock_check(checks)
    assert check.status is doctor.Status.FAIL, check
    assert "10 min" in check.detail
    assert "behind the library system" in check.detail
    assert "offline loans are refused" in check.hint
    assert doctor.exit_code(checks) == 1


def test_doctor_accepts_a_clock_within_the_drift(tmp_path, demo_acs):
    cfg = kconfig.load(write_site(tmp_path, port=demo_acs.port))
    checks = doctor.run_checks(cfg, timeout_s=2, clock=OffsetClock(timedelta(seconds=30)))
    check = clock_check(checks)
    assert check.status is not doctor.Status.FAIL, check
    assert "ahead of the library system" in check.detail or "in step" in check.detail


def test_without_the_library_system_only_the_sync_state_is_reported(tmp_path, closed_port):
    cfg = kconfig.load(write_site(tmp_path, port=closed_port))
    check = doctor._check_clock(cfg, None, sync=lambda: SyncState.UNSYNCHRONISED)
    assert check.status is doctor.Status.WARN
    assert "not synchronised" in check.detail
    check = doctor._check_clock(cfg, None, sync=lambda: SyncState.SYNCHRONISED)
    assert check.status is doctor.Status.OK


@pytest.mark.parametrize(
    "kiosk_now, acs, text, beyond",
    [
        (
            datetime(2026, 12, 7, 10, 0, 0),
            datetime(2026, 12, 7, 10, 0, 0),
            "in step with the library system",
            False,
        ),
        (
            datetime(2026, 12, 7, 10, 2, 0),
            datetime(2026, 12, 7, 10, 0, 0),
            "2 min ahead of the library system",
            False,
        ),
        (
            datetime(2026, 12, 7, 10, 2, 1),
            datetime(2026, 12, 7, 10, 0, 0),
            "2 min 1 s ahead of the library system",
            True,
        ),
        (
            datetime(2026, 7, 1, 9, 0, 0),
            datetime(2026, 12, 7, 10, 0, 0),
            "159 d 1 h behind the library system",
            True,
        ),
    ],
)
def test_drift_text_and_limit(kiosk_now, acs, text, beyond):
    drift = Drift.between(kiosk_now, acs)
    assert drift.describe() == text
    assert drift.beyond() is beyond


def test_a_utc_library_clock_is_compared_in_utc():
    acs = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    assert abs(Drift.between(acs.astimezone().replace(tzinfo=None), acs).seconds) < 1


def test_the_kernel_state_is_read_without_privileges():
    assert kernel_sync_state() in set(SyncState)


def test_offline_loans_are_refused_and_returns_marked_when_the_clock_is_off(tmp_path):
    """The demo library system's clock runs 10 minutes ahead of the kiosk's; then the link goes."""
    from kiosk.core.domain import Mode, Refusal
    from kiosk.sync.acs.server import start_embedded
    from kiosk.sync.circulation import build_circulation

    acs = start_embedded(
        f"sqlite:///{tmp_path / 'acs.sqlite'}",
        "127.0.0.1",
        0,
        fresh=True,
        clock=OffsetClock(timedelta(minutes=10)),
    )
    f = write_site(tmp_path, port=acs.port, extra='[offline]\npolicy = "checkin-and-checkout"\n')
    service = build_circulation(kconfig.load(f))
    try:
        assert service.item_information(
            "30000001"
        ).found  # online: a status exchange compared the clocks
        assert service.untrusted_clock() is not None
        # SIP2 dates carry whole seconds, so ten minutes measure as 10 min or as 9 min 59 s.
        drift = service.untrusted_clock()
        assert "10 min" in drift or "9 min 59 s" in drift, drift
        acs.stop()
        loan = service.checkout("LV0001", "30000002")
        assert loan.mode is Mode.OFFLINE
        assert not loan.ok
        assert loan.refusal is Refusal.OFFLINE_NOT_ALLOWED
        assert "clock" in loan.message
        back = service.checkin("30000009")
        assert back.mode is Mode.OFFLINE
        assert back.ok
        assert back.queued
        entry = next(e for e in service.journal.entries() if e.id == back.journal_id)
        assert "behind the library system" in entry.request["clock_untrusted"]
        events = service.journal.to_json_lines()
        assert "offline loan refused: the kiosk's clock is" in events  # for staff
    finally:
        service.close()
        acs.stop()
