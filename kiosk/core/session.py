"""The patron session: welcome -> identifying -> pin -> active (checkout / account) -> finishing -> goodbye.

    s = PatronSession(circulation, clock, SessionSettings.from_config(cfg), security=..., printer=...)
    s.set_listener(cb)            # called with every new SessionState (on the core worker thread)
    s.handle(event) -> SessionState   # CardPresented, PinEntered, TagsChanged, BarcodeScanned, Tapped, Tick
    s.state                        # the latest snapshot

Identification follows `[patron] pin_policy`: `none` never asks; `mandatory` always asks before
asking the library system; `optional` tries the card alone and asks for the PIN only when the
library system wants one (patron answer CQ=N), then retries with it. Failed logins are counted per
card and per terminal in a window; too many lock out for `lockout_s`. A card that is lost, expired
or unknown is refused with a BlockReason; other blocks let the patron in to see the account but
not borrow. Idle: a warning at least `idle_warning_s` before logout, cleared by any tap
(Action.EXTEND); on timeout the library system is told (end_session, failures ignored) and the
session, language and accessibility settings are reset. The PIN lives only in this object while
the session lasts and is never part of a state snapshot.

Another patron's card during a session never borrows on the open account: a session in which
nothing was done ends and the new card logs in; otherwise the open session goes to its receipt
choice (no way back to borrowing) and the new card logs in right after it. The pad is read from
`pad` (the stack reader) at login, never replayed from tag events seen before.
"""

from __future__ import annotations

import enum
import logging
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kiosk.core.account import AccountState, AccountView, renewal_supported
from kiosk.core.checkout import CheckoutState, StackCheckout
from kiosk.core.domain import (
    BlockReason,
    ItemTag,
    LinkStatus,
    Mode,
    OfflinePolicy,
    Patron,
    PatronResult,
    PinPolicy,
    Refusal,
)

# Defined with the domain values, so the screens' module can name them without loading the
# session (docs/performance.md, cold start); still importable from here.
from kiosk.core.domain import LoginProblem as LoginProblem
from kiosk.core.domain import ReceiptChoice as ReceiptChoice
from kiosk.core.errors import CoreError, log_fault
from kiosk.core.events import (
    Action,
    BarcodeScanned,
    CardPresented,
    Event,
    PinEntered,
    TagsChanged,
    Tapped,
    Tick,
)
from kiosk.core.identifiers import identifier_problem
from kiosk.core.masking import mask_card, mask_email
from kiosk.core.ports import Circulation, Clock, ReceiptPrinter, TagEvents, TagSecurity
from kiosk.core.receipt import Receipt, checkout_receipt, renewal_receipt

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[|\r\n\x00-\x1f]")

# Blocks that refuse the login itself; any other block lets the patron see the account.
LOGIN_BLOCKS = (BlockReason.CARD_LOST, BlockReason.CARD_EXPIRED, BlockReason.UNKNOWN_PATRON)


class Stage(enum.StrEnum):
    WELCOME = "welcome"
    IDENTIFYING = "identifying"
    PIN = "pin"
    ACTIVE = "active"
    FINISHING = "finishing"  # receipt choice
    GOODBYE = "goodbye"


class View(enum.StrEnum):
    """What the active session shows."""

    CHECKOUT = "checkout"
    ACCOUNT = "account"


