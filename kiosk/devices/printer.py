"""The receipt printer: documents encoded to ESC/POS and sent over `usb:`, `serial:`, `net:` or
`file:` (a folder, one file per receipt plus a readable .txt transcript), or `none`. Paper out and
printer offline are detected and raised as DeviceError, never lost; `status()` never raises.

Text is printed either as characters through the printer's code pages (`ESC t n`, tables from
python-escpos's capabilities database for the model, or `[printer] codepage`) or as a raster
image drawn with Pillow and DejaVu Sans Mono (`GS v 0`), which prints every Latvian and Cyrillic
letter on any ESC/POS printer. `render = "auto"` prints text when the tables cover every
character of the receipt, else raster. Every text passes the printer sanitiser: a character the
printer cannot print becomes a visible substitute, and no control byte from data reaches it.

    printer = open_printer("net:192.168.1.50:9100", profile="TM-T88V")
    printer.status()                 # PrinterStatus.READY / PAPER_LOW / PAPER_OUT / OFFLINE
    printer.print_receipt(document)  # a PrintDocument; raises PaperOut / PrinterOffline
"""

from __future__ import annotations

import enum
import importlib.util
import itertools
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

from kiosk.core.sanitize import for_printer
from kiosk.devices.errors import DeviceError, DeviceTimeout
from kiosk.devices.escpos_transcript import render_png, transcript_text
from kiosk.devices.printer_models import (
    Font,
    PrinterModel,
    PrinterModelError,
    codec_of,
    get_model,
    parse_codepage,
)

log = logging.getLogger(__name__)

# A file in a `file:` printer's folder that makes it behave as if out of paper (for demos and
# for trying the patron's "no paper" path without hardware).
PAPER_OUT_FLAG = "PAPER_OUT"

Render = Literal["auto", "text", "raster"]
ESC, GS = b"\x1b", b"\x1d"
# When several tables hold a character, prefer these (the euro sign from Windows-1252 or CP1257,
# never from ISO 8859-7, which has it only in its 2003 revision).
_TABLE_PREFERENCE = ("CP1257", "CP1252", "CP775", "CP866", "CP1251", "CP858", "CP850", "CP437")
_NOT_IN_TABLE = {"ISO_8859-7": "€₯ͺ"}
LATVIAN_ALPHABET = "AĀBCČDEĒFGĢHIĪJKĶLĻMNŅOPRSŠTUŪVZŽ"
RUSSIAN_ALPHABET = "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"


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
    """One line of a document; `large` prints double height and width (headings); `render`
    forces this line to text or raster whatever the printer's setting (the test page)."""

    text: str = ""
    bold: bool = False
    large: bool = False
    align: Literal["left", "center", "right"] = "left"
    render: Literal["", "text", "raster"] = ""


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
    columns: int

    def status(self) -> PrinterStatus: ...

    def print_receipt(self, document: PrintDocument) -> str: ...

    def close(self) -> None: ...


# -- set-up: the model, how to render and the tables the encoder may use -------------------------


@cache
def _escpos_tables(profile: str) -> tuple[tuple[int, str], ...]:
    """Table number -> code page from python-escpos's capabilities database (every number: a
    profile may list one page under two numbers, and only one of them may be right)."""
    # python-escpos is loaded only when its code-page tables or a real printer are needed: the
    # simulated and file printers of tests and the demo never import it or its USB back-end.
    from escpos.capabilities import get_profile  # lazy: python-escpos, real printers only

    pages = get_profile(profile).profile_data.get("codePages", {})
    return tuple(sorted((int(n), name) for n, name in pages.items()))


