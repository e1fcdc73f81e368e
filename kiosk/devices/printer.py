"""The receipt printer: documents encoded to ESC/POS with python-escpos and sent over `usb:`,
`serial:`, `net:` or `file:` (a folder, one file per receipt plus a readable .txt transcript),
or `none`. Paper out and printer offline are detected and raised as DeviceError, never lost.

    printer = open_printer("net:192.168.1.50:9100", profile="TM-T88V")
    printer.status()                 # PrinterStatus.READY / PAPER_LOW / PAPER_OUT / OFFLINE
    printer.print_receipt(document)  # a PrintDocument; raises PaperOut / PrinterOffline
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from kiosk.devices.errors import DeviceError, DeviceTimeout

log = logging.getLogger(__name__)

# A file in a `file:` printer's folder that makes it behave as if out of paper (for demos and
# for trying the patron's "no paper" path without hardware).
PAPER_OUT_FLAG = "PAPER_OUT"


class PrinterError(DeviceError):
    """The receipt printer could not print; the message says what to check."""


class PaperOut(PrinterError):
    """The printer reports no paper."""


class PrinterOffline(PrinterError):
    """The printer cannot be reached or reports itself offline (cover open, error)."""


class PrinterStatus(enum.StrEnum):
    READY = "ready"
    PAPER_LOW = "paper_low"
    PAPER_OUT = "paper_out"
    OFFLINE = "offline"
    NONE = "none"  # no printer configured


@dataclass(frozen=True)
class PrintLine:
    """One line of a document; `large` prints double height and width (headings)."""

    text: str = ""
    bold: bool = False
    large: bool = False
    align: Literal["left", "center", "right"] = "left"


@dataclass(frozen=True)
class PrintDocument:
    """What to print: lines in order, an optional item barcode, a name for the file transport."""

    lines: tuple[PrintLine, ...]
    barcode: str = ""
    name: str = "receipt"
    language: str = ""

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class ReceiptPrinterDevice(Protocol):
    url: str

    def status(self) -> PrinterStatus: ...

    def print_receipt(self, document: PrintDocument) -> str: ...

    def close(self) -> None: ...


def encode_document(document: PrintDocument, profile: str = "TM-T88V") -> bytes:
    """The ESC/POS bytes of a document. A fresh Dummy each time: magic encode remembers its code page."""
    from escpos.printer import Dummy

    printer = Dummy(profile=profile)
    printer.hw("INIT")
    for line in document.lines:
        printer.set(
            align=line.align,
            bold=line.bold,
            normal_textsize=not line.large,
            double_height=line.large,
            double_width=line.large,
        )
        printer.textln(line.text)
    printer.set(align="left", bold=False, normal_textsize=True)
    if document.barcode:
        try:
            printer.barcode(document.barcode, "CODE39", height=60, width=2, pos="BELOW", align_ct=True)
        except Exception as exc:  # an id CODE39 cannot carry: print it as text rather than fail
            log.warning("barcode for document %s not printable (%s); printing as text", document.name, exc)
            printer.textln(document.barcode)
    printer.cut()
    return bytes(printer.output)


class NoPrinter:
    """`none`: the site has no receipt printer; the screens offer no print choice."""

    url = "none"

    def status(self) -> PrinterStatus:
        return PrinterStatus.NONE

    def print_receipt(self, document: PrintDocument) -> str:
        raise PrinterOffline("no receipt printer is configured ([printer] url = \"none\")")

    def close(self) -> None:
        pass


class FilePrinter:
    """`file:DIR`: each receipt becomes DIR/<time>-<name>.bin (the raw bytes) and a .txt transcript."""

    def __init__(self, folder: Path, profile: str = "TM-T88V", width: int = 42) -> None:
        self.folder = folder
        self.url = f"file:{folder}"
        self.profile = profile
        self.width = width
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def status(self) -> PrinterStatus:
        if (self.folder / PAPER_OUT_FLAG).exists():
            return PrinterStatus.PAPER_OUT
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return PrinterStatus.OFFLINE
        return PrinterStatus.READY if os.access(self.folder, os.W_OK) else PrinterStatus.OFFLINE

    def print_receipt(self, document: PrintDocument) -> str:
        from kiosk.devices.escpos_transcript import transcript_text

        state = self.status()
        if state is PrinterStatus.PAPER_OUT:
            raise PaperOut(f"receipt printer {self.url}: out of paper (remove {self.folder / PAPER_OUT_FLAG} to refill)")
        if state is PrinterStatus.OFFLINE:
            raise PrinterOffline(f"receipt printer {self.url}: folder missing or not writable; check its path and permissions")
        data = encode_document(document, self.profile)
        with self._lock:
            stem = f"{datetime.now():%Y%m%d-%H%M%S}-{next(self._counter):04d}-{_safe_name(document.name)}"
            raw = self.folder / f"{stem}.bin"
            try:
                raw.write_bytes(data)
                (self.folder / f"{stem}.txt").write_text(transcript_text(data, self.profile, self.width), encoding="utf-8")
            except OSError as exc:
                raise PrinterOffline(f"receipt printer {self.url}: cannot write {raw.name} ({exc.strerror}); check free space") from None
        log.info("receipt %s written to %s", document.name, raw)
        return str(raw)

    def close(self) -> None:
        pass


class EscposPrinter:
    """A real printer through one of python-escpos's transports; status is queried before and after."""

    def __init__(self, url: str, factory: Any, profile: str = "TM-T88V", check_status: bool = True) -> None:
        self.url = url
        self.profile = profile
        self._factory = factory  # builds an unopened escpos printer object
        self._check_status = check_status
        self._lock = threading.Lock()

    def _open(self) -> Any:
        from escpos.exceptions import DeviceNotFoundError

        device = self._factory()
        try:
            device.open()
        except DeviceNotFoundError as exc:
            raise PrinterOffline(f"receipt printer {self.url} not reachable: {str(exc).splitlines()[0]}; check power and cable") from None
        except (OSError, ValueError) as exc:
            raise PrinterOffline(f"receipt printer {self.url} not reachable ({exc}); check power and cable") from None
        return device

    def _query(self, device: Any) -> PrinterStatus:
        try:
            online = device.is_online()
            if not online:
                return PrinterStatus.OFFLINE
            paper = device.paper_status()
        except TimeoutError:
            raise DeviceTimeout(f"receipt printer {self.url} did not answer a status request; check it is switched on") from None
        except Exception as exc:  # transport errors differ per back-end (usb.core, serial, socket)
            raise PrinterOffline(f"receipt printer {self.url}: status request failed ({exc})") from None
        return {0: PrinterStatus.PAPER_OUT, 1: PrinterStatus.PAPER_LOW}.get(paper, PrinterStatus.READY)

    def status(self) -> PrinterStatus:
        with self._lock:
            try:
                device = self._open()
            except PrinterError:
                return PrinterStatus.OFFLINE
            try:
                return self._query(device)
            except DeviceError:
                return PrinterStatus.OFFLINE
            finally:
                _close_quietly(device)

    def print_receipt(self, document: PrintDocument) -> str:
        data = encode_document(document, self.profile)
        with self._lock:
            device = self._open()
            try:
                if self._check_status:
                    self._raise_for(self._query(device), before=True)
                try:
                    device._raw(data)
                except Exception as exc:
                    raise PrinterOffline(f"receipt printer {self.url}: connection lost while printing ({exc}); the receipt was not printed") from None
                if self._check_status:
                    # Paper can run out during the receipt: then the patron must be told, not left waiting.
                    self._raise_for(self._query(device), before=False)
            finally:
                _close_quietly(device)
        log.info("receipt %s sent to %s (%d bytes)", document.name, self.url, len(data))
        return self.url

    def _raise_for(self, state: PrinterStatus, before: bool) -> None:
        tail = "" if before else " (the receipt may be incomplete)"
        if state is PrinterStatus.PAPER_OUT:
            raise PaperOut(f"receipt printer {self.url}: out of paper{tail}")
        if state is PrinterStatus.OFFLINE:
            raise PrinterOffline(f"receipt printer {self.url} reports offline (cover open or error){tail}")
        if state is PrinterStatus.PAPER_LOW:
            log.warning("receipt printer %s: paper near end", self.url)

    def close(self) -> None:
        pass


