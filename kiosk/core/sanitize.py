"""One sanitiser per sink for text that comes from outside the kiosk (titles, screen and print
messages from the library system, patron names, item ids): the printer, the e-mail, the sorter
link and the log. Each keeps only what its sink prints as a character and puts a visible
substitute in place of anything else, so a control byte in a title can never reset the printer,
cut the paper, pulse a cash drawer, take over a log reader's terminal or add a mail header. Pure: no I/O.

    for_printer("Grāmata\x1bp\x00", printable=covered)  -> "Grāmata■p■"
    for_email("Title\r\nBcc: x")                        -> "Title  Bcc: x"
    for_log("gone\x1b[2J\r")                            -> "gone\\x1b[2J\\r"
    for_sorter("3000\x01")                              -> "3000?"
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

# The printer's substitutes, most visible first: the first one the sink can print is used.
PRINTER_SUBSTITUTES = ("■", "¤", "?")
EMAIL_SUBSTITUTE = "\ufffd"  # the Unicode replacement character, shown by every mail reader
SORTER_SUBSTITUTE = "?"

_WHITESPACE_CONTROLS = frozenset("\t\n\v\f\r\x1c\x1d\x1e\x1f\x85\u2028\u2029")
# Unicode categories that are never a character a reader should see: controls, format
# characters (bidi overrides, zero-width), surrogates, private use, unassigned.
_HIDDEN = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def is_plain_character(ch: str) -> bool:
    """True for a character a sink may show as it is: not a control or an invisible format mark."""
    return unicodedata.category(ch) not in _HIDDEN


def for_printer(text: str, printable: Callable[[str], bool] = lambda ch: True) -> str:
    """Text for a receipt printer: NFC composed; line breaks and tabs become spaces; every other
    control or format character, and every character `printable` refuses (not in the printer's
    code pages or font), becomes a visible substitute, one per character."""
    substitute = next((s for s in PRINTER_SUBSTITUTES if printable(s)), "?")
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif not is_plain_character(ch):
            out.append(substitute)
        elif printable(ch):
            out.append(" " if unicodedata.category(ch) == "Zs" else ch)
        else:
            # A compatibility form (ligature ﬁ, full-width Ａ) prints as its plain letters.
            plain = unicodedata.normalize("NFKC", ch)
            if plain != ch and plain and all(is_plain_character(c) and printable(c) for c in plain):
                out.append(plain)
            else:
                out.append(substitute)
    return "".join(out)


def for_email(text: str, *, multiline: bool = False) -> str:
    """Text for a plain-text e-mail (UTF-8): controls and format characters become U+FFFD; line
    breaks are kept only in a multi-line body, never in a header field."""
    out: list[str] = []
    for ch in text:
        if ch == "\n" and multiline:
            out.append(ch)
        elif ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif not is_plain_character(ch):
            out.append(EMAIL_SUBSTITUTE)
        else:
            out.append(ch)
    return "".join(out)


def for_log(text: str) -> str:
    """Text for a log record: every control or format character except line feed and tab is
    written as its escape (\\r, \\x1b, \\u202e), so a value cannot drive the terminal of whoever
    reads the log (colours, cursor moves, a carriage return over the line) or hide what it
    contains behind a bidi override. Line feeds stay: every handler frames its records (JSON
    lines, the journal's native protocol), so a line feed cannot start a forged record."""
    out: list[str] = []
    for ch in text:
        if ch.isprintable() or ch in " \n\t":
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def for_sorter(text: str) -> str:
    """Text for the sorter's line protocol (UTF-8, one request per line): a control or format
    character becomes `?`. The sorter refuses a value this changes rather than send an altered one."""
    return "".join(ch if is_plain_character(ch) else SORTER_SUBSTITUTE for ch in text)
