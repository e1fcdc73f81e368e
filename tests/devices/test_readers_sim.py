"""The simulated pad as a reader transport: shared pads by name, demo tags, and every injectable fault."""

from __future__ import annotations

import pytest

from kiosk.devices import tags
from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.readers import NotSupported, TagNotFound, TagWriteError, open_reader
from kiosk.devices.readers.sim import (
    SimReader,
    SimulatedPad,
    VirtualTag,
    demo_tag,
    demo_uid,
    get_shared_pad,
)


def test_sim_urls_resolve_to_the_shared_pad():
    pad = get_shared_pad()
    reader = open_reader("sim:")
    assert isinstance(reader, SimReader)
    assert reader.pad is pad
    assert open_reader("sim:default").pad is pad
    other = open_reader("sim:test-lobby")
    assert other.pad is get_shared_pad("test-lobby")
    assert other.pad is not pad
    tag = other.pad.place(demo_tag("30000001"))
    try:
        assert [e.uid for e in open_reader("sim:test-lobby").inventory()] == [tag.uid]
    finally:
        other.pad.clear()


def test_demo_tag_encodes_the_catalogue_item():
    tag = demo_tag("30000005", part=2)
    data = tags.decode(bytes(tag.memory))
    assert (data.item_id, data.part_number, data.parts_in_set, data.owner_institution) == (
        "30000005",
        2,
        3,
        "LV-DEMO",
    )
    assert (tag.afi, tag.eas, tag.uid) == (0x07, True, demo_uid("30000005", 2))
    assert tag.uid.startswith("E004")
    assert len(tag.uid) == 16
    loose = demo_tag("30000001", secured=False)
    assert (loose.afi, loose.eas) == (0xC2, False)
    assert demo_uid("30000001") != demo_uid("30000002")
    pad = SimulatedPad()
    for part in (1, 2, 3):
        pad.place(demo_tag("30000005", part=part))
    pad.place(loose)
    assert [t.label for t in pad.tags_for("30000005")] == [
        "30000005 (1/3)",
        "30000005 (2/3)",
        "30000005 (3/3)",
    ]
    assert pad.tags_for("30000001") == (loose,)


def test_demo_tag_in_iso28560_2():
    tag = demo_tag("30000003", model="iso28560-2")
    assert tags.decode(bytes(tag.memory)).item_id == "30000003"


def test_place_remove_clear_and_listeners():
    pad = SimulatedPad()
    seen = []
    pad.subscribe(lambda p: seen.append(len(p.tags)))
    a = pad.place(VirtualTag("E004010000000001"))
    pad.place(VirtualTag("E004010000000002"))
    assert pad.remove(a.uid) is a
    pad.clear()
    assert seen == [1, 2, 1, 0]
    assert pad.tags == ()


def test_reads_and_writes_go_to_tag_memory():
    pad = SimulatedPad()
    t = pad.place(VirtualTag("E004010000000001", memory=bytearray(range(16))))
    r = SimReader(pad)
    assert r.read_blocks(t.uid, 1, 2) == bytes(range(4, 12))
    r.write_blocks(t.uid, 0, b"abcd")
    assert bytes(t.memory[:4]) == b"abcd"
    with pytest.raises(DeviceError, match="outside"):
        r.read_blocks(t.uid, 3, 2)
    with pytest.raises(DeviceError, match="whole"):
        r.write_blocks(t.uid, 0, b"abc")
    with pytest.raises(TagNotFound):
        r.read_system_info("E0040100000000FF")


def test_inventory_misses_and_read_failures():
    pad = SimulatedPad()
    t = pad.place(VirtualTag("E004010000000001"))
    r = SimReader(pad)
    pad.miss_inventory(t.uid, rounds=2)
    assert [r.inventory(), r.inventory()] == [[], []]
    assert [e.uid for e in r.inventory()] == [t.uid]
    pad.fail_reads(t.uid, 1)
    with pytest.raises(DeviceTimeout, match="injected"):
        r.read_blocks(t.uid, 0, 1)
    assert r.read_blocks(t.uid, 0, 1) == bytes(4)


def test_random_misses_are_seeded():
    def run():
        pad = SimulatedPad(miss_probability=0.5, seed=7)
        for i in range(10):
            pad.place(VirtualTag(f"E0040100000000{i:02X}"))
        return [len(SimReader(pad).inventory()) for _ in range(5)]

    counts = run()
    assert counts == run()
    assert any(c < 10 for c in counts)


def test_write_failures_loud_and_silent():
    pad = SimulatedPad()
    t = pad.place(VirtualTag("E004010000000001", afi=0x07))
    r = SimReader(pad)
    pad.fail_writes(t.uid, 1)
    with pytest.raises(TagWriteError):
        r.write_afi(t.uid, 0xC2)
    assert t.afi == 0x07
    pad.fail_writes(t.uid, 1, silent=True)
    r.write_afi(t.uid, 0xC2)  # reported fine, nothing written: only a read-back tells
    assert t.afi == 0x07
    r.write_afi(t.uid, 0xC2)
    assert t.afi == 0xC2


def test_eas_and_unsupported_tags():
    pad = SimulatedPad()
    t = pad.place(VirtualTag("E004010000000001", eas=True))
    ti = pad.place(VirtualTag("E007000000000001", eas_supported=False))
    r = SimReader(pad)
    r.set_eas(t.uid, False)
    assert r.eas(t.uid) is False
    with pytest.raises(NotSupported, match="no EAS"):
        r.set_eas(ti.uid, True)


def test_disconnect_and_delays():
    slept = []
    pad = SimulatedPad(sleep=slept.append)
    pad.place(VirtualTag("E004010000000001"))
    r = SimReader(pad)
    pad.set_delay("inventory", 0.25)
    r.inventory()
    assert slept == [0.25]
    pad.disconnect()
    with pytest.raises(DeviceError, match="disconnected"):
        r.inventory()
    pad.reconnect()
    assert len(r.inventory()) == 1
    r.close()
    with pytest.raises(DeviceError, match="closed"):
        r.inventory()
    r.reopen()
    assert len(r.inventory()) == 1


def test_iso15693_timing_grows_with_the_stack():
    slept = []
    pad = SimulatedPad(timing="iso15693", sleep=slept.append)
    r = SimReader(pad)
    r.inventory()
    empty = pad.air_time_s
    for i in range(10):
        pad.place(VirtualTag(f"E0040100000000{i:02X}"))
    pad.air_time_s = 0
    r.inventory()
    ten = pad.air_time_s
    assert ten > empty > 0
    assert sum(slept) == pytest.approx(empty + ten)
    with pytest.raises(DeviceError):
        SimulatedPad(timing="fast")
