"""The book drop end to end: the simulated pad (SimulatedPad + StackReader + TagSecurityService),
the simulated sorter, the real circulation service and journal (temporary SQLite), and a real
SIP2 library system on loopback: (a) the embedded demo library system, (b) PyPI pysip2 with the
dict-backed demo library of tests/sync/conftest.py.

Each test drops items into the chute (places their tags on the pad and polls the stack reader
until the book drop has decided) and then checks what every party recorded: the library
system's loans and check-ins, the tags' AFI and memory on the pad, the sorter's bins, the
journal's transactions and staff events, and the hold slips the staff printer wrote.

pysip2 cannot send the 3M extension fields (CV, CT, CY, DA), so routing by CL and the alert flag
is tested with it, and the extension fields with the demo library system.
"""

from __future__ import annotations

import contextlib
import importlib.util
import select
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kiosk import demo_catalog
from kiosk.config import Config, parse
from kiosk.core.bookdrop import BookDrop, BookDropItem, Component, FinalState
from kiosk.core.domain import AlertType, Mode, Operation, Routing
from kiosk.core.events import TagsChanged
from kiosk.core.ports import ManualClock
from kiosk.core.returns import ReturnSettings
from kiosk.core.routing import ReturnOutcome, RoutingTable
from kiosk.devices import tags as tagcodec
from kiosk.devices.printer import open_printer
from kiosk.devices.readers.sim import SimReader, SimulatedPad, VirtualTag, demo_tag, demo_uid
from kiosk.devices.security import TagSecurityService
from kiosk.devices.sorter import SimulatedSorter, open_sorter
from kiosk.devices.stack import StackReader
from kiosk.receipts import RenderingPrinter
from kiosk.sync.acs.server import RunningAcs, start_embedded
from kiosk.sync.circulation import CirculationService, build_circulation
from kiosk.sync.journal import EntryState, JournalEntry

pysip2 = pytest.importorskip("pysip2")
import msgspec  # noqa: E402
from anyio.from_thread import BlockingPortal, start_blocking_portal  # noqa: E402

pytestmark = pytest.mark.timeout(60)

SECURED, UNSECURED = 0x07, 0xC2
EXCEPTION_BIN, DEFAULT_BIN, HOLD_BIN, TRANSIT_BIN = 0, 1, 3, 4
BORROWER, HOLDER = "LV0002", "LV0004"
MAX_POLLS = 20

SITE = """
[kiosk]
mode = "bookdrop"
library_name = "Demo bibliotēka"
owner_institutions = ["LV-DEMO"]

[sip2]
host = "127.0.0.1"
port = {port}
username = "kiosk"
password = "demo"
location_code = "DEMO"
institution_id = "DEMO"
error_detection = "on"
timeout_s = 0.5
retries = 1

[storage]
path = "{journal}"

[offline]
policy = "checkin-only"

[security]
method = "afi"
afi_secured = 0x07
afi_unsecured = 0xC2
write_retries = 2

[sorter]
url = "sim:"
default_bin = 1
exception_bin = 0

# The demo library system says where a held item goes with the 3M extension field CV.
[[routing]]
alert_type = "hold_here"
bin = 3
hold_slip = true

[[routing]]
alert_type = "hold_other_branch"
bin = 4
hold_slip = true

# A library system without the extensions (pysip2) says it with the sort bin and the alert flag.
[[routing]]
sort_bin = "H"
alert = true
bin = 3
hold_slip = true
"""


