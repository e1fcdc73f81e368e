"""The circulation service and forwarder against PyPI pysip2, a strict independent SIP2 peer.

The handlers below are a small mock library; every request the kiosk sends is recorded, so
tests assert both the domain answers and what went over the wire.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from anyio.from_thread import start_blocking_portal
from pysip2 import models as m
from pysip2 import routes as r
from pysip2.server import SIP2Server

from kiosk.config import OfflineSection, Sip2Section
from kiosk.core.domain import AlertType, BlockReason, Mode, Operation, Refusal
from kiosk.core.ports import Circulation, ManualClock
from kiosk.sync.circulation import CirculationService
from kiosk.sync.journal import EntryState, Journal
from kiosk.sync.sip2.client import Sip2Client

T0 = datetime(2026, 11, 25, 10, 0, 0)
SIP_T0 = "20261125    100000"


def _now() -> str:
    return datetime.now().strftime("%Y%m%d    %H%M%S")


@dataclass
class Item:
    title: str
    status: str = "03"
    patron: str = ""
    hold_for: str = ""
    loanable: bool = True
    due: str = ""
    renewals: int = 0


@dataclass
class Library:
    """The mock library behind the pysip2 handlers."""

    items: dict[str, Item] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    pins: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    fines: dict[str, tuple[str, ...]] = field(default_factory=dict)
    received: list[m.SIPRequest] = field(default_factory=list)
    checkouts: list[tuple[str, str]] = field(default_factory=list)
    checkins: list[str] = field(default_factory=list)
    stall: threading.Event | None = (
        None  # 11/09 apply, then wait on it before answering (answer lost)
    )
    lock: threading.Lock = field(default_factory=threading.Lock)

    def requests(self, cls: type) -> list:
        return [q for q in self.received if isinstance(q, cls)]


def make_library() -> Library:
    lib = Library()
    lib.names = {
        "LV0001": "Anna Bērziņa",
        "LV0002": "John Smith",
        "LV0003": "Pēteris Ozols",
        "LV0004": "Иван Петров",
        "LV0009": "Heavy Reader",
    }
    lib.pins = {"LV0001": "1234"}
    lib.status = {"LV0003": "    Y         ", "LV0009": "     Y        "}
    lib.fines = {"LV0004": ("Kavējuma nauda 2.50", "Bojāts vāks 1.00")}
    lib.items = {
        "30000001": Item("Zaļā grāmata"),
        "30000002": Item("Dvēseļu putenis"),
        "30000003": Item("The Hobbit"),
        "30000006": Item("Mērnieku laiki", status="08", hold_for="LV0004"),
        "30000007": Item("Latvijas enciklopēdija", loanable=False),
        "30000008": Item("Harry Potter", status="04", patron="LV0002", due="2026-11-01"),
        "30000009": Item("Sprīdītis", status="04", patron="LV0001", due="2026-12-01"),
        "30000011": Item("Filma (DVD)"),
    }
    for n in range(25):
        lib.items[f"4000{n:04d}"] = Item(
            f"Grāmata {n}", status="04", patron="LV0009", due="2026-12-24"
        )
    return lib


def build_server(lib: Library, *, renew: bool = True) -> SIP2Server:
    srv = SIP2Server(
        encoding="utf-8",
        institution_id="DEMO",
        library_name="Demo bibliotēka",
        timeout_period="030",
        retries_allowed="003",
    )

    def rec(req: m.SIPRequest) -> None:
        with lib.lock:
            lib.received.append(req)

    @srv.route(r.LOGIN)
    def login(req: m.LoginRequest, ctx) -> m.LoginResponse:
        return m.LoginResponse(ok="1")

    def patron_fields(pid: str, pin: str | None) -> dict:
        known = pid in lib.names
        fields: dict = {"valid_patron": "Y" if known else "N"}
        if pin:
            fields["valid_patron_password"] = "Y" if lib.pins.get(pid) == pin else "N"
        return fields

    @srv.route(r.PATRON_INFORMATION)
    def patron_info(req: m.PatronInformationRequest, ctx) -> m.PatronInformationResponse:
        rec(req)
        pid = req.patron_identifier
        charged = [i for i, it in lib.items.items() if it.patron == pid]
        overdue = [i for i in charged if lib.items[i].due < "2026-11-25"]
        holds = [i for i, it in lib.items.items() if it.hold_for == pid]
        fines = list(lib.fines.get(pid, ()))
        start = int(req.start_item or 1)
        end = int(req.end_item or 9999)
        pick = req.summary.index("Y") if "Y" in req.summary else -1
        lists = {0: "hold_items", 1: "overdue_items", 2: "charged_items", 3: "fine_items"}
        source = {0: holds, 1: overdue, 2: charged, 3: fines}
        extra = {lists[pick]: tuple(source[pick][start - 1 : end])} if pick in lists else {}
        return m.PatronInformationResponse(
            patron_status=lib.status.get(pid, " " * 14),
            language="000",
            transaction_date=_now(),
            hold_items_count=f"{len(holds):04d}",
            overdue_items_count=f"{len(overdue):04d}",
            charged_items_count=f"{len(charged):04d}",
            fine_items_count=f"{len(fines):04d}",
            recall_items_count="0000",
            unavailable_holds_count="0000",
            institution_id="DEMO",
            patron_identifier=pid,
            personal_name=lib.names.get(pid, ""),
            currency_type="EUR",
            fee_amount="3.50" if fines else "0.00",
            email_address="anna@example.lv" if pid == "LV0001" else None,
            screen_message=("Sveicināti!",) if pid in lib.names else ("Nezināms lasītājs",),
            **extra,
            **patron_fields(pid, req.patron_password),
        )

    @srv.route(r.PATRON_STATUS)
    def patron_status(req: m.PatronStatusRequest, ctx) -> m.PatronStatusResponse:
        rec(req)
        pid = req.patron_identifier
        return m.PatronStatusResponse(
            patron_status=lib.status.get(pid, " " * 14),
            language="000",
            transaction_date=_now(),
            institution_id="DEMO",
            patron_identifier=pid,
            personal_name=lib.names.get(pid, ""),
            **patron_fields(pid, req.patron_password or None),
        )

    def refuse_checkout(req: m.CheckoutRequest, text: str) -> m.CheckoutResponse:
        return m.CheckoutResponse(
            ok="0",
            renewal_ok="N",
            magnetic_media="N",
            desensitize="N",
            transaction_date=_now(),
            institution_id="DEMO",
            patron_identifier=req.patron_identifier,
            item_identifier=req.item_identifier,
            title_identifier="",
            due_date="",
            screen_message=(text,),
        )

    @srv.route(r.CHECKOUT)
    def checkout(req: m.CheckoutRequest, ctx) -> m.CheckoutResponse:
        rec(req)
        stall = lib.stall
        pid, iid = req.patron_identifier, req.item_identifier
        with lib.lock:
            it = lib.items.get(iid)
            if it is None:
                return refuse_checkout(req, "Eksemplārs nav atrasts")
            if req.no_block != "Y":
                if lib.status.get(pid, "").strip():
                    return refuse_checkout(req, "Izsniegšana nav iespējama")
                if it.hold_for and it.hold_for != pid:
                    return refuse_checkout(req, "Izsniegšana nav iespējama")
                if it.patron and it.patron != pid:
                    return refuse_checkout(req, "Izsniegšana nav iespējama")
                if not it.loanable:
                    return refuse_checkout(req, "Uzziņu izdevums, neizsniedz uz mājām")
                if iid == "30000011" and req.fee_acknowledged != "Y":
                    return m.CheckoutResponse(
                        ok="0",
                        renewal_ok="N",
                        magnetic_media="N",
                        desensitize="N",
                        transaction_date=_now(),
                        institution_id="DEMO",
                        patron_identifier=pid,
                        item_identifier=iid,
                        title_identifier=it.title,
                        due_date="",
                        fee_type="06",
                        currency_type="EUR",
                        fee_amount="1.00",
                    )
            renewal = it.patron == pid
            it.patron, it.status, it.hold_for = pid, "04", ""
            it.due = req.nb_due_date if req.no_block == "Y" else "2026-12-16"
            lib.checkouts.append((pid, iid))
        if stall is not None:
            stall.wait(10)  # applied, but the answer comes too late
        with lib.lock:
            return m.CheckoutResponse(
                ok="1",
                renewal_ok="Y" if renewal else "N",
                magnetic_media="N",
                desensitize="Y",
                transaction_date=_now(),
                institution_id="DEMO",
                patron_identifier=pid,
                item_identifier=iid,
                title_identifier=it.title,
                due_date=it.due,
                media_type="001",
                print_line=(f"{it.title} līdz {it.due}",),
            )

    @srv.route(r.CHECKIN)
    def checkin(req: m.CheckinRequest, ctx) -> m.CheckinResponse:
        rec(req)
        stall = lib.stall
        iid = req.item_identifier
        with lib.lock:
            it = lib.items.get(iid)
            if it is None:
                return m.CheckinResponse(
                    ok="0",
                    resensitize="N",
                    magnetic_media="N",
                    alert="Y",
                    transaction_date=_now(),
                    institution_id="DEMO",
                    item_identifier=iid,
                    permanent_location="",
                    screen_message=("Eksemplārs nav atrasts",),
                )
            alert = iid == "30000003"
            it.patron, it.status = "", "03"
            lib.checkins.append(iid)
        if stall is not None:
            stall.wait(10)
        with lib.lock:
            return m.CheckinResponse(
                ok="1",
                resensitize="Y",
                magnetic_media="N",
                alert="Y" if alert else "N",
                transaction_date=_now(),
                institution_id="DEMO",
                item_identifier=iid,
                permanent_location="Pieaugušo nodaļa",
                title_identifier=it.title,
                sort_bin="3" if alert else "1",
                media_type="001",
            )

    @srv.route(r.ITEM_INFORMATION)
    def item_info(req: m.ItemInformationRequest, ctx) -> m.ItemInformationResponse:
        rec(req)
        it = lib.items.get(req.item_identifier)
        if it is None:
            return m.ItemInformationResponse(
                circulation_status="01",
                security_marker="00",
                fee_type="01",
                transaction_date=_now(),
                item_identifier=req.item_identifier,
                title_identifier="",
                screen_message=("Nav atrasts",),
            )
        return m.ItemInformationResponse(
            circulation_status=it.status,
            security_marker="02",
            fee_type="01",
            transaction_date=_now(),
            item_identifier=req.item_identifier,
            title_identifier=it.title,
            due_date=it.due or None,
            hold_queue_length="1" if it.hold_for else "0",
            owner="LV-DEMO",
            media_type="001",
            permanent_location="Pieaugušo nodaļa",
        )

    @srv.route(r.END_PATRON_SESSION)
    def end_session(req: m.EndPatronSessionRequest, ctx) -> m.EndSessionResponse:
        rec(req)
        return m.EndSessionResponse(
            end_session="Y",
            transaction_date=_now(),
            institution_id="DEMO",
            patron_identifier=req.patron_identifier,
        )

    if renew:

        @srv.route(r.RENEW)
        def renew_one(req: m.RenewRequest, ctx) -> m.RenewResponse:
            rec(req)
            it = lib.items.get(req.item_identifier or "")
            if it is None or it.patron != req.patron_identifier:
                return m.RenewResponse(
                    ok="0",
                    renewal_ok="N",
                    magnetic_media="N",
                    desensitize="N",
                    transaction_date=_now(),
                    institution_id="DEMO",
                    patron_identifier=req.patron_identifier,
                    item_identifier=req.item_identifier or "",
                    title_identifier="",
                    due_date="",
                    screen_message=("Nav izsniegts šim lasītājam",),
                )
            it.renewals += 1
            it.due = "2027-01-06"
            return m.RenewResponse(
                ok="1",
                renewal_ok="Y",
                magnetic_media="N",
                desensitize="Y",
                transaction_date=_now(),
                institution_id="DEMO",
                patron_identifier=req.patron_identifier,
                item_identifier=req.item_identifier or "",
                title_identifier=it.title,
                due_date=it.due,
            )

        @srv.route(r.RENEW_ALL)
        def renew_all(req: m.RenewAllRequest, ctx) -> m.RenewAllResponse:
            rec(req)
            mine = [i for i, it in lib.items.items() if it.patron == req.patron_identifier]
            return m.RenewAllResponse(
                ok="1",
                renewed_count=f"{len(mine):04d}",
                unrenewed_count="0000",
                transaction_date=_now(),
                institution_id="DEMO",
                renewed_items=tuple(mine),
            )

    return srv


@pytest.fixture
def library() -> Library:
    return make_library()


@pytest.fixture
def portal():
    with start_blocking_portal() as p:
        yield p


def serve(portal, srv: SIP2Server):
    cm = portal.wrap_async_context_manager(srv.start())
    port = cm.__enter__()
    return port, cm


def settings(port: int) -> Sip2Section:
    return Sip2Section(
        host="127.0.0.1",
        port=port,
        username="kiosk",
        password="s3cret-login",
        institution_id="DEMO",
        terminal_password="termpw",
        location_code="DEMO",
        timeout_s=0.5,
        retries=0,
    )


_HELD: list[socket.socket] = []


def dead_port() -> int:
    """A loopback port that refuses connections: bound (so nobody else gets it) but not listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


