"""`kiosk devices`: listing on this machine (no hardware: said plainly), and the finders against
fake /sys and /dev trees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import cli
from kiosk.devices import cli as devcli
from kiosk.devices.readers.emulators import FeigEmulator
from kiosk.devices.readers.pcsc import PcscContext, PcscUnavailable
from kiosk.devices.readers.sim import SimulatedPad, demo_tag


def run(capsys, *argv):
    rc = cli.main(list(argv))
    return rc, capsys.readouterr().out


def test_devices_on_this_machine_says_what_is_missing(capsys):
    rc, out = run(capsys, "devices", "--json")
    assert rc == 0
    report = json.loads(out)
    assert set(report) == {"devices", "notes"}
    peripherals = [
        d
        for d in report["devices"]
        if d["kind"] in ("pcsc", "nfc", "printer") or "USB" in d["detail"] or "by-id" in d["path"]
    ]
    if not peripherals:
        assert any("No RFID reader, card reader" in n for n in report["notes"])
    rc, table = run(capsys, "devices")
    assert rc == 0
    assert table.strip()


def test_pcscd_not_running_is_a_note(monkeypatch):
    def unavailable(self):
        raise PcscUnavailable("PC/SC service not available")

    monkeypatch.setattr(PcscContext, "readers", unavailable)
    found, notes = devcli.pcsc_readers()
    assert found == []
    assert notes == [
        "PC/SC: pcscd not running (start it with `systemctl start pcscd`), so PC/SC readers cannot be listed"
    ]


def test_pcsc_readers_listed(monkeypatch):
    monkeypatch.setattr(PcscContext, "readers", lambda self: ["ACS ACR1552 1S CL Reader 00 00"])
    found, notes = devcli.pcsc_readers()
    assert [(f.kind, f.path) for f in found] == [("pcsc", "pcsc:ACS ACR1552 1S CL Reader 00 00")]
    assert notes == []


def _usb(root, name, vid, pid, product, iface_class=None):
    dev = root / name
    dev.mkdir(parents=True)
    (dev / "idVendor").write_text(vid + "\n")
    (dev / "idProduct").write_text(pid + "\n")
    (dev / "product").write_text(product + "\n")
    (dev / "busnum").write_text("1\n")
    (dev / "devnum").write_text("4\n")
    if iface_class:
        iface = dev / f"{name}:1.0"
        iface.mkdir()
        (iface / "bInterfaceClass").write_text(iface_class + "\n")


def test_usb_printers_and_nfc_devices_from_sysfs(tmp_path):
    sys_usb = tmp_path / "sys"
    _usb(sys_usb, "1-1", "04b8", "0202", "TM-T88V", iface_class="07")
    _usb(sys_usb, "1-2", "054c", "06c1", "RC-S380/S")
    _usb(sys_usb, "1-3", "1d6b", "0002", "hub", iface_class="09")
    lp = tmp_path / "usb"
    lp.mkdir()
    (lp / "lp0").write_text("")
    printers = devcli.printers(sys_usb, lp)
    assert [(p.name, p.path) for p in printers] == [
        ("lp0", str(lp / "lp0")),
        ("TM-T88V", "usb:04b8:0202"),
    ]
    nfc, notes = devcli.nfc_devices(sys_usb)
    assert [(d.name, d.path) for d in nfc] == [("RC-S380/S", "nfc:usb:054c:06c1")]
    assert notes == []
    assert "rcs380" in nfc[0].detail


def test_serial_by_id_links(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    master, slave = os.openpty()
    try:
        (by_id / "usb-FEIG_ELECTRONIC_ID_ISC.MR101-if00-port0").symlink_to(os.ttyname(slave))
        found = devcli.serial_ports(by_id)
        assert found[0].name == "usb-FEIG_ELECTRONIC_ID_ISC.MR101-if00-port0"
        assert found[0].detail == f"→ {os.path.realpath(os.ttyname(slave))}"
    finally:
        os.close(master)
        os.close(slave)


def test_table_rendering():
    report = devcli.Report(
        (devcli.Found("pcsc", "Virtual PCD 00 00", "pcsc:Virtual PCD 00 00"),), ("a note",)
    )
    text = devcli.render_table(report)
    assert text.splitlines()[0].split() == ["KIND", "NAME", "USE", "AS", "DETAIL"]
    assert "pcsc:Virtual PCD 00 00" in text
    assert text.endswith("a note")


def test_probe_reports_a_broken_reader(capsys, tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        '[reader]\nurl = "feig:/nonexistent/ttyUSB9"\ntimeout_s = 0.2\nretries = 0\n',
        encoding="utf-8",
    )
    rc, out = run(capsys, "--config", str(cfg), "devices", "--probe")
    assert rc == 1
    assert "NOT WORKING" in out
    assert "cannot open /nonexistent/ttyUSB9" in out


def test_probe_counts_tags_on_an_emulated_reader(capsys, tmp_path):
    pad = SimulatedPad()
    pad.place(demo_tag("30000001"))
    pad.place(demo_tag("30000002"))
    with FeigEmulator(pad).serve_pty(link_dir=tmp_path) as port:
        cfg = tmp_path / "kiosk.toml"
        cfg.write_text(f'[reader]\nurl = "feig:{port.path}"\ntimeout_s = 0.5\n', encoding="utf-8")
        rc, out = run(capsys, "--config", str(cfg), "devices", "--probe", "--json")
    reader = [d for d in json.loads(out)["devices"] if d["kind"] == "reader"]
    assert rc == 0
    assert reader[0]["detail"] == "answers; 2 tag(s) in the field"


@pytest.mark.parametrize("flag", ["--json", None])
def test_devices_command_is_registered(flag):
    parser = cli.build_parser()
    args = parser.parse_args(["devices"] + ([flag] if flag else []))
    assert args.func is not None
    assert args.json == bool(flag)


# -- kiosk devices decode-frame ------------------------------------------------------------------

CONTRACT_KEYS = {
    "protocol",
    "direction",
    "crc_ok",
    "command",
    "sub",
    "status",
    "err",
    "uids",
    "block_size",
    "block_count",
    "tag_memory",
    "afi",
    "fields",
}
FRAMES = json.loads(
    (Path(__file__).parent / "data" / "reader_frames.json").read_text(encoding="utf-8")
)["frames"]


def decode(capsys, *argv):
    rc = cli.main(["devices", "decode-frame", *argv])
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object on one line
    return rc, json.loads(out)


@pytest.mark.parametrize("fr", FRAMES, ids=lambda fr: f"{fr['protocol']}-{fr['hex'][:24]}")
def test_decode_frame_prints_the_contract(capsys, fr):
    rc, out = decode(capsys, "--protocol", fr["protocol"], *fr["hex"].split())
    assert rc == 0
    assert set(out) <= CONTRACT_KEYS
    assert (out["protocol"], out["direction"], out["crc_ok"]) == (
        fr["protocol"],
        fr["direction"],
        True,
    )
    assert isinstance(out["command"], int)
    assert isinstance(out["fields"], dict)
    assert ("status" in out) == (fr["protocol"] == "feig" and fr["direction"] == "response")
    assert ("err" in out) == (fr["protocol"] == "3m" and fr["direction"] == "response")
    for key in (
        "command",
        "sub",
        "status",
        "err",
        "uids",
        "afi",
        "block_size",
        "block_count",
        "tag_memory",
    ):
        if key in fr["expect"]:
            assert out[key] == fr["expect"][key], key


def test_decode_frame_feig_examples(capsys):
    rc, out = decode(
        capsys, "--protocol", "feig", "14 00 B0 00 00 E0 02 2C 00 12 34 56 78 C2 03 07 FF 2C 79 B5"
    )
    assert out == {
        "protocol": "feig",
        "direction": "response",
        "crc_ok": True,
        "command": 0xB0,
        "status": 0,
        "sub": 0x2B,
        "afi": 0xC2,
        "block_size": 4,
        "block_count": 2048,
        "fields": {
            "com_adr": 0,
            "status_text": "status 0x00 OK",
            "uid": "E0022C0012345678",
            "dsfid": 0,
            "ic_reference": 0x2C,
            "mem_size_bytes": 3,
            "name": "get system information",
        },
    }
    # a card between two books: both books, in reading order, and the card in fields
    rc, out = decode(
        capsys,
        "--protocol",
        "feig",
        "--direction",
        "response",
        "25:00:B0:00:03:03:00:E0:16:80:FF:08:00:50:24:04:00:01:80:6E:1D:2C:3B:5A:04:03:00:E0:16:80:FF:08:00:4F:BC:33:02",
    )
    assert out["uids"] == ["E01680FF08005024", "E01680FF08004FBC"]
    assert [(o["type"], o["card_uid"]) for o in out["fields"]["other_transponders"]] == [
        ("ISO 14443-A", "045A3B2C1D6E80")
    ]
    # read answer: blocks sent last byte first by default, as they are in tag memory with lsb
    rc, out = decode(
        capsys, "--protocol", "feig", "12 00 B0 00 02 04 00 31 01 01 11 00 33 32 32 31 27 AE"
    )
    assert (out["tag_memory"], out["fields"]["block_size"], out["fields"]["security_status"]) == (
        "1101013131323233",
        4,
        [0, 0],
    )
    assert "block_size" not in out
    assert "block_count" not in out  # those are a system information answer's
    rc, out = decode(
        capsys,
        "--protocol",
        "feig",
        "--block-order",
        "lsb",
        "12 00 B0 00 02 04 00 31 01 01 11 00 33 32 32 31 27 AE",
    )
    assert out["tag_memory"] == "3101011133323231"
    # the request side names the sub-command
    rc, out = decode(
        capsys, "--protocol", "feig", "0x10 0xFF 0xB0 0x27 0x01 E0 04 01 00 12 34 56 78 C2 79 4F"
    )
    assert (out["direction"], out["command"], out["sub"], out["afi"], out["fields"]["uid"]) == (
        "request",
        0xB0,
        0x27,
        0xC2,
        "E004010012345678",
    )


def test_decode_frame_3m_examples(capsys):
    rc, out = decode(
        capsys,
        "--protocol",
        "3m",
        "D6 00 13 0D 00 E0 04 01 00 31 23 AA 26 0F 00 DA 03 1B 01 02 52 81",
    )
    assert (
        rc,
        out["err"],
        out["afi"],
        out["block_size"],
        out["block_count"],
        out["fields"]["ic_reference"],
    ) == (0, 0, 0xDA, 4, 28, "0102")
    rc, out = decode(
        capsys,
        "--protocol",
        "3m",
        "D6 00 19 02 00 E0 04 01 00 31 23 AA 26 02 00 00 11 01 01 31 01 15 DE AD BE EF 77 CA",
    )
    assert "tag_memory" not in out
    assert "DEADBEEF" not in json.dumps(out)
    assert out["fields"]["blocks"] == [
        {"block": 0, "lock": "unlocked", "data": "11010131"},
        {"block": 1, "error": 0x15, "error_text": "read error"},
    ]
    rc, out = decode(
        capsys,
        "--protocol",
        "3m",
        "D6 00 17 FE 00 00 05 02 E0 04 01 00 31 23 AA 26 E0 04 01 00 01 7C 0C 38 CA DB",
    )
    assert (out["command"], out["err"], out["uids"]) == (
        0xFE,
        0,
        ["E00401003123AA26", "E0040100017C0C38"],
    )
    assert "afi" not in out
    assert out["fields"]["afi_filter"] == 0  # the filter asked for, not a tag's AFI


@pytest.mark.parametrize(
    "protocol,frame,why",
    [
        ("feig", "11 00 B0 00 01 03 00 E0 16 80 FF 08 00 50 24 80 76", "CRC"),
        ("feig", "12 00 B0 00 01 03 00 E0 16 80 FF 08 00 50 24 80 75", "length"),
        ("feig", "07", "length"),
        ("3m", "D6 00 0F FE 00 00 05 01 E0 04 01 00 31 23 AA 26 94 1B", "CRC"),
        ("3m", "D6 00 10 FE 00 00 05 01 E0 04 01 00 31 23 AA 26 94 1A", "length"),
        ("3m", "D6 00 0E FE 00 00 05 01 E0 04 01 00 31 23 AA 94 1A", "CRC"),
    ],
)
def test_decode_frame_bad_crc_or_length_exits_1(capsys, protocol, frame, why):
    rc, out = decode(capsys, "--protocol", protocol, *frame.split())
    assert rc == 1
    assert set(out) == {"error"}
    assert why in out["error"]


@pytest.mark.parametrize("text", ["D6 00 0G", "D6 0", "xyz", "-"])
def test_decode_frame_input_that_is_not_hex_exits_2(capsys, text):
    rc, out = decode(capsys, "--protocol", "3m", "--", text)
    assert rc == 2
    assert set(out) == {"error"}
    assert "not a frame in hex" in out["error"]


def test_decode_frame_as_a_process():
    cmd = [sys.executable, "-m", "kiosk", "devices", "decode-frame", "--protocol"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    ok = subprocess.run(
        [*cmd, "feig", "06 00 B0 01 5C 63"], capture_output=True, text=True, timeout=60, env=env
    )
    assert ok.returncode == 0
    assert json.loads(ok.stdout)["status"] == 1
    assert ok.stderr == ""
    bad = subprocess.run(
        [*cmd, "feig", "06 00 B0 01 5C 64"], capture_output=True, text=True, timeout=60, env=env
    )
    assert bad.returncode == 1
    assert "CRC" in json.loads(bad.stdout)["error"]
    junk = subprocess.run(
        [*cmd, "3m", "hello"], capture_output=True, text=True, timeout=60, env=env
    )
    assert junk.returncode == 2
    assert "error" in json.loads(junk.stdout)


def test_devices_listing_still_parses_without_an_action():
    args = cli.build_parser().parse_args(["devices", "--probe"])
    assert args.probe
    assert args.devices_command is None