def _load_peer_module() -> Any:
    """The pysip2 demo library from tests/sync/conftest.py (a conftest is not importable by name)."""
    path = Path(__file__).resolve().parent.parent / "sync" / "conftest.py"
    spec = importlib.util.spec_from_file_location("bookdrop_e2e_pysip2_peer", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_peer = _load_peer_module()


# --- the two library systems behind one small interface -----------------------------------------


class _RelayServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # listen again on the same port at once
    daemon_threads = True
    block_on_close = False


class Relay:
    """A TCP relay on loopback in front of a library system, standing for the network and the
    library system's front end: `down()` closes its listener (new connections are refused) and
    cuts every open connection, `up()` listens again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None
        self._socks: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.up()

    def up(self) -> None:
        if self._server is not None:
            return
        relay = self

        class Pipe(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    upstream = socket.create_connection(("127.0.0.1", relay.target_port), timeout=5)
                except OSError:
                    return
                with relay._lock:
                    relay._socks |= {self.request, upstream}
                try:
                    _pump(self.request, upstream)
                finally:
                    with relay._lock:
                        relay._socks -= {self.request, upstream}
                    upstream.close()

        server = _RelayServer(("127.0.0.1", self.port), Pipe)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def down(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server = None
        with self._lock:
            socks, self._socks = list(self._socks), set()
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    peers = {a: b, b: a}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [], 5.0)
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
    except (OSError, ValueError):
        return


class DemoLibrary:
    """The embedded demo library system (SQLite), with the state the tests look at."""

    def __init__(self, tmp: Path) -> None:
        self.running: RunningAcs = start_embedded(
            f"sqlite:///{tmp / 'acs.sqlite'}", port=0, fresh=True
        )
        self.library = self.running.library
        self.relay = Relay(self.running.port)
        self.port = self.relay.port

    def lend(self, item_id: str, patron_id: str = BORROWER) -> None:
        out = self.library.checkout(patron_id, item_id, no_block=True)
        assert out.ok, out

    def on_loan(self, item_id: str) -> bool:
        return self.library.loan(item_id) is not None

    def checkins(self, item_id: str) -> int:
        """Check-ins the library system applied to the item (a return of an item on loan)."""
        return self.library.applied(item_id, "checkin")

    def no_block_checkins(self, item_id: str) -> list[bool]:
        return [t.no_block for t in self.library.transactions(item_id) if t.kind == "checkin"]

    def down(self) -> None:
        self.relay.down()

    def up(self) -> None:
        self.relay.up()

    def stop(self) -> None:
        self.relay.down()
        self.running.stop()


class PeerLibrary:
    """PyPI pysip2 serving the dict-backed demo library of tests/sync/conftest.py."""

    def __init__(self, portal: BlockingPortal) -> None:
        self.acs = _peer.PysipAcs()
        self.applied: list[tuple[str, str]] = []  # (item id, no block) of check-ins of a loan
        self.checkin_extra: dict[str, dict[str, str]] = {}  # item id -> fields to change in its 10
        self.acs.handlers["09"] = self._checkin
        # pysip2's start() never closes its listener, so it cannot go down by itself: the relay does.
        self._cm = portal.wrap_async_context_manager(self.acs.server.start())
        self.acs.port = self._cm.__enter__()
        self.relay = Relay(self.acs.port)
        self.port = self.relay.port

    def _checkin(self, req: Any, ctx: Any) -> Any:
        resp = self.acs._checkin(req, ctx)
        if resp.ok == "1":
            self.applied.append((req.item_identifier, req.no_block))
        extra = self.checkin_extra.get(req.item_identifier)
        if extra:
            resp = msgspec.structs.replace(resp, **extra)
        return resp

    def lend(self, item_id: str, patron_id: str = BORROWER) -> None:
        with self.acs.lock:
            assert item_id in self.acs.titles
            assert item_id not in self.acs.loans
            self.acs.loans[item_id] = patron_id

    def on_loan(self, item_id: str) -> bool:
        with self.acs.lock:
            return item_id in self.acs.loans

    def checkins(self, item_id: str) -> int:
        return sum(1 for item, _ in self.applied if item == item_id)

    def no_block_checkins(self, item_id: str) -> list[bool]:
        return [nb == "Y" for item, nb in self.applied if item == item_id]

    def down(self) -> None:
        self.relay.down()

    def up(self) -> None:
        self.relay.up()

    def stop(self) -> None:
        self.relay.down()
        self._cm.__exit__(None, None, None)


Library = DemoLibrary | PeerLibrary


# --- the book drop as a site would assemble it ----------------------------------------------------


@dataclass
class Station:
    cfg: Config
    clock: ManualClock
    circulation: CirculationService
    pad: SimulatedPad
    stack: StackReader
    sorter: SimulatedSorter
    drop: BookDrop
    slips_dir: Path

    def drop_items(self, *tags: VirtualTag) -> list[BookDropItem]:
        """Drop tags onto the pad together; poll until the stack reader reports all of them, return
        the book drop's decisions, then take them out of the chute again."""
        self.clock.advance(1.0)
        before = len(self.drop.history)
        for tag in tags:
            self.pad.place(tag)
        uids = {t.uid for t in tags}
        self._poll_until(lambda present: uids <= present)
        decided = self.drop.history[before:]
        for tag in tags:
            self.pad.remove(tag.uid)
        self._poll_until(lambda present: not uids & present)
        self.pad.reset_faults()
        return decided

    def _poll_until(self, done: Callable[[set[str]], bool]) -> None:
        for _ in range(MAX_POLLS):
            change = self.stack.poll_once()
            assert not change.error, change.error
            if change.changed:
                self.drop.handle_tags(
                    TagsChanged(present=change.present, added=change.added, removed=change.removed)
                )
            if change.stable and done({t.uid for t in change.present}):
                return
        raise AssertionError(f"the stack reader did not settle within {MAX_POLLS} polls")

    # what the journal says

    def checkin_entries(self, item_id: str) -> list[JournalEntry]:
        return [
            e
            for e in self.circulation.journal.entries()
            if e.item_id == item_id and e.operation is Operation.CHECKIN
        ]

    def events(self, kind: str) -> list[str]:
        return [e.detail for e in self.circulation.journal.events() if e.kind == kind]

    def staff_alerts(self) -> list[tuple[str, str]]:
        return [
            (e.kind, e.detail)
            for e in self.circulation.journal.events()
            if e.kind.startswith("bookdrop_") or e.kind == "outage_start"
        ]

    def slips(self) -> list[str]:
        return [
            p.read_text(encoding="utf-8") for p in sorted(self.slips_dir.glob("*hold-slip*.txt"))
        ]

    def slip_bytes(self) -> bytes:
        return b"".join(p.read_bytes() for p in sorted(self.slips_dir.glob("*hold-slip*.bin")))


def build_station(tmp: Path, port: int) -> Station:
    cfg = parse(SITE.format(port=port, journal=tmp / "journal.sqlite"), str(tmp / "bookdrop.toml"))
    clock = ManualClock(datetime.now().replace(microsecond=0))
    circulation = build_circulation(cfg, clock=clock)
    pad = SimulatedPad()
    reader = SimReader(pad, "bookdrop-e2e")
    security = TagSecurityService(reader, cfg.security, retry_delay_s=0.0, sleep=lambda _s: None)
    stack = StackReader(reader, stable_rounds=2, security=cfg.security, read_retries=1)
    sorter = open_sorter(cfg.sorter.url, timeout_s=cfg.sorter.timeout_s)
    assert isinstance(sorter, SimulatedSorter)
    slips_dir = tmp / "staff-printer"
    printer = RenderingPrinter(open_printer(f"file:{slips_dir}"), width=42)
    drop = BookDrop(
        circulation,
        security,
        sorter,
        clock,
        RoutingTable.from_config(cfg),
        ReturnSettings.from_config(cfg),
        recorder=circulation.journal.record_event,
        staff_printer=printer,
    )
    return Station(cfg, clock, circulation, pad, stack, sorter, drop, slips_dir)


@pytest.fixture
def portal() -> Iterator[BlockingPortal]:
    with start_blocking_portal() as p:
        yield p


@pytest.fixture(params=["demo", "pysip2"])
def library(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Library]:
    if request.param == "demo":
        lib: Library = DemoLibrary(tmp_path)
    else:
        lib = PeerLibrary(request.getfixturevalue("portal"))
    try:
        yield lib
    finally:
        lib.stop()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoLibrary]:
    lib = DemoLibrary(tmp_path)
    yield lib
    lib.stop()


