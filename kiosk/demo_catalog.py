"""The demo library's patrons and items: seeded into the embedded library system, placed on the
simulated pad by the demo panel, and used by tests as a known world.

Patron cards start with "LV" so the demo's card pattern tells them from item ids.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoPatron:
    patron_id: str
    name: str
    pin: str = ""
    card_uid: str = ""  # contactless card UID (hex) that maps to this card number
    lost_card: bool = False
    expired: bool = False
    fees: tuple[tuple[str, str], ...] = ()  # (description, amount)
    email: str = ""
    language: str = "lv"
    note: str = ""


@dataclass(frozen=True)
class DemoItem:
    item_id: str
    title: str
    author: str = ""
    media_type: str = "001"  # SIP2 CK: 001 book, 006 CD
    parts_in_set: int = 1
    loanable: bool = True
    on_hold_for: str = ""  # patron id waiting for it
    on_loan_to: str = ""
    overdue: bool = False
    permanent_location: str = "Pieaugušo nodaļa"
    owner: str = "LV-DEMO"
    sort_bin: str = "1"
    note: str = ""


INSTITUTION = "DEMO"
OWNER_ISIL = "LV-DEMO"

PATRONS: tuple[DemoPatron, ...] = (
    DemoPatron(
        "LV0001",
        "Anna Bērziņa",
        pin="1234",
        card_uid="04A1B2C3D4E580",
        email="anna@example.lv",
        note="PIN 1234",
    ),
    DemoPatron(
        "LV0002", "John Smith", card_uid="04112233445566", language="en", note="has an overdue loan"
    ),
    DemoPatron("LV0003", "Pēteris Ozols", lost_card=True, note="card reported lost (blocked)"),
    DemoPatron(
        "LV0004",
        "Иван Петров",
        card_uid="04AABBCCDDEEFF",
        fees=(("Kavējuma nauda", "2.50"), ("Bojāts vāks", "1.00")),
        language="ru",
        note="owes 3.50 EUR",
    ),
    DemoPatron("LV0005", "Līga Kalniņa", pin="0000", expired=True, note="card expired (blocked)"),
)

ITEMS: tuple[DemoItem, ...] = (
    DemoItem("30000001", "Zaļā grāmata", "Anšlavs Eglītis"),
    DemoItem("30000002", "Dvēseļu putenis", "Aleksandrs Grīns"),
    DemoItem("30000003", "The Hobbit", "J. R. R. Tolkien"),
    DemoItem("30000004", "Мастер и Маргарита", "Михаил Булгаков"),
    DemoItem(
        "30000005",
        "Latviešu valodas kurss (3 CD)",
        media_type="006",
        parts_in_set=3,
        note="multi-part set",
    ),
    DemoItem(
        "30000006",
        "Mērnieku laiki",
        "Reinis un Matīss Kaudzītes",
        on_hold_for="LV0004",
        note="on hold for another patron",
    ),
    DemoItem(
        "30000007",
        "Latvijas enciklopēdija",
        loanable=False,
        permanent_location="Uzziņu nodaļa",
        note="reference, not for loan",
    ),
    DemoItem(
        "30000008",
        "Harry Potter and the Philosopher's Stone",
        "J. K. Rowling",
        on_loan_to="LV0002",
        overdue=True,
        note="on loan, overdue",
    ),
    DemoItem(
        "30000009", "Sprīdītis", "Anna Brigadere", on_loan_to="LV0001", note="on loan, for renewal"
    ),
    DemoItem("30000010", "Война и мир", "Лев Толстой", sort_bin="2"),
)


def patron(patron_id: str) -> DemoPatron | None:
    return next((p for p in PATRONS if p.patron_id == patron_id), None)


def item(item_id: str) -> DemoItem | None:
    return next((i for i in ITEMS if i.item_id == item_id), None)