@dataclass(frozen=True)
class PrinterSetup:
    """A printer model with the site's choices: render mode, table override, font and width."""

    model: PrinterModel
    render: Render = "auto"
    codepage: tuple[tuple[int, str], ...] = ()  # replaces the capability tables when set
    font: Font = "A"
    width: int = 0  # columns; 0 = the model's for the font

    @property
    def columns(self) -> int:
        return self.width or self.model.columns(self.font)

    @cached_property
    def encoder_tables(self) -> tuple[tuple[int, str], ...]:
        """The (number, codec) pairs text mode may select, best first."""
        pages = (
            dict(self.codepage)
            if self.codepage
            else dict(_escpos_tables(self.model.escpos_profile))
        )
        pages.setdefault(0, "CP437")  # table 0 is PC437 on every ESC/POS printer
        usable = [(n, page, codec) for n, page in pages.items() if (codec := codec_of(page))]
        # Of two numbers for the same page the lower is the long-standing one (CP866: 17, not 59).
        rank = {page: i for i, page in enumerate(_TABLE_PREFERENCE)}
        usable.sort(key=lambda t: (rank.get(t[1], len(rank)), t[0]))
        return tuple((n, f"{page}:{codec}") for n, page, codec in usable)


def printer_setup(
    profile: str = "TM-T88V",
    *,
    render: Render = "auto",
    codepage: str = "",
    font: Font = "A",
    width: int = 0,
) -> PrinterSetup:
    """The set-up for a profile name; PrinterError (one line) for an unknown profile or bad table."""
    try:
        model = get_model(profile)
    except PrinterModelError as exc:
        raise PrinterError(str(exc)) from None
    if render not in ("auto", "text", "raster"):
        raise PrinterError(f"printer render {render!r}: expected auto, text or raster")
    try:
        pages = parse_codepage(codepage)
    except ValueError as exc:
        raise PrinterError(f"printer codepage: {exc}") from None
    if width > model.columns(font):
        raise PrinterError(
            f"printer width {width}: {profile} prints at most {model.columns(font)} columns in font {font}"
        )
    return PrinterSetup(model, render, pages, font, max(0, width))


# -- text through code pages --------------------------------------------------------------------


@cache
def _table_has(codec_entry: str, ch: str) -> int:
    """The byte for `ch` in this table, or -1."""
    page, _, codec = codec_entry.partition(":")
    if ch in _NOT_IN_TABLE.get(page, ""):
        return -1
    try:
        encoded = ch.encode(codec)
    except UnicodeEncodeError:
        return -1
    return encoded[0] if len(encoded) == 1 and encoded[0] >= 0x20 else -1


@dataclass
class _TextEncoder:
    """Characters to bytes, switching tables (`ESC t n`) only where the current one lacks a letter."""

    tables: tuple[tuple[int, str], ...]
    current: int = 0
    _by_number: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._by_number = dict(self.tables)

    def can(self, ch: str) -> bool:
        return " " <= ch <= "~" or any(_table_has(entry, ch) >= 0 for _, entry in self.tables)

    def encode(self, text: str) -> bytes:
        out = bytearray()
        for i, ch in enumerate(text):
            if " " <= ch <= "~":
                out.append(ord(ch))
                continue
            current = self._by_number.get(self.current)
            if current is not None and (byte := _table_has(current, ch)) >= 0:
                out.append(byte)
                continue
            rest = text[i:]
            candidates = [(n, entry) for n, entry in self.tables if _table_has(entry, ch) >= 0]
            # The table that also holds most of the rest of the line saves switches; ties go to
            # the preference order of `tables`.
            n, entry = max(
                candidates, key=lambda c: sum(_table_has(c[1], x) >= 0 for x in rest if x > "~")
            )
            out += ESC + b"t" + bytes([n])
            out.append(_table_has(entry, ch))
            self.current = n
        return bytes(out)


# -- raster: the text drawn with Pillow -----------------------------------------------------------

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/local/share/fonts"))


@cache
def font_path(bold: bool = False) -> Path | None:
    """DejaVu Sans Mono from Debian's fonts-dejavu-core, else Kivy's DejaVu Sans, else None."""
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    for folder in _FONT_DIRS:
        if (folder / name).exists():
            return folder / name
    spec = importlib.util.find_spec("kivy")
    if spec and spec.origin:
        candidate = Path(spec.origin).parent / "data" / "fonts" / "DejaVuSans.ttf"
        if candidate.exists():
            return candidate
    return None


