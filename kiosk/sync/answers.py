"""Reading the library system's SIP2 answers into domain values: flags, blocks, refusals, fees,
return routing, PIN checks and status sets; and whether an identifier can be sent at all.

Pure functions over decoded messages and text, with no link, journal or clock: the circulation
service and the forwarder both read answers through them, and tests call them directly
(tests/sync/test_answers.py).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from kiosk.config import Sip2Section
from kiosk.core.domain import (
    PATRON_STATUS_FLAGS,
    AlertType,
    BlockReason,
    Fee,
    Refusal,
    Routing,
)
from kiosk.core.money import parse_amount
from kiosk.sync.sip2.codec import Message

# BX positions (docs/protocols/sip2.md §6) by request command.
CHARGED_STATUSES = frozenset({"04", "05"})
ON_HOLD_STATUSES = frozenset({"08"})


def unsendable(value: str, sip2: Sip2Section, what: str = "item id") -> str:
    """Why `value` cannot go to the library system as an identifier, or "" when it can.

    Checked before anything is journaled: an id the link's character set cannot carry (a
    Cyrillic letter on a cp1257 site), or one holding the field delimiter or a control
    character (which the encoder would strip, sending another id), must never reach the queue.
    """
    if not value.strip():
        return f"the {what} is empty"
    bad = sorted({c for c in value if c == sip2.field_delimiter or unicodedata.category(c) == "Cc"})
    if bad:
        return (
            f"the {what} {value!r} holds {', '.join(repr(c) for c in bad)}, which SIP2 cannot carry"
        )
    try:
        data = value.encode(sip2.encoding)
    except UnicodeEncodeError as exc:
        return f"the {what} {value!r} has {value[exc.start : exc.end]!r}, which the library system's character set {sip2.encoding} cannot carry"
    except LookupError:
        return f"sip2.encoding {sip2.encoding!r} is not a known character set"
    if len(data) > 255:
        return f"the {what} is longer than 255 bytes"
    return ""


def yes(value: str) -> bool:
    """Only `Y` is true in SIP2 flags (docs/protocols/sip2.md §6)."""
    return value.strip().upper() == "Y"


def screen_text(msg: Message) -> str:
    return " ".join(v.strip() for v in msg.get_all("AF") if v.strip())


def patron_name(value: str) -> str:
    """AE as a name to show: empty when it has no letters or digits at all.

    Polaris answers AE=", " (an empty "last, first") for a patron it does not know.
    """
    if all(c.isspace() or unicodedata.category(c)[0] in "PZ" for c in value):
        return ""
    return value


def count_value(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdigit() else None


def blocks_from_status(status: str) -> tuple[BlockReason, ...]:
    """The 14 SIP2 patron-status positions as block reasons; only `Y` counts."""
    return tuple(
        flag
        for flag, ch in zip(PATRON_STATUS_FLAGS, status.ljust(14), strict=False)
        if ch.upper() == "Y"
    )


# Last-resort hints in the ACS's own words (Latvian, English, Russian), lower-case.
_KEYWORDS: tuple[tuple[Refusal, tuple[str, ...]], ...] = (
    (
        Refusal.ON_HOLD_FOR_OTHER,
        ("hold", "reserv", "rezervē", "pasūtīj", "rindā", "брон", "зарезерв"),
    ),
    (
        Refusal.NOT_FOR_LOAN,
        (
            "not for loan",
            "not loanable",
            "reference",
            "neizsniedz",
            "uz vietas",
            "uzziņu",
            "не выда",
            "читальн",
        ),
    ),
    (Refusal.RENEWAL_LIMIT, ("renewal limit", "too many renewals", "pagarināj", "продлен")),
    (Refusal.LIMIT_REACHED, ("limit", "too many", "par daudz", "limits", "лимит", "слишком много")),
    (
        Refusal.ALREADY_ON_LOAN,
        ("already", "checked out to", "on loan", "jau izsniegts", "izsniegts citam", "уже выдан"),
    ),
    (Refusal.NOT_ON_LOAN, ("not checked out", "not on loan", "nav izsniegts", "не выдан")),
    (
        Refusal.UNKNOWN_ITEM,
        (
            "unknown item",
            "not found",
            "no such item",
            "nav atrasts",
            "nezināms",
            "не найден",
            "неизвестн",
        ),
    ),
    (Refusal.FEE_REQUIRED, ("fee", "fine", "maksa", "sods", "штраф", "плат")),
    (Refusal.PATRON_BLOCKED, ("blocked", "bloķēts", "expired", "beidzies", "заблок", "истек")),
    (
        Refusal.OTHER_LIBRARY,
        ("other library", "another library", "citai bibliotēkai", "другой библиотек"),
    ),
)


# SIP2 has no "card expired" flag: ACSs say it in AF (and set charge privileges denied). English
# as Koha ("Patron expired on 2026-01-31") and others word it, Latvian and Russian.
_CARD_EXPIRED = re.compile(
    r"\b(?:card|account|patron|membership|registration|privileges)\s+(?:has\s+|have\s+|is\s+|was\s+)?expired\b"
    r"|\bexpired\s+(?:card|account|patron|membership)"
    r"|derīgum\w*\s+(?:termiņš\s+)?(?:ir\s+)?(?:beidzies|beidzās|beidzas)"
    r"|kart\w*\s+(?:ir\s+)?nederīg"
    r"|срок\s+действия\s+(?:\w+\s+){0,2}?(?:билет|карт|абонемент|регистрац|учётн|учетн)\w*"
    r"(?:\s+\w+)?\s+(?:истёк|истек|закончил)"
    r"|\b(?:билет|карт|абонемент)\w*\s+(?:\w+\s+)?(?:просрочен|истёк|истек)",
    re.IGNORECASE,
)


def says_card_expired(text: str) -> bool:
    """Whether an ACS screen message says the patron's card (account) has expired."""
    return bool(_CARD_EXPIRED.search(text))