@dataclass(frozen=True)
class SessionSettings:
    """What the session needs from the site configuration (see `from_config`)."""

    library_name: str = "Library"
    languages: tuple[str, ...] = ("lv", "en", "ru")
    default_language: str = "lv"
    pin_policy: PinPolicy = PinPolicy.OPTIONAL
    card_pattern: str = r"^[0-9A-Z]{4,20}$"
    item_pattern: str = r"^[0-9A-Z-]{3,32}$"
    max_login_failures: int = 3
    login_window_s: float = 300.0
    terminal_max_failures: int = 10
    lockout_s: float = 60.0
    idle_timeout_s: float = 90.0
    idle_warning_s: float = 25.0
    goodbye_s: float = 8.0
    show_patron_name: bool = False
    offline_policy: OfflinePolicy = OfflinePolicy.CHECKIN_ONLY
    returns_enabled: bool = True
    email_receipts: bool = False
    timeout_receipt: str = "none"  # print | email | none: the receipt of a timed-out visit

    def __post_init__(self) -> None:
        # Settings built from plain strings (the configuration's values) hold the enums.
        object.__setattr__(self, "pin_policy", PinPolicy(self.pin_policy))
        object.__setattr__(self, "offline_policy", OfflinePolicy(self.offline_policy))

    @classmethod
    def from_config(cls, cfg: Any) -> SessionSettings:
        """From a kiosk.config.Config (duck-typed: the core does not import the config layer)."""
        p = cfg.patron
        return cls(
            library_name=cfg.kiosk.library_name,
            languages=tuple(cfg.kiosk.languages),
            default_language=cfg.kiosk.default_language,
            pin_policy=PinPolicy(p.pin_policy),
            card_pattern=p.card_pattern,
            item_pattern=p.item_pattern,
            max_login_failures=p.max_login_failures,
            login_window_s=getattr(p, "login_window_s", cls.login_window_s),
            terminal_max_failures=getattr(p, "terminal_max_failures", cls.terminal_max_failures),
            lockout_s=p.lockout_s,
            idle_timeout_s=cfg.ui.idle_timeout_s,
            idle_warning_s=cfg.ui.idle_warning_s,
            goodbye_s=cfg.ui.goodbye_s,
            show_patron_name=cfg.printer.show_patron_name,
            offline_policy=OfflinePolicy(cfg.offline.policy),
            returns_enabled=cfg.kiosk.returns_enabled,
            email_receipts=cfg.printer.email_receipts,
            timeout_receipt=getattr(cfg.printer, "timeout_receipt", cls.timeout_receipt),
        )


@dataclass(frozen=True)
class PatronSummary:
    """What the screens may show about the logged-in patron (never the full card number)."""

    card_masked: str
    name: str = ""
    blocks: tuple[BlockReason, ...] = ()
    may_borrow: bool = True
    screen_message: str = ""
    has_email: bool = False
    email_masked: str = ""  # where an e-mailed receipt goes, as `j***@e***.lv`
    loans: int = 0
    overdue: int = 0
    holds_ready: int = 0
    fee_total: str = ""
    currency: str = "EUR"


@dataclass(frozen=True)
class Capabilities:
    """What the patron can do right now, given the link and the offline policy."""

    online: bool = True
    can_checkout: bool = True
    can_renew: bool = False
    can_view_account: bool = True
    can_return: bool = True
    can_email: bool = False


@dataclass(frozen=True)
class SessionState:
    """An immutable snapshot of the session for the screens; it never holds a PIN."""

    stage: Stage = Stage.WELCOME
    view: View = View.CHECKOUT
    language: str = "lv"
    languages: tuple[str, ...] = ("lv",)
    large_text: bool = False
    high_contrast: bool = False
    patron: PatronSummary | None = None
    problem: LoginProblem | None = None
    blocks: tuple[BlockReason, ...] = ()  # with problem BLOCKED (or shown in the active session)
    message: str = ""  # the library system's words for the last problem
    pin_retry: bool = False  # the PIN stage is shown again after a wrong PIN
    attempts_left: int | None = None
    locked_for_s: float | None = None
    idle_warning: bool = False
    seconds_left: float | None = None
    capabilities: Capabilities = field(default_factory=Capabilities)
    checkout: CheckoutState | None = None
    account: AccountState | None = None
    receipt: Receipt | None = None  # in FINISHING: what would be printed
    receipt_choice: ReceiptChoice | None = None
    receipt_failed: bool = False  # the printer (or mail) failed: the patron is told
    items_done: int = 0  # in GOODBYE: how many items were checked out (no details)
    next_patron_waiting: bool = False  # in FINISHING: another card was presented; it is next
    # In WELCOME right after an idle logout: what was done with the visit's receipt by the
    # site's policy (None: nothing to send, or nothing sent); `receipt_failed` if it failed.
    timeout_receipt: ReceiptChoice | None = None


Listener = Callable[[SessionState], None]


