"""Fee amounts are read as Decimal: one reading for the circulation service, receipts and screens."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kiosk.core.money import is_nonzero, parse_amount


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1.50", Decimal("1.50")),
        ("1,50", Decimal("1.50")),
        (" 0.10 ", Decimal("0.10")),
        ("", None),
        (None, None),
        ("EUR 2", None),
        ("NaN", None),
        ("Infinity", None),
    ],
)
def test_parse_amount(text: str | None, value: Decimal | None) -> None:
    assert parse_amount(text) == value


def test_amounts_add_as_decimals_not_floats() -> None:
    total = parse_amount("0.10") + parse_amount("0.20")  # type: ignore[operator]
    assert total == Decimal("0.30")


@pytest.mark.parametrize(
    ("text", "owed"),
    [
        ("0", False),
        ("0.00", False),
        ("0,00", False),
        ("", False),
        (None, False),
        ("0.01", True),
        ("-1.00", True),  # a credit is shown, not hidden
        ("1e-30", True),  # a float would still see it, a rounding check would not
        ("see desk", True),  # not a number: shown as sent
    ],
)
def test_is_nonzero(text: str | None, owed: bool) -> None:
    assert is_nonzero(text) is owed