@pytest.fixture
def peer(portal: BlockingPortal) -> Iterator[PeerLibrary]:
    lib = PeerLibrary(portal)
    yield lib
    lib.stop()


def _station(tmp_path: Path, lib: Library) -> Iterator[Station]:
    station = build_station(tmp_path, lib.port)
    try:
        yield station
    finally:
        station.circulation.close()


@pytest.fixture
def station(tmp_path: Path, library: Library) -> Iterator[Station]:
    yield from _station(tmp_path, library)


@pytest.fixture
def demo_station(tmp_path: Path, demo: DemoLibrary) -> Iterator[Station]:
    yield from _station(tmp_path, demo)


@pytest.fixture
def peer_station(tmp_path: Path, peer: PeerLibrary) -> Iterator[Station]:
    yield from _station(tmp_path, peer)


# --- helpers ---------------------------------------------------------------------------------------


def item_tags(item_id: str, parts: int | None = None) -> list[VirtualTag]:
    """The item's tags as they arrive in the chute: unsecured (the patron borrowed it)."""
    known = demo_catalog.item(item_id)
    n = parts or (known.parts_in_set if known else 1)
    return [demo_tag(item_id, part=p, parts=n, secured=False) for p in range(1, n + 1)]


def foreign_tag(item_id: str, owner: str = "LV-OTHER") -> VirtualTag:
    data = tagcodec.TagData(
        model="iso28560-3", item_id=item_id, part_number=1, parts_in_set=1, owner_institution=owner
    )
    memory = bytearray(tagcodec.encode(data, model="iso28560-3"))
    memory += bytes(max(0, 112 - len(memory)))
    return VirtualTag(
        uid=demo_uid(item_id),
        memory=memory,
        afi=UNSECURED,
        dsfid=tagcodec.DSFID_ISO28560_3,
        label=item_id,
        item_id=item_id,
    )


def secured_with_read_back(pad: SimulatedPad, tag: VirtualTag) -> bool:
    """The tag's AFI is the secured value, and the pad saw the AFI write followed by a read-back."""
    ops = [op for op, uid in pad.operations if uid == tag.uid]
    if "afi" not in ops:
        return False
    last_write = len(ops) - 1 - ops[::-1].index("afi")
    return tag.afi == SECURED and "system_info" in ops[last_write + 1 :]


def result_routing(station: Station, item_id: str) -> Any:
    """The routing the library system gave for the item's last check-in, from the journal."""
    routing = station.checkin_entries(item_id)[-1].result["routing"]
    return Routing(
        sort_bin=routing["sort_bin"],
        alert=routing["alert"],
        alert_type=AlertType(routing["alert_type"]),
        destination=routing["destination"],
    )


def one(items: list[BookDropItem]) -> BookDropItem:
    assert len(items) == 1, items
    return items[0]