@dataclass(frozen=True)
class RasterFont:
    """The font the raster path draws with for a given paper: one column = `cell` dots."""

    dots: int
    columns: int

    @property
    def cell(self) -> int:
        return self.dots // self.columns

    @property
    def size(self) -> int:
        return max(8, int(self.cell / 0.6021))  # DejaVu Sans Mono advances 0.602 em per character

    def font(self, bold: bool = False, large: bool = False) -> Any:
        return _load_font(font_path(bold), self.size * (2 if large else 1))

    def line_height(self, large: bool = False) -> int:
        ascent, descent = self.font(large=large).getmetrics()
        return ascent + descent + (4 if large else 2)

    def has(self, ch: str) -> bool:
        return _font_has(font_path(False), self.size, ch)


@cache
def _load_font(path: Path | None, size: int) -> Any:
    if path is None:
        raise PrinterError("no font for raster receipts: install fonts-dejavu-core")
    from PIL import ImageFont  # lazy: Pillow only draws receipts

    return ImageFont.truetype(str(path), size)


@cache
def _font_has(path: Path | None, size: int, ch: str) -> bool:
    """True when the font draws `ch` with its own glyph (not the empty-box .notdef glyph)."""
    if ch == " ":
        return True
    if path is None:
        return False  # no font: nothing can be drawn, so `auto` keeps to text
    font = _load_font(path, size)
    missing = font.getmask("\U0010fffd")
    mask = font.getmask(ch)
    return bool(mask.getbbox()) and (mask.size != missing.size or bytes(mask) != bytes(missing))


def raster_text(line: PrintLine, rf: RasterFont) -> str:
    """The text the raster path draws for a line: sanitised, letters the font lacks substituted."""
    return for_printer(line.text, rf.has)


def render_raster(lines: Sequence[PrintLine], rf: RasterFont) -> Any:
    """The lines drawn as a 1-bit Pillow image `rf.dots` wide (black ink = 0, like paper)."""
    from PIL import Image, ImageDraw  # lazy: Pillow only draws receipts

    heights = [rf.line_height(line.large) for line in lines]
    image = Image.new("1", (rf.dots, sum(heights)), 1)
    draw = ImageDraw.Draw(image)
    y = 0
    for line, height in zip(lines, heights, strict=True):
        draw_line(draw, line, rf, y)
        y += height
    return image


def draw_line(draw: Any, line: PrintLine, rf: RasterFont, y: int) -> None:
    """Draw one line at row `y`, aligned within the paper."""
    text = raster_text(line, rf)
    font = rf.font(line.bold, line.large)
    width = draw.textlength(text, font=font)
    x = (
        0
        if line.align == "left"
        else (rf.dots - width) / 2
        if line.align == "center"
        else rf.dots - width
    )
    draw.text((max(0, int(x)), y), text, font=font, fill=0)


