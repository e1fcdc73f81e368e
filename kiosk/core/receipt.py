"""Receipts and hold slips as data: what to print, never how (the screens render and print them).

A `Receipt` carries the masked card number only (the patron's name only when the site asks for it
with `[printer] show_patron_name`), never a PIN. Builders:

    checkout_receipt(library, when, card, language, items, fees=..., offline=...) -> Receipt
    return_receipt(library, when, language, items, offline=...) -> Receipt
    renewal_receipt(library, when, card, language, items) -> Receipt
    account_receipt(library, when, card, language, loans, holds, fees, fee_total, currency) -> Receipt
    hold_slip(library, when, language, item_id, title, routing) -> Receipt
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from kiosk.core.domain import Fee, Hold, Loan, Refusal, Routing
from kiosk.core.masking import mask_card


class ReceiptKind(enum.StrEnum):
    CHECKOUT = "checkout"
    RETURN = "return"
    RENEWAL = "renewal"
    HOLD_SLIP = "hold_slip"
    ACCOUNT = "account"


@dataclass(frozen=True)
class ReceiptLine:
    """One item on a receipt: done (with its due date) or refused (with why)."""

    item_id: str
    title: str = ""
    due_date: str = ""
    ok: bool = True
    refusal: Refusal = Refusal.NONE
    message: str = ""  # the library system's own words, if any
    renewal: bool = False
    offline: bool = False  # done offline: the due date is provisional


@dataclass(frozen=True)
class HoldSlipDetails:
    """What staff need to shelve a returned item for the patron waiting for it (ids masked)."""

    patron_masked: str = ""
    patron_name: str = ""  # only when the site prints names
    destination: str = ""
    pickup_by: str = ""
    alert_type: str = ""


@dataclass(frozen=True)
class Receipt:
    """A receipt or slip as data; `lines` are items done (borrowed, returned, or renewed on a
    renewal receipt), `refused` are items not done and why; a visit's checkout receipt keeps its
    renewals in `renewed` and `not_renewed`, each item once."""

    kind: ReceiptKind
    library_name: str
    when: datetime
    language: str
    card_masked: str = ""
    patron_name: str = ""
    lines: tuple[ReceiptLine, ...] = ()
    refused: tuple[ReceiptLine, ...] = ()
    # A visit's receipt (kind CHECKOUT) lists renewals apart from the items borrowed.
    renewed: tuple[ReceiptLine, ...] = ()
    not_renewed: tuple[ReceiptLine, ...] = ()
    loans: tuple[Loan, ...] = ()
    holds: tuple[Hold, ...] = ()
    fees: tuple[Fee, ...] = ()
    fee_total: str = ""
    currency: str = "EUR"
    offline: bool = False  # some of this was done offline: tell the patron dates are provisional
    hold_slip: HoldSlipDetails | None = None
    acs_lines: tuple[str, ...] = ()  # the library system's print lines (AG), verbatim

    @property
    def count(self) -> int:
        return len(self.lines)


def _items_receipt(
    kind: ReceiptKind,
    library_name: str,
    when: datetime,
    language: str,
    items: Iterable[ReceiptLine],
    **fields: Any,
) -> Receipt:
    """A receipt of items done and refused; offline when any item was done offline. On a
    checkout receipt renewals form their own sections, and an item borrowed and then renewed in
    the same visit is listed once, as borrowed, with the renewed due date."""
    items = _one_per_item(tuple(items))
    if kind is ReceiptKind.CHECKOUT:
        renewals = tuple(i for i in items if i.renewal)
        items = tuple(i for i in items if not i.renewal)
        borrowed = {i.item_id: i for i in items if i.ok}
        renewed: list[ReceiptLine] = []
        for line in renewals:
            if line.item_id in borrowed and line.ok:
                old = borrowed[line.item_id]
                borrowed[line.item_id] = replace(
                    old, due_date=line.due_date or old.due_date, offline=old.offline or line.offline
                )
            elif line.item_id not in borrowed:
                renewed.append(line)
        items = tuple(borrowed.get(i.item_id, i) if i.ok else i for i in items)
        fields["renewed"] = tuple(i for i in renewed if i.ok)
        fields["not_renewed"] = tuple(i for i in renewed if not i.ok)
        renewals_done: tuple[ReceiptLine, ...] = fields["renewed"]
    else:
        renewals_done = ()
    done = tuple(i for i in items if i.ok)
    return Receipt(
        kind=kind,
        library_name=library_name,
        when=when,
        language=language,
        lines=done,
        refused=tuple(i for i in items if not i.ok),
        offline=any(i.offline for i in done + renewals_done),
        **fields,
    )


def _one_per_item(items: tuple[ReceiptLine, ...]) -> tuple[ReceiptLine, ...]:
    """Each item once per kind of line (borrowed or renewed), the last answer winning, in first-seen order."""
    latest: dict[tuple[str, bool], ReceiptLine] = {}
    for item in items:
        latest[(item.item_id, item.renewal)] = item
    return tuple(latest.values())


def checkout_receipt(
    library_name: str,
    when: datetime,
    card_number: str,
    language: str,
    items: Iterable[ReceiptLine],
    *,
    patron_name: str = "",
    fees: tuple[Fee, ...] = (),
    fee_total: str = "",
    currency: str = "EUR",
    acs_lines: tuple[str, ...] = (),
) -> Receipt:
    """Items checked out in a session, items refused and why, and the fees summary."""
    return _items_receipt(
        ReceiptKind.CHECKOUT,
        library_name,
        when,
        language,
        items,
        card_masked=mask_card(card_number),
        patron_name=patron_name,
        fees=fees,
        fee_total=fee_total,
        currency=currency,
        acs_lines=acs_lines,
    )


def renewal_receipt(
    library_name: str,
    when: datetime,
    card_number: str,
    language: str,
    items: Iterable[ReceiptLine],
    *,
    patron_name: str = "",
) -> Receipt:
    """Renewals done in a session (new due dates) and renewals refused."""
    return _items_receipt(
        ReceiptKind.RENEWAL,
        library_name,
        when,
        language,
        items,
        card_masked=mask_card(card_number),
        patron_name=patron_name,
    )


def return_receipt(
    library_name: str, when: datetime, language: str, items: Iterable[ReceiptLine]
) -> Receipt:
    """Items returned (no patron on it: returns need no login)."""
    return _items_receipt(ReceiptKind.RETURN, library_name, when, language, items)


def account_receipt(
    library_name: str,
    when: datetime,
    card_number: str,
    language: str,
    loans: tuple[Loan, ...],
    holds: tuple[Hold, ...] = (),
    fees: tuple[Fee, ...] = (),
    fee_total: str = "",
    currency: str = "EUR",
    *,
    patron_name: str = "",
) -> Receipt:
    """The patron's loans with due dates, holds and fees."""
    return Receipt(
        kind=ReceiptKind.ACCOUNT,
        library_name=library_name,
        when=when,
        language=language,
        card_masked=mask_card(card_number),
        patron_name=patron_name,
        loans=loans,
        holds=holds,
        fees=fees,
        fee_total=fee_total,
        currency=currency,
    )


def hold_slip(
    library_name: str,
    when: datetime,
    language: str,
    item_id: str,
    title: str,
    routing: Routing,
    *,
    show_patron_name: bool = False,
) -> Receipt:
    """A slip for the staff printer: the returned item is wanted by another patron (id masked)."""
    return Receipt(
        kind=ReceiptKind.HOLD_SLIP,
        library_name=library_name,
        when=when,
        language=language,
        lines=(ReceiptLine(item_id=item_id, title=title),),
        hold_slip=HoldSlipDetails(
            patron_masked=mask_card(routing.hold_patron_id),
            patron_name=routing.hold_patron_name if show_patron_name else "",
            destination=routing.destination,
            alert_type=routing.alert_type.value,
        ),
    )
