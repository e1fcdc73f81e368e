"""The events that drive the core's workflows: what devices and taps report, as frozen values.

Devices post `CardPresented`, `TagsChanged` and `BarcodeScanned`; screens post `PinEntered` and
`Tapped`; a timer posts `Tick`. A workflow's `handle(event)` takes them in order on the core worker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kiosk.core.domain import ItemTag


class Action(enum.StrEnum):
    """Taps a screen forwards to the patron session (`Tapped(action, arg)`)."""

    START = "start"  # welcome: start without a card (e.g. to open the keypad)
    CANCEL = "cancel"  # leave the PIN or login screen back to welcome
    LANGUAGE = "language"  # arg: language code
    LARGE_TEXT = "large_text"  # toggles
    HIGH_CONTRAST = "high_contrast"  # toggles
    EXTEND = "extend"  # "I need more time" on the idle warning
    SHOW_CHECKOUT = "show_checkout"
    SHOW_ACCOUNT = "show_account"
    RENEW = "renew"  # arg: item id
    RENEW_ALL = "renew_all"
    CONFIRM_FEE = "confirm_fee"  # arg: item id
    DECLINE_FEE = "decline_fee"  # arg: item id
    FINISH = "finish"  # "I'm done": go to the receipt choice
    RECEIPT_PRINT = "receipt_print"
    RECEIPT_EMAIL = "receipt_email"
    RECEIPT_BOTH = "receipt_both"  # printed and e-mailed
    RECEIPT_NONE = "receipt_none"
    LOGOUT = "logout"  # leave immediately (no receipt)


class CardSource(enum.StrEnum):
    """Where a card number came from (for statistics and messages only)."""

    BARCODE = "barcode"
    RFID = "rfid"
    KEYPAD = "keypad"
    SIMULATED = "sim"


@dataclass(frozen=True)
class CardPresented:
    """A patron card was read or typed."""

    card_number: str = field(repr=False)
    source: str = CardSource.BARCODE


@dataclass(frozen=True)
class TagsChanged:
    """The pad's stable set of tags changed: all tags now present, and which were added or removed."""

    present: tuple[ItemTag, ...] = ()
    added: tuple[ItemTag, ...] = ()
    removed: tuple[ItemTag, ...] = ()


@dataclass(frozen=True)
class BarcodeScanned:
    """The hand scanner read a barcode (an item id, or a card number on the welcome screen)."""

    text: str


@dataclass(frozen=True)
class PinEntered:
    """The patron confirmed a PIN on the keypad; the PIN never appears in a repr."""

    pin: str = field(repr=False)


@dataclass(frozen=True)
class Tapped:
    """The patron tapped a control; `arg` carries e.g. the language code or the item id."""

    action: Action
    arg: str = ""


@dataclass(frozen=True)
class Tick:
    """Time passed; workflows read the injected clock, not this event."""


Event = CardPresented | TagsChanged | BarcodeScanned | PinEntered | Tapped | Tick