def _raster_bytes(image: Any) -> bytes:
    """One `GS v 0` block per printed line, each only as wide as its rightmost ink (a blank line
    is one byte wide): a receipt of short lines sends far fewer bytes than full-width bands."""
    from PIL import ImageOps  # lazy: Pillow only draws receipts

    ink = ImageOps.invert(image.convert("L")).convert("1")  # GS v 0: a set bit prints black
    box = ink.getbbox()
    width_bytes = max(1, ((box[2] if box else 0) + 7) // 8)
    band = ink.crop((0, 0, width_bytes * 8, ink.height))
    head = GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + band.height.to_bytes(2, "little")
    return head + band.tobytes()


# -- the document -------------------------------------------------------------------------------

_CODE39 = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ -.$/+%")


def uses_raster(document: PrintDocument, setup: PrinterSetup) -> bool:
    """Whether `auto` (or the set-up) prints this document's unforced lines as an image: only when
    the image prints a letter the code pages cannot (a letter neither has is substituted either way)."""
    if setup.render != "auto":
        return setup.render == "raster"
    encoder = _TextEncoder(setup.encoder_tables)
    rf = RasterFont(setup.model.dots, setup.columns)
    return any(
        not encoder.can(ch) and rf.has(ch)
        for line in document.lines
        if not line.render
        for ch in for_printer(line.text)
    )


def encode_document(document: PrintDocument, setup: PrinterSetup | str = "TM-T88V") -> bytes:
    """The ESC/POS bytes of a document for a printer set-up (or a profile name with defaults)."""
    if isinstance(setup, str):
        setup = printer_setup(setup)
    raster = uses_raster(document, setup)
    rf = RasterFont(setup.model.dots, setup.columns)
    encoder = _TextEncoder(setup.encoder_tables)
    font_b = 0x01 if setup.font == "B" else 0x00
    out = bytearray(ESC + b"@")
    pending: list[PrintLine] = []

    def flush_raster() -> None:
        if pending:
            out.extend(ESC + b"a\x00")
            for line in pending:
                out.extend(_raster_bytes(render_raster([line], rf)))
            pending.clear()

    for line in document.lines:
        if (line.render or ("raster" if raster else "text")) == "raster":
            pending.append(line)
            continue
        flush_raster()
        mode = font_b | (0x08 if line.bold else 0) | (0x30 if line.large else 0)
        align = {"left": 0, "center": 1, "right": 2}[line.align]
        out += ESC + b"a" + bytes([align]) + ESC + b"!" + bytes([mode])
        out += encoder.encode(for_printer(line.text, encoder.can)) + b"\n"
    flush_raster()
    out += ESC + b"!" + bytes([font_b]) + ESC + b"a\x00"
    if document.barcode:
        code = document.barcode  # never upper-cased: the scanned id must equal the item's
        if code and len(code) <= 40 and set(code) <= _CODE39:
            out += (
                ESC
                + b"a\x01"
                + GS
                + b"h\x3c"
                + GS
                + b"w\x02"
                + GS
                + b"H\x02"
                + GS
                + b"k\x04"
                + code.encode("ascii")
                + b"\x00"
            )
            out += ESC + b"a\x00"
        else:  # an id CODE39 cannot carry: print it as text rather than fail
            log.warning(
                "barcode for document %s not printable as CODE39; printing as text", document.name
            )
            out += encoder.encode(for_printer(document.barcode, encoder.can)) + b"\n"
    out += ESC + b"d\x04" + GS + b"V\x01"
    return bytes(out)


def make_test_page(
    library_name: str, terminal_id: str, when: datetime, columns: int = 42
) -> PrintDocument:
    """The maintenance test page: the whole Latvian and Russian alphabets, upper and lower case,
    and the euro sign, once as text through the code pages and once as a raster image."""
    lines: list[PrintLine] = [
        PrintLine(library_name, bold=True, align="center"),
        PrintLine(f"{terminal_id}  {when:%d.%m.%Y %H:%M}", render="text"),
    ]
    for how in ("text", "raster"):
        lines.append(PrintLine(f"-- {how} --", bold=True, render=how))
        for alphabet in (
            LATVIAN_ALPHABET,
            LATVIAN_ALPHABET.lower(),
            RUSSIAN_ALPHABET,
            RUSSIAN_ALPHABET.lower(),
            "0,50 € / 0,50 EUR",
        ):
            for start in range(0, len(alphabet), columns):
                lines.append(PrintLine(alphabet[start : start + columns], render=how))
    lines.append(PrintLine("-" * columns, render="text"))
    return PrintDocument(tuple(lines), name="test")


class NoPrinter:
    """`none`: the site has no receipt printer; the screens offer no print choice."""

    url = "none"
    columns = 42

    def status(self) -> PrinterStatus:
        return PrinterStatus.NONE

    def print_receipt(self, document: PrintDocument) -> str:
        raise PrinterOffline('no receipt printer is configured ([printer] url = "none")')

    def close(self) -> None:
        pass


# Shared by every file: printer, so two printers on one folder (receipts and hold slips) never
# write the same name within a second.
_FILE_COUNTER = itertools.count(1)


class FilePrinter:
    """`file:DIR`: each receipt becomes DIR/<time>-<name>.bin (the raw bytes) and a .txt transcript
    of what the configured model would print (and a .png when it has raster lines)."""

    def __init__(self, folder: Path, setup: PrinterSetup | None = None) -> None:
        self.folder = folder
        self.url = f"file:{folder}"
        self.setup = setup or printer_setup()
        self.columns = self.setup.columns
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
        state = self.status()
        if state is PrinterStatus.PAPER_OUT:
            raise PaperOut(
                f"receipt printer {self.url}: out of paper (remove {self.folder / PAPER_OUT_FLAG} to refill)"
            )
        if state is PrinterStatus.OFFLINE:
            raise PrinterOffline(
                f"receipt printer {self.url}: folder missing or not writable; check its path and permissions"
            )
        data = encode_document(document, self.setup)
        with self._lock:
            stem = f"{datetime.now():%Y%m%d-%H%M%S}-{next(_FILE_COUNTER):04d}-{_safe_name(document.name)}"
            raw = self.folder / f"{stem}.bin"
            try:
                raw.write_bytes(data)
                (self.folder / f"{stem}.txt").write_text(
                    transcript_text(data, self.setup.model.name, self.columns), encoding="utf-8"
                )
                if GS + b"v0" in data:  # raster lines read as <image> in the .txt: draw them too
                    render_png(data, self.folder / f"{stem}.png", self.setup.model.name)
            except OSError as exc:
                raise PrinterOffline(
                    f"receipt printer {self.url}: cannot write {raw.name} ({exc.strerror}); check free space"
                ) from None
        log.info("receipt %s written to %s", document.name, raw)
        return str(raw)

    def close(self) -> None:
        pass


class EscposPrinter:
    """A real printer through one of python-escpos's transports; status is queried before and after."""

    def __init__(
        self, url: str, factory: Any, setup: PrinterSetup | None = None, check_status: bool = True
    ) -> None:
        self.url = url
        self.setup = setup or printer_setup()
        self.columns = self.setup.columns
        self._factory = factory  # builds an unopened escpos printer object
        self._check_status = check_status
        self._lock = threading.Lock()

    def _open(self) -> Any:
        # python-escpos only for a real printer (see _escpos_tables).
        from escpos.exceptions import DeviceNotFoundError  # lazy: python-escpos, real printers only

        try:
            device = self._factory()
            device.open()
        except PrinterError:
            raise
        except DeviceNotFoundError as exc:
            raise PrinterOffline(
                f"receipt printer {self.url} not reachable: {str(exc).splitlines()[0]}; check power and cable"
            ) from None
        except (OSError, ValueError) as exc:
            raise PrinterOffline(
                f"receipt printer {self.url} not reachable ({exc}); check power and cable"
            ) from None
        except Exception as exc:  # a driver fault must read as "offline", never stop the caller
            log.exception("receipt printer %s: opening the transport failed", self.url)
            raise PrinterOffline(
                f"receipt printer {self.url} not usable ({type(exc).__name__}: {exc})"
            ) from None
        return device

    def _query(self, device: Any) -> PrinterStatus:
        try:
            online = device.is_online()
            if not online:
                return PrinterStatus.OFFLINE
            paper = device.paper_status()
        except TimeoutError:
            raise DeviceTimeout(
                f"receipt printer {self.url} did not answer a status request; check it is switched on"
            ) from None
        except Exception as exc:  # transport errors differ per back-end (usb.core, serial, socket)
            raise PrinterOffline(
                f"receipt printer {self.url}: status request failed ({exc})"
            ) from None
        return {0: PrinterStatus.PAPER_OUT, 1: PrinterStatus.PAPER_LOW}.get(
            paper, PrinterStatus.READY
        )

    def status(self) -> PrinterStatus:
        """Never raises: a printer that cannot be asked is OFFLINE."""
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
        data = encode_document(document, self.setup)
        with self._lock:
            device = self._open()
            try:
                if self._check_status:
                    self._raise_for(self._query(device), before=True)
                try:
                    device._raw(data)
                except Exception as exc:
                    # A device driver boundary: the transports raise their own families (OSError,
                    # usb.core.USBError, serial.SerialException); the cause stays chained.
                    raise PrinterOffline(
                        f"receipt printer {self.url}: connection lost while printing ({exc}); the receipt was not printed"
                    ) from exc
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
            raise PrinterOffline(
                f"receipt printer {self.url} reports offline (cover open or error){tail}"
            )
        if state is PrinterStatus.PAPER_LOW:
            log.warning("receipt printer %s: paper near end", self.url)

    def close(self) -> None:
        pass


def _close_quietly(device: Any) -> None:
    try:
        device.close()
    except Exception as exc:
        # A device driver boundary: closing a half-dead transport must not hide the real error.
        log.debug("closing printer transport: %s", exc, exc_info=exc)


def _safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:40] or "receipt"