# --- normal returns ----------------------------------------------------------------------------------


def test_normal_return_is_checked_in_secured_and_sorted(station: Station, library: Library) -> None:
    library.lend("30000003")
    tag = item_tags("30000003")[0]
    memory_before = bytes(tag.memory)

    result = one(station.drop_items(tag))

    assert (result.final, result.outcome, result.item_id) == (
        FinalState.CHECKED_IN_SECURED,
        ReturnOutcome.CHECKED_IN,
        "30000003",
    )
    assert result.title == "The Hobbit"
    assert result.sorted
    # The library system: the loan is gone, checked in exactly once, online (no block = N).
    assert not library.on_loan("30000003")
    assert library.checkins("30000003") == 1
    assert library.no_block_checkins("30000003") == [False]
    # The tag: re-secured, verified by read-back, its memory untouched.
    assert secured_with_read_back(station.pad, tag)
    assert bytes(tag.memory) == memory_before
    # The sorter: the bin the routing table gives for the library system's sort bin CL 1.
    table = RoutingTable.from_config(station.cfg)
    assert (
        result.bin
        == DEFAULT_BIN
        == table.decide(ReturnOutcome.CHECKED_IN, result_routing(station, "30000003")).bin
    )
    assert station.sorter.routed == [("30000003", DEFAULT_BIN)]
    # The journal: one online check-in, done; nothing for staff.
    entries = station.checkin_entries("30000003")
    assert [(e.mode, e.state) for e in entries] == [(Mode.ONLINE, EntryState.DONE)]
    assert entries[0].result["routing"]["sort_bin"] == "1"
    assert station.staff_alerts() == []
    assert station.slips() == []


def test_sort_bin_from_the_library_system_picks_the_bin(station: Station, library: Library) -> None:
    # The demo catalogue shelves Война и мир in sort bin 2; pysip2 is told to say CL 2 for it.
    library.lend("30000010")
    if isinstance(library, PeerLibrary):
        library.checkin_extra["30000010"] = {"sort_bin": "2"}
    tag = item_tags("30000010")[0]

    result = one(station.drop_items(tag))

    assert (result.final, result.bin) == (FinalState.CHECKED_IN_SECURED, 2)
    assert station.sorter.bins == {2: ["30000010"]}
    assert not library.on_loan("30000010")
    assert library.checkins("30000010") == 1
    assert secured_with_read_back(station.pad, tag)


def test_complete_multi_part_set_is_checked_in_once_and_every_part_secured(
    station: Station, library: Library
) -> None:
    library.lend("30000005")
    parts = item_tags("30000005")
    assert len(parts) == 3

    result = one(station.drop_items(*parts))

    assert result.final is FinalState.CHECKED_IN_SECURED
    assert library.checkins("30000005") == 1
    assert not library.on_loan("30000005")
    assert all(secured_with_read_back(station.pad, t) for t in parts)
    assert station.sorter.routed == [("30000005", DEFAULT_BIN)]
    assert len(station.checkin_entries("30000005")) == 1


# --- holds ------------------------------------------------------------------------------------------


def test_hold_for_another_patron_demo_extension_fields(
    demo_station: Station, demo: DemoLibrary
) -> None:
    """CV 01 (hold here) with CY/DA: the hold bin, a hold slip with the holder's card masked and no name."""
    demo.lend("30000003")
    assert demo.library.place_hold("30000003", HOLDER).ok
    tag = item_tags("30000003")[0]

    result = one(demo_station.drop_items(tag))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.CHECKED_IN_SECURED,
        ReturnOutcome.CHECKED_IN,
        HOLD_BIN,
    )
    assert result.instruction == "hold_shelf"
    assert result.hold_slip_printed is True
    assert demo_station.sorter.routed == [("30000003", HOLD_BIN)]
    assert secured_with_read_back(demo_station.pad, tag)
    # The library system trapped the hold: the item waits on the hold shelf for Ivan.
    assert not demo.on_loan("30000003")
    assert demo.checkins("30000003") == 1
    assert [(h.patron_id, h.state) for h in demo.library.holds(item_id="30000003")] == [
        (HOLDER, "ready")
    ]
    assert demo.library.item_status("30000003") == "08"
    # The slip: item and masked card of the patron who waits; never the full card or the name.
    slips = demo_station.slips()
    assert len(slips) == 1
    slip = slips[0]
    assert "30000003" in slip
    assert "**0004" in slip
    assert HOLDER not in slip
    assert "Иван" not in slip
    assert "Петров" not in slip
    assert HOLDER.encode() not in demo_station.slip_bytes()
    # The journal keeps the routing the library system gave, and no exception was recorded.
    routing = demo_station.checkin_entries("30000003")[-1].result["routing"]
    assert routing["alert"] is True
    assert routing["alert_type"] == "01"
    assert [k for k, _ in demo_station.staff_alerts()] == []


