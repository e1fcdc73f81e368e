"""Masking of SIP2 wire text for logs, the technician screen and the journal.

Passwords (`CO` login password, `AD` patron PIN, `AC` terminal password) are blanked entirely
and the patron identifier `AA` keeps only its last four characters, so a wire log can be
shown or shipped without exposing secrets.
"""

from __future__ import annotations

import re

from kiosk.sync.sip2.codec import FIXED_FIELDS, Message

SECRET_FIELDS = frozenset({"CO", "AD", "AC"})
CARD_FIELDS = frozenset({"AA"})

_FIXED_LENGTH = {cmd: sum(w for _, w in spec) for cmd, spec in FIXED_FIELDS.items()}
_TRAILER_RE = re.compile(
    r"(?:AY[0-9]\|?)?AZ[0-9A-Fa-f]{4} *[\r\n]*\Z|AY[0-9]\|?[\r\n]*\Z|[\r\n]+\Z"
)


def mask_card(card: str) -> str:
    """A card number with all but its last four characters replaced by `*`."""
    if len(card) <= 4:
        return "*" * len(card)
    return "*" * (len(card) - 4) + card[-4:]


def _mask_value(fid: str, value: str) -> str:
    if fid in SECRET_FIELDS:
        return ""
    if fid in CARD_FIELDS:
        return mask_card(value)
    return value


def mask(text: str, delimiter: str = "|") -> str:
    """The wire text of one message with CO/AD/AC blanked and AA masked; framing is kept."""
    if not text:
        return text
    lead = len(text) - len(text.lstrip("\r\n"))
    head, body = text[:lead], text[lead:]
    m = _TRAILER_RE.search(body)
    tail = ""
    if m is not None:
        tail = body[m.start() :]
        body = body[: m.start()]
    start = 2 + _FIXED_LENGTH.get(body[:2], 0)
    if start >= len(body):
        return head + body + tail
    if body[start] == delimiter:
        start += 1
    chunks = body[start:].split(delimiter)
    for i, chunk in enumerate(chunks):
        fid = chunk[:2]
        if fid in SECRET_FIELDS or fid in CARD_FIELDS:
            chunks[i] = fid + _mask_value(fid, chunk[2:])
    return head + body[:start] + delimiter.join(chunks) + tail


def mask_message(msg: Message) -> Message:
    """A copy of a decoded message with the same fields masked (for the journal)."""
    return Message(
        command=msg.command,
        fixed=dict(msg.fixed),
        fields=[(fid, _mask_value(fid, value)) for fid, value in msg.fields],
        sequence=msg.sequence,
        checksum=msg.checksum,
        checksum_ok=msg.checksum_ok,
        checksum_variant=msg.checksum_variant,
        notes=list(msg.notes),
    )