def open_printer(
    url: str,
    profile: str = "TM-T88V",
    width: int = 0,
    *,
    base: Path | None = None,
    timeout_s: float = 3.0,
    render: Render = "auto",
    codepage: str = "",
    font: Font = "A",
) -> ReceiptPrinterDevice:
    """A printer from its device string; raises PrinterError for a string or profile it cannot use.

    `file:DIR` (relative to `base`), `net:HOST[:PORT]` (9100 by default), `serial:PATH[:BAUD]`,
    `usb:VID:PID` (hex), `none`. `width` 0 takes the columns from the profile and font.
    """
    scheme, _, rest = url.partition(":")
    scheme = scheme.strip().lower()
    if scheme == "none" or not url.strip():
        return NoPrinter()
    setup = printer_setup(profile, render=render, codepage=codepage, font=font, width=width)
    transport_profile = setup.model.escpos_profile
    if scheme == "file":
        folder = Path(rest or "receipts").expanduser()
        if not folder.is_absolute() and base is not None:
            folder = base / folder
        return FilePrinter(folder, setup)
    if scheme == "net":
        host, _, port_text = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "9100")
        try:
            port = int(port_text or 9100)
        except ValueError:
            raise PrinterError(
                f"printer url {url!r}: port must be a number, e.g. net:192.168.1.50:9100"
            ) from None
        if not host:
            raise PrinterError(f"printer url {url!r}: expected net:HOST[:PORT]")

        def net() -> Any:
            # python-escpos only for a real printer (see _escpos_tables).
            from escpos.printer import Network  # lazy: python-escpos, real printers only

            return Network(host, port=port, timeout=timeout_s, profile=transport_profile)

        return EscposPrinter(url, net, setup)
    if scheme == "serial":
        path, baud = rest, 19200
        head, _, tail = rest.rpartition(":")
        if head and tail.isdigit():
            path, baud = head, int(tail)
        if not path:
            raise PrinterError(f"printer url {url!r}: expected serial:/dev/ttyUSB0[:BAUD]")

        def serial_printer() -> Any:
            # python-escpos only for a real printer (see _escpos_tables).
            from escpos.printer import Serial  # lazy: python-escpos, real printers only

            class OneByteStatusSerial(Serial):
                # A status answer is one byte; python-escpos's read(16) would wait out the timeout.
                def _read(self) -> bytes:
                    return self.device.read(1)

            return OneByteStatusSerial(
                devfile=path,
                baudrate=baud,
                timeout=timeout_s,
                dsrdtr=False,
                profile=transport_profile,
            )

        return EscposPrinter(url, serial_printer, setup)
    if scheme == "usb":
        try:
            vid_text, pid_text = rest.split(":")[:2]
            vid, pid = int(vid_text, 16), int(pid_text, 16)
        except ValueError:
            raise PrinterError(
                f"printer url {url!r}: expected usb:VID:PID in hex, e.g. usb:04b8:0202"
            ) from None

        def usb() -> Any:
            # python-escpos only for a real printer (see _escpos_tables).
            from escpos.printer import Usb  # lazy: python-escpos, real printers only

            if not Usb.is_usable():
                raise PrinterOffline("USB printers need pyusb: pip install pyusb")
            return Usb(vid, pid, timeout=int(timeout_s * 1000), profile=transport_profile)

        return EscposPrinter(url, usb, setup)
    raise PrinterError(
        f"printer url {url!r}: unknown kind {scheme!r} (expected usb:, serial:, net:, file: or none)"
    )


def open_configured_printer(
    section: Any, url: str | None = None, *, base: Path | None = None, timeout_s: float = 3.0
) -> ReceiptPrinterDevice:
    """`open_printer` with the `[printer]` section's profile, width, font, render and codepage;
    `url` names another printer with the same settings (the staff printer)."""
    return open_printer(
        section.url if url is None else url,
        section.profile,
        section.width,
        base=base,
        timeout_s=timeout_s,
        render=section.render,
        codepage=section.codepage,
        font=section.font,
    )
