"""Receipts as data: masked card, no name unless asked, refused items, offline notice, hold slips."""

from __future__ import annotations

from datetime import datetime

from kiosk.core.domain import AlertType, Fee, Hold, Loan, Refusal, Routing
from kiosk.core.receipt import (
    ReceiptKind,
    ReceiptLine,
    account_receipt,
    checkout_receipt,
    hold_slip,
    renewal_receipt,
)

WHEN = datetime(2026, 11, 25, 10, 0)


def test_checkout_receipt_splits_done_and_refused() -> None:
    r = checkout_receipt(
        "Demo",
        WHEN,
        "LV0001",
        "lv",
        [
            ReceiptLine("30000001", "A", "20261216"),
            ReceiptLine(
                "30000007", "B", ok=False, refusal=Refusal.NOT_FOR_LOAN, message="Not for loan"
            ),
        ],
        fees=(Fee("Late", "2.50"),),
        fee_total="2.50",
    )
    assert r.kind is ReceiptKind.CHECKOUT and r.card_masked == "**0001" and r.count == 1
    assert r.refused[0].refusal is Refusal.NOT_FOR_LOAN and r.fee_total == "2.50"
    assert not r.offline and "LV0001" not in repr(r)


def test_offline_notice_when_any_line_offline() -> None:
    r = checkout_receipt(
        "Demo", WHEN, "LV0001", "en", [ReceiptLine("1", offline=True), ReceiptLine("2")]
    )
    assert r.offline
    r = renewal_receipt("Demo", WHEN, "LV0001", "en", [ReceiptLine("1", renewal=True)])
    assert r.kind is ReceiptKind.RENEWAL and not r.offline


def test_account_receipt() -> None:
    r = account_receipt(
        "Demo",
        WHEN,
        "LV0004",
        "ru",
        (Loan("1", "T", "x"),),
        (Hold("2", ready=True),),
        (Fee("f", "1.00"),),
        "1.00",
    )
    assert (
        r.kind is ReceiptKind.ACCOUNT
        and r.loans[0].item_id == "1"
        and r.holds[0].ready
        and r.card_masked == "**0004"
    )


def test_hold_slip_masks_the_waiting_patron() -> None:
    routing = Routing(
        alert=True,
        alert_type=AlertType.HOLD_OTHER_BRANCH,
        hold_patron_id="LV0004",
        hold_patron_name="Иван",
        destination="Filiāle",
    )
    slip = hold_slip("Demo", WHEN, "lv", "30000006", "Mērnieku laiki", routing)
    assert slip.kind is ReceiptKind.HOLD_SLIP and slip.hold_slip is not None
    assert (
        slip.hold_slip.patron_masked,
        slip.hold_slip.patron_name,
        slip.hold_slip.destination,
        slip.hold_slip.alert_type,
    ) == ("**0004", "", "Filiāle", "02")
    named = hold_slip(
        "Demo", WHEN, "lv", "30000006", "Mērnieku laiki", routing, show_patron_name=True
    )
    assert named.hold_slip is not None and named.hold_slip.patron_name == "Иван"


def test_visit_receipt_keeps_renewals_apart_and_each_item_once() -> None:
    r = checkout_receipt(
        "Demo",
        WHEN,
        "LV0001",
        "lv",
        [
            ReceiptLine("1", "Borrowed", "20261216"),
            ReceiptLine("2", "Re-borrowed on the pad", "20261216", renewal=True),
            ReceiptLine("3", "Not borrowed", ok=False, refusal=Refusal.NOT_FOR_LOAN),
            ReceiptLine("2", "Re-borrowed on the pad", "20261230", renewal=True),  # renewed again
            ReceiptLine("1", "Borrowed", "20261230", renewal=True),  # borrowed, then renewed
            ReceiptLine(
                "4", "Renewal refused", ok=False, renewal=True, refusal=Refusal.RENEWAL_LIMIT
            ),
        ],
    )
    assert [line.item_id for line in r.lines] == ["1"] and r.lines[0].due_date == "20261230"
    assert [line.item_id for line in r.renewed] == ["2"] and r.renewed[0].due_date == "20261230"
    assert [line.item_id for line in r.refused] == ["3"]
    assert [line.item_id for line in r.not_renewed] == ["4"]
