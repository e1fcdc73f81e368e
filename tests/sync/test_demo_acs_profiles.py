"""Profiles of the demo library system: answering like real systems on a real loopback socket.

With and without the AY/AZ trailer, with and without the duplicate rule, late, and closing the
connection after applying. Each is selectable from a test (start_embedded, Faults.use), from the
configuration ([acs] profile) and from the `kiosk acs --profile` command line.
"""

from __future__ import annotations

import threading

import pytest

from kiosk.cli import build_parser
from kiosk.sync.acs import models
from kiosk.sync.acs.cli import run
from kiosk.sync.acs.library import AcsError
from kiosk.sync.acs.server import PROFILES, Profile, RunningAcs, parse_profile, start_embedded
from kiosk.sync.sip2.codec import decode
from tests.sync.test_demo_acs_server import Wire, checkin, checkout


@pytest.fixture
def make_acs(tmp_path):
    started: list[RunningAcs] = []

    def make(profile: Profile | str = "standard", **options) -> RunningAcs:
        acs = start_embedded(
            f"sqlite:///{tmp_path / f'acs{len(started)}.sqlite'}",
            fresh=True,
            profile=profile,
            **options,
        )
        started.append(acs)
        return acs

    yield make
    for acs in started:
        acs.stop()


def logged_in(acs: RunningAcs) -> Wire:
    wire = Wire(acs)
    assert wire.login().fixed["ok"] == "1"
    return wire


def test_standard_profile_replays_a_byte_identical_repeat(make_acs) -> None:
    acs = make_acs()
    wire = logged_in(acs)
    frame = wire.frame(checkout("LV0001", "30000001"))
    wire.send_raw(frame)
    first = wire.read_raw()
    wire.send_raw(frame)
    assert wire.read_raw() == first
    assert acs.library.applications("30000001", models.CHECKOUT) == 1
    wire.close()


def test_without_the_duplicate_rule_a_byte_identical_repeat_is_applied_again(make_acs) -> None:
    acs = make_acs("no-duplicate-rule")
    wire = logged_in(acs)
    frame = wire.frame(checkout("LV0001", "30000001"))
    wire.send_raw(frame)
    first = decode(wire.read_raw())
    wire.send_raw(frame)
    second = decode(wire.read_raw())
    assert first.fixed["renewal_ok"] == "N" and second.fixed["renewal_ok"] == "Y"
    assert second.checksum_ok, "it still answers with AY/AZ"
    assert acs.library.applications("30000001", models.CHECKOUT) == 2
    wire.close()


def test_without_error_detection_answers_carry_no_trailer_and_repeats_apply(make_acs) -> None:
    acs = make_acs("no-error-detection")
    wire = logged_in(acs)
    frame = wire.frame(checkin("30000009"))
    wire.send_raw(frame)
    raw = wire.read_raw()
    assert b"|AY" not in raw and b"AZ" not in raw[-6:]
    assert decode(raw).checksum is None
    wire.send_raw(frame)
    assert "not on loan" in decode(wire.read_raw()).get("AF")
    assert acs.library.applications("30000009", models.CHECKIN) == 2
    wire.close()


def test_late_profile_applies_first_and_answers_after_the_delay(make_acs) -> None:
    acs = make_acs("late,reply_delay_s=30")
    assert acs.faults.stall_s == 30.0
    acs.faults.stall_commands = frozenset({"11"})  # the login is answered at once
    wire = logged_in(acs)
    wire.send_raw(wire.frame(checkout("LV0001", "30000001")))
    assert acs.faults.reply_held.wait(5)
    assert acs.library.loan("30000001") is not None, "applied before the answer"
    with pytest.raises(TimeoutError):
        wire.read_raw(timeout=0.3)
    acs.faults.stall_s = 0  # the held answer goes out now
    assert decode(wire.read_raw()).fixed["ok"] == "1"
    wire.close()


