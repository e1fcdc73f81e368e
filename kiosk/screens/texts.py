"""Plain-language wording (catalog msgids) for refusals, patron blocks and item states, shared by the
screens and the receipts so a patron reads the same reason on both.
"""

from __future__ import annotations

import re

from kiosk.core.domain import BlockReason, Refusal
from kiosk.i18n import _

REFUSAL_TEXTS: dict[Refusal, str] = {
    Refusal.ON_HOLD_FOR_OTHER: _("Reserved for another reader. Please leave it at the desk."),
    Refusal.NOT_FOR_LOAN: _("This item can only be used in the library."),
    Refusal.LIMIT_REACHED: _("You have reached your loan limit."),
    Refusal.SET_INCOMPLETE: _("Part of a set is missing."),
    Refusal.PATRON_BLOCKED: _("Your card cannot be used to borrow. Please ask at the desk."),
    Refusal.UNKNOWN_ITEM: _("This item is not known to the library. Please take it to the desk."),
    Refusal.NOT_ON_LOAN: _("This item is not on loan."),
    Refusal.ALREADY_ON_LOAN: _("This item is on loan to someone else. Please take it to the desk."),
    Refusal.RENEWAL_LIMIT: _("It cannot be renewed again."),
    Refusal.FEE_REQUIRED: _("Borrowing this item costs a fee."),
    Refusal.OFFLINE_NOT_ALLOWED: _(
        "Borrowing is not possible while the library system is offline."
    ),
    Refusal.OFFLINE_LIMIT: _("No more items can be borrowed while the library system is offline."),
    Refusal.OTHER_LIBRARY: _("This item belongs to another library. Please take it to the desk."),
    Refusal.UNREADABLE_TAG: _("The item's tag cannot be read. Please take it to the desk."),
    Refusal.SECURITY_WRITE_FAILED: _("Please take this item to the desk."),
    Refusal.LINK_DOWN: _(
        "The library system is not answering. Please try again or ask at the desk."
    ),
    Refusal.OTHER: _("It cannot be borrowed here. Please ask at the desk."),
}

BLOCK_TEXTS: dict[BlockReason, str] = {
    BlockReason.CARD_EXPIRED: _("Your library card has expired. Please renew it at the desk."),
    BlockReason.CARD_LOST: _("This card has been reported lost. Please ask at the desk."),
    BlockReason.EXCESSIVE_FEES: _("You have unpaid fees. Please pay them at the desk."),
    BlockReason.EXCESSIVE_FINES: _("You have unpaid fines. Please pay them at the desk."),
    BlockReason.TOO_MANY_OVERDUE: _("You have too many overdue items. Please return them first."),
    BlockReason.TOO_MANY_CHARGED: _("You have reached your loan limit."),
    BlockReason.TOO_MANY_LOST: _("Some of your items are marked lost. Please ask at the desk."),
    BlockReason.TOO_MANY_BILLED: _("You have unpaid bills. Please ask at the desk."),
    BlockReason.TOO_MANY_CLAIMS: _("Please ask at the desk about your account."),
    BlockReason.TOO_MANY_RENEWALS: _("You have renewed too many times. Please ask at the desk."),
    BlockReason.RECALL_OVERDUE: _("A recalled item is overdue. Please return it first."),
    BlockReason.CHARGE_DENIED: _("Borrowing is blocked on your card. Please ask at the desk."),
    BlockReason.RENEWAL_DENIED: _("Renewals are blocked on your card. Please ask at the desk."),
    BlockReason.RECALL_DENIED: _("Please ask at the desk about your account."),
    BlockReason.HOLD_DENIED: _("Holds are blocked on your card."),
    BlockReason.UNKNOWN_PATRON: _(
        "This card is not known to the library. Please check the number or ask at the desk."
    ),
    BlockReason.WRONG_PIN: _("The PIN is not correct. Please try again."),
}

# Blocks worth naming first when a patron has several.
BLOCK_ORDER = (
    BlockReason.UNKNOWN_PATRON,
    BlockReason.WRONG_PIN,
    BlockReason.CARD_LOST,
    BlockReason.CARD_EXPIRED,
    BlockReason.EXCESSIVE_FEES,
    BlockReason.EXCESSIVE_FINES,
    BlockReason.TOO_MANY_OVERDUE,
)


def refusal_text(refusal: Refusal) -> str:
    return REFUSAL_TEXTS.get(refusal, REFUSAL_TEXTS[Refusal.OTHER])


def block_text(reason: BlockReason) -> str:
    return BLOCK_TEXTS.get(reason, BLOCK_TEXTS[BlockReason.CHARGE_DENIED])


def ordered_blocks(blocks: tuple[BlockReason, ...]) -> list[BlockReason]:
    """The patron's blocks, the most useful to read first; duplicates removed."""
    unique = list(dict.fromkeys(blocks))
    return sorted(
        unique, key=lambda b: BLOCK_ORDER.index(b) if b in BLOCK_ORDER else len(BLOCK_ORDER)
    )


def plain(text: str) -> str:
    """`text` as it is, for a label that reads markup: every `[`, `]` and `&` shown as itself.

    Titles, names and messages come from the library system, tags and card readers, and a
    bracket in them must not be read as Kivy markup: `[size=99999999999]` or `[font=x]` in a
    title would stop the screen's drawing, `[b]` would vanish (docs/architecture.md, "Text from
    outside on the screen"). The kiosk's own markup (a symbol font, the item number's size) is
    added around the plain text, never inside it."""
    return text.replace("&", "&amp;").replace("[", "&bl;").replace("]", "&br;")


# The most of one title, name or message a patron screen shows: a few lines in a row. A library
# system may send a title of any length, and a label's texture is as tall as its text (a GPU
# refuses one taller than its limit, 4,096 pixels on some); the whole title stays in the
# journal and on the receipt.
SHOWN_LIMIT = 300


def clip(text: str, limit: int = SHOWN_LIMIT) -> str:
    """`text` cut to `limit` characters at a word where it can be, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


# Kivy's markup tags (kivy/core/text/markup.py), to read back what a markup label shows.
_MARKUP_TAG = re.compile(
    r"\[/?(?:b|i|u|s|sub|sup|font|font_family|font_context|font_features|size|color|ref|anchor"
    r"|text_language)(?:=[^\]]*)?\]"
)


def as_read(text: str) -> str:
    """What a markup label shows of `text`: its tags left out, its escapes as their characters
    (what is spoken, measured and checked of a label)."""
    return (
        _MARKUP_TAG.sub("", text or "")
        .replace("&bl;", "[")
        .replace("&br;", "]")
        .replace("&amp;", "&")
    )