def test_hold_at_another_branch_demo_destination(demo_station: Station, demo: DemoLibrary) -> None:
    """CV 02 with CT: the transit bin and a slip that says where to send it."""
    demo.lend("30000001")
    assert demo.library.place_hold("30000001", "LV0001", pickup_location="CENTRS").ok
    tag = item_tags("30000001")[0]

    result = one(demo_station.drop_items(tag))

    assert (result.final, result.bin, result.instruction) == (
        FinalState.CHECKED_IN_SECURED,
        TRANSIT_BIN,
        "other_branch",
    )
    assert demo_station.sorter.routed == [("30000001", TRANSIT_BIN)]
    assert demo.library.item_status("30000001") == "10"  # in transit
    (slip,) = demo_station.slips()
    assert "CENTRS" in slip
    assert "**0001" in slip
    assert "LV0001" not in slip
    assert demo_station.checkin_entries("30000001")[-1].result["routing"]["destination"] == "CENTRS"


def test_hold_for_another_patron_pysip2_sort_bin_and_alert(
    peer_station: Station, peer: PeerLibrary
) -> None:
    """Without extension fields: CL H with the alert flag picks the hold bin and asks for a slip."""
    peer.lend("30000003")
    peer.checkin_extra["30000003"] = {"alert": "Y", "sort_bin": "H"}
    tag = item_tags("30000003")[0]

    result = one(peer_station.drop_items(tag))

    assert (result.final, result.bin, result.hold_slip_printed) == (
        FinalState.CHECKED_IN_SECURED,
        HOLD_BIN,
        True,
    )
    assert peer_station.sorter.routed == [("30000003", HOLD_BIN)]
    assert not peer.on_loan("30000003")
    assert peer.checkins("30000003") == 1
    assert secured_with_read_back(peer_station.pad, tag)
    (slip,) = peer_station.slips()
    # The 10 named the patron who had it (AA); that card must not reach the slip either.
    assert "30000003" in slip
    assert BORROWER not in slip


def test_alert_without_a_matching_row_goes_to_the_exception_bin(
    peer_station: Station, peer: PeerLibrary
) -> None:
    peer.lend("30000002")
    peer.checkin_extra["30000002"] = {"alert": "Y", "sort_bin": "7"}
    tag = item_tags("30000002")[0]

    result = one(peer_station.drop_items(tag))

    # Checked in and secured, but special handling: the exception bin, not CL 7.
    assert (result.final, result.bin, result.instruction) == (
        FinalState.CHECKED_IN_SECURED,
        EXCEPTION_BIN,
        "special",
    )
    assert peer_station.sorter.routed == [("30000002", EXCEPTION_BIN)]
    assert not peer.on_loan("30000002")
    assert tag.afi == SECURED


# --- exceptions -------------------------------------------------------------------------------------


def _assert_untouched(
    station: Station, library: Library, item_id: str, tags: list[VirtualTag]
) -> None:
    """Never sent to the library system; the tags as they came."""
    assert library.on_loan(item_id)
    assert library.checkins(item_id) == 0
    assert station.checkin_entries(item_id) == []
    assert all(t.afi == UNSECURED for t in tags)
    assert not any(op == "afi" for op, _ in station.pad.operations)


def test_incomplete_set_goes_to_the_exception_bin_with_a_staff_alert(
    station: Station, library: Library
) -> None:
    library.lend("30000005")
    parts = item_tags("30000005")

    result = one(station.drop_items(*parts[:2]))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.SET_INCOMPLETE,
        EXCEPTION_BIN,
    )
    assert result.instruction == "place_all_parts"
    assert "2 of 3" in result.message
    assert station.sorter.routed == [("30000005", EXCEPTION_BIN)]
    _assert_untouched(station, library, "30000005", parts)
    alerts = station.staff_alerts()
    assert [k for k, _ in alerts] == ["bookdrop_set_incomplete"]
    assert "30000005" in alerts[0][1]


@pytest.mark.parametrize("fault", ["no answer", "blank memory"])
def test_unreadable_tag_goes_to_the_exception_bin(
    station: Station, library: Library, fault: str
) -> None:
    library.lend("30000002")
    tag = item_tags("30000002")[0]
    if fault == "no answer":
        station.pad.fail_reads(tag.uid, count=50)
    else:
        tag.memory[:] = bytes(len(tag.memory))

    result = one(station.drop_items(tag))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.UNREADABLE_TAG,
        EXCEPTION_BIN,
    )
    assert result.key == f"uid:{tag.uid}"
    assert result.item_id == ""
    assert station.sorter.routed == [(f"uid:{tag.uid}", EXCEPTION_BIN)]
    _assert_untouched(station, library, "30000002", [tag])
    assert station.circulation.journal.entries() == []
    alerts = station.staff_alerts()
    assert [k for k, _ in alerts] == ["bookdrop_unreadable_tag"]