def test_stall_count_holds_back_only_that_many_replies(make_acs) -> None:
    acs = make_acs()
    wire = logged_in(acs)
    acs.faults.stall_s, acs.faults.stall_count = 30.0, 1
    acs.faults.stall_commands = frozenset({"11"})
    wire.send_raw(wire.frame(checkout("LV0001", "30000001")))
    assert acs.faults.reply_held.wait(5)
    assert acs.faults.stall_count == 0
    acs.faults.stall_s = 0.0
    assert decode(wire.read_raw()).fixed["ok"] == "1"
    acs.faults.stall_s = 30.0  # still set, but the count is used up
    assert wire.call(checkout("LV0001", "30000002")).fixed["ok"] == "1"
    wire.close()


def test_close_after_apply_applies_and_drops_the_link_without_an_answer(make_acs) -> None:
    acs = make_acs("close-after-apply")
    wire = logged_in(acs)  # a login is not a changing request: answered
    wire.send_raw(wire.frame(checkout("LV0001", "30000001")))
    assert wire.closed()
    assert acs.faults.closed_after_apply.is_set()
    assert acs.library.applications("30000001", models.CHECKOUT) == 1
    wire.close()


def test_close_count_limits_how_often_the_link_is_dropped(make_acs) -> None:
    acs = make_acs()
    acs.faults.close_after_apply, acs.faults.close_count = True, 1
    first = logged_in(acs)
    first.send_raw(first.frame(checkin("30000009")))
    assert first.closed()
    second = logged_in(acs)
    assert second.call(checkout("LV0001", "30000001")).fixed["ok"] == "1"
    second.close()
    first.close()


def test_profile_specs_are_parsed_and_bad_ones_named() -> None:
    assert parse_profile("") == PROFILES["standard"]
    assert parse_profile("late") == PROFILES["late"]
    assert parse_profile("no-duplicate-rule, reply_delay_s=12") == Profile(
        "no-duplicate-rule", duplicate_rule=False, reply_delay_s=12.0
    )
    assert parse_profile("close_after_apply=yes").close_after_apply
    with pytest.raises(AcsError, match="'forgiving' is not one of"):
        parse_profile("forgiving")
    with pytest.raises(AcsError, match="reply_delay_s='soon'"):
        parse_profile("late,reply_delay_s=soon")
    with pytest.raises(AcsError, match="'colour=red'"):
        parse_profile("standard,colour=red")
    with pytest.raises(AcsError, match="duplicate_rule='maybe'"):
        parse_profile("standard,duplicate_rule=maybe")


CONFIG = """
[sip2]
username = "kiosk"
password = "demo"

[acs]
database_url = "sqlite:///var/demo-acs.sqlite"
port = 0
{extra}
"""


def serve(tmp_path, argv: list[str], extra: str = "") -> RunningAcs:
    """Run `kiosk acs` as parsed from argv; return the running server (stopped on return)."""
    path = tmp_path / "kiosk.toml"
    path.write_text(CONFIG.format(extra=extra), encoding="utf-8")
    got: list[RunningAcs] = []
    stop = threading.Event()
    stop.set()
    assert (
        run(build_parser().parse_args(["--config", str(path), "acs", *argv]), stop, got.append) == 0
    )
    return got[0]


def test_profile_is_selected_from_the_configuration_and_the_command_line(tmp_path, capsys) -> None:
    assert serve(tmp_path, []).profile == PROFILES["standard"]
    from_config = serve(tmp_path, [], extra='profile = "no-error-detection"')
    assert from_config.profile == PROFILES["no-error-detection"]
    assert not from_config.faults.error_detection and not from_config.faults.duplicate_rule
    from_cli = serve(tmp_path, ["--profile", "late-no-duplicate-rule,reply_delay_s=9"])
    assert from_cli.profile.reply_delay_s == 9.0 and not from_cli.profile.duplicate_rule
    assert "profile late-no-duplicate-rule,reply_delay_s=9.0" in capsys.readouterr().out
