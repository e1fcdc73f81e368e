"""The receipt printer models the kiosk knows, read from `printer_tables.toml`: paper width in dots,
columns in fonts A and B, and each family's own character-table numbering (`ESC t n`) with the
tables' characters. This is what the printer does with the bytes, kept apart from the encoder
(which takes its tables from python-escpos's capabilities database or `[printer] codepage`), so
the transcript decoder can show what a printer of that family would really print.

    model = get_model("SRP-350III")      # PrinterModelError for an unknown name, with close ones
    model.numbering[30]                  # "CP775"
    charset("CP775")[0xA0 - 0x80]        # "Ā"
"""

from __future__ import annotations

import codecs
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from kiosk.devices.errors import DeviceError

Font = Literal["A", "B"]


class PrinterModelError(DeviceError):
    """A printer profile name the kiosk does not know or cannot drive."""


@dataclass(frozen=True)
class PrinterModel:
    """One printer model: what it prints per table number, its width and its columns."""

    name: str
    vendor: str
    family: str
    escpos_profile: str
    dots: int
    columns_a: int
    columns_b: int
    numbering: dict[int, str]

    def columns(self, font: Font = "A") -> int:
        return self.columns_b if font == "B" else self.columns_a

    def __hash__(self) -> int:
        return hash(self.name)


@cache
def _data() -> dict[str, Any]:
    # Beside this module, as the kiosk's other data files are read (importlib.resources would
    # add 3 ms of imports to reading the configuration, before the first frame).
    text = Path(__file__).with_name("printer_tables.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def model_names() -> tuple[str, ...]:
    """Every profile name `[printer] profile` accepts."""
    return tuple(_data()["models"])


@cache
def get_model(name: str) -> PrinterModel:
    """The model of this exact name; PrinterModelError naming the closest known names if none."""
    data = _data()
    entry = data["models"].get(name)
    if entry is None:
        reason = data["unsupported"].get(name)
        if reason:
            raise PrinterModelError(f"printer profile {name!r}: {reason}")
        import difflib  # lazy: only a wrong name needs it, not every start

        names = model_names()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        close += [
            n
            for n in difflib.get_close_matches(
                name.upper(), [n.upper() for n in names], n=3, cutoff=0.5
            )
            if n not in close
        ]
        # Map upper-case suggestions back to the real spelling.
        spelled = [next(real for real in names if real.upper() == c.upper()) for c in close]
        hint = (
            f"did you mean {', '.join(dict.fromkeys(spelled))}?"
            if spelled
            else f"known: {', '.join(names)}"
        )
        raise PrinterModelError(f"printer profile {name!r} is unknown; {hint}")
    numbering = {int(n): page for n, page in data["numbering"][entry["numbering"]].items()}
    return PrinterModel(
        name=name,
        vendor=entry["vendor"],
        family=entry["numbering"],
        escpos_profile=entry["escpos_profile"],
        dots=int(entry["dots"]),
        columns_a=int(entry["columns_a"]),
        columns_b=int(entry["columns_b"]),
        numbering=numbering,
    )


def check_profile(name: str) -> str | None:
    """Why `name` cannot be used as `[printer] profile` (one line), or None."""
    try:
        get_model(name)
    except PrinterModelError as exc:
        return str(exc)
    return None


def charset(page: str) -> str | None:
    """The 128 characters of bytes 0x80-0xFF in this table (U+FFFD where it has none), or None
    when the kiosk has no data for the table."""
    text = _data()["charsets"].get(page)
    return text if isinstance(text, str) and len(text) == 128 else None


# -- code pages: the site's table list (`[printer] codepage`), checked when the configuration is
# read; here rather than in kiosk/devices/printer.py so that check does not load the printer.

_CODEC_NAMES = {"RK1048": "kz1048"}


def codec_of(page: str) -> str | None:
    """The Python codec of a single-byte code page name (CP775, ISO_8859-2, CP1257), or None."""
    name = _CODEC_NAMES.get(page) or page.lower().replace("iso_", "iso").replace("-", "_")
    try:
        codec = codecs.lookup(name).name
    except LookupError:
        return None
    try:
        "\u3042".encode(codec)  # a multi-byte (CJK) codec: not an ESC t table
    except UnicodeEncodeError:
        return codec
    return None


def parse_codepage(text: str) -> tuple[tuple[int, str], ...]:
    """`"26=CP1257, 17=CP866"` -> ((26, "CP1257"), (17, "CP866")); ValueError says what is wrong."""
    pairs: list[tuple[int, str]] = []
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        number, sep, page = part.partition("=")
        if not sep or not number.strip().isdigit() or not 0 <= int(number) <= 255:
            raise ValueError(
                f'expected NUMBER=CODEPAGE pairs such as "26=CP1257, 17=CP866", got {part!r}'
            )
        page = page.strip().upper()
        if codec_of(page) is None:
            raise ValueError(
                f"code page {page!r} is not a single-byte table the kiosk can encode (e.g. CP1257, CP775, CP866)"
            )
        pairs.append((int(number), page))
    return tuple(pairs)