@pytest.fixture
def acs(portal, library):
    port, cm = serve(portal, build_server(library))
    yield port
    cm.__exit__(None, None, None)


def make_service(
    tmp_path,
    port: int,
    policy: str = "checkin-and-checkout",
    clock: ManualClock | None = None,
    max_checkouts: int = 5,
) -> CirculationService:
    clock = clock or ManualClock(T0)
    journal = Journal(tmp_path / "journal.sqlite", clock=clock)
    return CirculationService(
        Sip2Client(settings(port)),
        journal,
        sip2=settings(port),
        offline=OfflineSection(policy=policy, max_checkouts=max_checkouts, loan_days=14),
        location="DEMO",
        clock=clock,
    )


@pytest.fixture
def service(tmp_path, acs):
    svc = make_service(tmp_path, acs)
    yield svc
    svc.close()


# -- identification --------------------------------------------------------------------------


def test_service_is_a_circulation_port(service):
    assert isinstance(service, Circulation)


def test_identify_valid_patron_with_loans_and_pin(service, library):
    res = service.identify_patron("LV0001", pin="1234")
    assert res.ok
    assert res.mode is Mode.ONLINE
    p = res.patron
    assert p.name == "Anna Bērziņa"
    assert p.valid
    assert p.pin_ok is True
    assert p.may_borrow
    assert [(loan.item_id, loan.title, loan.due_date) for loan in p.loans] == [
        ("30000009", "Sprīdītis", "2026-12-01")
    ]
    assert p.email == "anna@example.lv"
    assert p.screen_message == "Sveicināti!"
    first = library.requests(m.PatronInformationRequest)[0]
    assert first.summary == "  Y       "  # one category per request
    assert first.patron_password == "1234"
    assert first.terminal_password == "termpw"


