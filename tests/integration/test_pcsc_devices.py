"""PC/SC end to end: real pcscd with vsmartcard's virtual reader and our own card emulator
(tests/integration/vcard.py). Run by tests/integration/run_pcsc.sh inside private namespaces."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiosk.config import PatronSection, SecuritySection
from kiosk.devices.cards import CardPresented, open_card_source
from kiosk.devices.readers import NotSupported, open_reader
from kiosk.devices.readers.sim import demo_tag
from kiosk.devices.security import TagSecurityService
from kiosk.devices.stack import StackReader

pytestmark = pytest.mark.pcsc

VCARD = Path(__file__).with_name("vcard.py")
READER = "Virtual PCD 00 00"
ITEM_UID = "E004010012345678"


@pytest.fixture(scope="module")
def pcsc():
    from kiosk.devices.readers.pcsc import PcscContext

    ctx = PcscContext()
    try:
        readers = ctx.readers()
    except Exception as exc:
        if os.environ.get("KIOSK_PCSC_ISOLATED"):
            raise
        pytest.skip(f"no pcscd: {exc}")
    if not any(READER in r for r in readers):
        if os.environ.get("KIOSK_PCSC_ISOLATED"):
            pytest.fail(f"pcscd has no {READER!r} (readers: {readers})")
        pytest.skip("pcscd has no virtual reader")
    yield ctx
    ctx.reset()


def _wait_present(ctx, want: bool, timeout_s: float = 10.0) -> None:
    from smartcard import scard

    deadline = time.monotonic() + timeout_s
    name = ctx.find_reader(READER)
    while time.monotonic() < deadline:
        if ctx.status(name).present == want:
            return
        ctx.wait_for_change(
            name, scard.SCARD_STATE_PRESENT if not want else scard.SCARD_STATE_EMPTY, 200
        )
    raise AssertionError(f"card {'never arrived' if want else 'never left'} on {READER}")


@pytest.fixture
def card(pcsc):
    procs = []

    def insert(*args: str) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, str(VCARD), *args], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout.readline().strip() == "inserted"
        _wait_present(pcsc, True)
        return proc

    def remove(proc: subprocess.Popen) -> None:
        proc.terminate()
        proc.wait(5)
        _wait_present(pcsc, False)

    insert.remove = remove
    yield insert
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(5)
    if procs:
        _wait_present(pcsc, False)


def _first_card(source) -> CardPresented:
    got: queue.Queue[CardPresented] = queue.Queue()
    source.start(got.put)
    try:
        return got.get(timeout=15)
    finally:
        source.stop()


def test_patron_card_uid_is_mapped_to_the_card_number(card, tmp_path):
    (tmp_path / "cards.csv").write_text("uid,card\n04A1B2C3D4E580,LV0001\n", encoding="utf-8")
    card("--kind", "mifare", "--uid", "04A1B2C3D4E580", "--block-size", "16", "--blocks", "8")
    source = open_card_source(
        f"pcsc:{READER}", PatronSection(card_rule=f"map:{tmp_path / 'cards.csv'}")
    )
    assert _first_card(source) == CardPresented("LV0001", f"pcsc:{READER}")


def test_patron_card_number_from_a_data_block(card):
    image = bytes(64) + b"LV0004".ljust(16, b"\x00")
    card(
        "--kind",
        "mifare",
        "--uid",
        "04AABBCCDDEEFF",
        "--block-size",
        "16",
        "--blocks",
        "8",
        "--image",
        image.hex(),
    )
    source = open_card_source(f"pcsc:{READER}", PatronSection(card_rule="block:4:ascii"))
    source.block_size = 16
    assert _first_card(source).card_number == "LV0004"


def test_iso15693_item_on_the_pcsc_reader(card):
    image = bytes(demo_tag("30000003").memory)
    proc = card("--kind", "iso15693", "--uid", ITEM_UID, "--image", image.hex())
    reader = open_reader(f"pcsc:{READER}", timeout_s=1.0, retries=1)
    try:
        assert [e.uid for e in reader.inventory()] == [ITEM_UID]  # FF CA's LSB-first UID normalised
        (tag,) = StackReader(reader, stable_rounds=1).poll_once().added
        assert (tag.uid, tag.item_id, tag.model) == (ITEM_UID, "30000003", "iso28560-3")
        reader.write_blocks(ITEM_UID, 20, b"KIOSKOK!")
        assert reader.read_blocks(ITEM_UID, 20, 2) == b"KIOSKOK!"
        with pytest.raises(NotSupported, match="not supported by this reader"):
            reader.write_afi(ITEM_UID, 0xC2)
        card.remove(proc)
        assert reader.inventory() == []
    finally:
        reader.close()


def test_afi_and_eas_through_the_transparent_exchange(card):
    card(
        "--kind",
        "iso15693",
        "--uid",
        ITEM_UID,
        "--image",
        bytes(demo_tag("30000001").memory).hex(),
        "--transparent",
        "--eas",
        "--afi",
        "0x07",
    )
    reader = open_reader(f"pcsc:{READER}", timeout_s=1.0, retries=1)
    try:
        info = reader.read_system_info(ITEM_UID)
        assert (info.uid, info.afi, info.block_size, info.block_count) == (ITEM_UID, 0x07, 4, 28)
        svc = TagSecurityService(reader, SecuritySection(method="both"), retry_delay_s=0)
        result = svc.unsecure(ITEM_UID)
        assert result.ok, result.message
        assert reader.read_system_info(ITEM_UID).afi == 0xC2
        assert reader.eas(ITEM_UID) is False
        assert svc.secure(ITEM_UID).ok
        assert reader.eas(ITEM_UID) is True
    finally:
        reader.close()


def test_each_placement_of_a_card_is_one_event(card):
    source = open_card_source(f"pcsc:{READER}", PatronSection(card_rule="uid"))
    got: queue.Queue[CardPresented] = queue.Queue()
    source.start(got.put)
    try:
        first = card(
            "--kind", "mifare", "--uid", "04112233445566", "--block-size", "16", "--blocks", "8"
        )
        assert got.get(timeout=15).card_number == "04112233445566"
        card.remove(first)
        card("--kind", "mifare", "--uid", "04AABBCCDDEEFF", "--block-size", "16", "--blocks", "8")
        assert got.get(timeout=15).card_number == "04AABBCCDDEEFF"
        assert got.empty()  # a card lying on the reader is not reported again
    finally:
        source.stop()
