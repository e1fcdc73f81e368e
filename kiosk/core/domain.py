"""Domain values shared by every layer: patrons, items, loans, circulation outcomes, routing.

These are frozen dataclasses and enums; nothing here knows about SIP2, SQL, devices or Kivy.
The circulation service (kiosk/sync) produces them; workflows (kiosk/core) consume them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from kiosk.errors import KioskError


class OfflinePolicy(enum.StrEnum):
    """What the kiosk may do while the library system cannot be reached (`[offline] policy`)."""

    DISABLED = "disabled"
    CHECKIN_ONLY = "checkin-only"
    CHECKIN_AND_CHECKOUT = "checkin-and-checkout"


class PinPolicy(enum.StrEnum):
    """When a patron is asked for a PIN (`[patron] pin_policy`)."""

    NONE = "none"
    MANDATORY = "mandatory"
    OPTIONAL = "optional"


class Mode(enum.StrEnum):
    """Whether an answer came from the library system or from the kiosk's offline policy."""

    ONLINE = "online"
    OFFLINE = "offline"


class Operation(enum.StrEnum):
    """A circulation transaction kind, as journaled."""

    PATRON = "patron"
    CHECKOUT = "checkout"
    CHECKIN = "checkin"
    RENEW = "renew"
    RENEW_ALL = "renew_all"
    ITEM_INFO = "item_info"
    END_SESSION = "end_session"


class BlockReason(enum.StrEnum):
    """Why a patron may not borrow: the 14 SIP2 patron-status flags plus what the kiosk adds."""

    CHARGE_DENIED = "charge_denied"
    RENEWAL_DENIED = "renewal_denied"
    RECALL_DENIED = "recall_denied"
    HOLD_DENIED = "hold_denied"
    CARD_LOST = "card_lost"
    TOO_MANY_CHARGED = "too_many_charged"
    TOO_MANY_OVERDUE = "too_many_overdue"
    TOO_MANY_RENEWALS = "too_many_renewals"
    TOO_MANY_CLAIMS = "too_many_claims"
    TOO_MANY_LOST = "too_many_lost"
    EXCESSIVE_FINES = "excessive_fines"
    EXCESSIVE_FEES = "excessive_fees"
    RECALL_OVERDUE = "recall_overdue"
    TOO_MANY_BILLED = "too_many_billed"
    CARD_EXPIRED = "card_expired"
    UNKNOWN_PATRON = "unknown_patron"
    WRONG_PIN = "wrong_pin"


# SIP2 patron status positions 0..13, in order.
PATRON_STATUS_FLAGS: tuple[BlockReason, ...] = (
    BlockReason.CHARGE_DENIED,
    BlockReason.RENEWAL_DENIED,
    BlockReason.RECALL_DENIED,
    BlockReason.HOLD_DENIED,
    BlockReason.CARD_LOST,
    BlockReason.TOO_MANY_CHARGED,
    BlockReason.TOO_MANY_OVERDUE,
    BlockReason.TOO_MANY_RENEWALS,
    BlockReason.TOO_MANY_CLAIMS,
    BlockReason.TOO_MANY_LOST,
    BlockReason.EXCESSIVE_FINES,
    BlockReason.EXCESSIVE_FEES,
    BlockReason.RECALL_OVERDUE,
    BlockReason.TOO_MANY_BILLED,
)


# Flags that do not stop a patron from borrowing (NYPL-Simplified/circulation PR #656).
NON_BORROWING_BLOCKS: frozenset[BlockReason] = frozenset(
    {BlockReason.HOLD_DENIED, BlockReason.RECALL_DENIED, BlockReason.RENEWAL_DENIED}
)


class Refusal(enum.StrEnum):
    """Why a circulation transaction was not done, in categories a screen can word for a patron."""

    NONE = ""
    ON_HOLD_FOR_OTHER = "on_hold_for_other"
    NOT_FOR_LOAN = "not_for_loan"
    LIMIT_REACHED = "limit_reached"
    SET_INCOMPLETE = "set_incomplete"
    PATRON_BLOCKED = "patron_blocked"
    UNKNOWN_ITEM = "unknown_item"
    NOT_ON_LOAN = "not_on_loan"
    ALREADY_ON_LOAN = "already_on_loan"
    RENEWAL_LIMIT = "renewal_limit"
    FEE_REQUIRED = "fee_required"
    OFFLINE_NOT_ALLOWED = "offline_not_allowed"
    OFFLINE_LIMIT = "offline_limit"
    OTHER_LIBRARY = "other_library"
    UNREADABLE_TAG = "unreadable_tag"
    SECURITY_WRITE_FAILED = "security_write_failed"
    LINK_DOWN = "link_down"
    OTHER = "other"