def test_identify_wrong_pin_is_refused_and_pin_never_journaled(service, tmp_path):
    res = service.identify_patron("LV0001", pin="9876")
    assert not res.ok
    assert res.refusal is Refusal.PATRON_BLOCKED
    assert res.patron.pin_ok is False
    assert BlockReason.WRONG_PIN in res.patron.blocks
    co = service.checkout("LV0001", "30000001", pin="9876")
    assert co.ok  # the mock ACS does not check PINs on checkout; the point is the file below
    data = b"".join(
        p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("journal.sqlite")
    )
    assert b"9876" not in data
    assert b"termpw" not in data


def test_identify_unknown_and_blocked_patrons(service):
    unknown = service.identify_patron("LV7777")
    assert not unknown.ok
    assert not unknown.patron.valid
    assert BlockReason.UNKNOWN_PATRON in unknown.patron.blocks
    lost = service.identify_patron("LV0003")
    assert lost.ok  # identified, but may not borrow
    assert lost.patron.blocks == (BlockReason.CARD_LOST,)
    assert not lost.patron.may_borrow


def test_identify_fees_and_holds(service):
    res = service.identify_patron("LV0004")
    p = res.patron
    assert p.name == "Иван Петров"
    assert [(f.description, f.amount) for f in p.fees] == [
        ("Kavējuma nauda", "2.50"),
        ("Bojāts vāks", "1.00"),
    ]
    assert p.fee_total == "3.50"
    assert p.currency == "EUR"
    assert [(h.item_id, h.ready) for h in p.holds] == [("30000006", True)]


