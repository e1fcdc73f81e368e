"""FEIG and 3M transports against the frame-level emulators on real pseudo-terminals (and TCP
sockets): normal operation, timeouts, partial frames, bad CRC, error status on write, and an
unplugged reader (pty master closed) coming back under its stable path."""

from __future__ import annotations

import time

import pytest

from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.readers import (
    NotSupported,
    ReaderFrameError,
    TagNotFound,
    TagWriteError,
    open_reader,
)
from kiosk.devices.readers import feig as feigmod
from kiosk.devices.readers import threem as threemmod
from kiosk.devices.readers.emulators import FeigEmulator, ThreeMEmulator
from kiosk.devices.readers.sim import SimulatedPad, VirtualTag, demo_tag

ITEMS = ("30000001", "30000002", "30000003")


@pytest.fixture
def pad():
    p = SimulatedPad()
    for item in ITEMS:
        p.place(demo_tag(item))
    return p


def _open(kind, port, **kw):
    kw.setdefault("timeout_s", 0.3)
    kw.setdefault("retries", 1)
    reader = open_reader(f"{kind}:{port.path if hasattr(port, 'path') else port.url}", **kw)
    reader.link.backoff_s = 0.001
    reader.link.reopen_attempts = 2
    return reader


@pytest.fixture(params=["feig", "3m"])
def rig(request, pad, tmp_path):
    emu = FeigEmulator(pad) if request.param == "feig" else ThreeMEmulator(pad)
    port = emu.serve_pty(link_dir=tmp_path)
    reader = _open(request.param, port)
    yield request.param, emu, port, reader
    reader.close()
    port.close()


def test_inventory_read_write_afi_eas_over_a_pty(rig, pad):
    kind, emu, port, reader = rig
    uids = {e.uid for e in reader.inventory()}
    assert uids == {t.uid for t in pad.tags}
    uid = pad.tags[0].uid
    tag = pad.tag(uid)
    assert reader.read_blocks(uid, 0, 9) == bytes(tag.memory[:36])
    info = reader.read_system_info(uid)
    assert (info.uid, info.afi, info.block_size, info.block_count) == (
        uid,
        0x07,
        4,
        tag.block_count,
    )
    reader.write_blocks(uid, 10, b"WXYZ1234")
    assert bytes(tag.memory[40:48]) == b"WXYZ1234"
    reader.write_afi(uid, 0xC2)
    assert tag.afi == 0xC2
    assert reader.read_system_info(uid).afi == 0xC2
    reader.set_eas(uid, False)
    assert tag.eas is False
    assert reader.eas(uid) is False
    reader.set_eas(uid, True)
    assert tag.eas is True
    assert reader.eas(uid) is True
    # other tags were never touched: every write was addressed to one UID
    assert all(t.afi == 0x07 for t in pad.tags if t.uid != uid)
    assert emu.rejected == []


def test_feig_blocks_travel_msb_first_on_the_wire(pad, tmp_path):
    emu = FeigEmulator(pad)
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = _open("feig", port)
        uid = pad.tags[0].uid
        reader.write_blocks(uid, 12, b"\x01\x02\x03\x04")
        req = feigmod.parse_request(emu.requests[-1])
        assert req.data[-4:] == b"\x04\x03\x02\x01"
        assert bytes(pad.tag(uid).memory[48:52]) == b"\x01\x02\x03\x04"
        reader.close()


def test_feig_inventory_fetches_remaining_data_sets_with_more(tmp_path):
    pad = SimulatedPad()
    for i in range(5):
        pad.place(VirtualTag(f"E00401000000000{i}"))
    emu = FeigEmulator(pad, max_data_sets=2)
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = _open("feig", port)
        assert len(reader.inventory()) == 5
        modes = [feigmod.parse_request(f).data[1] for f in emu.requests]
        assert modes == [0x00, 0x80, 0x80]
        reader.close()


def test_threem_duplicate_uids_are_reported_once(pad, tmp_path):
    emu = ThreeMEmulator(pad, duplicate_uids=True)
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = _open("3m", port)
        assert sorted(e.uid for e in reader.inventory()) == sorted(t.uid for t in pad.tags)
        reader.close()


def test_threem_falls_back_to_single_block_writes(pad, tmp_path):
    emu = ThreeMEmulator(pad)
    emu.multi_write = False
    with emu.serve_pty(link_dir=tmp_path) as port:
        reader = _open("3m", port)
        uid = pad.tags[0].uid
        reader.write_blocks(uid, 20, b"ABCDEFGH")
        assert bytes(pad.tag(uid).memory[80:88]) == b"ABCDEFGH"
        cmds = [threemmod.parse_frame(f, response=False).cmd for f in emu.requests]
        assert cmds == [0x04, 0x05, 0x05]
        reader.close()


