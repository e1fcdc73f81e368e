"""Card-number masking used on screens, receipts and in logs, so a full card number is never shown.

ASCII `*` is used (not a bullet) because receipt printers' code pages may lack the bullet sign.
"""

from __future__ import annotations

MASK_CHAR = "*"


def mask_card(number: str, keep: int = 4, mask_char: str = MASK_CHAR) -> str:
    """`LV0001` -> `**0001`: all but the last `keep` characters replaced; short numbers fully masked.

    A number no longer than `keep` would be shown whole, so it is masked entirely instead.
    """
    text = (number or "").strip()
    if not text:
        return ""
    if len(text) <= keep:
        return mask_char * len(text)
    return mask_char * (len(text) - keep) + text[-keep:]