class LoginLimiter:
    """Counts failed logins per card and per terminal in a sliding window and locks out after too many."""

    def __init__(
        self, clock: Clock, max_failures: int, window_s: float, lockout_s: float, terminal_max: int
    ) -> None:
        self._clock = clock
        self._max = max(1, max_failures)
        self._window = window_s
        self._lockout = lockout_s
        self._terminal_max = max(1, terminal_max)
        self._card_failures: dict[str, deque[float]] = {}
        self._terminal_failures: deque[float] = deque()
        self._card_locked: dict[str, float] = {}
        self._terminal_locked = 0.0

    def _trim(self, times: deque[float], now: float) -> None:
        while times and now - times[0] > self._window:
            times.popleft()

    def locked_for(self, card: str | None = None) -> float:
        """Seconds of lockout left for this card (or the whole terminal); 0 when free."""
        now = self._clock.monotonic()
        left = self._terminal_locked - now
        if card is not None:
            left = max(left, self._card_locked.get(card, 0.0) - now)
        return max(0.0, left)

    def attempts_left(self, card: str) -> int:
        now = self._clock.monotonic()
        times = self._card_failures.get(card, deque())
        self._trim(times, now)
        return max(0, self._max - len(times))

    def failure(self, card: str) -> str:
        """Count a failure; returns "card" or "terminal" when this failure started a lockout, else ""."""
        now = self._clock.monotonic()
        times = self._card_failures.setdefault(card, deque())
        times.append(now)
        self._trim(times, now)
        self._terminal_failures.append(now)
        self._trim(self._terminal_failures, now)
        started = ""
        if len(times) >= self._max:
            self._card_locked[card] = now + self._lockout
            times.clear()
            started = "card"
            log.warning("login locked for card %s after %d failures", mask_card(card), self._max)
        if len(self._terminal_failures) >= self._terminal_max:
            self._terminal_locked = now + self._lockout
            self._terminal_failures.clear()
            started = "terminal"
            log.warning("login locked on this terminal after %d failures", self._terminal_max)
        return started

    def success(self, card: str) -> None:
        self._card_failures.pop(card, None)


