"""What speech may say about secrets: a card number only by its last digits, a PIN never.

Speech through a loudspeaker can be overheard, so the spoken forms carry less than the screen:
a card is "the card ending in four five", each PIN key is "digit entered". `redact` is the last
guard before the engine: any registered secret that reaches a spoken text is cut out.
"""

from __future__ import annotations

import re

from kiosk.speech.phrasing import digits

SHOWN_DIGITS = 2  # how many trailing card digits speech may name

_CARD_ENDING = {
    "en": "the card ending in {d}",
    "lv": "karte, kuras numurs beidzas ar {d}",
    "ru": "карта с номером, оканчивающимся на {d}",
}
_DIGIT_ENTERED = {"en": "digit entered", "lv": "cipars ievadīts", "ru": "цифра введена"}
_DIGIT_DELETED = {"en": "digit deleted", "lv": "cipars izdzēsts", "ru": "цифра удалена"}
_HIDDEN = {"en": "hidden", "lv": "slēpts", "ru": "скрыто"}


def card_ending(card: str, lang: str) -> str:
    """The card named by its last digits only, as words."""
    tail = "".join(c for c in card if c.isdigit())[-SHOWN_DIGITS:]
    return _CARD_ENDING[lang].format(d=digits(tail, lang) if tail else "")


def digit_entered(lang: str) -> str:
    return _DIGIT_ENTERED[lang]


def digit_deleted(lang: str) -> str:
    return _DIGIT_DELETED[lang]


def redact(text: str, secrets: set[str] | frozenset[str], lang: str) -> str:
    """`text` with every secret (card numbers, PINs; 3 characters or more) replaced by "hidden".

    A secret is also found when spoken with spaces between its characters ("1 2 3 4").
    """
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) < 3:
            continue
        pattern = r"\s*".join(re.escape(c) for c in secret)
        text = re.sub(pattern, _HIDDEN.get(lang, "hidden"), text, flags=re.IGNORECASE)
    return text
