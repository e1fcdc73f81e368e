"""Patron identification: card rules, classify(), the keyboard-wedge collector with an injected
clock, a serial barcode scanner on a real pseudo-terminal, and the simulated card source."""

from __future__ import annotations

import os
import queue
import tty

import pytest

from kiosk.config import PatronSection
from kiosk.core.ports import ManualClock
from kiosk.devices.cards import (
    CardError,
    CardPresented,
    classify,
    mask,
    open_card_source,
    parse_card_rule,
)
from kiosk.devices.cards.base import decode_block
from kiosk.devices.cards.serial_scanner import SerialScanner, decode_line, split_lines
from kiosk.devices.cards.sim import SimCardSource, get_shared_card_source
from kiosk.devices.cards.wedge import WedgeCollector, WedgeOutput
from kiosk.devices.readers.pcsc import uid_from_pcsc

UID = bytes.fromhex("04A1B2C3D4E580")


# -- card rules ---------------------------------------------------------------------------


def test_uid_rules():
    assert parse_card_rule("uid").card_number(UID) == "04A1B2C3D4E580"
    assert parse_card_rule("uid-reversed").card_number(UID) == "80E5D4C3B2A104"
    assert parse_card_rule("uid-decimal").card_number(bytes.fromhex("0102")) == "258"


def test_block_rules():
    ascii_rule = parse_card_rule("block:4:ascii")
    assert ascii_rule.needs_block
    assert ascii_rule.block == 4
    assert ascii_rule.card_number(UID, b"LV0001\x00\x00") == "LV0001"
    assert parse_card_rule("block:1:bcd").card_number(UID, bytes.fromhex("0012345F")) == "0012345"
    assert ascii_rule.card_number(UID, b"\x00\x00\x00\x00") is None
    with pytest.raises(CardError, match="cannot read blocks"):
        ascii_rule.card_number(UID)
    with pytest.raises(CardError, match="unprintable"):
        decode_block(b"AB\x07C", "ascii")
    with pytest.raises(CardError):
        decode_block(b"\xff\xfe", "ascii")


def test_map_rule_from_csv(tmp_path):
    path = tmp_path / "cards.csv"
    path.write_text(
        "uid,card\n04:A1:B2:C3:D4:E5:80,LV0001\n# staff\n\n0411223344556 6,LV0002\n",
        encoding="utf-8",
    )
    rule = parse_card_rule("map:cards.csv", base_dir=tmp_path)
    assert rule.card_number(UID) == "LV0001"
    assert rule.card_number(bytes.fromhex("04112233445566")) == "LV0002"
    assert (
        rule.card_number(bytes.fromhex("80E5D4C3B2A104")) == "LV0001"
    )  # enrolled in the other byte order
    assert rule.card_number(bytes.fromhex("DEADBEEF")) is None


