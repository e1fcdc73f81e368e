"""The site routing table: first match wins, defaults, exception outcomes, config validation."""

from __future__ import annotations

import pytest

from kiosk.config import parse
from kiosk.core.domain import AlertType, Routing
from kiosk.core.errors import RoutingTableError
from kiosk.core.routing import Instruction, ReturnOutcome, RoutingTable

SITE = """
[sorter]
default_bin = 1
exception_bin = 0

[[routing]]
alert_type = "01"
bin = 3
instruction = "hold_shelf"
hold_slip = true

[[routing]]
alert_type = "transit"
bin = 4

[[routing]]
media_type = "006"
bin = 2
instruction = "media_cart"

[[routing]]
owner = "LV-OTHER"
bin = 5

[[routing]]
outcome = "other_library"
bin = 6
instruction = "ill_desk"
"""


@pytest.fixture
def table() -> RoutingTable:
    return RoutingTable.from_config(parse(SITE))


def test_hold_here_rule_with_slip(table: RoutingTable) -> None:
    d = table.decide(
        ReturnOutcome.CHECKED_IN,
        Routing(alert=True, alert_type=AlertType.HOLD_HERE, hold_patron_id="LV0004"),
    )
    assert (d.bin, d.instruction, d.hold_slip, d.rule) == (3, "hold_shelf", True, 0)


def test_alert_type_by_name(table: RoutingTable) -> None:
    d = table.decide(
        ReturnOutcome.QUEUED_OFFLINE, Routing(alert=True, alert_type=AlertType.TRANSIT)
    )
    assert (d.bin, d.instruction, d.rule) == (4, Instruction.TRANSIT, 1)


def test_media_type_from_answer_or_caller(table: RoutingTable) -> None:
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(media_type="006")).bin == 2
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(), media_type="006").bin == 2
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(), owner="LV-OTHER").bin == 5


def test_first_match_wins(table: RoutingTable) -> None:
    d = table.decide(
        ReturnOutcome.CHECKED_IN,
        Routing(alert=True, alert_type=AlertType.HOLD_HERE, media_type="006"),
    )
    assert d.bin == 3


def test_defaults_without_rule(table: RoutingTable) -> None:
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing()).bin == 1
    assert (
        table.decide(ReturnOutcome.CHECKED_IN, Routing(sort_bin="7")).bin == 7
    )  # the ACS's numeric CL
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(sort_bin="A")).bin == 1
    # Koha sends CV 00 with every check-in: not an alert.
    assert (
        table.decide(ReturnOutcome.CHECKED_IN, Routing(alert_type=AlertType.UNKNOWN)).instruction
        == Instruction.DONE
    )
    d = table.decide(
        ReturnOutcome.CHECKED_IN, Routing(alert=True, alert_type=AlertType.HOLD_OTHER_BRANCH)
    )
    assert (d.bin, d.instruction, d.hold_slip) == (0, Instruction.OTHER_BRANCH, True)
    d = table.decide(ReturnOutcome.CHECKED_IN, Routing(alert=True))
    assert (d.bin, d.instruction) == (0, Instruction.SPECIAL)


def test_exception_outcomes_use_their_own_rule_or_the_exception_bin(table: RoutingTable) -> None:
    d = table.decide(ReturnOutcome.OTHER_LIBRARY, Routing(media_type="006"))
    assert (d.bin, d.instruction, d.exception) == (6, "ill_desk", True)
    for outcome in (
        ReturnOutcome.UNREADABLE_TAG,
        ReturnOutcome.NOT_ON_LOAN,
        ReturnOutcome.UNKNOWN_ITEM,
        ReturnOutcome.SECURITY_FAILED,
    ):
        d = table.decide(
            outcome, Routing(media_type="006")
        )  # the media rule does not catch exceptions
        assert (d.bin, d.instruction, d.exception) == (0, Instruction.TAKE_TO_DESK, True)
    assert table.decide(ReturnOutcome.SET_INCOMPLETE).instruction == Instruction.PLACE_ALL_PARTS


def test_no_hold_slip_for_exceptions(table: RoutingTable) -> None:
    d = table.decide(ReturnOutcome.SECURITY_FAILED, Routing(hold_patron_id="LV0004"))
    assert not d.hold_slip


@pytest.mark.parametrize(
    ("row", "word"), [('alert_type = "77"', "alert_type"), ('outcome = "lost"', "outcome")]
)
def test_bad_rows_name_the_row_and_key(row: str, word: str) -> None:
    cfg = parse(f"[[routing]]\nbin = 1\n{row}\n")
    with pytest.raises(RoutingTableError, match=rf"routing\[0\]\.{word}"):
        RoutingTable.from_config(cfg)