def test_silence_once_is_retried_and_persistent_silence_times_out(rig):
    kind, emu, port, reader = rig
    emu.inject("silent")
    assert len(reader.inventory()) == 3
    emu.inject("silent", 2)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match="no complete answer"):
        reader.inventory()
    # two attempts of 0.3 s each: bounded, not hanging (generous for a loaded machine)
    assert time.monotonic() - t0 < 10.0


def test_partial_frame_then_silence_is_a_timeout_then_recovers(rig):
    kind, emu, port, reader = rig
    emu.inject("partial")
    n = len(emu.requests)
    assert len(reader.inventory()) == 3
    # the partial answer was dropped, the line resynchronised, and the request sent again
    assert len(emu.requests) == n + 3
    emu.inject("partial", 2)
    with pytest.raises(DeviceTimeout, match="got .* of .* bytes"):
        reader.inventory()
    assert len(reader.inventory()) == 3


def test_bad_crc_is_retried_then_reported(rig):
    kind, emu, port, reader = rig
    emu.inject("bad_crc")
    assert len(reader.inventory()) == 3
    emu.inject("bad_crc", 2)
    with pytest.raises(ReaderFrameError, match="CRC"):
        reader.inventory()


def test_garbage_answer_is_not_taken_for_a_frame(rig):
    kind, emu, port, reader = rig
    emu.inject("garbage", 2)
    with pytest.raises(DeviceError):
        reader.inventory()
    assert len(reader.inventory()) == 3


def test_error_status_on_write_raises_tag_write_error(rig, pad):
    kind, emu, port, reader = rig
    uid = pad.tags[0].uid
    if kind == "feig":
        emu.override_status(
            feigmod.CMD_ISO_HOST << 8 | feigmod.SUB_WRITE_MULTIPLE, feigmod.STATUS_ISO_ERROR
        )
        emu.override_status(feigmod.CMD_ISO_HOST << 8 | feigmod.SUB_WRITE_AFI, 0x03)
    else:
        emu.override_status(threemmod.CMD_WRITE_MULTIPLE, 0x16)
        emu.override_status(threemmod.CMD_WRITE_AFI, 0x16)
    before = bytes(pad.tag(uid).memory)
    with pytest.raises(TagWriteError, match="re-place the item"):
        reader.write_blocks(uid, 0, b"XXXX")
    assert bytes(pad.tag(uid).memory) == before
    with pytest.raises(TagWriteError):
        reader.write_afi(uid, 0xC2)
    assert pad.tag(uid).afi == 0x07


def test_locked_afi_and_missing_eas_are_reported(rig, pad):
    kind, emu, port, reader = rig
    ti = pad.place(VirtualTag("E007000012345678", eas_supported=False, afi_locked=True, afi=0x07))
    with pytest.raises(TagWriteError):
        reader.write_afi(ti.uid, 0xC2)
    with pytest.raises(NotSupported):
        reader.set_eas(ti.uid, False)


def test_tag_not_on_pad(rig):
    kind, emu, port, reader = rig
    with pytest.raises(TagNotFound, match="still on the pad"):
        reader.read_blocks("E00401FFFFFFFFFF", 0, 1)
    with pytest.raises(TagNotFound):
        reader.eas("E00401FFFFFFFFFF")


def test_unplug_fails_cleanly_and_replug_reopens_the_stable_path(rig):
    kind, emu, port, reader = rig
    assert len(reader.inventory()) == 3
    first_slave = port.slave_name
    port.unplug()
    with pytest.raises(DeviceError, match="cannot open|unplugged"):
        reader.inventory()
    port.replug()
    assert len(reader.inventory()) == 3
    assert reader.link.opens >= 2
    assert port.path.endswith("reader")
    assert port.slave_name  # same link name, new pty underneath
    del first_slave


def test_reader_reopens_with_backoff_while_the_device_comes_back(rig):
    kind, emu, port, reader = rig
    reader.inventory()
    port.unplug()
    calls = []

    def backoff(seconds):
        calls.append(seconds)
        port.replug()  # the udev by-id link reappears during the back-off

    reader.link._sleep = backoff
    reader.link.reopen_attempts = 3
    assert len(reader.inventory()) == 3
    assert calls


def test_socket_transport(pad):
    for emu, kind in ((FeigEmulator(pad), "feig"), (ThreeMEmulator(pad), "3m")):
        with emu.serve_socket() as port:
            reader = _open(kind, port)
            assert len(reader.inventory()) == 3
            port.drop()  # a LAN reader rebooting
            assert len(reader.inventory()) == 3
            reader.close()


