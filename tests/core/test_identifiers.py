"""Patron input reaches the library system exactly as typed or not at all: a PIN or card number
with the SIP2 field delimiter, a control byte or more than 255 bytes is refused at the session,
with the screen's message, and nothing is sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiosk.core.events import CardPresented, PinEntered
from kiosk.core.identifiers import MAX_BYTES, IdentifierProblem, identifier_problem
from kiosk.core.ports import ManualClock
from kiosk.core.session import LoginProblem, PatronSession, SessionSettings, Stage
from kiosk.sync.sip2.codec import Sip2FormatError, decode, encode, message

from .fakes import FakeCirculation, FakeSecurity


@pytest.mark.parametrize(
    "text,problem",
    [
        ("", IdentifierProblem.EMPTY),
        ("7391|54", IdentifierProblem.CHARACTERS),
        ("7391\x0054", IdentifierProblem.CHARACTERS),
        ("LV00\r01", IdentifierProblem.CHARACTERS),
        ("LV0001\n", IdentifierProblem.CHARACTERS),
        ("1" * (MAX_BYTES + 1), IdentifierProblem.TOO_LONG),
        ("ā" * 128, IdentifierProblem.TOO_LONG),  # 128 characters, 256 bytes
        ("1" * MAX_BYTES, None),
        ("739154", None),
        ("Zaļā-42", None),
    ],
)
def test_identifier_problems(text: str, problem: IdentifierProblem | None) -> None:
    assert identifier_problem(text) is problem


@given(st.text(max_size=300))
def test_an_identifier_without_problem_crosses_sip2_unchanged(text: str) -> None:
    msg = message(
        "23",
        language="000",
        transaction_date="20261125    101500",
        fields=[("AO", "DEMO"), ("AA", "LV0001"), ("AD", text)],
    )
    if identifier_problem(text) is None:
        assert decode(encode(msg)).get("AD") == text
    elif set(text) & set("|\r\n\0") or len(text.encode()) > MAX_BYTES:
        # What the session refuses, the encoder refuses too (never strips or shortens).
        with pytest.raises(Sip2FormatError):
            encode(msg)


def _session(circ: FakeCirculation, clock: ManualClock, card_pattern: str) -> PatronSession:
    settings = SessionSettings(card_pattern=card_pattern, pin_policy="mandatory")
    return PatronSession(circ, clock, settings, security=FakeSecurity())


@pytest.mark.parametrize("pin", ["7391|54", "7391\x0054", "12\r34", "1" * 300])
def test_pin_that_cannot_be_sent_as_typed_is_refused_and_nothing_is_sent(
    circ: FakeCirculation, clock: ManualClock, pin: str
) -> None:
    s = _session(circ, clock, r"^LV[0-9]{4,12}$")
    assert s.handle(CardPresented("LV0001")).stage is Stage.PIN
    st = s.handle(PinEntered(pin))
    assert st.stage is Stage.PIN and st.problem is LoginProblem.WRONG_PIN and st.pin_retry
    assert circ.ops("identify_patron") == []
    assert s.handle(PinEntered("1234")).stage is Stage.ACTIVE  # the patron types it again
    assert circ.ops("identify_patron") == [("LV0001", True)]


def test_card_number_over_255_bytes_is_refused_and_nothing_is_sent(
    circ: FakeCirculation, clock: ManualClock
) -> None:
    s = _session(circ, clock, r"^LV[0-9]+$")  # a pattern without an upper bound
    st = s.handle(CardPresented("LV" + "0" * 300))
    assert st.stage is Stage.WELCOME and st.problem is LoginProblem.BAD_CARD
    assert circ.ops("identify_patron") == []