def test_tag_from_another_library_goes_to_the_exception_bin(
    station: Station, library: Library
) -> None:
    tag = foreign_tag("39000001")

    result = one(station.drop_items(tag))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.OTHER_LIBRARY,
        EXCEPTION_BIN,
    )
    assert "LV-OTHER" in result.message
    assert station.sorter.routed == [("39000001", EXCEPTION_BIN)]
    assert library.checkins("39000001") == 0
    assert station.circulation.journal.entries() == []
    assert tag.afi == UNSECURED
    assert not any(op == "afi" for op, _ in station.pad.operations)
    assert [k for k, _ in station.staff_alerts()] == ["bookdrop_other_library"]


def test_item_not_on_loan(station: Station, library: Library) -> None:
    """Either way the item is in the library: its tag is secured, and no check-in is applied.

    The demo library system answers ok (as Koha's checked_in_ok does) and routes it; pysip2's
    library answers ok = 0, which the kiosk classifies (17) as not on loan: the exception bin.
    """
    assert not library.on_loan("30000001")
    tag = item_tags("30000001")[0]

    result = one(station.drop_items(tag))

    assert secured_with_read_back(station.pad, tag)
    assert library.checkins("30000001") == 0
    assert not library.on_loan("30000001")
    entries = station.checkin_entries("30000001")
    assert len(entries) == 1
    assert entries[0].mode is Mode.ONLINE
    if isinstance(library, DemoLibrary):
        assert (result.final, result.outcome, result.bin) == (
            FinalState.CHECKED_IN_SECURED,
            ReturnOutcome.CHECKED_IN,
            DEFAULT_BIN,
        )
        assert "not on loan" in result.message
        assert entries[0].state is EntryState.DONE
        assert station.sorter.routed == [("30000001", DEFAULT_BIN)]
    else:
        assert (result.final, result.outcome, result.bin) == (
            FinalState.EXCEPTION_BIN,
            ReturnOutcome.NOT_ON_LOAN,
            EXCEPTION_BIN,
        )
        assert entries[0].state is EntryState.REFUSED
        assert station.sorter.routed == [("30000001", EXCEPTION_BIN)]
        assert [k for k, _ in station.staff_alerts()] == ["bookdrop_not_on_loan"]


def test_unknown_item_goes_to_the_exception_bin(station: Station, library: Library) -> None:
    tag = demo_tag("39999999", parts=1, secured=False)  # our owner code, but no such item

    result = one(station.drop_items(tag))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.UNKNOWN_ITEM,
        EXCEPTION_BIN,
    )
    assert station.sorter.routed == [("39999999", EXCEPTION_BIN)]
    assert [e.state for e in station.checkin_entries("39999999")] == [EntryState.REFUSED]
    assert tag.afi == UNSECURED
    assert [k for k, _ in station.staff_alerts()] == ["bookdrop_unknown_item"]


# --- outages ----------------------------------------------------------------------------------------


def test_library_system_down_queues_secures_then_forwards_exactly_once(
    station: Station, library: Library
) -> None:
    library.lend("30000003")
    library.lend("30000002")
    assert one(station.drop_items(item_tags("30000001")[0])).final  # a first item: the link is up
    library.down()
    tags = {i: item_tags(i)[0] for i in ("30000003", "30000002")}

    results = [one(station.drop_items(tags[i])) for i in tags]

    for r, tag in zip(results, tags.values(), strict=True):
        assert (r.final, r.outcome, r.bin) == (
            FinalState.QUEUED_OFFLINE_SECURED,
            ReturnOutcome.QUEUED_OFFLINE,
            DEFAULT_BIN,
        )
        assert secured_with_read_back(station.pad, tag)
    assert Component.LIBRARY_SYSTEM in station.drop.state.outages
    assert ("30000003", DEFAULT_BIN) in station.sorter.routed
    assert (
        "30000002",
        DEFAULT_BIN,
    ) in station.sorter.routed
    for item_id in tags:
        assert library.on_loan(item_id)
        assert library.checkins(item_id) == 0
        assert [(e.mode, e.state) for e in station.checkin_entries(item_id)] == [
            (Mode.OFFLINE, EntryState.QUEUED)
        ]
    assert station.circulation.journal.pending_count() == 2
    assert any(d.startswith("library_system") for d in station.events("outage_start"))

    # Still down: forwarding keeps the work.
    report = station.circulation.forward_offline()
    assert report.forwarded == 0
    assert report.pending == 2

    library.up()
    station.clock.advance(10.0)
    report = station.circulation.forward_offline()
    assert (report.forwarded, report.refused, report.pending) == (2, 0, 0)
    again = station.circulation.forward_offline()
    assert (again.forwarded, again.pending) == (0, 0)
    for item_id in tags:
        assert not library.on_loan(item_id)
        assert library.checkins(item_id) == 1
        assert library.no_block_checkins(item_id) == [True]  # replayed with no block = Y
        assert [(e.mode, e.state) for e in station.checkin_entries(item_id)] == [
            (Mode.OFFLINE, EntryState.FORWARDED)
        ]

    # The next item goes online again and the outage is over.
    library.lend("30000004")
    r = one(station.drop_items(item_tags("30000004")[0]))
    assert r.final is FinalState.CHECKED_IN_SECURED
    assert library.checkins("30000004") == 1
    assert Component.LIBRARY_SYSTEM not in station.drop.state.outages
    assert any(d.startswith("library_system") for d in station.events("outage_end"))


