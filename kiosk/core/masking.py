"""Card-number and e-mail masking used on screens, receipts and in logs, so a full card number
or address is never shown.

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


def mask_email(address: str, mask_char: str = MASK_CHAR) -> str:
    """`janis@epasts.lv` -> `j***@e***.lv`: the first letter of the name and of the domain, and the
    top-level domain, enough for the patron to recognise their address and no more."""
    text = (address or "").strip()
    name, at, domain = text.rpartition("@")
    if not text:
        return ""
    if not at or not name or not domain:
        return mask_char * 3
    host, dot, top = domain.rpartition(".")
    if not dot or not host:
        host, top = domain, ""
    masked = f"{name[0]}{mask_char * 3}@{host[0]}{mask_char * 3}"
    return f"{masked}.{top}" if top else masked
