"""Patron-facing text in Latvian, English and Russian from the gettext catalogs in kiosk/locale,
plus the local formats for dates (dd.mm.yyyy) and money (0,50 €).

The .po files are read directly (no compile step), so a site can edit a text and restart.
"""

from __future__ import annotations

import ast
import gettext
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path

from kiosk.errors import KioskError

log = logging.getLogger(__name__)

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "kiosk"

# Each language is named in itself on the language buttons, never translated.
LANGUAGE_NAMES: dict[str, str] = {"lv": "Latviešu", "en": "English", "ru": "Русский"}

_DATE_FORMATS = (
    "%Y%m%d    %H%M%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%Y%m%d",
)


class CatalogError(KioskError):
    """A translation catalog (.po file) is missing or malformed."""


@dataclass
class Translator:
    """The texts and formats of one language."""

    language: str
    messages: dict[str, str | list[str]] = field(default_factory=dict)
    plural: Callable[[int], int] = staticmethod(lambda n: int(n != 1))

    def gettext(self, msgid: str) -> str:
        text = self.messages.get(msgid)
        if isinstance(text, str) and text:
            return text
        return msgid

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        forms = self.messages.get(singular)
        if isinstance(forms, list):
            index = self.plural(n)
            if 0 <= index < len(forms) and forms[index]:
                return forms[index]
        return singular if n == 1 else plural

    def format_date(self, value: str | date | datetime | None) -> str:
        """dd.mm.yyyy in every language (the Latvian and Russian convention); unparsable text verbatim."""
        parsed = parse_date(value)
        if parsed is None:
            return (value or "").strip() if isinstance(value, str) else ""
        return parsed.strftime("%d.%m.%Y")

    def format_datetime(self, value: datetime) -> str:
        return value.strftime("%d.%m.%Y %H:%M")

    def format_money(self, amount: str, currency: str = "EUR", *, symbol: bool = True) -> str:
        """`2.50` -> `2,50 €` (lv, ru) or `€2.50` (en); `symbol=False` writes the currency code."""
        try:
            value = Decimal((amount or "0").strip().replace(",", "."))
        except InvalidOperation:
            return f"{amount} {currency}".strip()
        sign = "€" if symbol and currency.upper() == "EUR" else currency
        text = f"{value:.2f}"
        if self.language == "en":
            return f"{sign}{text}" if sign == "€" else f"{text} {sign}"
        return f"{text.replace('.', ',')} {sign}"


def parse_date(value: str | date | datetime | None) -> date | None:
    """A due date from the library system (SIP2 18-character form, ISO or dd.mm.yyyy), or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return _parse_date_text(value.strip())


# Every listed item's due date is formatted again at each render of its screen (several a frame
# while a stack is placed), and the SIP2 form, the most common, was the last of the formats
# tried: five failed strptime calls before the one that read it (docs/performance.md, "A due
# date read once"). A visit's dates are few; a date is immutable, so one is shared safely.
@lru_cache(maxsize=1024)
def _parse_date_text(text: str) -> date | None:
    if len(text) == 18 and text[:8].isdigit():
        text = text[:8]  # SIP2 dates carry a time zone in positions 8-11; the day is enough
    if len(text) == 8 and text.isdigit() and text.isascii():
        try:  # yyyymmdd, as strptime's "%Y%m%d" reads eight digits
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    return read_by_formats(text)


def read_by_formats(text: str) -> date | None:
    """The day `text` spells in the first of the accepted formats that reads it, by strptime."""
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


# A quoted string holding none of these is its text between the quotes; one holding any is read
# as the Python literal it is (escapes, adjacent strings) or refused (a NUL).
_NEEDS_PARSING = ('"', "\\", "\0")


def _unquote(chunk: str, path: Path, lineno: int) -> str:
    inner = chunk[1:-1]
    if (
        len(chunk) >= 2
        and chunk[0] == chunk[-1] == '"'
        and not any(c in inner for c in _NEEDS_PARSING)
    ):
        # Nearly every catalog line: no escape, so the text is what stands between the quotes
        # (literal_eval's parse of each of the ~900 lines a language has cost 5 ms before the
        # kiosk's first frame; docs/performance.md, cold start).
        return inner
    try:
        value = ast.literal_eval(chunk)
    except (ValueError, SyntaxError):
        raise CatalogError(
            f"{path}:{lineno}: expected a quoted string, got {chunk[:40]!r}"
        ) from None
    if not isinstance(value, str):
        raise CatalogError(f"{path}:{lineno}: expected a quoted string, got {chunk[:40]!r}")
    return value


_PO_LINE = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[\d+\])?)\s+(\".*\")$")


def parse_po(text: str, path: Path = Path("<string>")) -> tuple[dict[str, str | list[str]], str]:
    """Entries of a .po file (msgid -> msgstr, or a list for plurals) and its header; fuzzy entries skipped."""
    entries: dict[str, str | list[str]] = {}
    current: dict[str, str] = {}
    key = ""
    fuzzy = False

    def flush() -> None:
        nonlocal current, fuzzy
        if "msgid" in current and not fuzzy:
            msgid = current["msgid"]
            if "msgid_plural" in current:
                forms = [current[k] for k in sorted(k for k in current if k.startswith("msgstr["))]
                entries[msgid] = forms
            else:
                entries[msgid] = current.get("msgstr", "")
        current = {}
        fuzzy = False

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line:
            flush()
            continue
        if line.startswith("#"):
            if line.startswith("#,") and "fuzzy" in line:
                if "msgid" in current:
                    flush()
                fuzzy = True
            continue
        if line.startswith('"'):
            if not key:
                raise CatalogError(f"{path}:{lineno}: a continuation string without a keyword")
            current[key] += _unquote(line, path, lineno)
            continue
        match = _PO_LINE.match(line)
        if not match:
            raise CatalogError(f"{path}:{lineno}: not a .po line: {line[:40]!r}")
        key = match.group(1)
        if key == "msgid" and "msgid" in current:
            flush()
        current[key] = _unquote(match.group(2), path, lineno)
    flush()
    header = entries.pop("", "")
    return entries, header if isinstance(header, str) else ""


def _plural_rule(header: str) -> Callable[[int], int]:
    match = re.search(r"plural=([^;\n]+)", header)
    if not match:
        return lambda n: int(n != 1)
    try:
        return gettext.c2py(match.group(1).strip())
    except (ValueError, SyntaxError):
        raise CatalogError(f"bad Plural-Forms expression {match.group(1)!r}") from None


def catalog_path(language: str, locale_dir: Path = LOCALE_DIR) -> Path:
    return locale_dir / language / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translator(language: str, locale_dir: Path = LOCALE_DIR) -> Translator:
    """The translator for a language; English (the msgids) when no catalog exists."""
    path = catalog_path(language, locale_dir)
    if not path.exists():
        if language != "en":
            log.warning("no catalog for language %r at %s; showing English", language, path)
        return Translator(language)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read catalog ({exc})") from None
    messages, header = parse_po(text, path)
    return Translator(language, messages, _plural_rule(header))


def _(msgid: str) -> str:
    """Marks a text for the catalogs; translated later with `translator(lang).gettext`."""
    return msgid


def N_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a plural text for the catalogs."""
    return singular, plural
