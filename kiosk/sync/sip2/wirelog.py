"""Masking of SIP2 wire text for logs, the technician screen and the journal.

Passwords (`CO` login password, `AD` patron PIN, `AC` terminal password) are blanked entirely;
patron identifiers (`AA`, and `CY` the hold patron) keep only their last four characters, as
does a phone number (`BF`); personal names (`AE`, `DA` the hold patron's) keep their initials,
an e-mail address (`BE`) its first letter and domain, a home address (`BD`) nothing; a masked
value is never longer than the original. A wire log
can be shown or shipped without exposing secrets or who borrowed what.
"""

from __future__ import annotations

import re

from kiosk.sync.sip2.codec import Message, identified_start

SECRET_FIELDS = frozenset({"CO", "AD", "AC"})
CARD_FIELDS = frozenset({"AA", "CY", "BF"})
NAME_FIELDS = frozenset({"AE", "DA"})
EMAIL_FIELDS = frozenset({"BE"})
ADDRESS_FIELDS = frozenset({"BD"})
MASKED_FIELDS = SECRET_FIELDS | CARD_FIELDS | NAME_FIELDS | EMAIL_FIELDS | ADDRESS_FIELDS

_FIELD_START_RE = re.compile(r"[A-Z0-9]{2}")
_TRAILER_RE = re.compile(
    r"(?:AY[0-9]\|?)?AZ[0-9A-Fa-f]{4} *[\r\n]*\Z|AY[0-9]\|?[\r\n]*\Z|[\r\n]+\Z"
)


def mask_card(card: str) -> str:
    """A card number with all but its last four characters replaced by `*`."""
    if len(card) <= 4:
        return "*" * len(card)
    return "*" * (len(card) - 4) + card[-4:]


def mask_name(name: str) -> str:
    """A personal name as its initials, no longer than it was: `Anna Bērziņa` → `A*** B******`
    (the same when masked again)."""
    return re.sub(r"\S+", lambda m: m.group(0)[0] + "*" * (len(m.group(0)) - 1), name)


def mask_email(address: str) -> str:
    """An e-mail address with only its first letter and domain: `a***@example.lv`."""
    local, at, domain = address.partition("@")
    if not at:
        return mask_name(local)
    return mask_name(local) + "@" + domain


def mask_value(fid: str, value: str) -> str:
    """One SIP2 field's value as it may appear in a log."""
    if fid in SECRET_FIELDS:
        return ""
    if fid in CARD_FIELDS:
        return mask_card(value.strip())
    if fid in NAME_FIELDS:
        return mask_name(value)
    if fid in EMAIL_FIELDS:
        return mask_email(value)
    if fid in ADDRESS_FIELDS:
        return "*" * len(value)
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
        if fid in MASKED_FIELDS:
            value = fid + mask_value(fid, value[2:])
        out.append(value)
    return head + body[:start] + delimiter.join(out) + tail


def mask_message(msg: Message) -> Message:
    """A copy of a decoded message with the same fields masked (for the journal)."""
    return Message(
        command=msg.command,
        fixed=dict(msg.fixed),
        fields=[(fid, mask_value(fid, value)) for fid, value in msg.fields],
        sequence=msg.sequence,
        checksum=msg.checksum,
        checksum_ok=msg.checksum_ok,
        checksum_variant=msg.checksum_variant,
        notes=list(msg.notes),
    )
