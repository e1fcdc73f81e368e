"""Patron identification sources chosen by a device string (`[patron] card_sources`):

    sim: / sim:<name>           the simulated reader the demo panel drives
    wedge:                      a keyboard-wedge scanner, fed by the UI's key events
    serial:/dev/ttyACM0?baud=9600   a serial barcode scanner (CR/LF lines)
    pcsc:<reader name part>     contactless cards on a PC/SC reader (UID or block by card_rule)
    nfc:usb / nfc:udp:127.0.0.1:54321   contactless cards through nfcpy
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.core.ports import Clock, SystemClock
from kiosk.devices.cards.base import (
    CardError,
    CardPresented,
    CardRule,
    CardSource,
    classify,
    mask,
    parse_card_rule,
)

__all__ = ["CardError", "CardPresented", "CardRule", "CardSource", "classify", "mask", "open_card_source", "parse_card_rule"]


def open_card_source(url: str, patron_cfg: Any, *, clock: Clock | None = None, base_dir: Path | None = None) -> CardSource:
    """The card source for one `card_sources` entry; call .start(callback) to receive CardPresented."""
    kind, sep, rest = url.partition(":")
    kind = kind.lower()
    if not sep:
        raise CardError(f"patron.card_sources entry {url!r} has no kind; expected sim:, wedge:, serial:, pcsc: or nfc:")
    if kind == "sim":
        from kiosk.devices.cards.sim import get_shared_card_source

        return get_shared_card_source(rest or "default")
    if kind == "wedge":
        from kiosk.devices.cards.wedge import WedgeCollector

        return WedgeCollector(
            clock or SystemClock(),
            max_interkey_s=getattr(patron_cfg, "wedge_max_interkey_s", 0.05),
            min_length=getattr(patron_cfg, "wedge_min_length", 4),
        )
    if kind == "serial":
        from kiosk.devices.cards.serial_scanner import SerialScanner

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
        from kiosk.devices.cards.pcsc import PcscCardSource

        return PcscCardSource(rest, rule)
    if kind == "nfc":
        from kiosk.devices.cards.nfc import NfcCardSource

        return NfcCardSource(rest or "usb", rule)
    raise CardError(f"patron.card_sources entry {url!r}: unknown kind {kind!r}; expected sim:, wedge:, serial:, pcsc: or nfc:")
