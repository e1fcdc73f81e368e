"""Every maintenance diagnostics action against simulated devices and the demo library system."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from kiosk import config
from kiosk.core.domain import Mode, Operation
from kiosk.diagnostics import Diagnostics
from kiosk.doctor import Status
from kiosk.sync.journal import EntryState
from tests.tech.conftest import write_site

_pads = itertools.count(1)


@pytest.fixture
def parts(tmp_path, demo_acs):
    from kiosk.devices.printer import open_printer
    from kiosk.devices.readers import open_reader
    from kiosk.devices.readers.sim import get_shared_pad
    from kiosk.devices.sorter import open_sorter
    from kiosk.sync.circulation import build_circulation

    pad_name = f"diag-{next(_pads)}"
    cfg = config.load(write_site(tmp_path, port=demo_acs.port, reader=f"sim:{pad_name}"))
    reader = open_reader(cfg.reader.url)
    circulation = build_circulation(cfg)
    printer = open_printer(cfg.printer.url, base=cfg.resolve_path("."))
    sorter = open_sorter("sim:")
    diag = Diagnostics(cfg, reader=reader, printer=printer, sorter=sorter, circulation=circulation)
    pad = get_shared_pad(pad_name)
    yield diag, pad, cfg
    pad.clear()
    circulation.close()
    reader.close()


def test_read_tags_shows_decoded_content_and_security(parts):
    from kiosk.devices.readers.sim import VirtualTag, demo_tag

    diag, pad, _ = parts
    pad.place(demo_tag("30000003", secured=True))
    pad.place(demo_tag("30000005", part=2, secured=False))
    pad.place(VirtualTag("E0040100DEADBEEF", memory=bytearray(b"\xff" * 32), afi=0x07))
    views = {v.item_id or v.uid: v for v in diag.read_tags()}
    hobbit = views["30000003"]
    assert (hobbit.model, hobbit.secured, hobbit.afi, hobbit.owner) == (
        "iso28560-3",
        True,
        0x07,
        "LV-DEMO",
    )
    assert "secured" in hobbit.summary()
    assert "AFI 0x07" in hobbit.summary()
    cd = views["30000005"]
    assert (cd.part_number, cd.parts_in_set, cd.secured, cd.afi) == (2, 3, False, 0xC2)
    assert "NOT secured" in cd.summary()
    assert "part 2/3" in cd.summary()
    garbage = views["E0040100DEADBEEF"]
    assert garbage.error.startswith("tag data not understood")
    assert garbage.item_id == ""


def test_write_test_afi_reads_back(parts):
    from kiosk.devices.readers.sim import demo_tag

    diag, pad, _ = parts
    tag = pad.place(demo_tag("30000001", secured=True))
    result = diag.write_test_afi(tag.uid, 0xC2)
    assert result.ok
    assert result.data == 0xC2
    assert pad.tag(tag.uid).afi == 0xC2
    pad.fail_writes(tag.uid, count=5, silent=True)  # the write is lost in the air
    lost = diag.write_test_afi(tag.uid, 0x07)
    assert not lost.ok
    assert "did not take the write" in lost.lines[0]
    assert pad.tag(tag.uid).afi == 0xC2


def test_write_to_a_missing_tag_says_so(parts):
    diag, _, _ = parts
    result = diag.write_test_afi("E004010000000001", 0x07)
    assert not result.ok
    assert "E004010000000001" in result.lines[0]


def test_print_test_receipt_to_the_file_printer(parts, tmp_path):
    diag, _, _ = parts
    result = diag.print_test_receipt(datetime(2026, 11, 25, 10, 30))
    assert result.ok
    transcripts = list((tmp_path / "var" / "receipts").glob("*test.txt"))
    assert len(transcripts) == 1
    text = transcripts[0].read_text()
    assert "TEST-1" in text
    assert "25.11.2026 10:30" in text
    assert "ā" in text


def test_print_test_receipt_out_of_paper(parts, tmp_path):
    diag, _, _ = parts
    (tmp_path / "var" / "receipts").mkdir(parents=True, exist_ok=True)
    (tmp_path / "var" / "receipts" / "PAPER_OUT").write_text("")
    result = diag.print_test_receipt()
    assert not result.ok
    assert "paper" in result.lines[0]
    status = {c.name: c for c in diag.device_status()}
    assert status["printer"].status is Status.FAIL
    assert "OUT OF PAPER" in status["printer"].detail


def test_sip2_check_and_masked_exchanges(parts, demo_acs):
    diag, _, cfg = parts
    result = diag.sip2_check(timeout_s=2)
    assert result.ok
    assert result.data.online
    text = "\n".join(result.lines)
    assert "9300CNkiosk|CO|" in text  # the login went out; its password is not shown
    assert "|COdemo" not in text
    assert "demo|" not in text.split("exchange:")[1].replace("DEMO", "")
    # the live session's exchanges, after a patron status with a PIN
    diag.circulation.identify_patron("LV0001", pin="1234")
    live = "\n".join(diag.last_exchanges())
    assert "63" in live
    assert "AD1234" not in live
    assert "LV0001" not in live
    assert "|AD|" in live


def test_sip2_check_unreachable(tmp_path, closed_port):
    cfg = config.load(write_site(tmp_path, port=closed_port))
    result = Diagnostics(cfg).sip2_check(timeout_s=1)
    assert not result.ok
    assert f"{closed_port}" in result.title


def test_device_status_lists_every_part(parts):
    diag, _, _ = parts
    diag.circulation.forward_offline()  # connects
    status = {c.name: c for c in diag.device_status()}
    assert set(status) >= {"reader", "card reader", "printer", "sorter", "library", "offline queue"}
    assert status["reader"].status is Status.OK
    assert status["printer"].detail.endswith("ready, paper ok")
    assert status["library"].status is Status.OK
    assert status["offline queue"].detail.startswith("0 waiting")


def test_device_status_reader_gone(parts):
    diag, pad, _ = parts
    pad.disconnect()
    try:
        status = {c.name: c for c in diag.device_status()}
    finally:
        pad.reconnect()
    assert status["reader"].status is Status.FAIL


def test_offline_queue_forward_and_refusals(parts, demo_acs):
    diag, _, _ = parts
    journal = diag.journal
    journal.begin(
        Operation.CHECKIN, mode=Mode.OFFLINE, state=EntryState.QUEUED, item_id="30000009"
    )  # on loan: accepted
    # A no-block replay overrides the patron's limits and blocks, never what the item is: an item
    # not for loan (reference) and an unknown one are refused and listed for staff.
    journal.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="30000007",
    )
    journal.begin(
        Operation.CHECKOUT,
        mode=Mode.OFFLINE,
        state=EntryState.QUEUED,
        patron_id="LV0001",
        item_id="99999998",
    )
    assert diag.pending_count() == 3
    result = diag.forward_now()
    assert (result.data.forwarded, result.data.refused) == (1, 2)
    assert diag.pending_count() == 0
    refusals = diag.refusals()
    assert sorted(r.item_id for r in refusals) == ["30000007", "99999998"]
    assert all(r.patron == "**0001" and r.operation == "checkout" for r in refusals)
    assert demo_acs.library.loan("30000007") is None
    assert demo_acs.library.applied("30000007", "checkout") == 0
    # an item sent to the desk because its tag may not match its loan joins the staff list
    journal.record_event("security_to_desk", "item 30000004: tag state unknown after the undo")
    journal.record_event("outage_start", "reader: unplugged")
    desk = [r for r in diag.refusals() if r.operation == "desk"]
    assert [(r.item_id, r.message) for r in desk] == [
        ("30000004", "tag state unknown after the undo")
    ]


def test_statistics_from_the_journal(parts):
    diag, _, _ = parts
    now = datetime.now()
    diag.journal.begin(
        Operation.CHECKOUT,
        mode=Mode.ONLINE,
        state=EntryState.DONE,
        patron_id="LV0001",
        item_id="1",
        created=now,
    )
    diag.journal.begin(
        Operation.CHECKIN, mode=Mode.ONLINE, state=EntryState.DONE, item_id="1", created=now
    )
    s = diag.statistics(now)
    assert (s.totals.checkouts, s.totals.returns) == (1, 1)
