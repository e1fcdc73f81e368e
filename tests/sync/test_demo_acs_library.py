"""Circulation rules of the demo library system, exercised directly on a real SQLite file."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from kiosk import demo_catalog
from kiosk.core.domain import AlertType, BlockReason
from kiosk.core.ports import ManualClock
from kiosk.sync.acs import models
from kiosk.sync.acs.library import AcsError, Library, Policy

NOW = datetime(2026, 11, 25, 10, 0, 0)
T1 = "20261125    100000"
T2 = "20261125    100500"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def lib(tmp_path, clock) -> Library:
    library = Library.open(f"sqlite:///{tmp_path / 'acs.sqlite'}", Policy(), clock)
    yield library
    library.close()


@pytest.fixture
def guarded(tmp_path, clock) -> Library:
    """The demo library with the repeat guard on (strict off), as a site may run it."""
    library = Library.open(
        f"sqlite:///{tmp_path / 'guarded.sqlite'}", Policy(), clock, strict=False
    )
    yield library
    library.close()


def small_limit_library(tmp_path, clock, **policy) -> Library:
    return Library.open(f"sqlite:///{tmp_path / 'limit.sqlite'}", Policy(**policy), clock)


# --- seed -------------------------------------------------------------------------------------


def test_seed_holds_the_demo_catalogue(lib: Library) -> None:
    for item in demo_catalog.ITEMS:
        view = lib.item_information(item.item_id)
        assert view.found
        assert view.title == item.title
        assert view.media_type == item.media_type
    assert lib.item_information("30000004").title == "Мастер и Маргарита"
    assert lib.loans_of("LV0002") == ["30000008"]
    assert lib.loans_of("LV0001") == ["30000009"]
    assert lib.loan("30000008").overdue
    assert not lib.loan("30000009").overdue
    assert [(h.patron_id, h.state) for h in lib.holds("30000006")] == [
        ("LV0004", models.HOLD_WAITING)
    ]
    assert lib.fee_total("LV0004") == Decimal("3.50")


def test_pins_are_stored_as_salted_scrypt_hashes(lib: Library) -> None:
    with Session(lib.engine) as s:
        stored = s.get(models.PatronRow, "LV0001").pin_hash
        other = s.get(models.PatronRow, "LV0005").pin_hash
    # The salt and digest are random hex, so the PIN's digits may turn up in
    # them by chance; what must hold is that the stored value has exactly the
    # three fields of the scheme and no field carries the PIN.
    scheme, salt, digest = stored.split("$")
    assert scheme == "scrypt"
    assert len(bytes.fromhex(salt)) == 16
    assert len(bytes.fromhex(digest)) == 32
    assert "1234" not in (salt, digest) and b"1234".hex() not in (salt, digest)
    assert models.pin_matches(stored, "1234")
    assert not models.pin_matches(stored, "1235")
    assert models.hash_pin("1234") != models.hash_pin("1234"), "each hash has its own salt"
    assert not models.pin_matches("garbage", "1234")
    assert not models.pin_matches("scrypt$zz$00", "1234")
    assert models.pin_matches(other, "0000")


def test_reopening_keeps_data_and_fresh_reseeds(tmp_path, clock) -> None:
    url = f"sqlite:///{tmp_path / 'keep.sqlite'}"
    first = Library.open(url, clock=clock)
    assert first.checkout("LV0001", "30000001").ok
    first.close()
    again = Library.open(url, clock=clock)
    assert again.loans_of("LV0001") == ["30000001", "30000009"]
    again.close()
    fresh = Library.open(url, clock=clock, fresh=True)
    assert fresh.loans_of("LV0001") == ["30000009"]
    assert fresh.applied("30000001", models.CHECKOUT) == 0
    fresh.close()


def test_unusable_database_url_is_an_acs_error(tmp_path) -> None:
    with pytest.raises(AcsError, match="database_url"):
        Library.open("not a url at all")
    with pytest.raises(AcsError, match="demo library database"):
        Library.open(f"sqlite:///{tmp_path / 'missing-dir' / 'x.sqlite'}")


# --- patron status ----------------------------------------------------------------------------


def test_patron_status_pin_check(lib: Library) -> None:
    assert lib.patron_status("LV0001", "1234").pin_ok is True
    wrong = lib.patron_status("LV0001", "9999")
    assert wrong.pin_ok is False
    assert "Wrong PIN" in wrong.message
    assert lib.patron_status("LV0001", "").pin_ok is False, "a PIN is set, none given"
    assert lib.patron_status("LV0001").pin_ok is None, "no PIN field: nothing to say"
    assert lib.patron_status("LV0002", "").pin_ok is True, "no PIN set: nothing to check"


def test_patron_blocks(lib: Library) -> None:
    assert lib.patron_status("LV0001").blocks == ()
    lost = lib.patron_status("LV0003")
    assert BlockReason.CARD_LOST in lost.blocks
    assert BlockReason.CHARGE_DENIED in lost.blocks
    assert "lost" in lost.message
    expired = lib.patron_status("LV0005")
    assert BlockReason.CHARGE_DENIED in expired.blocks
    assert BlockReason.CARD_LOST not in expired.blocks
    owes = lib.patron_status("LV0004")
    assert owes.blocks == ()
    assert owes.fee_total == Decimal("3.50")
    assert owes.may_borrow
    assert [f.description for f in owes.fees] == ["Kavējuma nauda", "Bojāts vāks"]
    unknown = lib.patron_status("LV9999")
    assert not unknown.found
    assert BlockReason.CHARGE_DENIED in unknown.blocks


def test_patron_lists(lib: Library, clock: ManualClock) -> None:
    view = lib.patron_status("LV0002")
    assert view.charged == ("30000008",)
    assert view.overdue == ("30000008",)
    assert lib.patron_status("LV0004").holds_waiting == ("30000006",)
    lib.checkin("30000006")  # traps the hold for LV0004 at this library
    view = lib.patron_status("LV0004")
    assert view.holds_ready == ("30000006",)
    assert view.holds_waiting == ()


# --- checkout ---------------------------------------------------------------------------------


def test_checkout_creates_a_loan_due_after_the_loan_period(lib: Library) -> None:
    out = lib.checkout("LV0001", "30000001", transaction_date=T1, sequence="3")
    assert out.ok
    assert out.desensitize
    assert not out.renewal
    assert out.title == "Zaļā grāmata"
    assert out.due == datetime(2026, 12, 16, 23, 59, 59)
    assert lib.loans_of("LV0001") == ["30000001", "30000009"]
    assert lib.item_status("30000001") == "04"
    [tx] = lib.transactions("30000001")
    assert (tx.kind, tx.patron_id, tx.transaction_date, tx.sequence, tx.no_block) == (
        "checkout",
        "LV0001",
        T1,
        "3",
        False,
    )


def test_checkout_refusals_leave_no_loan(lib: Library) -> None:
    cases = {
        ("LV0003", "30000001"): "lost",
        ("LV0005", "30000001"): "expired",
        ("LV0001", "30000007"): "not for loan",
        ("LV0001", "30000008"): "another patron",
        ("LV0001", "30000006"): "on hold for another patron",
        ("LV9999", "30000001"): "Unknown patron",
        ("LV0001", "39999999"): "Unknown item",
    }
    for (patron, item), words in cases.items():
        out = lib.checkout(patron, item)
        assert not out.ok, (patron, item)
        assert not out.desensitize, (patron, item)
        assert words.lower() in out.message.lower(), (patron, item, out.message)
    assert lib.loans_of("LV0001") == ["30000009"]
    assert lib.applied("30000001", models.CHECKOUT) == 0


def test_wrong_pin_on_checkout_is_refused(lib: Library) -> None:
    assert not lib.checkout("LV0001", "30000001", pin="0000").ok
    assert lib.checkout("LV0001", "30000001", pin="1234").ok


def test_fees_block_only_above_the_limit(lib: Library) -> None:
    assert lib.checkout("LV0004", "30000001").ok, "3.50 EUR owed is under the 10.00 limit"
    lib.add_fee("LV0004", "7.00", "Pazaudēta grāmata")
    out = lib.checkout("LV0004", "30000002")
    assert not out.ok
    assert "exceed" in out.message
    assert BlockReason.EXCESSIVE_FEES in lib.patron_status("LV0004").blocks
    with pytest.raises(AcsError):
        lib.add_fee("LV0004", "two euros")


def test_loan_limit(tmp_path, clock) -> None:
    lib = small_limit_library(tmp_path, clock, max_loans=2)
    assert lib.checkout("LV0001", "30000001").ok  # LV0001 already has 30000009
    out = lib.checkout("LV0001", "30000002")
    assert not out.ok
    assert "limit" in out.message.lower()
    assert BlockReason.TOO_MANY_CHARGED in lib.patron_status("LV0001").blocks
    lib.checkin("30000001")
    assert lib.checkout("LV0001", "30000002").ok
    lib.close()


def test_hold_patron_may_borrow_and_the_hold_is_filled(lib: Library) -> None:
    out = lib.checkout("LV0004", "30000006")
    assert out.ok
    assert lib.holds("30000006") == []
    [hold] = lib.holds("30000006", include_closed=True)
    assert hold.state == models.HOLD_FILLED
    assert hold.patron_id == "LV0004"


def test_checkout_of_an_item_the_patron_has_is_a_renewal(lib: Library, clock: ManualClock) -> None:
    before = lib.loan("30000009").due
    clock.advance(10 * 86400)
    out = lib.checkout("LV0001", "30000009", transaction_date=T1)
    assert out.ok
    assert out.renewal
    assert out.due > before
    assert lib.loan("30000009").renewals == 1
    refused = lib.checkout("LV0001", "30000009", renewal_allowed=False, transaction_date=T2)
    assert not refused.ok
    assert refused.renewal


# --- renewal ----------------------------------------------------------------------------------


def test_renewal_limit(lib: Library) -> None:
    for n in range(3):
        out = lib.renew("LV0001", "30000009", transaction_date=f"2026112{n}    100000")
        assert out.ok, n
        assert out.renewal, n
    out = lib.renew("LV0001", "30000009", transaction_date="20261124    100000")
    assert not out.ok
    assert "limit" in out.message.lower()
    assert lib.loan("30000009").renewals == 3
    assert lib.applied("30000009", models.RENEW) == 3


def test_renewal_refused_when_another_patron_holds_the_item(lib: Library) -> None:
    lib.place_hold("30000009", "LV0004")
    out = lib.renew("LV0001", "30000009")
    assert not out.ok
    assert "hold" in out.message
    assert lib.loan("30000009").renewals == 0


def test_renewal_refused_when_another_patron_holds_the_title(lib: Library) -> None:
    assert lib.place_hold("", "LV0004", title="Sprīdītis").ok
    assert not lib.renew("LV0001", "30000009").ok


def test_renew_by_title_and_not_on_loan(lib: Library) -> None:
    assert lib.renew("LV0001", "", title="Sprīdītis").item_id == "30000009"
    assert lib.loan("30000009").renewals == 1
    out = lib.renew("LV0001", "30000008")
    assert not out.ok
    assert "not on loan to you" in out.message


def test_renew_all(lib: Library) -> None:
    assert lib.checkout("LV0002", "30000001").ok
    lib.place_hold("30000008", "LV0001")
    out = lib.renew_all("LV0002")
    assert out.ok
    assert out.renewed == ("30000001",)
    assert out.unrenewed == ("30000008",)
    blocked = lib.renew_all("LV0003")
    assert not blocked.ok
    assert not lib.renew_all("LV9999").ok


# --- checkin ----------------------------------------------------------------------------------


def test_checkin_closes_the_loan(lib: Library) -> None:
    out = lib.checkin("30000008", current_location="DEMO", transaction_date=T1)
    assert out.ok
    assert out.resensitize
    assert out.previous_patron == "LV0002"
    assert not out.alert
    assert out.alert_type is AlertType.NONE
    assert out.sort_bin == "1"
    assert out.permanent_location == "Pieaugušo nodaļa"
    assert lib.loans_of("LV0002") == []
    assert lib.item_status("30000008") == "03"
    assert lib.applied("30000008", models.CHECKIN) == 1


def test_checkin_of_an_item_not_on_loan_is_ok_with_a_note(lib: Library) -> None:
    out = lib.checkin("30000010")
    assert out.ok
    assert out.resensitize
    assert not out.alert
    assert "not on loan" in out.message
    assert out.sort_bin == "2"
    assert lib.applied("30000010", models.CHECKIN) == 0, "no loan was closed"
    assert lib.applications("30000010", models.CHECKIN) == 1, "yet the request was applied"


def test_checkin_of_an_unknown_item_is_refused(lib: Library) -> None:
    out = lib.checkin("39999999")
    assert not out.ok
    assert not out.resensitize
    assert out.alert
    assert "Unknown item" in out.message


def test_checkin_routes_an_item_with_a_hold_here(lib: Library) -> None:
    out = lib.checkin("30000006", current_location="DEMO")
    assert out.ok
    assert out.alert
    assert out.alert_type is AlertType.HOLD_HERE
    assert (out.hold_patron_id, out.hold_patron_name) == ("LV0004", "Иван Петров")
    assert out.destination == ""
    assert lib.item_status("30000006") == "08"
    assert lib.holds("30000006")[0].state == models.HOLD_READY
    # The patron collects it from the hold shelf.
    assert not lib.checkout("LV0001", "30000006").ok
    assert lib.checkout("LV0004", "30000006").ok


def test_checkin_routes_a_hold_for_another_branch(lib: Library) -> None:
    lib.place_hold("30000008", "LV0001", "FILIALE")
    out = lib.checkin("30000008", current_location="DEMO")
    assert out.alert
    assert out.alert_type is AlertType.HOLD_OTHER_BRANCH
    assert out.destination == "FILIALE"
    assert out.hold_patron_id == "LV0001"
    assert out.hold_patron_name == "Anna Bērziņa"
    assert lib.item_status("30000008") == "10"


def test_checkin_traps_a_title_level_hold(lib: Library) -> None:
    lib.place_hold("", "LV0002", title="Sprīdītis")
    out = lib.checkin("30000009")
    assert out.alert_type is AlertType.HOLD_HERE
    assert out.hold_patron_id == "LV0002"
    assert lib.holds("30000009")[0].patron_id == "LV0002"


def test_set_checkin_carries_a_note(lib: Library) -> None:
    lib.checkout("LV0001", "30000005")
    assert "3 parts" in lib.checkin("30000005").message


# --- offline (no block) replays ---------------------------------------------------------------


def test_no_block_checkout_is_never_refused_for_policy_and_applies_the_dates(lib: Library) -> None:
    when = datetime(2026, 11, 20, 15, 30, 0)
    due = datetime(2026, 12, 4, 23, 59, 59)
    out = lib.checkout(
        "LV0003",
        "30000006",
        no_block=True,
        transaction_date="20261120    153000",
        when=when,
        nb_due=due,
        sequence="7",
    )
    assert out.ok
    assert out.due == due
    loan = lib.loan("30000006")
    assert loan.patron_id == "LV0003"
    assert loan.due == due
    [tx] = lib.transactions("30000006")
    assert tx.no_block
    assert tx.transaction_date == "20261120    153000"
    assert tx.effective == due
    assert tx.sequence == "7"


def test_no_block_checkout_still_refuses_what_cannot_be_a_loan(lib: Library) -> None:
    for patron, item in (("LV0001", "30000007"), ("LV9999", "30000001"), ("LV0001", "39999999")):
        out = lib.checkout(patron, item, no_block=True, transaction_date=T1)
        assert not out.ok, (patron, item)
        assert out.message, (patron, item)
    assert (
        "not for loan"
        in lib.checkout("LV0001", "30000007", no_block=True, transaction_date=T1).message
    )
    assert lib.applied("30000007", models.CHECKOUT) == 0


def test_no_block_checkout_without_a_due_date_uses_the_loan_period_from_the_transaction(
    lib: Library,
) -> None:
    when = datetime(2026, 11, 20, 15, 30, 0)
    out = lib.checkout(
        "LV0001", "30000001", no_block=True, transaction_date="20261120    153000", when=when
    )
    assert out.due == datetime(2026, 12, 11, 23, 59, 59)


def test_no_block_checkout_of_an_item_charged_to_someone_else_moves_the_loan(lib: Library) -> None:
    assert lib.checkout("LV0001", "30000008", no_block=True, transaction_date=T1).ok
    assert lib.loans_of("LV0002") == []
    assert "30000008" in lib.loans_of("LV0001")


def test_no_block_checkin_applies_the_return_date(lib: Library) -> None:
    returned = datetime(2026, 11, 21, 9, 0, 0)
    out = lib.checkin(
        "30000008", no_block=True, transaction_date="20261121    090000", return_date=returned
    )
    assert out.ok
    [tx] = lib.transactions("30000008")
    assert tx.kind == "checkin"
    assert tx.no_block
    assert tx.effective == returned


def test_no_block_renewal_applies_the_due_date(lib: Library) -> None:
    lib.place_hold("30000009", "LV0004")  # would refuse an online renewal
    due = datetime(2026, 12, 30, 23, 59, 59)
    out = lib.renew("LV0001", "30000009", no_block=True, transaction_date=T1, nb_due=due)
    assert out.ok
    assert lib.loan("30000009").due == due


# --- strict: every request applied and counted -----------------------------------------------


def test_strict_is_the_default_and_a_resent_checkout_is_a_renewal(lib: Library) -> None:
    assert lib.strict
    first = lib.checkout("LV0001", "30000001", transaction_date=T1, sequence="1")
    again = lib.checkout("LV0001", "30000001", transaction_date=T1, sequence="5")
    assert first.ok
    assert again.ok
    assert again.renewal
    assert not again.replayed
    assert lib.applications("30000001", models.CHECKOUT) == 2
    assert lib.loan("30000001").renewals == 1


def test_strict_resent_renewal_and_checkin_are_applied_again(lib: Library) -> None:
    assert lib.renew("LV0001", "30000009", transaction_date=T1).ok
    again = lib.renew("LV0001", "30000009", transaction_date=T1)
    assert again.ok
    assert not again.replayed
    assert lib.loan("30000009").renewals == 2
    assert lib.checkin("30000009", transaction_date=T2).ok
    second = lib.checkin("30000009", transaction_date=T2)
    assert second.ok
    assert not second.replayed
    assert "not on loan" in second.message
    assert lib.application_counts() == {
        ("30000009", models.RENEW): 2,
        ("30000009", models.CHECKIN): 2,
    }


def test_every_application_is_logged_with_its_count(lib: Library, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="kiosk.sync.acs.library"):
        lib.checkout("LV0001", "30000001")
        lib.checkout("LV0001", "30000001")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("applied")]
    assert lines == [
        "applied checkout of item 30000001 (application 1 of this kind for the item)",
        "applied checkout as a renewal of item 30000001 (application 2 of this kind for the item)",
    ]


def test_refusals_are_not_applications(lib: Library) -> None:
    assert not lib.checkout("LV0002", "30000009").ok  # on loan to LV0001
    assert not lib.renew("LV0002", "30000009").ok
    assert lib.application_counts() == {}


def test_holds_and_fee_payments_are_counted(lib: Library) -> None:
    assert lib.place_hold("30000003", "LV0002", "DEMO").ok
    assert lib.pay_fee("LV0004", "1.00").accepted
    counts = lib.application_counts()
    assert counts[("30000003", models.HOLD)] == 1
    assert counts[("", models.FEE_PAID)] == 1


# --- repeat guard (strict off) -----------------------------------------------------------------


def test_guard_answers_a_resent_checkout_without_applying_it(guarded: Library) -> None:
    first = guarded.checkout("LV0001", "30000001", transaction_date=T1, sequence="1")
    again = guarded.checkout("LV0001", "30000001", transaction_date=T1, sequence="5")
    assert first.ok
    assert again.ok
    assert again.replayed
    assert not again.renewal
    assert again.due == first.due
    assert guarded.applied("30000001", models.CHECKOUT) == 1
    assert guarded.loan("30000001").renewals == 0


def test_guard_answers_a_no_block_replay_of_an_online_checkout_once(guarded: Library) -> None:
    guarded.checkout("LV0001", "30000001", transaction_date=T1)
    out = guarded.checkout(
        "LV0001", "30000001", no_block=True, transaction_date=T1, nb_due=datetime(2027, 1, 1)
    )
    assert out.replayed
    assert guarded.applied("30000001", models.CHECKOUT) == 1
    assert guarded.loan("30000001").due == datetime(2026, 12, 16, 23, 59, 59)


def test_guard_answers_a_resent_checkin_and_renewal_once(guarded: Library) -> None:
    assert guarded.renew("LV0001", "30000009", transaction_date=T1).ok
    assert guarded.renew("LV0001", "30000009", transaction_date=T1).replayed
    assert guarded.loan("30000009").renewals == 1
    assert guarded.checkin("30000009", transaction_date=T2).ok
    assert guarded.checkin("30000009", transaction_date=T2).replayed
    assert guarded.applied("30000009", models.CHECKIN) == 1


def test_guard_takes_a_later_transaction_with_the_same_date_as_genuine(guarded: Library) -> None:
    # checkout, checkin, checkout within the same second: the second checkout is genuine.
    guarded.checkout("LV0001", "30000001", transaction_date=T1)
    guarded.checkin("30000001", transaction_date=T1)
    out = guarded.checkout("LV0001", "30000001", transaction_date=T1)
    assert out.ok
    assert not out.replayed
    assert guarded.applied("30000001", models.CHECKOUT) == 2


def test_guard_never_takes_blank_transaction_dates_for_replays(guarded: Library) -> None:
    guarded.checkout("LV0001", "30000001", transaction_date=" " * 18)
    out = guarded.checkout("LV0001", "30000001", transaction_date=" " * 18)
    assert out.renewal
    assert not out.replayed


def test_concurrent_checkouts_of_one_item_give_it_to_exactly_one_patron(lib: Library) -> None:
    results: dict[str, bool] = {}
    barrier = threading.Barrier(3)

    def borrow(patron: str) -> None:
        barrier.wait(timeout=5)
        results[patron] = lib.checkout(patron, "30000003").ok

    threads = [threading.Thread(target=borrow, args=(p,)) for p in ("LV0001", "LV0002", "LV0004")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert sorted(results.values()) == [False, False, True]
    assert lib.applied("30000003", models.CHECKOUT) == 1


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_checkout_undoes_a_checkout_and_a_renewal(lib: Library) -> None:
    lib.checkout("LV0001", "30000001")
    assert lib.cancel_checkout("LV0001", "30000001").ok
    assert "30000001" not in lib.loans_of("LV0001")
    before = lib.loan("30000009").due
    lib.checkout("LV0001", "30000009")  # a renewal
    assert lib.cancel_checkout("LV0001", "30000009").ok
    assert lib.loan("30000009").due == before
    assert lib.loan("30000009").renewals == 0
    assert not lib.cancel_checkout("LV0002", "30000009").ok


def test_cancel_checkin_puts_the_loan_back(lib: Library) -> None:
    due = lib.loan("30000008").due
    lib.checkin("30000008")
    out = lib.cancel_checkin("30000008")
    assert out.ok
    assert out.previous_patron == "LV0002"
    assert lib.loan("30000008").patron_id == "LV0002"
    assert lib.loan("30000008").due == due
    assert not lib.cancel_checkin("30000008").ok


# --- items, holds, fees, blocks ---------------------------------------------------------------


def test_item_information(lib: Library, clock: ManualClock) -> None:
    charged = lib.item_information("30000008")
    assert charged.circulation_status == "04"
    assert charged.due is not None
    available = lib.item_information("30000006")
    assert available.circulation_status == "03"
    assert available.hold_queue_length == 1
    lib.checkin("30000006")
    shelf = lib.item_information("30000006")
    assert shelf.circulation_status == "08"
    assert shelf.hold_pickup_date == NOW + timedelta(days=7)
    reference = lib.item_information("30000007")
    assert not reference.loanable
    assert reference.message == "Not for loan"
    unknown = lib.item_information("nope")
    assert not unknown.found
    assert unknown.circulation_status == "01"


def test_item_properties_are_stored(lib: Library) -> None:
    assert lib.set_item_properties("30000001", "shelf 3").properties == "shelf 3"
    assert lib.item_information("30000001").properties == "shelf 3"
    assert not lib.set_item_properties("nope", "x").found


def test_hold_queue(lib: Library) -> None:
    first = lib.place_hold("30000008", "LV0001")
    second = lib.place_hold("30000008", "LV0004")
    assert (first.queue_position, second.queue_position) == (1, 2)
    assert not first.available
    assert not lib.place_hold("30000001", "LV0003").ok, "lost card: hold privileges denied"
    assert lib.cancel_hold("LV0001", "30000008").ok
    assert [h.patron_id for h in lib.holds("30000008")] == ["LV0004"]
    assert lib.change_hold("LV0004", "30000008", "FILIALE").pickup_location == "FILIALE"


def test_fee_payment(lib: Library) -> None:
    assert not lib.pay_fee("LV0004", "5.00").accepted, "more than owed"
    assert not lib.pay_fee("LV0004", "abc").accepted
    assert not lib.pay_fee("LV0004", "0").accepted
    part = lib.pay_fee("LV0004", "3,00")
    assert part.accepted
    assert part.remaining == Decimal("0.50")
    assert lib.fee_total("LV0004") == Decimal("0.50")
    with Session(lib.engine) as s:
        amounts = [
            f.amount
            for f in s.scalars(
                select(models.FeeRow)
                .where(models.FeeRow.patron_id == "LV0004")
                .order_by(models.FeeRow.id)
            )
        ]
    assert amounts == [Decimal("0.00"), Decimal("0.50")], "oldest fee paid first"


def test_block_and_enable_patron(lib: Library) -> None:
    view = lib.block_patron("LV0001", "card retained by kiosk")
    assert BlockReason.CHARGE_DENIED in view.blocks
    assert "retained" in view.message
    assert not lib.checkout("LV0001", "30000001").ok
    assert lib.enable_patron("LV0001").blocks == ()
    assert lib.checkout("LV0001", "30000001").ok


def test_schema_compiles_for_postgresql() -> None:
    # A site may point acs.database_url at PostgreSQL: the tables must use portable types only.
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateTable

    ddl = "\n".join(
        str(CreateTable(t).compile(dialect=postgresql.dialect()))
        for t in models.Base.metadata.sorted_tables
    )
    assert "CREATE TABLE acs_loan" in ddl
    assert "FOREIGN KEY(item_id) REFERENCES acs_item (id)" in ddl
    assert "NUMERIC(10, 2)" in ddl
    assert "BOOLEAN" in ddl
    assert "TIMESTAMP WITHOUT TIME ZONE" in ddl


def test_rental_fee_needs_acknowledgement_and_is_charged(lib: Library) -> None:
    lib.set_rental_fee("30000005", "1.50")
    refused = lib.checkout("LV0001", "30000005")
    assert not refused.ok
    assert refused.fee_amount == Decimal("1.50")
    assert "rental fee" in refused.message
    assert lib.fee_total("LV0001") == Decimal("0.00")
    out = lib.checkout("LV0001", "30000005", fee_acknowledged=True)
    assert out.ok
    assert out.fee_amount == Decimal("1.50")
    assert lib.fee_total("LV0001") == Decimal("1.50")
    with pytest.raises(AcsError):
        lib.set_rental_fee("30000005", "much")


def test_database_from_an_older_version_is_reseeded(tmp_path, clock) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE acs_item (id VARCHAR(32) PRIMARY KEY, title VARCHAR(255))")
        db.execute("INSERT INTO acs_item VALUES ('1', 'old')")
    lib = Library.open(f"sqlite:///{path}", clock=clock)
    assert lib.item_information("30000001").title == "Zaļā grāmata"
    assert not lib.item_information("1").found
    lib.close()
