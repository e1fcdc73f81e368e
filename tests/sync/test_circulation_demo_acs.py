"""The circulation service against the embedded demo library system (SQLite-backed SIP2 server).

The demo catalogue (kiosk/demo_catalog.py) is the known world: Anna (LV0001, PIN 1234) has
Sprīdītis out, John (LV0002) has an overdue loan, Pēteris' card is lost, Ivan owes 3.50 EUR and
waits for Mērnieku laiki, Līga's card has expired.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from kiosk.config import OfflineSection, Sip2Section
from kiosk.core.domain import BlockReason, Mode, Refusal
from kiosk.core.ports import ManualClock
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client

server = pytest.importorskip("kiosk.sync.acs.server")


@pytest.fixture
def acs(tmp_path):
    running = server.start_embedded(f"sqlite:///{tmp_path / 'acs.sqlite'}", fresh=True)
    yield running
    running.stop()


def settings(port: int) -> Sip2Section:
    return Sip2Section(
        host="127.0.0.1",
        port=port,
        username="kiosk",
        password="demo",
        institution_id="DEMO",
        location_code="DEMO",
        timeout_s=2.0,
        retries=1,
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now().replace(microsecond=0))


@pytest.fixture
def svc(tmp_path, acs, clock):
    s = settings(acs.port)
    service = CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite", clock=clock),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        clock=clock,
    )
    yield service
    service.close()


def test_identify_demo_patrons(svc):
    anna = svc.identify_patron("LV0001", pin="1234")
    assert anna.ok
    assert anna.patron.name == "Anna Bērziņa"
    assert anna.patron.pin_ok is True
    assert [(x.item_id, x.title) for x in anna.patron.loans] == [("30000009", "Sprīdītis")]
    wrong = svc.identify_patron("LV0001", pin="9999")
    assert not wrong.ok
    assert BlockReason.WRONG_PIN in wrong.patron.blocks
    john = svc.identify_patron("LV0002")
    assert [(x.item_id, x.overdue) for x in john.patron.loans] == [("30000008", True)]
    lost = svc.identify_patron("LV0003")
    assert BlockReason.CARD_LOST in lost.patron.blocks
    assert not lost.patron.may_borrow
    ivan = svc.identify_patron("LV0004")
    assert ivan.patron.fee_total == "3.50"
    assert [f.amount for f in ivan.patron.fees] == ["2.50", "1.00"]
    assert [(h.item_id, h.title) for h in ivan.patron.holds] == [("30000006", "Mērnieku laiki")]
    expired = svc.identify_patron("LV0005", pin="0000")
    assert not expired.patron.may_borrow
    assert expired.message
    unknown = svc.identify_patron("LV9999")
    assert not unknown.ok
    assert BlockReason.UNKNOWN_PATRON in unknown.patron.blocks


def test_checkout_checkin_renew_round_trip(svc, acs, clock):
    out = svc.checkout("LV0001", "30000001", pin="1234")
    assert out.ok
    assert out.title == "Zaļā grāmata"
    assert out.desensitize
    assert out.due_date
    assert "30000001" in acs.library.loans_of("LV0001")
    clock.advance(60)  # a later transaction (the same date would be taken as a repeat)
    again = svc.checkout("LV0001", "30000001")
    assert again.ok
    assert again.renewal
    ren = svc.renew("LV0001", "30000009")
    assert ren.ok
    assert ren.title == "Sprīdītis"
    back = svc.checkin("30000001")
    assert back.ok
    assert back.resensitize
    assert back.routing.sort_bin == "1"
    assert back.routing.permanent_location == "Pieaugušo nodaļa"
    assert "30000001" not in acs.library.loans_of("LV0001")
    all_ = svc.renew_all("LV0001")
    assert all_.ok
    assert all_.renewed == ("30000009",)
    assert [e.state for e in svc.journal.entries() if e.item_id] == [EntryState.DONE] * 4
    svc.end_session("LV0001")


@pytest.mark.parametrize(
    ("patron", "item", "refusal"),
    [
        ("LV0001", "30000006", Refusal.ON_HOLD_FOR_OTHER),
        ("LV0001", "30000007", Refusal.NOT_FOR_LOAN),
        ("LV0001", "30000008", Refusal.ALREADY_ON_LOAN),
        ("LV0001", "99999999", Refusal.UNKNOWN_ITEM),
        ("LV0003", "30000002", Refusal.PATRON_BLOCKED),
    ],
)
def test_demo_refusals_are_classified(svc, acs, patron, item, refusal):
    res = svc.checkout(patron, item)
    assert not res.ok
    assert res.refusal is refusal
    assert res.message
    assert acs.library.applied(item, "checkout") == 0


def test_checkin_routing_of_a_held_item_and_unknown_item(svc):
    hobbit = svc.checkin("30000010")
    assert hobbit.ok
    assert hobbit.routing.sort_bin == "2"
    assert hobbit.title == "Война и мир"
    unknown = svc.checkin("99999999")
    assert not unknown.ok
    assert unknown.refusal is Refusal.UNKNOWN_ITEM


def test_item_information(svc):
    info = svc.item_information("30000006")
    assert info.found
    assert info.title == "Mērnieku laiki"
    assert info.hold_queue_length == 1
    assert not svc.item_information("99999999").found


def test_offline_work_forwarded_to_the_demo_library(tmp_path, acs):
    held_port = acs.port
    acs.faults.refuse_connections = True
    s = settings(held_port)
    svc = CirculationService(
        Sip2Client(s),
        Journal(tmp_path / "j.sqlite"),
        sip2=s,
        offline=OfflineSection(policy="checkin-and-checkout"),
        location="DEMO",
        reconnect_after_s=0,
    )
    try:
        co = svc.checkout("LV0004", "30000006")  # on hold for Ivan himself
        ci = svc.checkin("30000008")
        assert co.queued
        assert ci.queued
        assert co.mode is Mode.OFFLINE
        acs.faults.refuse_connections = False
        report = svc.forward_offline()
        assert report.to_json() == {"forwarded": 2, "refused": 0, "pending": 0}
        assert acs.library.loans_of("LV0004") == ["30000006"]
        assert acs.library.loans_of("LV0002") == []
        kinds = [(t.kind, t.item_id, t.no_block) for t in acs.library.transactions()]
        assert kinds == [("checkout", "30000006", True), ("checkin", "30000008", True)]
    finally:
        svc.close()


def _session(svc, clock, policy):
    from kiosk.core.session import PatronSession, SessionSettings

    return PatronSession(
        svc, clock, SessionSettings(pin_policy=policy, card_pattern=r"^LV[0-9]{4}$")
    )


def test_demo_acs_answers_cq_n_when_a_pin_holder_sends_none(acs):
    client = Sip2Client(settings(acs.port))
    client.connect()
    try:
        from kiosk.sync.sip2.codec import message, sip_date

        now = sip_date(datetime.now())
        base = [("AO", "DEMO"), ("AC", "")]
        for cmd, fixed in (
            ("23", {"language": "001"}),
            ("63", {"language": "001", "summary": " " * 10}),
        ):
            for patron, ad, cq in (
                ("LV0001", [("AD", "")], "N"),
                ("LV0001", [], "N"),
                ("LV0001", [("AD", "1234")], "Y"),
                ("LV0002", [], ""),
            ):
                resp = client.request(
                    message(cmd, transaction_date=now, **fixed, fields=[*base, ("AA", patron), *ad])
                )
                assert resp.get("CQ") == cq, (cmd, patron, ad)
                assert "Wrong PIN" not in resp.get("AF")
    finally:
        client.close()


def test_optional_pin_policy_asks_when_the_demo_acs_wants_a_pin(svc, clock, acs):
    from kiosk.core.events import CardPresented, PinEntered
    from kiosk.core.session import Stage

    s = _session(svc, clock, "optional")
    st = s.handle(CardPresented("LV0001"))  # Anna has a PIN: CQ N without one
    assert st.stage is Stage.PIN
    assert st.problem is None
    assert not st.pin_retry
    st = s.handle(PinEntered("1234"))
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert st.patron.name == "Anna Bērziņa"
    s2 = _session(svc, clock, "optional")
    assert s2.handle(CardPresented("LV0002")).stage is Stage.ACTIVE  # no PIN set: not asked


def test_none_and_mandatory_pin_policies_against_the_demo_acs(svc, clock, acs):
    from kiosk.core.events import CardPresented, PinEntered
    from kiosk.core.session import Stage

    card_only = _session(svc, clock, "none")
    st = card_only.handle(CardPresented("LV0001"))  # CQ N for the missing PIN is ignored
    assert st.stage is Stage.ACTIVE
    assert st.patron is not None
    assert BlockReason.WRONG_PIN not in st.patron.blocks
    assert st.patron.may_borrow
    assert not st.patron.screen_message
    mandatory = _session(svc, clock, "mandatory")
    assert (
        mandatory.handle(CardPresented("LV0002")).stage is Stage.PIN
    )  # asked even without a PIN set
    assert mandatory.handle(PinEntered("0000")).stage is Stage.ACTIVE  # LV0002 has no PIN to check


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("000", "Lasītāja kartes derīguma termiņš ir beidzies"),
        ("001", "Library card has expired"),
        ("015", "Срок действия читательского билета истёк"),
    ],
)
def test_demo_acs_says_the_card_expired_in_the_language_asked_for(acs, code, words):
    from kiosk.sync.sip2.codec import message, sip_date

    client = Sip2Client(settings(acs.port))
    client.connect()
    try:
        fields = [("AO", "DEMO"), ("AA", "LV0005"), ("AC", ""), ("AD", "0000")]
        for cmd, fixed in (("23", {}), ("63", {"summary": " " * 10})):
            resp = client.request(
                message(
                    cmd,
                    language=code,
                    transaction_date=sip_date(datetime.now()),
                    **fixed,
                    fields=fields,
                )
            )
            assert words in resp.get_all("AF")
            assert resp.get("BL") == "Y"
            assert resp.fixed["patron_status"][0] == "Y"  # charge privileges denied
    finally:
        client.close()


def test_expired_card_is_refused_at_login_with_its_reason(svc, clock, acs):
    from kiosk.core.events import CardPresented, PinEntered
    from kiosk.core.session import LoginProblem, Stage

    expired = svc.identify_patron("LV0005", pin="0000", language="en")
    assert BlockReason.CARD_EXPIRED in expired.patron.blocks
    assert "Library card has expired" in expired.message
    s = _session(svc, clock, "mandatory")
    s.handle(CardPresented("LV0005"))
    st = s.handle(PinEntered("0000"))
    assert st.stage is Stage.WELCOME
    assert st.problem is LoginProblem.BLOCKED
    assert st.blocks == (BlockReason.CARD_EXPIRED,)
    assert "derīguma termiņš ir beidzies" in st.message


# -- the patron's preferred language ------------------------------------------------------------
# The language field of the 24 and 64 answers, mapped to a kiosk language by the site's
# `[sip2] patron_languages` (the standard's list has English 001 and Russian 015 and no Latvian;
# a code not listed keeps the kiosk's language). Ivan (LV0004) reads Russian, John English.


def _service(tmp_path, acs, clock, **sip2) -> CirculationService:
    import dataclasses

    s = dataclasses.replace(settings(acs.port), **sip2)
    return CirculationService(
        Sip2Client(s), Journal(tmp_path / "lang.sqlite", clock=clock), sip2=s, clock=clock
    )


@pytest.mark.parametrize("status_only", [False, True], ids=["63-64", "23-24"])
def test_the_patrons_language_comes_from_the_answer(tmp_path, acs, clock, status_only) -> None:
    svc = _service(tmp_path, acs, clock)
    if status_only:  # a library system without 63 answers 23 with 24
        svc._supported = lambda command: command != "63"  # type: ignore[method-assign]
    try:
        # The kiosk asks in Latvian (000); the answers carry each patron's own language.
        assert svc.identify_patron("LV0004", language="lv").patron.language == "ru"
        assert svc.identify_patron("LV0002", language="lv").patron.language == "en"
        assert svc.identify_patron("LV0001", pin="1234", language="ru").patron.language == ""
    finally:
        svc.client.close()


def test_the_site_maps_the_language_codes(tmp_path, acs, clock) -> None:
    svc = _service(tmp_path, acs, clock, patron_languages=("015=lv",))
    try:
        assert svc.identify_patron("LV0004").patron.language == "lv"  # as this site reads 015
        assert svc.identify_patron("LV0002").patron.language == ""  # 001 not listed: keep
    finally:
        svc.client.close()


@pytest.mark.parametrize("entry", ["15=ru", "015=de", "015", "abc=en"])
def test_a_bad_language_mapping_is_named(entry: str) -> None:
    from kiosk.config import ConfigError, parse

    with pytest.raises(ConfigError, match="sip2.patron_languages"):
        parse(f'[sip2]\npatron_languages = ["{entry}"]\n', "kiosk.toml")