def test_identify_pages_long_loan_lists(service, library):
    res = service.identify_patron("LV0009")
    assert len(res.patron.loans) == 25
    assert BlockReason.TOO_MANY_CHARGED in res.patron.blocks
    pages = [
        (q.start_item, q.end_item)
        for q in library.requests(m.PatronInformationRequest)
        if q.summary[2] == "Y"
    ]
    assert pages == [("1", "20"), ("21", "40")]


def test_language_codes_on_the_wire(service, library):
    service.identify_patron("LV0002", language="en")
    service.identify_patron("LV0004", language="ru")
    service.set_language("lv")
    service.identify_patron("LV0001")
    by_patron = {
        q.patron_identifier: q.language for q in library.requests(m.PatronInformationRequest)
    }
    assert by_patron == {"LV0002": "001", "LV0004": "015", "LV0001": "000"}


def test_offline_checkout_refused_when_acs_does_not_accept_offline_work(portal, library, tmp_path):
    srv = build_server(library)
    srv.offline_ok = False
    port, cm = serve(portal, srv)
    svc = make_service(tmp_path, port)
    assert svc.identify_patron("LV0001").ok  # learns the ACS status (98 off-line ok = N)
    assert svc.status().offline_ok is False
    cm.__exit__(None, None, None)
    svc.client.close()
    co = svc.checkout("LV0001", "30000001")
    assert not co.ok
    assert co.refusal is Refusal.OFFLINE_NOT_ALLOWED
    assert co.mode is Mode.OFFLINE
    assert svc.checkin("30000008").queued  # returns are still taken
    svc.close()