def _close_quietly(device: Any) -> None:
    try:
        device.close()
    except Exception as exc:  # closing a half-dead transport must not hide the real error
        log.debug("closing printer transport: %s", exc)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "receipt"


def open_printer(url: str, profile: str = "TM-T88V", width: int = 42, *, base: Path | None = None, timeout_s: float = 3.0) -> ReceiptPrinterDevice:
    """A printer from its device string; raises PrinterError for a string it cannot use.

    `file:DIR` (relative to `base`), `net:HOST[:PORT]` (9100 by default), `serial:PATH[:BAUD]`,
    `usb:VID:PID` (hex), `none`.
    """
    scheme, _, rest = url.partition(":")
    scheme = scheme.strip().lower()
    if scheme == "none" or not url.strip():
        return NoPrinter()
    if scheme == "file":
        folder = Path(rest or "receipts").expanduser()
        if not folder.is_absolute() and base is not None:
            folder = base / folder
        return FilePrinter(folder, profile, width)
    if scheme == "net":
        host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "9100")
        try:
            port = int(port_text or 9100)
        except ValueError:
            raise PrinterError(f"printer url {url!r}: port must be a number, e.g. net:192.168.1.50:9100") from None
        if not host:
            raise PrinterError(f"printer url {url!r}: expected net:HOST[:PORT]")

        def net() -> Any:
            from escpos.printer import Network

            return Network(host, port=port, timeout=timeout_s, profile=profile)

        return EscposPrinter(url, net, profile)
    if scheme == "serial":
        path, baud = rest, 19200
        head, _, tail = rest.rpartition(":")
        if head and tail.isdigit():
            path, baud = head, int(tail)
        if not path:
            raise PrinterError(f"printer url {url!r}: expected serial:/dev/ttyUSB0[:BAUD]")

        def serial_printer() -> Any:
            from escpos.printer import Serial

            class OneByteStatusSerial(Serial):  # type: ignore[misc]
                # A status answer is one byte; python-escpos's read(16) would wait out the timeout.
                def _read(self) -> bytes:
                    return self.device.read(1)

            return OneByteStatusSerial(devfile=path, baudrate=baud, timeout=timeout_s, dsrdtr=False, profile=profile)

        return EscposPrinter(url, serial_printer, profile)
    if scheme == "usb":
        try:
            vid_text, pid_text = rest.split(":")[:2]
            vid, pid = int(vid_text, 16), int(pid_text, 16)
        except ValueError:
            raise PrinterError(f"printer url {url!r}: expected usb:VID:PID in hex, e.g. usb:04b8:0202") from None

        def usb() -> Any:
            from escpos.printer import Usb

            if not Usb.is_usable():
                raise PrinterOffline("USB printers need pyusb: pip install pyusb")
            return Usb(vid, pid, timeout=int(timeout_s * 1000), profile=profile)

        return EscposPrinter(url, usb, profile)
    raise PrinterError(f"printer url {url!r}: unknown kind {scheme!r} (expected usb:, serial:, net:, file: or none)")