class AlertType(enum.StrEnum):
    """Return routing alert, after the 3M extension field CV."""

    NONE = ""
    UNKNOWN = "00"
    HOLD_HERE = "01"
    HOLD_OTHER_BRANCH = "02"
    HOLD_ILL = "03"
    TRANSIT = "04"
    OTHER = "99"


class ItemStatus(enum.StrEnum):
    """Where an item on the pad stands in a checkout (kiosk.core.checkout)."""

    SEEN = "seen"  # on the pad, the library system has not answered yet
    WAITING = "waiting"  # a set with parts missing; checked out when all parts are on the pad
    CHECKED_OUT = "checked_out"
    REFUSED = "refused"
    TO_DESK = "to_desk"  # on loan in the library system, but its tag is still secured
    UNREADABLE = "unreadable"


class LoginProblem(enum.StrEnum):
    """Why the last identification did not let the patron in (kiosk.core.session); screens
    word these."""

    BAD_CARD = "bad_card"  # not a card number (pattern) - nothing was sent
    UNKNOWN_PATRON = "unknown_patron"
    WRONG_PIN = "wrong_pin"
    BLOCKED = "blocked"  # see SessionState.blocks
    LOCKED_OUT = "locked_out"  # see SessionState.locked_for_s
    LINK_DOWN = "link_down"  # library system unreachable and offline identification not allowed


class ReceiptChoice(enum.StrEnum):
    """What the patron chose for the visit's receipt (kiosk.core.session)."""

    PRINT = "print"
    EMAIL = "email"
    BOTH = "both"  # printed and e-mailed
    NONE = "none"


def fault_refusal(exc: BaseException) -> tuple[Refusal, str]:
    """How a raised exception is put to the patron: a KioskError (the link, a device) as the
    fault it names; anything else is a kiosk bug, never blamed on the library system."""
    if isinstance(exc, KioskError):
        return Refusal.LINK_DOWN, str(exc)
    return Refusal.OTHER, f"kiosk fault ({type(exc).__name__}); please ask staff"


@dataclass(frozen=True)
class Loan:
    """An item the patron has out."""

    item_id: str
    title: str = ""
    due_date: str = ""  # verbatim from the library system
    overdue: bool = False


@dataclass(frozen=True)
class Hold:
    """A hold (reservation) the patron has placed."""

    item_id: str
    title: str = ""
    ready: bool = False
    pickup_location: str = ""
    pickup_by: str = ""


@dataclass(frozen=True)
class Fee:
    """An outstanding fee or fine."""

    description: str
    amount: str = ""  # decimal as text, e.g. "2.50"


@dataclass(frozen=True)
class Patron:
    """A patron as the library system described them at identification."""

    patron_id: str
    name: str = ""
    valid: bool = True
    # None: the library system did not say. False: a wrong PIN, or (no PIN given) it wants one.
    pin_ok: bool | None = None
    blocks: tuple[BlockReason, ...] = ()
    loans: tuple[Loan, ...] = ()
    holds: tuple[Hold, ...] = ()
    fees: tuple[Fee, ...] = ()
    fee_total: str = ""
    fee_limit: str = ""  # the fee amount above which the library blocks borrowing, when it says
    currency: str = ""  # as the library system (or the site) says; empty: show the amount alone
    email: str = ""
    charged_limit: int | None = None
    screen_message: str = ""
    language: str = ""

    @property
    def may_borrow(self) -> bool:
        """Any block stops borrowing except those about holds, recalls and renewals.

        Evergreen sets 'recall privileges denied' for ordinary active patrons, so counting it
        would lock them out; renewals are gated separately by the account workflow.
        """
        return self.valid and not [b for b in self.blocks if b not in NON_BORROWING_BLOCKS]


@dataclass(frozen=True)
class Routing:
    """Where a returned item goes, as the library system said."""

    sort_bin: str = ""
    alert: bool = False
    alert_type: AlertType = AlertType.NONE
    destination: str = ""
    permanent_location: str = ""
    hold_patron_id: str = ""
    hold_patron_name: str = ""
    media_type: str = ""
    owner: str = ""


