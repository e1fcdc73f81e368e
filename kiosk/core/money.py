"""Money as the library system sends it (SIP2 fee amounts, limits): a decimal string, read as
Decimal, never float, so 0.10 + 0.20 is 0.30 and a fee is never rounded away."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation


def parse_amount(text: str | None) -> Decimal | None:
    """`"1,50"` -> Decimal("1.50"); None for text that is not a finite number (empty included)."""
    try:
        value = Decimal((text or "").strip().replace(",", "."))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def is_nonzero(text: str | None) -> bool:
    """Whether an amount is owed or shown: a number other than zero, or text that is not a number
    at all (shown as the library system sent it rather than hidden)."""
    if not (text or "").strip():
        return False
    value = parse_amount(text)
    return value != 0 if value is not None else True
