"""PcscReader and PcscContext logic against a scripted stand-in for pyscard's `scard` module:
UID byte order, block reads and writes, the "not supported" path, and re-establishing the
context after pcscd restarts (docs/protocols/rfid.md P11). The real pcscd runs in tests/integration."""

from __future__ import annotations

import types

import pytest

from kiosk.devices.readers import NotSupported, TagNotFound
from kiosk.devices.readers import pcsc as pcscmod
from kiosk.devices.readers.pcsc import PcscContext, PcscReader, PcscUnavailable

UID = "E004010012345678"
ISO15693_ATR = bytes.fromhex("3B8F8001804F0CA0000003060B0014000000" + "77")
MIFARE_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000" + "6A")


def fake_scard(memory: bytearray, *, fail_list: list[int]):
    state = {"contexts": 0, "present": True, "atr": ISO15693_ATR}

    def establish(scope):
        state["contexts"] += 1
        return 0, f"ctx{state['contexts']}"

    def list_readers(ctx, groups):
        if fail_list:
            return fail_list.pop(0), []
        return 0, ["Virtual PCD 00 00", "ACS ACR1552 00 00"]

    def status_change(ctx, timeout, states):
        name = states[0][0]
        return 0, [(name, 32 if state["present"] else 16, list(state["atr"]))]

    def transmit(handle, protocol, apdu):
        apdu = bytes(apdu)
        if apdu[:2] == b"\xff\xca":
            return 0, list(bytes.fromhex(UID)[::-1] + b"\x90\x00")
        if apdu[:2] == b"\xff\xb0":
            b = apdu[3]
            return 0, list(memory[b * 4 : b * 4 + 4] + b"\x90\x00")
        if apdu[:2] == b"\xff\xd6":
            b = apdu[3]
            memory[b * 4 : b * 4 + 4] = apdu[5:9]
            return 0, [0x90, 0x00]
        return 0, [0x6A, 0x81]

    mod = types.SimpleNamespace(
        SCARD_S_SUCCESS=0,
        SCARD_SCOPE_USER=0,
        SCARD_STATE_UNAWARE=0,
        SCARD_STATE_PRESENT=32,
        SCARD_STATE_EMPTY=16,
        SCARD_STATE_UNKNOWN=4,
        SCARD_STATE_UNAVAILABLE=8,
        SCARD_STATE_MUTE=512,
        SCARD_STATE_CHANGED=2,
        SCARD_SHARE_SHARED=2,
        SCARD_PROTOCOL_T0=1,
        SCARD_PROTOCOL_T1=2,
        SCARD_LEAVE_CARD=0,
        SCardEstablishContext=establish,
        SCardReleaseContext=lambda ctx: 0,
        SCardListReaders=list_readers,
        SCardGetStatusChange=status_change,
        SCardConnect=lambda ctx, reader, share, proto: (0, "card", 2),
        SCardTransmit=transmit,
        SCardDisconnect=lambda handle, disp: 0,
        SCardGetErrorMessage=lambda h: "scripted error",
    )
    return mod, state


@pytest.fixture
def scripted(monkeypatch):
    memory = bytearray(b"".join(bytes([i] * 4) for i in range(28)))
    failures: list[int] = []
    mod, state = fake_scard(memory, fail_list=failures)
    monkeypatch.setattr(pcscmod, "_scard", lambda: mod)
    return memory, failures, state


def test_uid_is_normalised_and_blocks_read_and_written(scripted):
    memory, _, _ = scripted
    reader = PcscReader("ACR1552", retries=1)
    assert [e.uid for e in reader.inventory()] == [UID]
    assert reader.read_blocks(UID, 2, 2) == bytes([2] * 4 + [3] * 4)
    reader.write_blocks(UID, 5, b"ABCDEFGH")
    assert bytes(memory[20:28]) == b"ABCDEFGH"
    with pytest.raises(TagNotFound):
        reader.read_blocks("E0040100FFFFFFFF", 0, 1)


def test_a_patron_card_on_the_item_reader_keeps_its_uid_order(scripted):
    _, _, state = scripted
    state["atr"] = MIFARE_ATR
    # FF CA answers the same bytes; only ISO 15693 cards deliver them LSB first
    assert [e.uid for e in PcscReader("ACR1552").inventory()] == [
        bytes.fromhex(UID)[::-1].hex().upper()
    ]


def test_afi_without_transparent_exchange_is_not_supported(scripted):
    reader = PcscReader("ACR1552", retries=0)
    with pytest.raises(NotSupported, match="not supported by this reader"):
        reader.write_afi(UID, 0xC2)
    with pytest.raises(NotSupported):
        reader.set_eas(UID, False)


def test_empty_reader_and_unknown_reader(scripted):
    _, _, state = scripted
    state["present"] = False
    assert PcscReader("Virtual").inventory() == []
    with pytest.raises(Exception, match="no PC/SC reader matches 'OMNIKEY'"):
        PcscReader("OMNIKEY", retries=0).inventory()


def test_context_is_reestablished_after_pcscd_restart(scripted):
    _, failures, state = scripted
    reader = PcscReader("Virtual", retries=2)
    assert len(reader.inventory()) == 1
    assert state["contexts"] == 1
    reader.reopen()  # e.g. the stack reader after repeated failures
    failures.append(0x80100013)  # RPC transport error: pcscd went away
    assert len(reader.inventory()) == 1
    assert state["contexts"] == 3  # one after reopen, a fresh one after the transport error


def test_no_service_is_reported_plainly(scripted):
    _, failures, _ = scripted
    failures.extend([0x8010001D] * 5)
    ctx = PcscContext()
    with pytest.raises(PcscUnavailable, match="pcscd restarted or stopped"):
        ctx.readers()
    assert ctx._ctx is None
