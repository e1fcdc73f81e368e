"""`kiosk devices`: listing on this machine (no hardware: said plainly), and the finders against
fake /sys and /dev trees."""

from __future__ import annotations

import json
import os

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
    peripherals = [d for d in report["devices"] if d["kind"] in ("pcsc", "nfc", "printer") or "USB" in d["detail"] or "by-id" in d["path"]]
    if not peripherals:
        assert any("No RFID reader, card reader" in n for n in report["notes"])
    rc, table = run(capsys, "devices")
    assert rc == 0 and table.strip()


def test_pcscd_not_running_is_a_note(monkeypatch):
    def unavailable(self):
        raise PcscUnavailable("PC/SC service not available")

    monkeypatch.setattr(PcscContext, "readers", unavailable)
    found, notes = devcli.pcsc_readers()
    assert found == [] and notes == ["PC/SC: pcscd not running (start it with `systemctl start pcscd`), so PC/SC readers cannot be listed"]


def test_pcsc_readers_listed(monkeypatch):
    monkeypatch.setattr(PcscContext, "readers", lambda self: ["ACS ACR1552 1S CL Reader 00 00"])
    found, notes = devcli.pcsc_readers()
    assert [(f.kind, f.path) for f in found] == [("pcsc", "pcsc:ACS ACR1552 1S CL Reader 00 00")] and notes == []


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
    assert [(p.name, p.path) for p in printers] == [("lp0", str(lp / "lp0")), ("TM-T88V", "usb:04b8:0202")]
    nfc, notes = devcli.nfc_devices(sys_usb)
    assert [(d.name, d.path) for d in nfc] == [("RC-S380/S", "nfc:usb:054c:06c1")] and notes == []
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
    report = devcli.Report((devcli.Found("pcsc", "Virtual PCD 00 00", "pcsc:Virtual PCD 00 00"),), ("a note",))
    text = devcli.render_table(report)
    assert text.splitlines()[0].split() == ["KIND", "NAME", "USE", "AS", "DETAIL"]
    assert "pcsc:Virtual PCD 00 00" in text and text.endswith("a note")


def test_probe_reports_a_broken_reader(capsys, tmp_path):
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[reader]\nurl = "feig:/nonexistent/ttyUSB9"\ntimeout_s = 0.2\nretries = 0\n', encoding="utf-8")
    rc, out = run(capsys, "--config", str(cfg), "devices", "--probe")
    assert rc == 1 and "NOT WORKING" in out and "cannot open /nonexistent/ttyUSB9" in out


def test_probe_counts_tags_on_an_emulated_reader(capsys, tmp_path):
    pad = SimulatedPad()
    pad.place(demo_tag("30000001"))
    pad.place(demo_tag("30000002"))
    with FeigEmulator(pad).serve_pty(link_dir=tmp_path) as port:
        cfg = tmp_path / "kiosk.toml"
        cfg.write_text(f'[reader]\nurl = "feig:{port.path}"\ntimeout_s = 0.5\n', encoding="utf-8")
        rc, out = run(capsys, "--config", str(cfg), "devices", "--probe", "--json")
    reader = [d for d in json.loads(out)["devices"] if d["kind"] == "reader"]
    assert rc == 0 and reader[0]["detail"] == "answers; 2 tag(s) in the field"


@pytest.mark.parametrize("flag", ["--json", None])
def test_devices_command_is_registered(flag):
    parser = cli.build_parser()
    args = parser.parse_args(["devices"] + ([flag] if flag else []))
    assert args.func is not None and args.json == bool(flag)
