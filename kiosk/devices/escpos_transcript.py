"""Decode ESC/POS bytes (what the kiosk sends to the receipt printer) into a readable transcript of
what a given printer model would print, and optionally a PNG.

Code-page switches (`ESC t n`) are resolved through the target printer's own table numbering and
character tables (`kiosk/devices/printer_tables.toml`), never through the encoder's codecs, so a
receipt encoded for the wrong numbering reads wrong here too. A table number the printer does not
have is marked; raster images (`GS v 0`) are kept as images and marked `<image WxH>`. Used for the
`file:` printer's .txt files next to each receipt, and by tests to assert on what a patron would
read. Unknown commands are shown as `<ESC x>` markers, never dropped silently.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.devices.errors import DeviceError
from kiosk.devices.printer_models import PrinterModelError, charset, get_model

if TYPE_CHECKING:
    from PIL import ImageFont

log = logging.getLogger(__name__)

ESC, GS, DLE, FS, LF, CR, NUL = 0x1B, 0x1D, 0x10, 0x1C, 0x0A, 0x0D, 0x00

# ESC commands followed by a fixed number of argument bytes that do not change the text.
_ESC_SKIP = {
    ord("-"): 1,
    ord("G"): 1,
    ord("M"): 1,
    ord("{"): 1,
    ord("V"): 1,
    ord("3"): 1,
    ord("2"): 0,
    ord("p"): 3,
    ord("R"): 1,
    ord("c"): 2,
    ord(" "): 1,
    ord("U"): 1,
}
# GS commands with fixed argument counts (barcode height/width/font/HRI, margins).
_GS_SKIP = {
    ord("h"): 1,
    ord("w"): 1,
    ord("f"): 1,
    ord("H"): 1,
    ord("B"): 1,
    ord("b"): 1,
    ord("L"): 2,
    ord("W"): 2,
    ord("a"): 1,
    ord("r"): 1,
    ord("I"): 1,
}


class TranscriptError(DeviceError):
    """The bytes are not ESC/POS this decoder can follow (a command cut off in the middle)."""


@dataclass(frozen=True)
class Style:
    bold: bool = False
    double_height: bool = False
    double_width: bool = False
    align: str = "left"


@dataclass
class Line:
    """One printed line: text runs with their style (the alignment of the line's first run wins)."""

    runs: list[tuple[str, Style]] = field(default_factory=list)
    marker: str = ""  # <cut>, <barcode ...>, <image WxH> lines carry no text runs
    image: int = -1  # index into Transcript.images for an <image> line

    @property
    def text(self) -> str:
        return self.marker or "".join(t for t, _ in self.runs)

    @property
    def align(self) -> str:
        return self.runs[0][1].align if self.runs else "left"


@dataclass(frozen=True)
class RasterImage:
    """One `GS v 0` block: `width` dots wide, `height` rows, `data` packed rows (1 = black)."""

    width: int
    height: int
    data: bytes

    def to_image(self) -> Any:
        """As a Pillow image in mode "1" (black ink = 0, white paper = 1)."""
        from PIL import Image, ImageOps  # lazy: Pillow only draws receipts

        ink = Image.frombytes("1", (self.width, self.height), self.data)
        return ImageOps.invert(ink.convert("L")).convert("1")


@dataclass
class Transcript:
    lines: list[Line]
    code_pages: list[
        str
    ]  # every code page selected, in order ("undefined 33" for a number the printer lacks)
    images: list[RasterImage] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # every command seen, e.g. "ESC t", "GS V"

    def image_blocks(self) -> list[Any]:
        """Raster images that follow each other with nothing printed between, joined top to bottom."""
        blocks: list[list[RasterImage]] = []
        previous = False
        for line in self.lines:
            if line.image >= 0:
                if not previous:
                    blocks.append([])
                blocks[-1].append(self.images[line.image])
            previous = line.image >= 0
        from PIL import Image  # lazy: Pillow only draws receipts

        joined = []
        for parts in blocks:
            width = max(part.width for part in parts)
            image = Image.new("1", (width, sum(part.height for part in parts)), 1)
            y = 0
            for part in parts:
                image.paste(part.to_image(), (0, y))
                y += part.height
            joined.append(image)
        return joined

    @property
    def text(self) -> str:
        """Plain text, one printed line per line (no style markers)."""
        return "\n".join(line.text for line in self.lines)

    def render(self, width: int = 42) -> str:
        """Readable transcript: alignment applied within `width`, bold as **x**, double size as ^^x^^."""
        out: list[str] = []
        for line in self.lines:
            if line.marker:
                out.append(line.marker)
                continue
            parts = []
            for text, style in line.runs:
                if not text:
                    continue
                if style.bold:
                    text = f"**{text}**"
                if style.double_height or style.double_width:
                    text = f"^^{text}^^"
                parts.append(text)
            text = "".join(parts)
            if line.align == "center":
                text = text.center(width).rstrip()
            elif line.align == "right":
                text = text.rjust(width)
            out.append(text)
        return "\n".join(out) + "\n"


def decode(data: bytes, profile: str = "TM-T88V") -> Transcript:
    """What a printer of model `profile` prints for these bytes; TranscriptError when a command
    is cut off or the model is unknown."""
    try:
        numbering = get_model(profile).numbering
    except PrinterModelError as exc:
        raise TranscriptError(str(exc)) from None
    lines: list[Line] = []
    images: list[RasterImage] = []
    commands: list[str] = []
    line = Line()
    style = Style()
    table: str | None = charset("CP437")  # ESC @ and power-on select table 0
    pages: list[str] = []
    buf = bytearray()
    i = 0
    n = len(data)

    def need(count: int, what: str) -> bytes:
        if i + count > n:
            raise TranscriptError(f"ESC/POS stream ends inside {what} at byte {i} of {n}")
        return data[i : i + count]

    def flush_text() -> None:
        if buf:
            text = "".join(
                chr(b) if b < 0x80 else (table[b - 0x80] if table else "\ufffd") for b in buf
            )
            if line.runs and line.runs[-1][1] == style:
                # a code-page switch splits a word into runs; join them back for reading
                text = line.runs.pop()[0] + text
            line.runs.append((text, style))
            buf.clear()

    def end_line(marker: str = "", image: int = -1) -> None:
        nonlocal line
        flush_text()
        if marker:
            if line.runs:
                lines.append(line)
            lines.append(Line(marker=marker, image=image))
        else:
            lines.append(line)
        line = Line()

    def name(prefix: str, cmd: int) -> str:
        return f"{prefix} {chr(cmd) if 32 < cmd < 127 else hex(cmd)}"

    while i < n:
        b = data[i]
        if b == LF:
            end_line()
            i += 1
        elif b == CR:
            i += 1
        elif b == ESC:
            flush_text()
            cmd = need(2, "an ESC command")[1]
            commands.append(name("ESC", cmd))
            i += 2
            if cmd == ord("@"):
                style = Style()
                table = charset("CP437")
            elif cmd == ord("!"):
                mode = need(1, "ESC !")[0]
                style = replace(
                    style,
                    bold=bool(mode & 0x08),
                    double_height=bool(mode & 0x10),
                    double_width=bool(mode & 0x20),
                )
                i += 1
            elif cmd == ord("E"):
                style = replace(style, bold=bool(need(1, "ESC E")[0] & 1))
                i += 1
            elif cmd == ord("a"):
                style = replace(
                    style,
                    align={
                        0: "left",
                        1: "center",
                        2: "right",
                        48: "left",
                        49: "center",
                        50: "right",
                    }.get(need(1, "ESC a")[0], "left"),
                )
                i += 1
            elif cmd == ord("t"):
                number = need(1, "ESC t")[0]
                i += 1
                page = numbering.get(number)
                if page is None:
                    # The printer ignores a table it does not have and keeps printing with the last one.
                    pages.append(f"undefined {number}")
                    line.runs.append((f"<ESC t {number}: no such table on {profile}>", style))
                else:
                    pages.append(page)
                    table = charset(page)
            elif cmd in (ord("d"), ord("J")):
                count = need(1, "a feed command")[0]
                i += 1
                if cmd == ord("d"):
                    for _ in range(min(count, 10)):
                        end_line()
            elif cmd in _ESC_SKIP:
                need(_ESC_SKIP[cmd], f"ESC {chr(cmd)}")
                i += _ESC_SKIP[cmd]
            else:
                line.runs.append((f"<{name('ESC', cmd)}>", style))
        elif b == GS:
            flush_text()
            cmd = need(2, "a GS command")[1]
            commands.append(name("GS", cmd))
            i += 2
            if cmd == ord("V"):
                mode = need(1, "GS V")[0]
                i += 2 if mode in (65, 66, 97, 98, 103, 104) else 1
                end_line("<cut>")
            elif cmd == ord("!"):
                size = need(1, "GS !")[0]
                style = replace(
                    style, double_width=bool(size & 0xF0), double_height=bool(size & 0x0F)
                )
                i += 1
            elif cmd == ord("k"):
                kind = need(1, "GS k")[0]
                i += 1
                if kind <= 6:
                    end = data.find(b"\x00", i)
                    if end < 0:
                        raise TranscriptError(f"barcode at byte {i} has no NUL terminator")
                    payload, i = data[i:end], end + 1
                else:
                    length = need(1, "GS k length")[0]
                    i += 1
                    payload = need(length, "barcode data")
                    i += length
                end_line(f"<barcode {payload.decode('ascii', errors='replace')}>")
            elif cmd == ord("("):
                head = need(3, "GS ( command")
                length = head[1] + head[2] * 256
                i += 3
                need(length, "GS ( data")
                i += length
                if head[0] == ord("k"):
                    end_line("<qr>")
            elif cmd == ord("v"):
                head = need(6, "GS v 0 header")
                width_bytes = head[2] + head[3] * 256
                height = head[4] + head[5] * 256
                i += 6
                raster = need(width_bytes * height, "GS v 0 raster")
                i += width_bytes * height
                images.append(RasterImage(width_bytes * 8, height, bytes(raster)))
                end_line(f"<image {width_bytes * 8}x{height}>", image=len(images) - 1)
            elif cmd in _GS_SKIP:
                need(_GS_SKIP[cmd], f"GS {chr(cmd)}")
                i += _GS_SKIP[cmd]
            else:
                line.runs.append((f"<{name('GS', cmd)}>", style))
        elif b == DLE:
            need(3, "a DLE command")
            commands.append(f"DLE {data[i + 1]:#04x}")
            i += 3  # real-time status request: nothing printed
        elif b < 0x20 or b == 0x7F:
            flush_text()
            commands.append(f"{b:#04x}")
            line.runs.append((f"<{b:#04x}>", style))
            i += 1
        else:
            buf.append(b)
            i += 1
    flush_text()
    if line.runs:
        lines.append(line)
    return Transcript(lines, pages, images, commands)


def transcript_text(data: bytes, profile: str = "TM-T88V", width: int = 42) -> str:
    """The readable transcript of a receipt's bytes."""
    return decode(data, profile).render(width)


def render_png(data: bytes, path: Path, profile: str = "TM-T88V", width_px: int = 0) -> Path:
    """Draw the receipt as a PNG for people to review: text in DejaVu (double size twice as
    large), raster blocks as the printer would print them; `width_px` 0 = the model's dots."""
    # printer.py imports this module at load time; its font lookup is taken when drawing.
    from PIL import Image, ImageDraw, ImageFont  # lazy: Pillow only draws receipts

    from kiosk.devices.printer import font_path  # lazy: printer.py imports this module

    transcript = decode(data, profile)
    width_px = width_px or get_model(profile).dots + 20
    font_file = font_path()

    def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(font_file), size) if font_file else ImageFont.load_default()

    normal, big = font(20), font(36)
    rows: list[tuple[Line, ImageFont.ImageFont | ImageFont.FreeTypeFont, int]] = []
    for line in transcript.lines:
        large = any(s.double_height for _, s in line.runs)
        height = transcript.images[line.image].height if line.image >= 0 else 44 if large else 26
        rows.append((line, big if large else normal, height))
    image = Image.new("RGB", (width_px, 20 + sum(h for *_, h in rows)), "white")
    draw = ImageDraw.Draw(image)
    y = 10
    for line, fnt, height in rows:
        if line.image >= 0:
            image.paste(transcript.images[line.image].to_image().convert("RGB"), (10, y))
            y += height
            continue
        text = line.text
        x = 10
        if not line.marker:
            text_width = draw.textlength(text, font=fnt)
            if line.align == "center":
                x = max(10, int((width_px - text_width) / 2))
            elif line.align == "right":
                x = max(10, int(width_px - 10 - text_width))
        bold = any(s.bold for _, s in line.runs)
        draw.text(
            (x, y), text, fill="black", font=fnt, stroke_width=1 if bold else 0, stroke_fill="black"
        )
        y += height
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