class PatronSession:
    """One terminal's patron sessions, one after another; see the module docstring."""

    def __init__(
        self,
        circulation: Circulation,
        clock: Clock,
        settings: SessionSettings,
        *,
        security: TagSecurity | None = None,
        printer: ReceiptPrinter | None = None,
        mailer: Callable[[Receipt, str], None] | None = None,
        listener: Listener | None = None,
        recorder: Callable[[str, str], None] | None = None,
        link_check_s: float = 10.0,
        pad: TagEvents | None = None,
    ) -> None:
        self._circ = circulation
        self._clock = clock
        self.settings = settings
        self._security = security
        self._printer = printer
        self._mailer = mailer
        self._listener = listener
        self._recorder = recorder
        self._link_check_s = link_check_s
        # The pad itself, read at login: tag events go elsewhere (returns) while no one is logged
        # in, so the last event the session saw may be long out of date.
        self._pad_source = pad
        self._link = LinkStatus(online=True)
        self._timeout_receipt: ReceiptChoice | None = None
        self._link_checked = -1e18
        self._card_re = re.compile(settings.card_pattern)
        self._limiter = LoginLimiter(
            clock,
            settings.max_login_failures,
            settings.login_window_s,
            settings.lockout_s,
            settings.terminal_max_failures,
        )
        self._pad: tuple[ItemTag, ...] = ()
        self._reset_all()
        self._state = self._snapshot()

    # -- public API -------------------------------------------------------------------------

    @property
    def state(self) -> SessionState:
        return self._state

    def set_listener(self, listener: Listener | None) -> None:
        self._listener = listener

    def handle(self, event: Event) -> SessionState:
        """Apply one event and return the new snapshot (the listener is told as well)."""
        if isinstance(event, Tick):
            self._tick()
        else:
            self._activity()
            self._timeout_receipt = None  # told on the timed-out screen; the kiosk moves on
            if isinstance(event, CardPresented):
                self._card(event.card_number)
            elif isinstance(event, PinEntered):
                self._pin_entered(event.pin)
            elif isinstance(event, TagsChanged):
                self._tags(event)
            elif isinstance(event, BarcodeScanned):
                self._barcode(event.text)
            elif isinstance(event, Tapped):
                self._tap(event.action, event.arg)
        return self._publish()

    def tick(self) -> SessionState:
        return self.handle(Tick())

    def refresh_link(self) -> SessionState:
        """Ask the circulation service for the link state now (the welcome screen's offline banner)."""
        self._link = self._status()
        self._link_checked = self._clock.monotonic()
        return self._publish()

    @property
    def link(self) -> LinkStatus:
        return self._link

    # -- state ------------------------------------------------------------------------------

    def _reset_all(self) -> None:
        self._wipe_patron()
        self._timeout_receipt = None
        self._language = self.settings.default_language
        # Set when the patron taps a language: their choice wins over the library system's.
        self._language_chosen = False
        self._large_text = False
        self._high_contrast = False
        self._problem: LoginProblem | None = None
        self._locked_card: str | None = None  # kept only to show the lockout countdown
        self._blocks: tuple[BlockReason, ...] = ()
        self._message = ""
        self._pin_retry = False
        self._stage = Stage.WELCOME
        self._view = View.CHECKOUT
        self._goodbye_until = 0.0
        self._items_done = 0
        self._receipt_choice: ReceiptChoice | None = None
        self._receipt_failed = False
        self._last_activity = self._clock.monotonic()
        self._warning_since: float | None = None

    def _wipe_patron(self) -> None:
        self._next_card: str | None = None  # presented while another patron's session was open
        self._card_number: str | None = None
        self._pin: str | None = None
        self._patron: Patron | None = None
        self._offline = False
        co = getattr(self, "_checkout", None)
        if co is not None:
            co.wipe()
        acc = getattr(self, "_account", None)
        if acc is not None:
            acc.wipe()
        self._checkout: StackCheckout | None = None
        self._account: AccountView | None = None
        self._receipt: Receipt | None = None

    def _publish(self) -> SessionState:
        self._state = self._snapshot()
        if self._listener is not None:
            self._listener(self._state)
        return self._state

    def _notify_checkout(self, _state: CheckoutState) -> None:
        self._publish()

    def _snapshot(self) -> SessionState:
        seconds_left = None
        if self._warning_since is not None:
            seconds_left = max(0.0, self._logout_at() - self._clock.monotonic())
        locked = self._limiter.locked_for(self._card_number or self._locked_card)
        patron = None
        if (
            self._patron is not None
            and self._card_number is not None
            and self._stage in (Stage.ACTIVE, Stage.FINISHING)
        ):
            p = self._patron
            acc = self._account.state if self._account else None
            patron = PatronSummary(
                card_masked=mask_card(self._card_number),
                name=p.name,
                blocks=p.blocks,
                may_borrow=p.may_borrow,
                screen_message=p.screen_message,
                has_email=bool(p.email),
                email_masked=mask_email(p.email),
                loans=len(p.loans),
                overdue=acc.overdue_count if acc else sum(1 for x in p.loans if x.overdue),
                holds_ready=sum(1 for h in p.holds if h.ready),
                fee_total=p.fee_total,
                currency=p.currency,
            )
        active = self._stage in (Stage.ACTIVE, Stage.FINISHING)
        return SessionState(
            stage=self._stage,
            view=self._view,
            language=self._language,
            languages=self.settings.languages,
            large_text=self._large_text,
            high_contrast=self._high_contrast,
            patron=patron,
            problem=self._problem,
            blocks=self._blocks
            if self._problem is LoginProblem.BLOCKED
            else (patron.blocks if patron else ()),
            message=self._message,
            pin_retry=self._pin_retry,
            attempts_left=self._limiter.attempts_left(self._card_number)
            if (self._pin_retry and self._card_number)
            else None,
            locked_for_s=locked or None,
            idle_warning=self._warning_since is not None,
            seconds_left=seconds_left,
            capabilities=self._capabilities(),
            checkout=self._checkout.state if (active and self._checkout) else None,
            account=self._account.state if (active and self._account) else None,
            receipt=self._receipt if self._stage is Stage.FINISHING else None,
            receipt_choice=self._receipt_choice if self._stage is Stage.GOODBYE else None,
            receipt_failed=self._receipt_failed,
            items_done=self._items_done if self._stage is Stage.GOODBYE else 0,
            next_patron_waiting=self._next_card is not None and self._stage is Stage.FINISHING,
            timeout_receipt=self._timeout_receipt if self._stage is Stage.WELCOME else None,
        )

    def _capabilities(self) -> Capabilities:
        online = self._link.online and not self._offline
        policy = self.settings.offline_policy
        may_borrow = self._patron.may_borrow if self._patron else True
        return Capabilities(
            online=online,
            can_checkout=may_borrow and (online or policy is OfflinePolicy.CHECKIN_AND_CHECKOUT),
            can_renew=bool(self._account and self._account.state.renew_available),
            can_view_account=online,
            can_return=self.settings.returns_enabled and (online or policy != "disabled"),
            can_email=self.settings.email_receipts
            and self._mailer is not None
            and bool(self._patron and self._patron.email),
        )

    # -- identification ---------------------------------------------------------------------

    def _card(self, raw: str) -> None:
        card = (raw or "").strip().upper()
        if self._stage not in (Stage.WELCOME, Stage.GOODBYE):
            if card == self._card_number or not self._card_re.match(card) or _UNSAFE.search(card):
                return  # the same patron's card again, or not a card: the session goes on
            if not self._switch_patron(card):
                return
        if self._stage is Stage.GOODBYE:
            self._reset_all()
        self._problem, self._message, self._blocks, self._pin_retry, self._locked_card = (
            None,
            "",
            (),
            False,
            None,
        )
        if identifier_problem(card) or not self._card_re.match(card):
            self._problem = LoginProblem.BAD_CARD
            return
        if self._limiter.locked_for(card) > 0:
            self._problem, self._locked_card = LoginProblem.LOCKED_OUT, card
            return
        self._card_number = card
        if self.settings.pin_policy is PinPolicy.MANDATORY:
            self._stage = Stage.PIN
            return
        self._stage = Stage.IDENTIFYING
        self._publish()
        self._identify(None)

    def _switch_patron(self, card: str) -> bool:
        """Another patron's card during a session: the open session ends before the new card is
        used, so nothing is ever borrowed on the wrong account. A session in which something was
        done first offers its receipt (the new card waits); True when the new card goes on now."""
        if self._stage in (Stage.IDENTIFYING, Stage.PIN):
            log.info("another card presented before login finished; starting over with it")
            self._wipe_patron()  # nobody was logged in: nothing to end at the library system
            self._stage = Stage.WELCOME
            return True
        if not self._is_patron(card):
            # Card and item numbers may share a pattern (a scanned item barcode): not a patron, so
            # the open session goes on, and an item number is checked out as one.
            if self._stage is Stage.ACTIVE and self._checkout is not None:
                self._view = View.CHECKOUT
                self._checkout.handle_barcode(card)
            return False
        if self._stage is Stage.ACTIVE:
            assert self._checkout is not None
            if self._checkout.state.busy:
                return False  # answers still coming for this patron; the card must be shown again
            self._receipt = self._build_receipt()
            if self._receipt is None:
                log.info("another card presented; ending the open session (nothing was done)")
                self._logout(timeout=True)  # language and display choices were the last patron's
                return True
            self._stage = Stage.FINISHING
        log.info("another card presented; the open session offers its receipt first")
        self._next_card = card
        self._publish()
        return False

    def _is_patron(self, card: str) -> bool:
        """Whether the library system knows this number as a patron; when it cannot say (link
        down), the number is taken as a card: ending a session wrongly costs less than lending on
        the wrong account."""
        result = self._call_identify(card, None)
        if result.patron is None:
            return result.refusal is not Refusal.PATRON_BLOCKED
        return result.patron.valid and BlockReason.UNKNOWN_PATRON not in result.patron.blocks

    def _pin_entered(self, pin: str) -> None:
        if self._stage is not Stage.PIN or self._card_number is None:
            return
        if identifier_problem(pin):  # a PIN is sent as typed or not at all
            self._problem, self._pin_retry = LoginProblem.WRONG_PIN, True
            return
        self._stage = Stage.IDENTIFYING
        self._publish()
        self._identify(pin)

    def _call_identify(self, card: str, pin: str | None) -> PatronResult:
        try:
            return self._circ.identify_patron(card, pin)
        except Exception as exc:
            # The service should answer; the patron must still get a clear screen. A bug is
            # logged with its traceback (and fails a test in strict mode), not taken for an outage.
            log_fault(
                log, exc, "identifying patron %s failed in the circulation service", mask_card(card)
            )
            return PatronResult(ok=False, mode=Mode.ONLINE, message="", refusal=Refusal.LINK_DOWN)

    def _identify(self, pin: str | None) -> None:
        card = self._card_number
        assert card is not None
        result = self._call_identify(card, pin)
        patron = result.patron
        if patron is None:
            if result.refusal is Refusal.PATRON_BLOCKED:
                self._fail(LoginProblem.UNKNOWN_PATRON, result.message)
            else:
                # Unreachable, offline identification not allowed, or an unusable answer: not the patron's fault.
                self._fail(LoginProblem.LINK_DOWN, result.message, count=False)
            return
        # The service marks an invalid patron or a wrong PIN as not ok; the patron record says which.
        message = result.message or patron.screen_message
        if not patron.valid or BlockReason.UNKNOWN_PATRON in patron.blocks:
            self._fail(LoginProblem.UNKNOWN_PATRON, message)
            return
        if self._pin_wrong(patron, pin):
            self._pin_failure(pin, message)
            return
        refusing = tuple(b for b in patron.blocks if b in LOGIN_BLOCKS)
        # A not-ok answer with a valid patron and an accepted PIN is a block the service named.
        if refusing or (not result.ok and result.refusal is not Refusal.PATRON_BLOCKED):
            self._end_session_quietly(card)
            self._fail(LoginProblem.BLOCKED, message, blocks=refusing or patron.blocks, count=False)
            return
        self._limiter.success(card)
        self._start(patron, pin, result.mode is Mode.OFFLINE)

    def _pin_wrong(self, patron: Patron, pin: str | None) -> bool:
        if pin is None and self.settings.pin_policy is PinPolicy.NONE:
            return False  # card-only site: an ACS answering CQ=N for a missing PIN does not matter
        return patron.pin_ok is False or BlockReason.WRONG_PIN in patron.blocks

    def _pin_failure(self, pin: str | None, message: str) -> None:
        card = self._card_number
        assert card is not None
        if pin is None and self.settings.pin_policy is not PinPolicy.NONE:
            # Optional policy: the library system wants a PIN for this patron; ask, not a failure.
            self._stage, self._problem, self._pin_retry = Stage.PIN, None, False
            return
        self._pin = None
        self._count_failure(card, "wrong PIN")
        if self._limiter.locked_for(card) > 0:
            self._fail(LoginProblem.LOCKED_OUT, message, count=False)
            return
        self._stage, self._problem, self._pin_retry, self._message = (
            Stage.PIN,
            LoginProblem.WRONG_PIN,
            True,
            message,
        )

    def _fail(
        self,
        problem: LoginProblem,
        message: str,
        *,
        blocks: tuple[BlockReason, ...] = (),
        count: bool = True,
    ) -> None:
        card = self._card_number
        if count and card is not None:
            self._count_failure(card, problem.value.replace("_", " "))
            if self._limiter.locked_for(card) > 0:
                problem = LoginProblem.LOCKED_OUT
        self._problem, self._message, self._blocks = problem, message, blocks
        self._pin_retry = False
        self._locked_card = card if problem is LoginProblem.LOCKED_OUT else None
        self._wipe_patron()
        self._stage = Stage.WELCOME
        self._warning_since = None

    def _count_failure(self, card: str, why: str) -> None:
        started = self._limiter.failure(card)
        if started and self._recorder is not None:
            # Staff want to know about suspicious card or PIN activity (3M's "suspicious ID" alert).
            try:
                self._recorder(
                    "login_lockout",
                    f"{started} locked after repeated failures ({why}), card {mask_card(card)}",
                )
            except Exception as exc:
                # Recording for staff must never stop the login; a bug keeps its traceback.
                log_fault(log, exc, "could not record the lockout")

    def _start(self, patron: Patron, pin: str | None, offline: bool) -> None:
        card = self._card_number
        assert card is not None
        self._patron, self._pin, self._offline = patron, pin, offline
        self._link = self._status()
        self._link_checked = self._clock.monotonic()
        if offline:
            self._link = LinkStatus(
                online=False, last_error=self._link.last_error, pending=self._link.pending
            )
        refuse = Refusal.NONE
        if not patron.may_borrow:
            refuse = Refusal.PATRON_BLOCKED
        elif offline and self.settings.offline_policy is not OfflinePolicy.CHECKIN_AND_CHECKOUT:
            refuse = Refusal.OFFLINE_NOT_ALLOWED
        self._checkout = StackCheckout(
            self._circ,
            self._security,
            patron.patron_id or card,
            pin=pin,
            item_pattern=self.settings.item_pattern,
            refuse_all=refuse,
            listener=self._notify_checkout,
            recorder=self._recorder,
            known_due={loan.item_id: loan.due_date for loan in patron.loans if loan.due_date},
        )
        self._account = AccountView(
            self._circ,
            patron,
            patron.patron_id or card,
            clock=self._clock,
            pin=pin,
            renew_supported=renewal_supported(self._link),
            offline=offline,
        )
        # The patron's preferred language from the library system ("" when it does not say),
        # unless the patron chose one on the kiosk during this visit.
        if patron.language in self.settings.languages and not self._language_chosen:
            self._language = patron.language
        self._stage, self._view, self._problem, self._message, self._pin_retry = (
            Stage.ACTIVE,
            View.CHECKOUT,
            None,
            "",
            False,
        )
        self._publish()
        pad = self._read_pad()
        if pad:
            self._checkout.handle_tags(TagsChanged(present=pad, added=pad))

    def _read_pad(self) -> tuple[ItemTag, ...]:
        """What lies on the pad now: from the pad itself where the session has it, else the last
        tag event (a session that sees every event, as in the core's own tests)."""
        if self._pad_source is None:
            return self._pad
        try:
            self._pad = tuple(self._pad_source.current())
        except Exception as exc:
            # The reader thread owns the pad; a failure here must not stop the login.
            log_fault(
                log, exc, "reading the pad at login failed; items are taken as they are placed"
            )
            self._pad = ()
        return self._pad

    def _status(self) -> LinkStatus:
        try:
            return self._circ.status()
        except Exception as exc:  # a bug is logged (and fails a test), not shown as an outage
            log_fault(log, exc, "link status unavailable", level=logging.WARNING)
            return LinkStatus(online=False, last_error=str(exc))

    # -- active session -----------------------------------------------------------------------

    def _tags(self, event: TagsChanged) -> None:
        self._pad = event.present
        if self._stage is Stage.ACTIVE and self._checkout is not None:
            self._view = View.CHECKOUT
            self._checkout.handle_tags(event)

    def _barcode(self, text: str) -> None:
        if self._stage is Stage.WELCOME:
            self._card(text)
        elif self._stage is Stage.ACTIVE and self._checkout is not None:
            if self._card_re.match((text or "").strip().upper()):
                self._card(text)  # a library card scanned mid-session is not an item
                return
            self._view = View.CHECKOUT
            self._checkout.handle_barcode(text)

    def _tap(self, action: Action, arg: str) -> None:
        if action is Action.EXTEND:
            return  # the activity itself extends
        if action is Action.LANGUAGE:
            if arg in self.settings.languages:
                self._language = arg
                self._language_chosen = True
        elif action is Action.LARGE_TEXT:
            self._large_text = not self._large_text
        elif action is Action.HIGH_CONTRAST:
            self._high_contrast = not self._high_contrast
        elif action is Action.START and self._stage is Stage.WELCOME:
            self._problem, self._message, self._blocks = None, "", ()
        elif action is Action.CANCEL and self._stage in (Stage.PIN, Stage.IDENTIFYING):
            self._wipe_patron()
            self._stage, self._problem, self._pin_retry = Stage.WELCOME, None, False
        elif action is Action.LOGOUT and self._stage in (Stage.ACTIVE, Stage.FINISHING, Stage.PIN):
            self._logout(timeout=True)
        elif self._stage is Stage.GOODBYE and action in (Action.START, Action.FINISH):
            self._reset_all()
        elif self._stage is Stage.ACTIVE:
            self._active_tap(action, arg)
        elif self._stage is Stage.FINISHING:
            self._finishing_tap(action)

    def _active_tap(self, action: Action, arg: str) -> None:
        co, acc = self._checkout, self._account
        assert co is not None and acc is not None
        if action is Action.SHOW_CHECKOUT:
            self._view = View.CHECKOUT
        elif action is Action.SHOW_ACCOUNT:
            self._view = View.ACCOUNT
            acc.note_borrowed(
                (item.item_id, item.title, item.due_date) for item in co.state.checked_out
            )
            self._publish()
            if not self._offline:
                acc.refresh()
        elif action is Action.RENEW:
            acc.renew(arg)
        elif action is Action.RENEW_ALL:
            acc.renew_all()
        elif action is Action.CONFIRM_FEE:
            co.confirm_fee(arg)
        elif action is Action.DECLINE_FEE:
            co.decline_fee(arg)
        elif action is Action.FINISH:
            if co.state.busy:
                return  # answers still coming: finishing now would lose them from the receipt
            self._receipt = self._build_receipt()
            if self._receipt is None:
                self._goodbye(None)
            else:
                self._stage = Stage.FINISHING

    def _finishing_tap(self, action: Action) -> None:
        choice = {
            Action.RECEIPT_PRINT: ReceiptChoice.PRINT,
            Action.RECEIPT_EMAIL: ReceiptChoice.EMAIL,
            Action.RECEIPT_BOTH: ReceiptChoice.BOTH,
            Action.RECEIPT_NONE: ReceiptChoice.NONE,
        }.get(action)
        if action is Action.SHOW_CHECKOUT:
            if self._next_card is None:  # with another card waiting, this session only ends
                self._stage, self._view = Stage.ACTIVE, View.CHECKOUT
            return
        if choice is not None:
            self._goodbye(choice)

    def _build_receipt(self) -> Receipt | None:
        assert (
            self._checkout is not None
            and self._account is not None
            and self._card_number is not None
        )
        checkouts = self._checkout.receipt_lines()
        lines = checkouts + self._account.renewal_lines()
        if not lines:
            return None
        p = self._patron
        assert p is not None
        heading = (self.settings.library_name, self._clock.now(), self._card_number, self._language)
        patron_name = p.name if self.settings.show_patron_name else ""
        if not checkouts:
            return renewal_receipt(*heading, lines, patron_name=patron_name)
        return checkout_receipt(
            *heading,
            lines,
            patron_name=patron_name,
            fees=p.fees,
            fee_total=p.fee_total,
            currency=p.currency,
        )

    def _goodbye(self, choice: ReceiptChoice | None) -> None:
        receipt, failed = self._receipt, False
        if choice in (ReceiptChoice.PRINT, ReceiptChoice.BOTH) and receipt is not None:
            failed = not self._deliver(
                lambda: (
                    self._printer.print_receipt(receipt) if self._printer else _no_device("printer")
                )
            )
        if choice in (ReceiptChoice.EMAIL, ReceiptChoice.BOTH) and receipt is not None:
            email = self._patron.email if self._patron else ""
            mailed = self._deliver(
                lambda: (
                    self._mailer(receipt, email)
                    if (self._mailer and email)
                    else _no_device("mailer")
                )
            )
            failed = failed or not mailed
        done = len(self._checkout.state.checked_out) if self._checkout else 0
        next_card = self._next_card
        self._logout(timeout=False)
        self._stage = Stage.GOODBYE
        self._goodbye_until = self._clock.monotonic() + self.settings.goodbye_s
        self._items_done, self._receipt_choice, self._receipt_failed = done, choice, failed
        if next_card is not None:
            self._card(next_card)

    def _receipt_at_timeout(self) -> tuple[ReceiptChoice | None, bool]:
        """The site's policy for the receipt of a visit ended by the idle timeout: printed,
        e-mailed (only where the site mails receipts and the patron has an address) or none."""
        policy = self.settings.timeout_receipt
        if (
            policy not in (ReceiptChoice.PRINT, ReceiptChoice.EMAIL)
            or self._stage not in (Stage.ACTIVE, Stage.FINISHING)
            or self._checkout is None
            or self._account is None
        ):
            return None, False
        receipt = self._receipt if self._stage is Stage.FINISHING else self._build_receipt()
        if receipt is None:
            return None, False
        if policy == ReceiptChoice.PRINT:
            printer = self._printer
            if printer is None:
                return None, False
            return ReceiptChoice.PRINT, not self._deliver(lambda: printer.print_receipt(receipt))
        email = self._patron.email if self._patron else ""
        mailer = self._mailer
        if not (self.settings.email_receipts and mailer is not None and email):
            return None, False
        return ReceiptChoice.EMAIL, not self._deliver(lambda: mailer(receipt, email))

    def _deliver(self, send: Callable[[], object]) -> bool:
        try:
            send()
            return True
        except Exception as exc:  # paper out, printer gone: the patron is told, the loans stand
            log_fault(log, exc, "receipt not delivered")
            return False

    def _end_session_quietly(self, card: str) -> None:
        try:
            self._circ.end_session(card)
        except Exception as exc:  # the library system may be gone; the kiosk session ends anyway
            log_fault(
                log, exc, "end session for %s not acknowledged", mask_card(card), level=logging.INFO
            )

    def _logout(self, *, timeout: bool) -> None:
        card = (
            self._patron.patron_id
            if (self._patron and self._patron.patron_id)
            else self._card_number
        )
        if card and self._patron is not None:
            self._end_session_quietly(card)
        if timeout:
            self._reset_all()
        else:
            self._wipe_patron()
            self._warning_since = None

    # -- time -------------------------------------------------------------------------------

    def _activity(self) -> None:
        self._last_activity = self._clock.monotonic()
        self._warning_since = None

    def _logout_at(self) -> float:
        deadline = self._last_activity + self.settings.idle_timeout_s
        if self._warning_since is not None:
            # However late the warning was shown, the patron gets the full warning time.
            deadline = max(deadline, self._warning_since + self.settings.idle_warning_s)
        return deadline

    def _tick(self) -> None:
        now = self._clock.monotonic()
        if self._stage is Stage.GOODBYE:
            if now >= self._goodbye_until:
                self._reset_all()
            return
        if self._stage in (Stage.PIN, Stage.ACTIVE, Stage.FINISHING):
            warn_at = (
                self._last_activity + self.settings.idle_timeout_s - self.settings.idle_warning_s
            )
            if self._warning_since is None and now >= warn_at:
                self._warning_since = now
            if self._warning_since is not None and now >= self._logout_at():
                log.info("patron session timed out")
                choice, failed = self._receipt_at_timeout()
                self._logout(timeout=True)
                self._timeout_receipt, self._receipt_failed = choice, failed
            return
        if self._stage is Stage.WELCOME and now - self._link_checked >= self._link_check_s:
            self._link = self._status()
            self._link_checked = now
        if (
            self._stage is Stage.WELCOME
            and now - self._last_activity >= self.settings.idle_timeout_s
        ):
            # A language or display choice left behind must not greet the next patron.
            if (self._language, self._large_text, self._high_contrast) != (
                self.settings.default_language,
                False,
                False,
            ) or self._problem:
                self._reset_all()


def _no_device(name: str) -> None:
    raise CoreError(f"no {name} configured")
