"""Fixtures for the core tests: a manual clock and the in-memory library, security, sorter and printer."""

from __future__ import annotations

import pytest

from kiosk.core.domain import BlockReason, Fee, Hold, Routing
from kiosk.core.ports import ManualClock
from tests.core.fakes import FakeCirculation, FakePrinter, FakeSecurity, FakeSorter, Recorder


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def circ(clock: ManualClock) -> FakeCirculation:
    c = FakeCirculation(clock, offline_policy="checkin-and-checkout")
    c.add_patron("LV0001", name="Anna Bērziņa", pin="1234", email="anna@example.lv")
    c.add_patron("LV0002", name="John Smith", language="en")
    c.add_patron("LV0003", name="Pēteris Ozols", blocks=(BlockReason.CARD_LOST,))
    c.add_patron(
        "LV0004",
        name="Иван Петров",
        fees=(Fee("Kavējuma nauda", "2.50"), Fee("Bojāts vāks", "1.00")),
        blocks=(BlockReason.EXCESSIVE_FEES,),
    )
    c.add_patron("LV0005", name="Līga Kalniņa", blocks=(BlockReason.CARD_EXPIRED,))
    c.add_patron("LV0006", name="Overdue Person", blocks=(BlockReason.TOO_MANY_OVERDUE,))
    c.add_patron(
        "LV0007",
        name="Hold Person",
        holds=(
            Hold("30000003", "The Hobbit", ready=False),
            Hold("30000002", "Dvēseļu putenis", ready=True, pickup_location="Desk"),
        ),
    )
    c.add_item("30000001", title="Zaļā grāmata")
    c.add_item("30000002", title="Dvēseļu putenis")
    c.add_item("30000003", title="The Hobbit")
    c.add_item("30000004", title="Мастер и Маргарита")
    c.add_item("30000005", title="Latviešu valodas kurss (3 CD)")
    c.add_item("30000006", title="Mērnieku laiki", hold_for="LV0004")
    c.add_item("30000007", title="Latvijas enciklopēdija", loanable=False)
    c.add_item(
        "30000008",
        title="Harry Potter",
        on_loan_to="LV0002",
        due_date="20261101    235959",
        overdue=True,
    )
    c.add_item("30000009", title="Sprīdītis", on_loan_to="LV0001", due_date="20261210    235959")
    c.add_item("30000010", title="Война и мир", routing=Routing(sort_bin="2"))
    return c


@pytest.fixture
def security() -> FakeSecurity:
    return FakeSecurity()


@pytest.fixture
def sorter() -> FakeSorter:
    return FakeSorter()


@pytest.fixture
def printer() -> FakePrinter:
    return FakePrinter()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
