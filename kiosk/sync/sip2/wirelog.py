"""Masking of SIP2 wire text for logs, the technician screen and the journal.

Passwords (`CO` login password, `AD` patron PIN, `AC` terminal password) are blanked entirely
and the patron identifier `AA` keeps only its last four characters, so a wire log can be
shown or shipped without exposing secrets.
"""

from __future__ import annotations

import re

from kiosk.sync.sip2.codec import Message, identified_start

SECRET_FIELDS = frozenset({"CO", "AD", "AC"})
CARD_FIELDS = frozenset({"AA"})

_FIELD_START_RE = re.compile(r"[A-Z0-9]{2}")
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
    # Where the decoder starts reading fields, so a short or shifted fixed part cannot hide an AA.
    start = identified_start(body, delimiter)
    if start >= len(body):
        return head + body + tail
    if body[start] == delimiter:
        start += 1
    # A chunk that cannot start a field continues the previous value (a delimiter inside it).
    groups: list[list[str]] = []
    for chunk in body[start:].split(delimiter):
        if groups and chunk and not _FIELD_START_RE.match(chunk):
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
    out = []
    for group in groups:
        value = delimiter.join(group)
        fid = value[:2]
        if fid in SECRET_FIELDS or fid in CARD_FIELDS:
            value = fid + _mask_value(fid, value[2:])
        out.append(value)
    return head + body[:start] + delimiter.join(out) + tail


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