def test_lost_answer_is_secured_then_reconciled_not_sent_twice(
    demo_station: Station, demo: DemoLibrary
) -> None:
    """The demo library system applies the check-in but its answer never arrives in time: the item
    is secured and counted as queued; forwarding asks the library system (17) and, seeing the item
    already in, marks the entry done without sending the 09 again."""
    demo.lend("30000003")
    assert one(demo_station.drop_items(item_tags("30000001")[0])).final  # logged in, link idle
    demo.running.faults.stall_s = 10.0
    tag = item_tags("30000003")[0]

    result = one(demo_station.drop_items(tag))
    demo.running.faults.stall_s = 0.0  # the held answers go out now, late

    assert (result.final, result.bin) == (FinalState.QUEUED_OFFLINE_SECURED, DEFAULT_BIN)
    assert secured_with_read_back(demo_station.pad, tag)
    assert demo.checkins("30000003") == 1
    assert not demo.on_loan("30000003")
    assert [(e.mode, e.state) for e in demo_station.checkin_entries("30000003")] == [
        (Mode.ONLINE, EntryState.IN_DOUBT)
    ]
    assert len(demo_station.events("in_doubt")) == 1

    report = demo_station.circulation.forward_offline()

    assert (report.forwarded, report.pending) == (1, 0)
    (entry,) = demo_station.checkin_entries("30000003")
    assert entry.state is EntryState.DONE
    assert entry.result.get("reconciled") is True
    assert demo.checkins("30000003") == 1  # exactly once


def test_sorter_down_sends_items_to_the_exception_bin_and_alerts_staff(
    station: Station, library: Library
) -> None:
    library.lend("30000003")
    library.lend("30000002")
    station.sorter.set_down("jam at the conveyor")
    tag = item_tags("30000003")[0]

    result = one(station.drop_items(tag))

    # Checked in and secured (the library system and the tag agree), but not sorted.
    assert (result.final, result.outcome, result.bin, result.sorted) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.SORTER_FAILED,
        EXCEPTION_BIN,
        False,
    )
    assert "bin 1" in result.message
    assert not library.on_loan("30000003")
    assert library.checkins("30000003") == 1
    assert secured_with_read_back(station.pad, tag)
    assert station.sorter.routed == []  # a sorter that is down takes nothing
    assert [e.state for e in station.checkin_entries("30000003")] == [EntryState.DONE]
    alerts = station.staff_alerts()
    assert [k for k, _ in alerts] == ["outage_start", "bookdrop_sorter_failed"]
    assert alerts[0][1].startswith("sorter")
    assert "30000003" in alerts[1][1]
    assert Component.SORTER in station.drop.state.outages

    # Staff clear the jam: the next item is sorted and the outage is recorded as over.
    station.sorter.clear_faults()
    nxt = one(station.drop_items(item_tags("30000002")[0]))
    assert (nxt.final, nxt.bin, nxt.sorted) == (FinalState.CHECKED_IN_SECURED, DEFAULT_BIN, True)
    assert station.sorter.routed == [("30000002", DEFAULT_BIN)]
    assert [d.split(":")[0] for d in station.events("outage_end")] == ["sorter"]
    assert Component.SORTER not in station.drop.state.outages


@pytest.mark.parametrize("silent", [False, True], ids=["write refused", "write lost"])
def test_tag_that_cannot_be_secured_goes_to_the_exception_bin(
    station: Station, library: Library, silent: bool
) -> None:
    library.lend("30000003")
    tag = item_tags("30000003")[0]
    station.pad.fail_writes(tag.uid, count=50, silent=silent)

    result = one(station.drop_items(tag))

    # Checked in at the library system, but the tag is not secured: staff must see to it.
    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.SECURITY_FAILED,
        EXCEPTION_BIN,
    )
    assert not library.on_loan("30000003")
    assert library.checkins("30000003") == 1
    assert tag.afi == UNSECURED
    assert (
        sum(1 for op, uid in station.pad.operations if op == "afi" and uid == tag.uid) == 3
    )  # write_retries = 2
    assert station.sorter.routed == [("30000003", EXCEPTION_BIN)]
    assert [e.state for e in station.checkin_entries("30000003")] == [EntryState.DONE]
    assert [k for k, _ in station.staff_alerts()] == ["bookdrop_security_failed"]