def test_map_rule_errors(tmp_path):
    with pytest.raises(CardError, match="cannot be read"):
        parse_card_rule(f"map:{tmp_path}/missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("04A1B2,LV1\nzz-not-hex,LV2\n", encoding="utf-8")
    with pytest.raises(CardError, match="bad.csv:2"):
        parse_card_rule(f"map:{bad}")
    for rule in ("block:x:ascii", "block:1:utf16", "guess"):
        with pytest.raises(CardError, match="card_rule"):
            parse_card_rule(rule)


def test_demo_rule_maps_demo_card_uids():
    assert parse_card_rule("demo").card_number(UID) == "LV0001"


def test_pcsc_uid_order_by_atr():
    iso15693_atr = bytes.fromhex("3B8F8001804F0CA0000003060B00140000000077")
    mifare_atr = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
    assert uid_from_pcsc(bytes.fromhex("78563412000104E0"), iso15693_atr) == bytes.fromhex(
        "E004010012345678"
    )
    assert uid_from_pcsc(UID, mifare_atr) == UID


def test_classify_and_mask():
    demo = PatronSection(card_pattern="^LV[0-9]{4,12}$")
    assert classify("LV0001", demo) == "patron"
    assert classify("30000001", demo) == "item"
    assert classify("hello world", demo) == "unknown"
    assert classify("", demo) == "unknown"
    assert mask("LV0001") == "**0001"
    assert mask("12") == "**"


# -- keyboard wedge ---------------------------------------------------------------------------


def typed(wedge: WedgeCollector, clock: ManualClock, text: str, gap: float) -> list[WedgeOutput]:
    out = []
    for ch in text:
        clock.advance(gap)
        out += wedge.feed(ch)
    clock.advance(gap)
    out += wedge.feed("\r")
    return out


def test_fast_burst_with_enter_is_a_barcode():
    clock = ManualClock()
    got = []
    wedge = WedgeCollector(clock, on_barcode=got.append)
    cards = []
    wedge.start(cards.append)
    assert typed(wedge, clock, "LV0001", 0.01) == [WedgeOutput("barcode", "LV0001")]
    assert got == ["LV0001"]
    assert cards == [CardPresented("LV0001", "wedge:")]


def test_slow_typing_passes_through():
    clock = ManualClock()
    wedge = WedgeCollector(clock)
    out = typed(wedge, clock, "1234", 0.3)
    assert "".join(o.text for o in out if o.kind == "typing") == "1234"
    assert out[-1] == WedgeOutput("enter")
    assert not any(o.kind == "barcode" for o in out)


def test_held_keys_are_released_by_poll_when_a_human_types():
    clock = ManualClock()
    wedge = WedgeCollector(clock)
    assert wedge.feed("7") == []  # could still be the start of a scan
    assert wedge.poll() == []
    clock.advance(0.2)
    assert wedge.poll() == [WedgeOutput("typing", "7")]


def test_short_fast_burst_is_not_a_barcode():
    clock = ManualClock()
    wedge = WedgeCollector(clock, min_length=4)
    out = typed(wedge, clock, "12", 0.01)
    assert out == [WedgeOutput("typing", "12"), WedgeOutput("enter")]


def test_scan_after_typing_and_slow_enter():
    clock = ManualClock()
    wedge = WedgeCollector(clock)
    out = typed(wedge, clock, "30000001", 0.005)
    assert out == [WedgeOutput("barcode", "30000001")]
    # a fast burst whose Enter comes late is typing: a person pressed Enter
    for ch in "ABCDE":
        clock.advance(0.005)
        wedge.feed(ch)
    clock.advance(0.5)
    assert wedge.feed("enter") == [WedgeOutput("typing", "ABCDE"), WedgeOutput("enter")]


def test_open_wedge_uses_config():
    src = open_card_source(
        "wedge:", PatronSection(wedge_max_interkey_s=0.1, wedge_min_length=6), clock=ManualClock()
    )
    assert isinstance(src, WedgeCollector)
    assert (src.max_interkey_s, src.min_length) == (0.1, 6)


# -- serial scanner ---------------------------------------------------------------------------


def test_line_splitting_and_decoding():
    buf = bytearray(b"LV0001\r\n30000001\nABC")
    assert split_lines(buf) == [b"LV0001", b"30000001"]
    assert buf == b"ABC"
    assert decode_line(b"\xff\xfe") is None
    assert decode_line(b"AB\x1bC") is None
    assert decode_line(b"  LV0002 ") == "LV0002"


@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    tty.setraw(master)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


def test_serial_scanner_on_a_pty(pty_pair):
    master, path = pty_pair
    got: queue.Queue[CardPresented] = queue.Queue()
    scanner = open_card_source(f"serial:{path}?baud=9600", PatronSection())
    assert isinstance(scanner, SerialScanner)
    scanner.start(got.put)
    try:
        os.write(master, b"LV00")
        os.write(master, b"04\r\n\xff\xfe\r\n")  # garbage line is dropped, not posted
        os.write(master, b"30000002\r")
        assert got.get(timeout=5) == CardPresented("LV0004", f"serial:{path}")
        assert got.get(timeout=5).card_number == "30000002"
        assert got.empty()
    finally:
        scanner.stop()


def test_serial_scanner_missing_port():
    with pytest.raises(CardError, match="cannot open"):
        SerialScanner("/nonexistent/ttyACM9").start(lambda c: None)
    with pytest.raises(CardError, match="baud"):
        open_card_source("serial:/dev/ttyACM0?speed=fast", PatronSection())


# -- simulated source and URLs ----------------------------------------------------------------


def test_sim_source_is_shared_by_name():
    src = open_card_source("sim:", PatronSection())
    assert src is get_shared_card_source()
    got = []
    src.start(got.append)
    try:
        src.present(" LV0002 ")
    finally:
        src.stop()
    assert got == [CardPresented("LV0002", "sim:")]
    other = open_card_source("sim:staff", PatronSection())
    assert isinstance(other, SimCardSource)
    assert other is not src
    assert other.source == "sim:staff"
    with pytest.raises(CardError):
        other.present("  ")


def test_unknown_card_source_urls():
    with pytest.raises(CardError, match="unknown kind"):
        open_card_source("magstripe:", PatronSection())
    with pytest.raises(CardError, match="no kind"):
        open_card_source("LV0001", PatronSection())
    with pytest.raises(CardError, match="not available with nfc"):
        open_card_source("nfc:usb", PatronSection(card_rule="block:4:ascii"))


def test_check_source_for_doctor(tmp_path, monkeypatch):
    from kiosk.devices.cards import check_source
    from kiosk.devices.readers.pcsc import PcscContext, PcscUnavailable

    assert check_source("sim:").status().ok
    assert check_source("wedge:").status().ok
    missing = check_source("serial:/nonexistent/ttyACM7?baud=9600").status()
    assert not missing.ok
    assert "cannot open /nonexistent/ttyACM7" in missing.message
    master, slave = os.openpty()
    try:
        assert check_source(f"serial:{os.ttyname(slave)}").status().ok
    finally:
        os.close(master)
        os.close(slave)

    def no_service(self):
        raise PcscUnavailable("PC/SC service not available; is pcscd running?")

    monkeypatch.setattr(PcscContext, "readers", no_service)
    st = check_source("pcsc:ACR1281").status()
    assert not st.ok
    assert "pcscd" in st.message
    monkeypatch.setattr(PcscContext, "readers", lambda self: ["ACS ACR1281 1S Dual Reader 00 00"])
    assert (
        check_source("pcsc:ACR1281").status().message == "found 'ACS ACR1281 1S Dual Reader 00 00'"
    )
    assert not check_source("pcsc:OMNIKEY").status().ok
    assert check_source("nfc:udp:127.0.0.1:5000").status().ok
    with pytest.raises(CardError):
        check_source("magstripe:")
    with pytest.raises(CardError, match="card_rule"):
        check_source("pcsc:ACR", PatronSection(card_rule="nonsense"))


def test_map_file_that_is_not_text(tmp_path):
    bad = tmp_path / "cards.csv"
    bad.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CardError, match="not a UTF-8 CSV"):
        parse_card_rule(f"map:{bad}")