def test_identify_journals_one_row_without_pin(service):
    service.identify_patron("LV0001", pin="1234")
    (entry,) = service.journal.entries()
    assert entry.operation is Operation.PATRON
    assert entry.state is EntryState.DONE
    assert "1234" not in str(entry.request) + str(entry.result)


# -- items ---------------------------------------------------------------------------------


def test_checkout_ok_latvian_title_and_wire_fields(service, library):
    res = service.checkout("LV0001", "30000001")
    assert res.ok
    assert res.mode is Mode.ONLINE
    assert res.title == "Zaļā grāmata"
    assert res.due_date == "2026-12-16"  # verbatim
    assert res.desensitize is True
    assert res.renewal is False
    assert res.print_lines == ("Zaļā grāmata līdz 2026-12-16",)
    (req,) = library.requests(m.CheckoutRequest)
    assert req.no_block == "N"
    assert req.nb_due_date == SIP_T0 == req.transaction_date  # a real date, never blanks
    assert req.terminal_password == "termpw"
    assert req.fee_acknowledged == "N"
    entry = service.journal.get(res.journal_id)
    assert entry.state is EntryState.DONE
    assert entry.attempts == 1
    assert entry.result["title"] == "Zaļā grāmata"


def test_checkout_of_own_loan_is_a_renewal(service):
    res = service.checkout("LV0001", "30000009")
    assert res.ok
    assert res.renewal