def test_tag_secured_on_the_second_attempt_is_a_normal_return(
    station: Station, library: Library
) -> None:
    library.lend("30000003")
    tag = item_tags("30000003")[0]
    station.pad.fail_writes(tag.uid, count=1, silent=True)  # reported done, nothing written

    result = one(station.drop_items(tag))

    assert (result.final, result.bin) == (FinalState.CHECKED_IN_SECURED, DEFAULT_BIN)
    assert secured_with_read_back(station.pad, tag)
    assert sum(1 for op, uid in station.pad.operations if op == "afi" and uid == tag.uid) == 2
    assert station.staff_alerts() == []


# --- bugs found in other parts while writing these tests ---------------------------------------------


def test_return_while_the_library_system_does_not_answer_a_login_is_queued_not_in_doubt(
    tmp_path: Path, demo: DemoLibrary
) -> None:
    # Straight to the demo library system (no relay): it closes the kiosk's idle connection and
    # then holds every answer longer than the kiosk waits, so the reconnect's login gets none.
    station = build_station(tmp_path, demo.running.port)
    try:
        demo.lend("30000003")
        assert (
            one(station.drop_items(item_tags("30000001")[0])).final is FinalState.CHECKED_IN_SECURED
        )
        demo.running.faults.stall_s = 3.0
        assert demo.running.faults.drop_connections() == 1  # the kiosk's idle connection

        tag = item_tags("30000003")[0]
        result = one(station.drop_items(tag))

        assert result.final is FinalState.QUEUED_OFFLINE_SECURED
        assert tag.afi == SECURED
        assert demo.checkins("30000003") == 0  # the 09 never reached the library system
        assert station.events("in_doubt") == []
        assert [(e.mode, e.state) for e in station.checkin_entries("30000003")] == [
            (Mode.OFFLINE, EntryState.QUEUED)
        ]
    finally:
        demo.running.faults.stall_s = 0.0
        station.circulation.close()


def test_routing_row_on_the_alert_flag_is_accepted(tmp_path: Path) -> None:
    cfg = parse(SITE.format(port=6001, journal=tmp_path / "j.sqlite"), "bookdrop.toml")
    assert cfg.routing[-1].alert is True
    table = RoutingTable.from_config(cfg)
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(sort_bin="H", alert=True)).bin == 3
    # Without the alert the row does not apply (CL H alone is not a number: the default bin).
    assert table.decide(ReturnOutcome.CHECKED_IN, Routing(sort_bin="H")).bin == DEFAULT_BIN


def test_item_the_sorter_takes_to_the_exception_bin_is_recorded_as_sorted(
    station: Station, library: Library
) -> None:
    station.sorter.bin_count = 3  # bins 0-2: the hold bin 3 does not exist on this machine
    library.lend("30000003")
    if isinstance(library, DemoLibrary):
        assert library.library.place_hold("30000003", HOLDER).ok
    else:
        library.checkin_extra["30000003"] = {"alert": "Y", "sort_bin": "H"}

    result = one(station.drop_items(item_tags("30000003")[0]))

    assert (result.final, result.outcome, result.bin) == (
        FinalState.EXCEPTION_BIN,
        ReturnOutcome.SORTER_FAILED,
        EXCEPTION_BIN,
    )
    assert station.sorter.routed == [("30000003", EXCEPTION_BIN)]
    assert result.sorted  # the sorter confirmed bin 0


def test_offline_return_that_traps_a_hold_when_forwarded_is_flagged_for_staff(
    demo_station: Station, demo: DemoLibrary
) -> None:
    demo.lend("30000003")
    assert demo.library.place_hold("30000003", HOLDER).ok
    assert one(demo_station.drop_items(item_tags("30000001")[0])).final  # the link is up
    demo.down()
    offline = one(demo_station.drop_items(item_tags("30000003")[0]))
    assert (offline.final, offline.bin) == (FinalState.QUEUED_OFFLINE_SECURED, DEFAULT_BIN)
    demo.up()

    report = demo_station.circulation.forward_offline()

    assert report.forwarded == 1
    # The library system now has it on the hold shelf for Ivan; the item itself is in bin 1.
    assert demo.library.item_status("30000003") == "08"
    (entry,) = demo_station.checkin_entries("30000003")
    flagged_in_entry = entry.result.get("routing", {}).get("alert") is True
    flagged_in_events = any(
        "30000003" in e.detail for e in demo_station.circulation.journal.events()
    )
    assert flagged_in_entry or flagged_in_events, "staff are never told to fetch it"


def test_set_with_a_part_twice_and_one_missing_is_incomplete(
    station: Station, library: Library
) -> None:
    library.lend("30000005")
    part1, part2, _part3 = item_tags("30000005")
    # A second tag programmed as part 1 (a replacement tag on a case whose old tag was not killed).
    twin = demo_tag("30000005", part=1, parts=3, secured=False, uid="E0040150AA55AA55")

    result = one(station.drop_items(part1, twin, part2))

    assert (result.outcome, result.bin) == (ReturnOutcome.SET_INCOMPLETE, EXCEPTION_BIN)
    assert library.on_loan("30000005")
    assert library.checkins("30000005") == 0
