"""The `kiosk devices` command: what hardware is attached (serial ports, PC/SC readers, NFC
devices, USB printers) and, with --probe, whether the configured RFID reader answers; and
`kiosk devices decode-frame`, one captured FEIG or 3M reader frame as JSON."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosk import config
from kiosk.devices.errors import DeviceError

log = logging.getLogger(__name__)

SYS_USB = Path("/sys/bus/usb/devices")
SERIAL_BY_ID = Path("/dev/serial/by-id")
USB_LP = Path("/dev/usb")
USB_CLASS_PRINTER = "07"


@dataclass(frozen=True)
class Found:
    """One attached device, or one note about a kind that could not be looked at."""

    kind: str  # serial | pcsc | nfc | printer | reader
    name: str
    path: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Report:
    devices: tuple[Found, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"devices": [asdict(d) for d in self.devices], "notes": list(self.notes)}


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def serial_ports(by_id: Path = SERIAL_BY_ID) -> list[Found]:
    """Stable /dev/serial/by-id names first (what the config should use), then every port pyserial sees."""
    found: list[Found] = []
    targets: dict[str, str] = {}
    if by_id.is_dir():
        for link in sorted(by_id.iterdir()):
            target = os.path.realpath(link)
            targets[target] = str(link)
            found.append(Found("serial", link.name, str(link), f"→ {target}"))
    try:
        from serial.tools import list_ports  # lazy: fast `kiosk --help`

        for port in sorted(list_ports.comports(), key=lambda p: p.device):
            if port.device in targets:
                continue
            ids = (
                f"USB {port.vid:04x}:{port.pid:04x}"
                if port.vid is not None and port.pid is not None
                else ""
            )
            detail = ", ".join(
                x for x in (port.description if port.description != "n/a" else "", ids) if x
            )
            found.append(Found("serial", port.name or port.device, port.device, detail))
    except ImportError:  # pragma: no cover - pyserial is a hard dependency
        pass
    return found


def pcsc_readers() -> tuple[list[Found], list[str]]:
    try:
        from kiosk.devices.readers.pcsc import (  # lazy: fast `kiosk --help`
            PcscContext,
            PcscUnavailable,
        )
    except ImportError as exc:  # pragma: no cover
        return [], [f"PC/SC: {exc}"]
    ctx = PcscContext()
    try:
        names = ctx.readers()
    except PcscUnavailable as exc:
        text = str(exc)
        if "not installed" in text:
            return [], ["PC/SC: pyscard is not installed (install the kiosk with the [pcsc] extra)"]
        return [], [
            "PC/SC: pcscd not running (start it with `systemctl start pcscd`), so PC/SC readers cannot be listed"
        ]
    except Exception as exc:
        # A device driver boundary: any PC/SC failure is a note, never a crash of the listing.
        log.debug("listing PC/SC readers failed", exc_info=exc)
        return [], [f"PC/SC: listing readers failed: {exc}"]
    finally:
        ctx.reset()
    return [Found("pcsc", n, f"pcsc:{n}") for n in names], []


def _usb_devices(root: Path = SYS_USB) -> list[tuple[Path, int, int]]:
    out: list[tuple[Path, int, int]] = []
    if not root.is_dir():
        return out
    for dev in sorted(root.iterdir()):
        vid, pid = _read(dev / "idVendor"), _read(dev / "idProduct")
        if vid and pid:
            try:
                out.append((dev, int(vid, 16), int(pid, 16)))
            except ValueError:
                continue
    return out


def nfc_devices(root: Path = SYS_USB) -> tuple[list[Found], list[str]]:
    try:
        from nfc.clf.device import usb_device_map  # lazy: nfcpy is optional
    except ImportError:
        return [], ["NFC: nfcpy is not installed (install the kiosk with the [nfc] extra)"]
    found = []
    for dev, vid, pid in _usb_devices(root):
        driver = usb_device_map.get((vid, pid))
        if driver:
            product = _read(dev / "product") or driver
            busnum, devnum = _read(dev / "busnum"), _read(dev / "devnum")
            found.append(
                Found(
                    "nfc",
                    product,
                    f"nfc:usb:{vid:04x}:{pid:04x}",
                    f"nfcpy driver {driver}, bus {busnum} device {devnum}",
                )
            )
    return found, []


def printers(root: Path = SYS_USB, lp_dir: Path = USB_LP) -> list[Found]:
    found = []
    if lp_dir.is_dir():
        for lp in sorted(lp_dir.glob("lp*")):
            found.append(Found("printer", lp.name, str(lp), "USB printer class device"))
    seen = {f.path for f in found}
    for dev, vid, pid in _usb_devices(root):
        classes = {_read(i / "bInterfaceClass") for i in dev.glob(f"{dev.name}:*")}
        if USB_CLASS_PRINTER in classes:
            product = _read(dev / "product") or "USB printer"
            path = f"usb:{vid:04x}:{pid:04x}"
            if path not in seen:
                found.append(
                    Found("printer", product, path, f"{_read(dev / 'manufacturer')}".strip())
                )
    return found


def probe_reader(url: str, timeout_s: float, retries: int) -> Found:
    """Open the configured reader and run one inventory."""
    from kiosk.devices.readers import open_reader  # lazy: fast `kiosk --help`

    try:
        reader = open_reader(url, timeout_s=timeout_s, retries=retries)
        try:
            tags = reader.inventory()
        finally:
            reader.close()
    except DeviceError as exc:
        return Found("reader", "configured RFID reader", url, f"NOT WORKING: {exc}")
    return Found(
        "reader", "configured RFID reader", url, f"answers; {len(tags)} tag(s) in the field"
    )


def _is_peripheral(d: Found) -> bool:
    if d.kind == "serial":
        return d.path.startswith(str(SERIAL_BY_ID)) or "USB" in d.detail
    return d.kind in ("pcsc", "nfc", "printer")


def collect(*, probe_url: str | None = None, timeout_s: float = 1.0, retries: int = 1) -> Report:
    devices: list[Found] = []
    notes: list[str] = []
    devices += serial_ports()
    found, n = pcsc_readers()
    devices += found
    notes += n
    found, n = nfc_devices()
    devices += found
    notes += n
    devices += printers()
    if probe_url:
        devices.append(probe_reader(probe_url, timeout_s, retries))
    if not any(_is_peripheral(d) for d in devices):
        builtin = (
            " (only the computer's built-in serial ports)"
            if devices and any(d.kind == "serial" for d in devices)
            else ""
        )
        notes.append(
            f"No RFID reader, card reader, USB serial adapter or USB printer is attached to this machine{builtin}."
        )
    return Report(tuple(devices), tuple(notes))


def render_table(report: Report) -> str:
    lines = []
    if report.devices:
        rows = [("KIND", "NAME", "USE AS", "DETAIL")] + [
            (d.kind, d.name, d.path, d.detail) for d in report.devices
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + "  " + r[3])
    lines += report.notes
    return "\n".join(lines)


def _handler(args: argparse.Namespace) -> int:
    probe_url = None
    timeout_s, retries = 1.0, 1
    if args.probe:
        cfg = config.load(args.config)
        probe_url, timeout_s, retries = cfg.reader.url, cfg.reader.timeout_s, cfg.reader.retries
    report = collect(probe_url=probe_url, timeout_s=timeout_s, retries=retries)
    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
    else:
        print(render_table(report))
    broken = [
        d for d in report.devices if d.kind == "reader" and d.detail.startswith("NOT WORKING")
    ]
    return 1 if broken else 0


EXIT_BAD_FRAME = 1  # the frame fails its CRC or length, or its data does not fit its command
EXIT_NOT_HEX = 2
_HEX_NOISE = re.compile(r"[\s:,\-]|0[xX]")


def parse_frame_hex(parts: list[str]) -> bytes:
    """A frame from hex text with any spaces, colons, commas, dashes or 0x prefixes; ValueError if not hex."""
    text = _HEX_NOISE.sub("", "".join(parts))
    if not text or len(text) % 2 or not re.fullmatch(r"[0-9A-Fa-f]+", text):
        raise ValueError(f"not a frame in hex: {' '.join(parts)[:60]!r}")
    return bytes.fromhex(text)


def decode_frame(
    protocol: str, frame: bytes, direction: str | None = None, block_order: str = "msb"
) -> dict[str, Any]:
    """One reader frame as the JSON object `kiosk devices decode-frame` prints; ReaderFrameError when it does not decode."""
    from kiosk.devices.readers import feig, threem  # lazy: fast `kiosk --help`

    if protocol == "feig":
        return feig.describe_frame(frame, direction, block_order=block_order)
    return threem.describe_frame(frame, direction)


def _decode_frame(args: argparse.Namespace) -> int:
    try:
        frame = parse_frame_hex(args.hex)
    except ValueError as exc:
        print(json.dumps({"error": str(exc)}))
        return EXIT_NOT_HEX
    try:
        result = decode_frame(args.protocol, frame, args.direction, args.block_order)
    except DeviceError as exc:
        print(json.dumps({"error": str(exc)}))
        return EXIT_BAD_FRAME
    print(json.dumps(result, ensure_ascii=False))
    return 0


def _handler_or_decode(args: argparse.Namespace) -> int:
    if getattr(args, "devices_command", None) == "decode-frame":
        return _decode_frame(args)
    return _handler(args)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "devices", help="list attached readers, card readers, serial ports and printers"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--probe",
        action="store_true",
        help="also open the configured RFID reader and run one inventory",
    )
    p.set_defaults(func=_handler_or_decode)
    sub = p.add_subparsers(dest="devices_command", metavar="ACTION")
    dec = sub.add_parser(
        "decode-frame",
        help="decode one captured FEIG or 3M reader frame (hex) and print it as JSON",
        description='Exit 0 with the decoded frame; 1 with {"error": ...} when the frame fails its CRC or length; 2 when the input is not hex.',
    )
    dec.add_argument("--protocol", required=True, choices=("feig", "3m"))
    dec.add_argument(
        "--direction",
        choices=("request", "response"),
        help="host → reader or reader → host (default: guessed)",
    )
    dec.add_argument(
        "--block-order",
        default="msb",
        choices=("msb", "lsb"),
        help="FEIG block data order on the wire (msb: the reader's default, each block last byte first)",
    )
    dec.add_argument("hex", nargs="+", help="the frame in hex; spaces and colons allowed")
