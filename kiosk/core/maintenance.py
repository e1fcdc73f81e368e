"""Technician access to maintenance mode: admin card or admin PIN, lock-out, automatic leave.

Pure and clock-driven: the screens forward card reads, PIN entries, touches and ticks; this
object decides. The hidden entry gesture (a 5-second press on the top-right corner) is here
too, so it is testable without a screen.
"""

from __future__ import annotations

import enum
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass

from kiosk.core.ports import Clock

log = logging.getLogger(__name__)

PinVerifier = Callable[[str, str], bool]


class AdminState(enum.StrEnum):
    """Where technician access stands."""

    OUTSIDE = "outside"  # patron mode; the admin login is not open
    LOGIN = "login"  # the admin login prompt is showing
    LOCKED = "locked"  # too many failures: no login accepted until the lock-out ends
    ACTIVE = "active"  # in maintenance mode


class LoginFailure(enum.StrEnum):
    """Why an admin login was refused, in words a screen can show."""

    NONE = ""
    WRONG_PIN = "wrong_pin"
    UNKNOWN_CARD = "unknown_card"
    LOCKED_OUT = "locked_out"
    NOT_CONFIGURED = "not_configured"


class LeaveReason(enum.StrEnum):
    """Why maintenance mode ended."""

    LOGOUT = "logout"
    IDLE = "idle"


@dataclass(frozen=True)
class LoginOutcome:
    """The answer to one login attempt."""

    ok: bool
    failure: LoginFailure = LoginFailure.NONE
    attempts_left: int = 0
    locked_for_s: float = 0.0
    method: str = ""  # "pin" or "card"


@dataclass(frozen=True)
class AdminPolicy:
    """The `[admin]` settings the login needs (a subset of kiosk.config.AdminSection)."""

    pin_hash: str = ""
    cards: tuple[str, ...] = ()
    max_failures: int = 3
    lockout_s: float = 300.0
    idle_timeout_s: float = 300.0

    @classmethod
    def from_section(cls, section: object) -> AdminPolicy:
        """Take the fields from a config section object (duck-typed, so core need not import config)."""
        return cls(
            pin_hash=getattr(section, "pin_hash", ""),
            cards=tuple(getattr(section, "cards", ())),
            max_failures=int(getattr(section, "max_failures", 3)),
            lockout_s=float(getattr(section, "lockout_s", 300.0)),
            idle_timeout_s=float(getattr(section, "idle_timeout_s", 300.0)),
        )


class MaintenanceAccess:
    """Admin login and the maintenance session: one per kiosk, driven from the UI thread."""

    def __init__(self, policy: AdminPolicy, clock: Clock, verify_pin: PinVerifier) -> None:
        self.policy = policy
        self.clock = clock
        self._verify = verify_pin
        self._state = AdminState.OUTSIDE
        self._failures = 0
        self._locked_until = 0.0
        self._last_activity = 0.0
        self.last_leave: LeaveReason | None = None

    # -- state ---------------------------------------------------------------------------

    @property
    def state(self) -> AdminState:
        if self._state is AdminState.LOCKED and self.clock.monotonic() >= self._locked_until:
            self._state = AdminState.OUTSIDE
            self._failures = 0
        return self._state

    @property
    def active(self) -> bool:
        return self.state is AdminState.ACTIVE

    @property
    def locked_for_s(self) -> float:
        """Seconds left of a lock-out (0 when not locked)."""
        return (
            max(0.0, self._locked_until - self.clock.monotonic())
            if self.state is AdminState.LOCKED
            else 0.0
        )

    @property
    def login_open(self) -> bool:
        """The admin login prompt is showing (and not locked)."""
        return self._state is AdminState.LOGIN

    @property
    def configured(self) -> bool:
        return bool(self.policy.pin_hash or self.policy.cards)

    def is_admin_card(self, card: str) -> bool:
        """True if `card` is an admin card; no side effects (the patron screens ask this first)."""
        card = card.strip()
        return bool(card) and any(
            hmac.compare_digest(card.encode(), c.strip().encode()) for c in self.policy.cards
        )

    # -- login ---------------------------------------------------------------------------

    def open_login(self) -> AdminState:
        """Show the admin login (after the hidden gesture); a lock-out stays in force."""
        if self.state is AdminState.OUTSIDE:
            self._state = AdminState.LOGIN
            self._last_activity = self.clock.monotonic()
        return self._state

    def cancel_login(self) -> None:
        if self.state is AdminState.LOGIN:
            self._state = AdminState.OUTSIDE

    def enter_pin(self, pin: str) -> LoginOutcome:
        """Try the admin PIN typed on the login keypad."""
        refused = self._refuse_early()
        if refused:
            return refused
        if not self.policy.pin_hash:
            return LoginOutcome(False, LoginFailure.NOT_CONFIGURED, self._attempts_left())
        if self._verify(pin, self.policy.pin_hash):
            return self._enter("pin")
        return self._fail(LoginFailure.WRONG_PIN)

    def present_card(self, card: str) -> LoginOutcome:
        """An admin card presented on any card reader: enters maintenance from patron mode or the login."""
        refused = self._refuse_early()
        if refused:
            return refused
        if self.is_admin_card(card):
            return self._enter("card")
        if self._state is AdminState.LOGIN:
            return self._fail(LoginFailure.UNKNOWN_CARD)
        # A patron card on the patron screens is no failed admin login.
        return LoginOutcome(False, LoginFailure.UNKNOWN_CARD, self._attempts_left())

    def _refuse_early(self) -> LoginOutcome | None:
        if self.state is AdminState.LOCKED:
            return LoginOutcome(False, LoginFailure.LOCKED_OUT, 0, self.locked_for_s)
        if self._state is AdminState.ACTIVE:
            self.touch()
            return LoginOutcome(True, attempts_left=self._attempts_left())
        return None

    def _attempts_left(self) -> int:
        return max(0, self.policy.max_failures - self._failures)

    def _enter(self, method: str) -> LoginOutcome:
        self._state = AdminState.ACTIVE
        self._failures = 0
        self._last_activity = self.clock.monotonic()
        self.last_leave = None
        log.warning("maintenance mode entered (by admin %s)", method)
        return LoginOutcome(True, attempts_left=self._attempts_left(), method=method)

    def _fail(self, failure: LoginFailure) -> LoginOutcome:
        self._failures += 1
        self._last_activity = self.clock.monotonic()
        if self._failures >= self.policy.max_failures:
            self._state = AdminState.LOCKED
            self._locked_until = self.clock.monotonic() + self.policy.lockout_s
            log.warning(
                "admin login locked for %.0f s after %d failures",
                self.policy.lockout_s,
                self._failures,
            )
            return LoginOutcome(False, LoginFailure.LOCKED_OUT, 0, self.policy.lockout_s)
        log.warning(
            "admin login refused (%s), %d attempt(s) left", failure.value, self._attempts_left()
        )
        return LoginOutcome(False, failure, self._attempts_left())

    # -- the session ---------------------------------------------------------------------

    def touch(self) -> None:
        """Any technician activity: postpones the automatic leave."""
        if self._state in (AdminState.ACTIVE, AdminState.LOGIN):
            self._last_activity = self.clock.monotonic()

    def idle_left_s(self) -> float:
        if self._state not in (AdminState.ACTIVE, AdminState.LOGIN):
            return 0.0
        return max(0.0, self._last_activity + self.policy.idle_timeout_s - self.clock.monotonic())

    def tick(self) -> LeaveReason | None:
        """Call periodically: leaves maintenance (or closes an abandoned login) after inactivity."""
        if self._state in (AdminState.ACTIVE, AdminState.LOGIN) and self.idle_left_s() <= 0:
            was_active = self._state is AdminState.ACTIVE
            self._state = AdminState.OUTSIDE
            if was_active:
                self.last_leave = LeaveReason.IDLE
                log.warning(
                    "maintenance mode left after %.0f s without activity",
                    self.policy.idle_timeout_s,
                )
                return LeaveReason.IDLE
        return None

    def leave(self) -> None:
        """The technician's own exit."""
        if self._state is AdminState.ACTIVE:
            self.last_leave = LeaveReason.LOGOUT
            log.warning("maintenance mode left by the technician")
        if self._state in (AdminState.ACTIVE, AdminState.LOGIN):
            self._state = AdminState.OUTSIDE


