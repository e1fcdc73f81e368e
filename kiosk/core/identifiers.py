"""Identifiers a patron or a scanner types in (card numbers, PINs, item ids): taken exactly as
typed or refused, never altered, so what the library system receives is what was entered.

SIP2 separates fields with ``|`` and frames with CR, and a field holds at
most 255 bytes: an identifier with such a character, a NUL, or more bytes than that could only
be sent altered (a PIN ``7391|54`` as ``739154``, a long item id shortened), that is as another
identifier. The circulation layer's encoder refuses them too; refusing them here lets the
screen say what is wrong before anything is sent.
"""

from __future__ import annotations

import enum
import re

MAX_BYTES = 255  # the most a SIP2 field holds, in UTF-8 (the widest encoding a site may use)
_UNSENDABLE = re.compile(r"[|\x00-\x1f\x7f]")


class IdentifierProblem(enum.StrEnum):
    """Why an identifier cannot be sent as typed."""

    EMPTY = "empty"
    CHARACTERS = "characters"  # the field delimiter, a line break, NUL or another control byte
    TOO_LONG = "too_long"


def identifier_problem(text: str | None) -> IdentifierProblem | None:
    """What keeps ``text`` from reaching the library system unchanged, or None when nothing does."""
    if not text:
        return IdentifierProblem.EMPTY
    if _UNSENDABLE.search(text):
        return IdentifierProblem.CHARACTERS
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_BYTES:
        return IdentifierProblem.TOO_LONG
    return None
