"""Patron identification sources chosen by a device string (`[patron] card_sources`):

sim: / sim:<name>           the simulated reader the demo panel drives
wedge:                      a keyboard-wedge scanner, fed by the UI's key events
serial:/dev/ttyACM0?baud=9600   a serial barcode scanner (CR/LF lines)
pcsc:<reader name part>     contactless cards on a PC/SC reader (UID or block by card_rule)
nfc:usb / nfc:udp:127.0.0.1:54321   contactless cards through nfcpy
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.core.identifiers import classify
from kiosk.core.ports import Clock, SystemClock
from kiosk.devices.cards.base import (
    CardError,
    CardPresented,
    CardRule,
    CardSource,
    mask,
    parse_card_rule,
)
from kiosk.devices.errors import DeviceError

__all__ = [
    "CardError",
    "CardPresented",
    "CardRule",
    "CardSource",
    "SourceStatus",
    "check_source",
    "classify",
    "mask",
    "open_card_source",
    "parse_card_rule",
]


def open_card_source(
    url: str, patron_cfg: Any, *, clock: Clock | None = None, base_dir: Path | None = None
) -> CardSource:
    """The card source for one `card_sources` entry; call .start(callback) to receive CardPresented."""
    kind, sep, rest = url.partition(":")
    kind = kind.lower()
    if not sep:
        raise CardError(
            f"patron.card_sources entry {url!r} has no kind; expected sim:, wedge:, serial:, pcsc: or nfc:"
        )
    if kind == "sim":
        # only the configured kind's driver is loaded (pyscard and nfcpy are optional)
        from kiosk.devices.cards.sim import (  # lazy: only the configured driver loads
            get_shared_card_source,
        )

        return get_shared_card_source(rest or "default")
    if kind == "wedge":
        # only the configured kind's driver is loaded (pyscard and nfcpy are optional)
        from kiosk.devices.cards.wedge import (  # lazy: only the configured driver loads
            WedgeCollector,
        )

        return WedgeCollector(
            clock or SystemClock(),
            max_interkey_s=getattr(patron_cfg, "wedge_max_interkey_s", 0.05),
            min_length=getattr(patron_cfg, "wedge_min_length", 4),
        )
    if kind == "serial":
        # only the configured kind's driver is loaded (pyscard and nfcpy are optional)
        from kiosk.devices.cards.serial_scanner import (  # lazy: only the configured driver loads
            SerialScanner,
        )

        port, _, query = rest.partition("?")
        baud = 9600
        for item in filter(None, query.split("&")):
            key, _, value = item.partition("=")
            if key != "baud" or not value.isdigit():
                raise CardError(f"patron.card_sources {url!r}: only ?baud=<number> is understood")
            baud = int(value)
        if not port:
            raise CardError(f"patron.card_sources {url!r} names no serial port")
        return SerialScanner(port, baudrate=baud)
    rule = parse_card_rule(getattr(patron_cfg, "card_rule", "uid"), base_dir=base_dir)
    if kind == "pcsc":
        # only the configured kind's driver is loaded (pyscard and nfcpy are optional)
        from kiosk.devices.cards.pcsc import (  # lazy: only the configured driver loads
            PcscCardSource,
        )

        return PcscCardSource(rest, rule)
    if kind == "nfc":
        # only the configured kind's driver is loaded (pyscard and nfcpy are optional)
        from kiosk.devices.cards.nfc import NfcCardSource  # lazy: only the configured driver loads

        return NfcCardSource(rest or "usb", rule)
    raise CardError(
        f"patron.card_sources entry {url!r}: unknown kind {kind!r}; expected sim:, wedge:, serial:, pcsc: or nfc:"
    )


@dataclass(frozen=True)
class SourceStatus:
    """Whether a configured card source can be used, in words for `kiosk doctor`."""

    ok: bool
    message: str


class SourceCheck:
    """The outcome of looking at one card source without starting it (`status()`, `close()`)."""

    def __init__(self, status: SourceStatus) -> None:
        self._status = status

    def status(self) -> SourceStatus:
        return self._status

    def close(self) -> None:
        """Nothing is held open by a check."""


def check_source(url: str, patron_cfg: Any = None) -> SourceCheck:
    """Look at a `card_sources` entry without starting it: is the port, reader or device there?"""
    kind, sep, rest = url.partition(":")
    kind = kind.lower()
    if not sep or kind not in ("sim", "wedge", "serial", "pcsc", "nfc"):
        raise CardError(
            f"patron.card_sources entry {url!r}: expected sim:, wedge:, serial:, pcsc: or nfc:"
        )
    if patron_cfg is not None and kind in ("pcsc", "nfc"):
        parse_card_rule(patron_cfg.card_rule)
    if kind == "sim":
        return SourceCheck(SourceStatus(True, "simulated card reader (demo panel)"))
    if kind == "wedge":
        return SourceCheck(
            SourceStatus(
                True, "keyboard-wedge scanner, read through the touch screen's keyboard events"
            )
        )
    if kind == "serial":
        # pyserial only to check a serial: source
        import serial  # lazy: pyserial, only to check a serial: source

        port = rest.partition("?")[0]
        try:
            serial.serial_for_url(port, timeout=0).close()
        except (serial.SerialException, OSError, ValueError) as exc:
            return SourceCheck(SourceStatus(False, f"cannot open {port} ({exc})"))
        return SourceCheck(SourceStatus(True, f"{port} opens"))
    if kind == "pcsc":
        # PC/SC is optional: pyscard is loaded only to check a pcsc: source
        from kiosk.devices.readers.pcsc import (  # lazy: pyscard is optional
            PcscContext,
            PcscUnavailable,
        )

        ctx = PcscContext()
        try:
            return SourceCheck(SourceStatus(True, f"found {ctx.find_reader(rest)!r}"))
        except PcscUnavailable as exc:
            return SourceCheck(SourceStatus(False, f"{exc}"))
        except DeviceError as exc:
            return SourceCheck(SourceStatus(False, str(exc)))
        finally:
            ctx.reset()
    # nfc
    if rest.startswith("udp"):
        return SourceCheck(SourceStatus(True, "nfcpy UDP test driver"))
    try:
        # nfcpy is optional: its presence is what is checked
        import nfc  # noqa: F401  # lazy: nfcpy is optional
    except ImportError:
        return SourceCheck(
            SourceStatus(False, "nfcpy is not installed; install the kiosk with the [nfc] extra")
        )
    if rest.startswith("tty:"):
        dev = "/dev/tty" + rest.split(":")[1]
        ok = Path(dev).exists()
        return SourceCheck(SourceStatus(ok, f"{dev} {'exists' if ok else 'does not exist'}"))
    # the device listing of `kiosk devices` is loaded only for an nfc: source check

    from kiosk.devices.cli import nfc_devices  # lazy: a CLI module, only to check nfc:

    found, _ = nfc_devices()
    if found:
        return SourceCheck(SourceStatus(True, ", ".join(f"{d.name} ({d.path})" for d in found)))
    return SourceCheck(
        SourceStatus(False, "no nfcpy-supported USB reader attached (RC-S380, PN533, ACR122U …)")
    )