def test_open_reader_urls(pad):
    with pytest.raises(DeviceError, match="unknown kind"):
        open_reader("rfid:/dev/ttyUSB0")
    with pytest.raises(DeviceError, match="no kind"):
        open_reader("/dev/ttyUSB0")
    with pytest.raises(DeviceError, match="not a number"):
        open_reader("feig:loop://?baud=fast")
    with pytest.raises(DeviceError, match="cannot open"):
        r = open_reader("3m:/nonexistent/ttyX", timeout_s=0.1)
    r = open_reader("feig:loop://?baud=115200&adr=0&blocks=lsb")
    assert (r.link.baudrate, r.com_adr, r.block_order, r.link.parity) == (115200, 0, "lsb", "E")
    r.close()
    r = open_reader("3m:loop://")
    assert (r.link.baudrate, r.link.parity) == (19200, "N")
    r.close()


@pytest.mark.parametrize("kind,where", [("feig", "--link"), ("3m", "--tcp")])
def test_emulator_command_for_technicians(tmp_path, kind, where):
    import subprocess
    import sys

    args = [sys.executable, "-m", "kiosk.devices.readers.emulators", kind, "30000001", "30000005:2"]
    args += ["--link", str(tmp_path / "ttyRFID")] if where == "--link" else ["--tcp"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split("url = ")[1].strip().strip('"')
        assert "2 tag(s)" in line
        assert url.startswith(f"{kind}:")
        reader = open_reader(url, timeout_s=1.0)
        try:
            assert len(reader.inventory()) == 2
        finally:
            reader.close()
    finally:
        proc.terminate()
        proc.wait(5)


def test_a_late_answer_is_never_taken_for_the_next_request(rig, pad):
    # Neither protocol carries a request id: the answer to a timed-out read of tag A, arriving
    # while the host waits for its read of tag B, must not pass for B's memory.
    kind, emu, port, reader = rig
    reader.retries = 0
    a, b = pad.tags[0].uid, pad.tags[1].uid
    assert pad.tag(a).memory[:36] != pad.tag(b).memory[:36]
    emu.late_s = 0.5  # the host waits 0.3 s for A's answer...
    emu.inject("late")
    with pytest.raises(DeviceTimeout):
        reader.read_blocks(a, 0, 9)
    reader.timeout_s = 5.0  # ...and long enough for B's that A's late answer arrives meanwhile
    assert reader.read_blocks(b, 0, 9) == bytes(pad.tag(b).memory[:36])
    assert reader.read_blocks(a, 0, 9) == bytes(pad.tag(a).memory[:36])


def test_reopen_of_the_same_port_works_again_and_again(rig, pad):
    """The stack reader re-opens its reader after repeated inventory failures. A pseudo-terminal
    (and an adapter without parity) ignores the FEIG's even parity: the first open changes other
    settings and passes, but a re-open asks for nothing but parity again, and Linux refuses a
    terminal setting none of whose changes it can make with EINVAL."""
    kind, emu, port, reader = rig
    want = {t.uid for t in pad.tags}
    for _ in range(3):
        reader.reopen()
        assert {e.uid for e in reader.inventory()} == want
    assert reader.link.opens == 4


def test_the_stack_reads_each_tag_head_first_over_a_pty(rig, pad):
    """The head-first read (docs/protocols/rfid.md §7.7) through a real reader protocol: a tag
    whose first nine blocks hold it costs one read on the air; a tag with fewer blocks refuses
    them with the reader's own error and is read after its system information; an ISO 28560-2
    tag's head is kept and the rest read after it."""
    from kiosk.devices import tags
    from kiosk.devices.stack import StackReader

    kind, emu, port, reader = rig
    short = tags.encode(
        tags.TagData(model="iso28560-3", item_id="30000008", owner_institution="LV-DEMO")
    )
    placed = {
        "30000001": pad.tags[0].uid,
        "30000008": pad.place(VirtualTag("E004010000000808", memory=bytearray(short[:32]))).uid,
        "30000009": pad.place(demo_tag("30000009", model="iso28560-2")).uid,
    }
    pad.operations.clear()
    added = StackReader(reader, stable_rounds=1).poll_once().added
    by_item = {t.item_id: t for t in added if t.readable}
    assert set(placed) <= set(by_item), [(t.uid, t.error) for t in added]
    for item_id, uid in placed.items():
        assert by_item[item_id].uid == uid

    def ops(uid):
        return [op for op, u in pad.operations if u == uid]

    assert ops(placed["30000001"]) == ["read"]
    assert ops(placed["30000008"]) == ["read", "system_info", "read"]
    assert ops(placed["30000009"]) == ["read", "system_info", "read"]
    assert emu.rejected == []