@dataclass(frozen=True)
class CirculationResult:
    """The outcome of one circulation transaction, online or offline."""

    operation: Operation
    ok: bool
    mode: Mode
    item_id: str = ""
    patron_id: str = ""
    title: str = ""
    due_date: str = ""
    message: str = ""  # the library system's own words (AF), or the kiosk's
    refusal: Refusal = Refusal.NONE
    renewal: bool = False  # checkout that was a renewal of an item the patron already had
    desensitize: bool | None = None  # 12: switch security off
    resensitize: bool | None = None  # 10: re-arm security
    fee_amount: str = ""
    routing: Routing = field(default_factory=Routing)
    print_lines: tuple[str, ...] = ()
    journal_id: int | None = None
    queued: bool = False  # offline work waiting to be forwarded
    in_doubt: bool = False

    @classmethod
    def service_failed(
        cls, operation: Operation, item_id: str, exc: Exception
    ) -> CirculationResult:
        """The circulation service raised instead of answering: a link-down refusal with its words
        for a fault of the kiosk's families, never for a bug (see `fault_refusal`)."""
        refusal, text = fault_refusal(exc)
        return cls(
            operation,
            ok=False,
            mode=Mode.ONLINE,
            item_id=item_id,
            refusal=refusal,
            message=text,
        )

    def to_json(self) -> dict[str, object]:
        """The contract the `kiosk circ` commands print."""
        return {
            "ok": self.ok,
            "mode": self.mode.value,
            "operation": self.operation.value,
            "item_id": self.item_id,
            "title": self.title,
            "due_date": self.due_date,
            "message": self.message,
            "refusal": self.refusal.value,
            "renewal": self.renewal,
            "queued": self.queued,
            "sort_bin": self.routing.sort_bin,
            "alert_type": self.routing.alert_type.value,
            "journal_id": self.journal_id,
        }


@dataclass(frozen=True)
class PatronResult:
    """The outcome of identifying a patron."""

    ok: bool
    mode: Mode
    patron: Patron | None = None
    message: str = ""
    refusal: Refusal = Refusal.NONE


@dataclass(frozen=True)
class RenewAllResult:
    """The outcome of renewing everything a patron has."""

    ok: bool
    mode: Mode
    renewed: tuple[str, ...] = ()
    unrenewed: tuple[str, ...] = ()
    message: str = ""


@dataclass(frozen=True)
class ItemInfo:
    """What the library system knows about an item (SIP2 17/18)."""

    item_id: str
    title: str = ""
    circulation_status: str = ""  # SIP2 two-digit code
    due_date: str = ""
    hold_queue_length: int | None = None
    owner: str = ""
    media_type: str = ""
    permanent_location: str = ""
    current_location: str = ""
    screen_message: str = ""
    found: bool = True


@dataclass(frozen=True)
class LinkStatus:
    """The state of the link to the library system, for banners and diagnostics."""

    online: bool
    library_name: str = ""
    checkin_ok: bool = True
    checkout_ok: bool = True
    renewal_ok: bool = True
    offline_ok: bool = False
    supported: frozenset[str] = frozenset()
    pending: int = 0
    last_error: str = ""
    since: datetime | None = None
    # A configuration fault (refused login, missing CA file, TLS mismatch): the kiosk is out of
    # service, not offline, and this is the technician's one line naming the key and the fix.
    config_fault: str = ""


def uid_key(uid: str) -> str:
    """The workflows' key for the item behind a tag known only by its UID (ItemTag.key)."""
    return f"uid:{uid}"


@dataclass(frozen=True)
class ItemTag:
    """An item's RFID tag on the pad, decoded: which item (and which part of a set) it is."""

    uid: str  # hex, as the reader reports it (MSB first)
    item_id: str = ""
    part_number: int = 1
    parts_in_set: int = 1
    owner_institution: str = ""
    model: str = ""
    afi: int | None = None
    eas: bool | None = None
    error: str = ""  # why it could not be decoded; item_id is then empty

    @property
    def readable(self) -> bool:
        return not self.error and bool(self.item_id)

    @property
    def key(self) -> str:
        """The key the workflows give the item this tag stands for: its item id, or
        "uid:<uid>" for a tag that does not read (or is not read yet)."""
        return self.item_id if self.readable else uid_key(self.uid)


def parts_present(tags: Iterable[ItemTag]) -> int:
    """How many distinct parts of a set the tags are (part numbers 1..parts in set).

    Counted by part number, not by tag: a second tag saying "part 1 of 3" (a replacement tag on a
    case whose old one was not killed) does not stand in for a missing part.
    """
    tags = tuple(tags)
    parts_in_set = max((t.parts_in_set for t in tags), default=1) or 1
    return len({t.part_number for t in tags if 1 <= t.part_number <= parts_in_set})
