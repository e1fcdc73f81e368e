"""Admin login (PIN and card), lock-out, automatic leave and the hidden corner gesture."""

from __future__ import annotations

import pytest

from kiosk import adminpin
from kiosk.core.maintenance import (
    AdminPolicy,
    AdminState,
    LeaveReason,
    LoginFailure,
    LongPress,
    MaintenanceAccess,
    ServiceSwitch,
    corner_region,
    format_lockout,
)
from kiosk.core.ports import ManualClock

PIN_HASH = adminpin.hash_pin("2468", n=2**10)


@pytest.fixture
def clock():
    return ManualClock()


@pytest.fixture
def access(clock):
    policy = AdminPolicy(
        pin_hash=PIN_HASH, cards=("ADM0001",), max_failures=3, lockout_s=300, idle_timeout_s=120
    )
    return MaintenanceAccess(policy, clock, adminpin.verify_pin)


def test_admin_pin_enters_maintenance(access):
    assert access.open_login() is AdminState.LOGIN
    outcome = access.enter_pin("2468")
    assert outcome.ok
    assert outcome.method == "pin"
    assert access.active


def test_wrong_pin_counts_down_then_locks_out_even_the_right_pin(access, clock):
    access.open_login()
    first = access.enter_pin("1111")
    assert (first.ok, first.failure, first.attempts_left) == (False, LoginFailure.WRONG_PIN, 2)
    assert access.enter_pin("2222").attempts_left == 1
    third = access.enter_pin("3333")
    assert third.failure is LoginFailure.LOCKED_OUT
    assert third.locked_for_s == 300
    assert access.state is AdminState.LOCKED
    clock.advance(299)
    assert access.enter_pin("2468").failure is LoginFailure.LOCKED_OUT
    assert access.present_card("ADM0001").failure is LoginFailure.LOCKED_OUT
    assert format_lockout(access.locked_for_s) == "0:01"
    clock.advance(1)
    assert access.state is AdminState.OUTSIDE
    access.open_login()
    assert access.enter_pin("2468").ok


def test_success_resets_the_failure_count(access):
    access.open_login()
    access.enter_pin("1111")
    access.enter_pin("1112")
    assert access.enter_pin("2468").ok
    access.leave()
    access.open_login()
    assert access.enter_pin("1111").attempts_left == 2


def test_admin_card_enters_from_patron_mode_and_a_patron_card_is_no_failure(access):
    assert access.is_admin_card("ADM0001")
    assert not access.is_admin_card("LV0001")
    patron = access.present_card("LV0001")
    assert not patron.ok
    assert access.state is AdminState.OUTSIDE
    assert patron.attempts_left == 3  # not counted: it was a patron at the patron screen
    assert access.present_card(" ADM0001 ").ok
    assert access.active


def test_unknown_card_at_the_login_counts_as_a_failure(access):
    access.open_login()
    assert access.present_card("LV0001").attempts_left == 2


def test_leaves_automatically_after_inactivity_and_touch_postpones(access, clock):
    access.open_login()
    access.enter_pin("2468")
    clock.advance(100)
    access.touch()
    clock.advance(100)
    assert access.tick() is None
    assert access.active
    assert access.idle_left_s() == pytest.approx(20)
    clock.advance(20)
    assert access.tick() is LeaveReason.IDLE
    assert access.state is AdminState.OUTSIDE
    assert access.last_leave is LeaveReason.IDLE


def test_an_abandoned_login_prompt_closes(access, clock):
    access.open_login()
    clock.advance(121)
    assert access.tick() is None  # nothing to leave, but the prompt is gone
    assert access.state is AdminState.OUTSIDE


def test_no_pin_configured_never_lets_anyone_in(clock):
    access = MaintenanceAccess(AdminPolicy(), clock, adminpin.verify_pin)
    access.open_login()
    assert access.enter_pin("").failure is LoginFailure.NOT_CONFIGURED
    assert access.enter_pin("0000").failure is LoginFailure.NOT_CONFIGURED
    assert not access.configured
    assert not access.active


def test_policy_from_config_section():
    from kiosk.config import AdminSection

    p = AdminPolicy.from_section(
        AdminSection(pin_hash="x", cards=("A",), max_failures=5, lockout_s=10, idle_timeout_s=20)
    )
    assert (p.pin_hash, p.cards, p.max_failures, p.lockout_s, p.idle_timeout_s) == (
        "x",
        ("A",),
        5,
        10.0,
        20.0,
    )


def test_corner_long_press_fires_once_after_five_seconds(clock):
    region = corner_region(1280, 800)
    lp = LongPress(region, clock, hold_s=5)
    lp.down(1270, 790)
    clock.advance(4.9)
    assert lp.tick() is False
    clock.advance(0.1)
    assert lp.tick() is True
    assert lp.tick() is False  # once per press
    assert lp.up() is False


def test_long_press_elsewhere_moved_or_short_does_not_fire(clock):
    lp = LongPress(corner_region(1280, 800), clock, hold_s=5)
    lp.down(640, 400)  # middle of the screen
    clock.advance(10)
    assert lp.up() is False
    lp.down(1270, 790)
    lp.move(1200, 700)  # slid away
    clock.advance(10)
    assert lp.up() is False
    lp.down(1270, 790)
    clock.advance(2)
    assert lp.up() is False
    lp.down(1270, 790)
    clock.advance(5)
    assert lp.up() is True  # release without a tick in between still counts


def test_service_switch_notifies():
    seen = []
    switch = ServiceSwitch()
    switch.subscribe(seen.append)
    switch.set(False, "Printer repair")
    switch.set(True, "ignored")
    assert [(s.in_service, s.message) for s in seen] == [(False, "Printer repair"), (True, "")]