@dataclass(frozen=True)
class Region:
    """A rectangle in window coordinates (origin bottom-left, as Kivy has it)."""

    x: float
    y: float
    width: float
    height: float

    def contains(self, px: float, py: float) -> bool:
        return self.x <= px < self.x + self.width and self.y <= py < self.y + self.height


def corner_region(window_width: float, window_height: float, size: float = 96.0) -> Region:
    """The top-right corner square where a long press opens the admin login."""
    return Region(window_width - size, window_height - size, size, size)


class LongPress:
    """Detects a press held still inside a region for `hold_s` seconds (the hidden technician gesture).

    Patrons rarely hold one corner for five seconds, and when they do they only reach the
    admin login, which still needs the admin PIN or card.
    """

    def __init__(
        self, region: Region, clock: Clock, hold_s: float = 5.0, slop: float = 24.0
    ) -> None:
        self.region = region
        self.clock = clock
        self.hold_s = hold_s
        self.slop = slop
        self._start: tuple[float, float, float] | None = None
        self._fired = False

    def down(self, x: float, y: float) -> None:
        self._fired = False
        self._start = (x, y, self.clock.monotonic()) if self.region.contains(x, y) else None

    def move(self, x: float, y: float) -> None:
        if self._start and (
            abs(x - self._start[0]) > self.slop or abs(y - self._start[1]) > self.slop
        ):
            self._start = None

    def up(self) -> bool:
        """Releasing after the hold also counts, in case no tick came in between."""
        fired = self.tick()
        self._start = None
        return fired

    def tick(self) -> bool:
        """True exactly once per press, when it has been held long enough."""
        if self._start is None or self._fired:
            return False
        if self.clock.monotonic() - self._start[2] >= self.hold_s:
            self._fired = True
            return True
        return False

    @property
    def held_s(self) -> float:
        return 0.0 if self._start is None else self.clock.monotonic() - self._start[2]


@dataclass(frozen=True)
class ServiceState:
    """Whether the kiosk serves patrons; the out-of-service screen shows `message`."""

    in_service: bool = True
    message: str = ""


class ServiceSwitch:
    """Puts the kiosk out of service and back (from the maintenance screen), with listeners."""

    def __init__(self) -> None:
        self._state = ServiceState()
        self._listeners: list[Callable[[ServiceState], None]] = []

    @property
    def state(self) -> ServiceState:
        return self._state

    def subscribe(self, listener: Callable[[ServiceState], None]) -> None:
        self._listeners.append(listener)

    def set(self, in_service: bool, message: str = "") -> ServiceState:
        self._state = ServiceState(in_service, "" if in_service else message)
        log.warning(
            "kiosk %s%s",
            "back in service" if in_service else "out of service",
            f": {message}" if message and not in_service else "",
        )
        for listener in self._listeners:
            listener(self._state)
        return self._state


def format_lockout(seconds: float) -> str:
    """`4:05` for a count-down on the login screen."""
    s = max(0, int(seconds + 0.999))
    return f"{s // 60}:{s % 60:02d}"
