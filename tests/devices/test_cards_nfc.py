"""The nfcpy card source against a real nfcpy peer: a FeliCa (Type 3) card emulated by nfcpy in
another process on a random UDP port, read through nfcpy's udp driver."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys

import pytest

from kiosk.config import PatronSection
from kiosk.devices.cards import CardPresented, open_card_source

pytest.importorskip("nfc")

CARD = r"""
import sys, nfc, nfc.clf
port, idm = sys.argv[1], sys.argv[2]

def on_startup(target):
    target.brty = "212F"
    target.sensf_res = bytearray.fromhex("01" + idm + "01E0000000FFFF00" + "12FC")
    return target

def on_connect(tag):
    return True

with nfc.ContactlessFrontend("udp:127.0.0.1:" + port) as clf:
    print("ready", flush=True)
    while True:
        clf.connect(card={"on-startup": on_startup, "on-connect": on_connect})
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def felica_card(tmp_path):
    port = free_udp_port()
    idm = "0116010203040506"
    proc = subprocess.Popen(
        [sys.executable, "-c", CARD, str(port), idm],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield port, idm
    finally:
        proc.kill()
        proc.wait(5)


def test_felica_idm_is_mapped_to_a_card_number(felica_card, tmp_path):
    port, idm = felica_card
    (tmp_path / "cards.csv").write_text(f"uid,card\n{idm},LV0003\n", encoding="utf-8")
    cfg = PatronSection(card_rule=f"map:{tmp_path / 'cards.csv'}")
    source = open_card_source(f"nfc:udp:127.0.0.1:{port}", cfg)
    got: queue.Queue[CardPresented] = queue.Queue()
    source.start(got.put)
    try:
        event = got.get(timeout=20)
    finally:
        source.stop()
    assert event == CardPresented("LV0003", f"nfc:udp:127.0.0.1:{port}")


def test_felica_idm_as_uid(felica_card):
    port, idm = felica_card
    source = open_card_source(f"nfc:udp:127.0.0.1:{port}", PatronSection(card_rule="uid"))
    got: queue.Queue[CardPresented] = queue.Queue()
    source.start(got.put)
    try:
        assert got.get(timeout=20).card_number == idm
    finally:
        source.stop()