@pytest.mark.parametrize(
    ("patron", "item", "refusal"),
    [
        ("LV0001", "30000006", Refusal.ON_HOLD_FOR_OTHER),
        ("LV0001", "30000008", Refusal.ALREADY_ON_LOAN),
        ("LV0001", "99999999", Refusal.UNKNOWN_ITEM),
        ("LV0009", "30000001", Refusal.LIMIT_REACHED),
        ("LV0003", "30000001", Refusal.PATRON_BLOCKED),
        ("LV0001", "30000007", Refusal.NOT_FOR_LOAN),
    ],
)
def test_checkout_refusals_are_classified(service, patron, item, refusal):
    res = service.checkout(patron, item)
    assert not res.ok
    assert res.mode is Mode.ONLINE
    assert res.refusal is refusal
    assert res.message  # the ACS's own words
    assert service.journal.get(res.journal_id).state is EntryState.REFUSED


def test_checkout_fee_must_be_acknowledged(service, library):
    first = service.checkout("LV0001", "30000011")
    assert not first.ok
    assert first.refusal is Refusal.FEE_REQUIRED
    assert first.fee_amount == "1.00"
    second = service.checkout("LV0001", "30000011", fee_acknowledged=True)
    assert second.ok
    assert [q.fee_acknowledged for q in library.requests(m.CheckoutRequest)] == ["N", "Y"]


def test_checkin_with_routing(service, library):
    library.items["30000003"].patron = "LV0002"
    library.items["30000003"].status = "04"
    res = service.checkin("30000003")
    assert res.ok
    assert res.resensitize is True
    assert res.routing.sort_bin == "3"
    assert res.routing.alert is True
    assert res.routing.permanent_location == "Pieaugušo nodaļa"
    assert res.routing.alert_type is AlertType.NONE
    (req,) = library.requests(m.CheckinRequest)
    assert req.no_block == "N"
    assert req.return_date == SIP_T0
    assert req.current_location == "DEMO"


def test_checkin_unknown_item(service):
    res = service.checkin("99999999")
    assert not res.ok
    assert res.refusal is Refusal.UNKNOWN_ITEM


def test_renew_and_renew_all(service, library):
    res = service.renew("LV0001", "30000009")
    assert res.ok
    assert res.due_date == "2027-01-06"
    assert res.title == "Sprīdītis"
    bad = service.renew("LV0001", "30000003")
    assert not bad.ok
    assert bad.refusal is Refusal.NOT_ON_LOAN
    all_ = service.renew_all("LV0001")
    assert all_.ok
    assert all_.renewed == ("30000009",)
    assert library.items["30000009"].renewals == 1


def test_item_information_and_end_session(service, library):
    info = service.item_information("30000006")
    assert info.found
    assert info.title == "Mērnieku laiki"
    assert info.circulation_status == "08"
    assert info.hold_queue_length == 1
    assert info.owner == "LV-DEMO"
    assert not service.item_information("99999999").found
    service.end_session("LV0001")
    (req,) = library.requests(m.EndPatronSessionRequest)
    assert req.patron_identifier == "LV0001"


def test_renew_not_offered_when_acs_lacks_29(portal, library, tmp_path):
    port, cm = serve(portal, build_server(library, renew=False))
    try:
        svc = make_service(tmp_path, port)
        svc.identify_patron("LV0001")
        assert svc.status().renewal_ok is False
        res = svc.renew("LV0001", "30000009")
        assert not res.ok
        assert "not offered" in res.message
        assert library.requests(m.RenewRequest) == []
        svc.close()
    finally:
        cm.__exit__(None, None, None)