def refusal_from_text(text: str) -> Refusal:
    low = text.lower()
    for refusal, words in _KEYWORDS:
        if any(w in low for w in words):
            return refusal
    return Refusal.OTHER


_AMOUNT_RE = re.compile(r"(-?\d+(?:[.,]\d{1,2}))\s*(?:EUR|€)?\s*$")


def fee_from_text(text: str) -> Fee:
    """An AV fine-item line; the trailing amount, when there is one, is split off."""
    m = _AMOUNT_RE.search(text.strip())
    if m:
        return Fee(
            description=text[: m.start()].strip(" :-") or text.strip(),
            amount=m.group(1).replace(",", "."),
        )
    return Fee(description=text.strip())


def checkin_routing(resp: Message) -> Routing:
    """Where a checked-in item goes, from a 10's alert flag, sort bin (CL) and 3M extension fields."""
    cv = resp.get("CV").strip()
    try:
        alert_type = AlertType(cv) if cv else AlertType.NONE
    except ValueError:
        alert_type = AlertType.OTHER
    return Routing(
        sort_bin=resp.get("CL"),
        alert=yes(resp.fixed.get("alert", "")),
        alert_type=alert_type,
        destination=resp.get("CT"),
        permanent_location=resp.get("AQ"),
        hold_patron_id=resp.get("CY"),
        hold_patron_name=resp.get("DA"),
        media_type=resp.get("CK"),
        owner=resp.get("BG"),
    )


def hold_trapped(ok: bool, routing: Routing) -> bool:
    """A check-in answered ok=0 yet with a hold alert (CV 01/02): Koha's answer for an item that
    was not on loan when it traps a hold for it (bug 13411). The item was handled, not refused."""
    return (
        not ok
        and routing.alert
        and routing.alert_type in (AlertType.HOLD_HERE, AlertType.HOLD_OTHER_BRANCH)
    )


def routing_json(routing: Routing) -> dict[str, Any]:
    """What the journal keeps of a routing (no hold patron: ids stay out of results)."""
    return {
        "sort_bin": routing.sort_bin,
        "alert": routing.alert,
        "alert_type": routing.alert_type.value,
        "destination": routing.destination,
    }


def pin_accepted(msg: Message, pin: str | None) -> bool | None:
    """CQ as the patron's PIN check. Without a PIN, CQ=N says the library system wants one (the
    session asks for it under an optional PIN policy; a card-only site ignores it) - not a wrong
    PIN, so it never becomes a WRONG_PIN block."""
    if not msg.has("CQ"):
        return None
    if pin:
        return yes(msg.get("CQ"))
    return False if not yes(msg.get("CQ")) else None


def refuses(msg: Message, pin: str | None) -> bool:
    """A 24/64 that does not let the patron in: unknown (BL=N) or a PIN it rejected (CQ=N)."""
    return msg.get("BL", "Y").upper() == "N" or bool(
        pin and msg.has("CQ") and not yes(msg.get("CQ"))
    )


def over_limit(fee: str, limit: str) -> bool:
    """BV above CC; a zero or missing limit states none (Polaris sends CC0.00 for unknown patrons)."""
    amount, cap = parse_amount(fee), parse_amount(limit)
    return amount is not None and cap is not None and cap > 0 and amount > cap