# -- offline -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "checkin_ok", "checkout_ok"),
    [
        ("disabled", False, False),
        ("checkin-only", True, False),
        ("checkin-and-checkout", True, True),
    ],
)
def test_offline_policies(tmp_path, policy, checkin_ok, checkout_ok):
    svc = make_service(tmp_path, dead_port(), policy=policy)
    ident = svc.identify_patron("LV0001", pin="1234")
    assert ident.mode is Mode.OFFLINE
    assert ident.ok is checkout_ok
    if checkout_ok:
        assert ident.patron.valid
        assert ident.patron.loans == ()
        assert "unavailable" in ident.patron.screen_message
    ci = svc.checkin("30000008")
    assert ci.mode is Mode.OFFLINE
    assert ci.ok is checkin_ok
    assert ci.queued is checkin_ok
    if not checkin_ok:
        assert ci.refusal is Refusal.OFFLINE_NOT_ALLOWED
    co = svc.checkout("LV0001", "30000001", pin="1234")
    assert co.ok is checkout_ok
    if checkout_ok:
        assert co.due_date == "2026-12-09"
        assert co.queued
        assert co.desensitize
    else:
        assert co.refusal is Refusal.OFFLINE_NOT_ALLOWED
    states = [e.state for e in svc.journal.entries()]
    assert states.count(EntryState.QUEUED) == int(checkin_ok) + int(checkout_ok)
    assert svc.status().pending == int(checkin_ok) + int(checkout_ok)
    assert not svc.status().online
    assert [e.kind for e in svc.journal.events()][:1] == ["link_down"]
    svc.close()


def test_offline_checkout_limit_counts_per_patron_across_the_outage(tmp_path):
    svc = make_service(tmp_path, dead_port(), max_checkouts=2)
    svc.identify_patron("LV0001")
    results = [svc.checkout("LV0001", f"3000000{n}") for n in (1, 2, 3)]
    assert [x.ok for x in results] == [True, True, False]
    assert results[2].refusal is Refusal.OFFLINE_LIMIT
    svc.identify_patron("LV0001")  # an account refresh in the same session
    assert svc.checkout("LV0001", "30000004").refusal is Refusal.OFFLINE_LIMIT
    svc.end_session("LV0001")
    svc.identify_patron("LV0002")
    assert svc.checkout("LV0002", "30000005").ok  # another patron has a cap of their own
    svc.end_session("LV0002")
    svc.identify_patron("LV0001")  # a new login during the same outage: the cap still holds
    assert svc.checkout("LV0001", "30000003").refusal is Refusal.OFFLINE_LIMIT
    svc.close()
    again = make_service(tmp_path, dead_port(), max_checkouts=2)  # the kiosk restarted
    again.identify_patron("LV0001")
    assert again.checkout("LV0001", "30000006").refusal is Refusal.OFFLINE_LIMIT
    again.close()


def test_renew_offline_not_allowed(tmp_path):
    svc = make_service(tmp_path, dead_port())
    res = svc.renew("LV0001", "30000009")
    assert not res.ok
    assert res.refusal is Refusal.OFFLINE_NOT_ALLOWED
    svc.close()


def test_forward_when_back_in_order_with_no_block_and_original_dates(tmp_path, acs, library):
    clock = ManualClock(T0)
    svc = make_service(tmp_path, dead_port(), clock=clock)
    svc.checkout("LV0001", "30000001")
    clock.advance(60)
    svc.checkin("30000008")
    clock.advance(60)
    svc.checkout("LV0001", "30000002")
    clock.advance(3600)
    svc.checkout("LV0001", "30000006")  # on hold for someone else: forwarded anyway (no block)
    svc.checkin("99999999")  # unknown: refused on forwarding, kept for staff
    svc.client = Sip2Client(settings(acs))  # the library system is back
    report = svc.forward_offline()
    assert report.to_json() == {"forwarded": 4, "refused": 1, "pending": 0}
    wire = [q for q in library.received if isinstance(q, m.CheckoutRequest | m.CheckinRequest)]
    assert [(type(q).__name__, q.item_identifier) for q in wire] == [
        ("CheckoutRequest", "30000001"),
        ("CheckinRequest", "30000008"),
        ("CheckoutRequest", "30000002"),
        ("CheckoutRequest", "30000006"),
        ("CheckinRequest", "99999999"),
    ]
    assert all(q.no_block == "Y" for q in wire)
    assert wire[0].transaction_date == SIP_T0
    assert wire[0].nb_due_date == "20261209    235959"
    assert wire[1].transaction_date == wire[1].return_date == "20261125    100100"
    assert wire[3].transaction_date == "20261125    110200"
    assert library.items["30000006"].patron == "LV0001"
    (refused,) = svc.journal.refusals()
    assert refused.item_id == "99999999"
    assert "nav atrasts" in refused.error
    assert svc.forward_offline().to_json() == {"forwarded": 0, "refused": 0, "pending": 0}
    assert len(library.checkouts) == 3  # nothing applied twice
    svc.close()


def test_online_request_does_not_overtake_queued_work_for_the_same_item(tmp_path, acs, library):
    clock = ManualClock(T0)
    svc = make_service(tmp_path, dead_port(), clock=clock)
    svc.checkin("30000008")  # queued offline
    svc.client = Sip2Client(settings(acs))
    clock.advance(svc.reconnect_after_s)  # the next attempt to reach the library system is due
    res = svc.checkout("LV0001", "30000008")  # the queued checkin must reach the ACS first
    assert res.ok
    assert res.mode is Mode.ONLINE
    kinds = [
        (type(q).__name__, q.no_block)
        for q in library.received
        if isinstance(q, m.CheckoutRequest | m.CheckinRequest)
    ]
    assert kinds == [("CheckinRequest", "Y"), ("CheckoutRequest", "N")]
    assert svc.journal.pending_count() == 0
    svc.close()


# -- in doubt ------------------------------------------------------------------------------


def test_in_doubt_applied_checkout_is_reversed_as_the_patron_was_told(tmp_path, acs, library):
    svc = make_service(tmp_path, acs)
    library.stall = threading.Event()  # the ACS applies the checkout but the answer comes too late
    res = svc.checkout("LV0001", "30000001")
    library.stall.set()
    library.stall = None
    assert res.in_doubt
    assert not res.ok
    assert "not borrowed" in res.message
    entry = svc.journal.get(res.journal_id)
    assert entry.state is EntryState.IN_DOUBT
    assert library.checkouts == [("LV0001", "30000001")]
    report = svc.forward_offline()
    assert report.forwarded == 1
    assert report.pending == 0
    assert library.checkouts == [("LV0001", "30000001")]  # not sent again ...
    assert library.checkins == ["30000001"]  # ... but undone: the patron was told "not borrowed"
    (req,) = library.requests(m.CheckinRequest)
    assert (
        req.return_date == library.requests(m.CheckoutRequest)[0].transaction_date
    )  # the original date
    original = svc.journal.get(res.journal_id)
    assert original.state is EntryState.REVERSED
    (reversal,) = [e for e in svc.journal.entries() if e.reversal_of == original.id]
    assert reversal.state is EntryState.DONE
    assert library.requests(m.ItemInformationRequest)  # reconciled by asking
    svc.close()


def test_in_doubt_return_not_applied_is_sent_once(tmp_path, acs, library):
    svc = make_service(tmp_path, acs)
    loan = {"charged": True, "due": library.items["30000008"].due}
    eid = svc.journal.begin(
        Operation.CHECKIN,
        mode=Mode.ONLINE,
        state=EntryState.PENDING,
        item_id="30000008",
        request={"loan_before": loan},
    )
    svc.journal.mark_sent(eid)
    svc.journal.update(
        eid, EntryState.IN_DOUBT, error="no answer"
    )  # the request never reached the ACS
    report = svc.forward_offline()
    assert report.forwarded == 1
    assert library.checkins == ["30000008"]
    (req,) = library.requests(m.CheckinRequest)
    assert req.no_block == "Y"
    assert svc.journal.get(eid).state is EntryState.DONE
    assert svc.forward_offline().forwarded == 0
    assert library.checkins == ["30000008"]
    svc.close()


def test_journal_file_has_no_login_or_terminal_password(tmp_path, acs):
    svc = make_service(tmp_path, acs)
    svc.checkout("LV0001", "30000001", pin="1234")
    svc.checkin("30000001")
    svc.close()
    con = sqlite3.connect(tmp_path / "journal.sqlite")
    dump = "\n".join(con.iterdump())
    con.close()
    assert "LV0001" in dump
    for secret in ("1234", "s3cret-login", "termpw"):
        assert secret not in dump
