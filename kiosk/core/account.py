"""The patron's account: loans with due dates (overdue flagged), holds (ready first), fees, and renewals.

    acc = AccountView(circulation, patron, patron_id, pin=pin, clock=clock, renew_supported=True)
    acc.state          -> AccountState
    acc.refresh()      -> AccountState   (asks the library system again)
    acc.renew(item_id) -> AccountState   (each loan line carries its renewal result)
    acc.renew_all()    -> AccountState
    acc.renewal_lines() -> tuple[ReceiptLine, ...]  (for the receipt)

Renewal is offered only when the library system supports it (`renew_supported`, from LinkStatus)
and the patron's renewal privileges are not denied. Runs on the core worker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from kiosk.core.domain import (
    BlockReason,
    CirculationResult,
    Fee,
    Hold,
    LinkStatus,
    Loan,
    Mode,
    Operation,
    Patron,
    Refusal,
    fault_refusal,
)
from kiosk.core.errors import log_fault
from kiosk.core.ports import Circulation, Clock
from kiosk.core.receipt import ReceiptLine

log = logging.getLogger(__name__)

_SIP_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})")
_DOT_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def parse_due_date(text: str) -> datetime | None:
    """A due date as the library system wrote it (SIP `YYYYMMDD    HHMMSS`, ISO, or `dd.mm.yyyy`), else None.

    The end of the day counts: an item due today is not overdue.
    """
    text = (text or "").strip()
    for pattern, order in ((_SIP_DATE, "ymd"), (_ISO_DATE, "ymd"), (_DOT_DATE, "dmy")):
        m = pattern.match(text)
        if not m:
            continue
        a, b, c = (int(g) for g in m.groups())
        y, mo, d = (a, b, c) if order == "ymd" else (c, b, a)
        try:
            return datetime(y, mo, d, 23, 59, 59)
        except ValueError:
            return None
    return None


def same_due_day(before: str, after: str) -> bool:
    """Both due dates known and on the same day."""
    first, second = parse_due_date(before), parse_due_date(after)
    return first is not None and second is not None and first.date() == second.date()


def renewal_supported(status: LinkStatus) -> bool:
    """Whether the library system lets the kiosk renew (ACS status renewal flag and BX position 14)."""
    if not status.renewal_ok or not status.online:
        return False
    if not status.supported:
        return True  # the ACS did not list its messages: the renewal flag is all we know
    names = {s.lower() for s in status.supported}
    return bool(names & {"renew", "renewal", "29", "14"})


@dataclass(frozen=True)
class LoanLine:
    """A loan as shown in the account, with the result of a renewal tried in this session."""

    item_id: str
    title: str = ""
    due_date: str = ""
    overdue: bool = False
    renewed: bool | None = None  # None: not tried in this session
    refusal: Refusal = Refusal.NONE
    message: str = ""
    offline: bool = False
    # The due date before a renewal accepted in this session, where the kiosk knew it (from the
    # patron's loan list) and the library system then said the new one; "" otherwise.
    previous_due: str = ""

    @property
    def due_unchanged(self) -> bool:
        """A renewal the library system accepted without moving the due date (some systems do
        this at a loan-period or patron-expiry limit); False wherever either date is unknown."""
        return self.renewed is True and same_due_day(self.previous_due, self.due_date)


@dataclass(frozen=True)
class AccountState:
    """A snapshot of the account view."""

    loans: tuple[LoanLine, ...] = ()
    holds: tuple[Hold, ...] = ()  # ready-for-pickup first
    fees: tuple[Fee, ...] = ()
    fee_total: str = ""
    currency: str = "EUR"
    renew_available: bool = False
    offline: bool = False  # the library system was not reachable: lists may be missing
    message: str = ""

    @property
    def overdue_count(self) -> int:
        return sum(1 for loan in self.loans if loan.overdue)

    @property
    def holds_ready(self) -> tuple[Hold, ...]:
        return tuple(h for h in self.holds if h.ready)


class AccountView:
    """Loans, holds, fees and renewals for the logged-in patron."""

    def __init__(
        self,
        circulation: Circulation,
        patron: Patron,
        patron_id: str,
        *,
        clock: Clock,
        pin: str | None = None,
        renew_supported: bool = True,
        offline: bool = False,
    ) -> None:
        self._circ = circulation
        self._patron_id = patron_id
        self._pin = pin
        self._clock = clock
        self._renew_supported = renew_supported
        self._offline = offline
        self._results: dict[str, LoanLine] = {}
        self._previous_due: dict[str, str] = {}  # renewed item -> its due date before
        self._renewal_lines: dict[str, ReceiptLine] = {}
        self._state = self._build(patron)

    @property
    def state(self) -> AccountState:
        return self._state

    def refresh(self) -> AccountState:
        """Ask the library system for the current lists (after renewals, new due dates)."""
        try:
            result = self._circ.identify_patron(self._patron_id, self._pin)
        except Exception as exc:
            # A port call at the workflow's edge: the account stays as shown; a bug keeps its traceback.
            log_fault(log, exc, "account refresh failed in the circulation service")
            return self._state
        # A PIN-less refresh may come back "not ok" (CQ=N) yet carry the lists: use them.
        if result.patron is not None and result.patron.valid:
            self._offline = result.mode is Mode.OFFLINE
            self._state = self._build(result.patron)
        return self._state

    def renew(self, item_id: str) -> AccountState:
        """Renew one loan; its line then carries the new due date or the refusal."""
        if not self._state.renew_available:
            return self._state
        try:
            res = self._circ.renew(self._patron_id, item_id, pin=self._pin)
        except Exception as exc:
            # A port call at the workflow's edge: the renewal is shown as not done, never lost.
            log_fault(log, exc, "renewal of %s failed in the circulation service", item_id)
            res = CirculationResult.service_failed(Operation.RENEW, item_id, exc)
        before = self._due_of(item_id)
        if res.ok and res.due_date and before:
            self._previous_due[item_id] = before
        self._record(
            item_id,
            res.ok,
            res.refusal,
            res.message,
            res.due_date,
            res.title,
            res.mode is Mode.OFFLINE,
        )
        return self._state

    def renew_all(self) -> AccountState:
        """Renew everything; each loan line then carries its own result."""
        if not self._state.renew_available:
            return self._state
        try:
            res = self._circ.renew_all(self._patron_id, pin=self._pin)
        except Exception as exc:
            # A port call at the workflow's edge: every loan is shown as not renewed, never lost.
            log_fault(log, exc, "renew all failed in the circulation service")
            refusal, text = fault_refusal(exc)
            for loan in self._state.loans:
                self._record(loan.item_id, False, refusal, text, "", loan.title, False)
            return self._state
        if not res.ok and not res.renewed and not res.unrenewed:
            for loan in self._state.loans:
                self._record(loan.item_id, False, Refusal.OTHER, res.message, "", loan.title, False)
            return self._state
        before = {item_id: self._due_of(item_id) for item_id in res.renewed}
        for item_id in res.renewed:
            self._record(item_id, True, Refusal.NONE, "", "", "", res.mode is Mode.OFFLINE)
        for item_id in res.unrenewed:
            self._record(item_id, False, Refusal.RENEWAL_LIMIT, res.message, "", "", False)
        # Renew-all answers carry no due dates: fetch them. Only fresh lists say the new dates.
        stale = self._state
        for item_id, due in before.items():
            if due:
                self._previous_due[item_id] = due
        self.refresh()
        if self._state is stale:
            for item_id in before:
                self._previous_due.pop(item_id, None)
            self._state = replace(
                self._state,
                loans=tuple(
                    replace(loan, previous_due="") if loan.item_id in before else loan
                    for loan in self._state.loans
                ),
            )
        for line in self._state.loans:
            if line.item_id in self._renewal_lines and line.renewed:
                old = self._renewal_lines[line.item_id]
                self._renewal_lines[line.item_id] = replace(
                    old, due_date=line.due_date, title=line.title or old.title
                )
        return self._state

    def renewal_lines(self) -> tuple[ReceiptLine, ...]:
        return tuple(self._renewal_lines.values())

    def note_borrowed(self, borrowed: Iterable[tuple[str, str, str]]) -> AccountState:
        """This visit's loans, as (item id, title, due date), added to the lists read at login.

        The account is shown at once and asked of the library system again; until that answer
        comes, the lists read at login would leave out what the patron has just borrowed ("1
        loan" with two books in hand), and a patron who looks then sees the count jump. The
        kiosk knows these loans from the library system's own checkout answers; the fresh lists
        replace them when they come."""
        loans = list(self._state.loans)
        where = {loan.item_id: n for n, loan in enumerate(loans)}
        for item_id, title, due in borrowed:
            n = where.get(item_id)
            if n is None:
                where[item_id] = len(loans)
                loans.append(LoanLine(item_id=item_id, title=title, due_date=due))
            elif due:  # renewed on the pad: the checkout's answer has the new date
                loans[n] = replace(loans[n], due_date=due, overdue=False)
        # Renewal stays as the login's lists allowed it (the blocks are the library system's to
        # say) until the fresh lists come.
        self._state = replace(self._state, loans=tuple(loans))
        return self._state

    def wipe(self) -> None:
        self._pin = None
        self._results.clear()
        self._previous_due.clear()
        self._renewal_lines.clear()
        self._state = AccountState()

    # -- internals --------------------------------------------------------------------------

    def _due_of(self, item_id: str) -> str:
        """The loan's due date as the kiosk knows it now ("" if not known)."""
        return next(
            (
                loan.due_date
                for loan in self._state.loans
                if loan.item_id == item_id and loan.due_date
            ),
            "",
        )

    def _record(
        self,
        item_id: str,
        ok: bool,
        refusal: Refusal,
        message: str,
        due: str,
        title: str,
        offline: bool,
    ) -> None:
        current = next(
            (loan for loan in self._state.loans if loan.item_id == item_id),
            LoanLine(item_id=item_id),
        )
        line = replace(
            current,
            title=title or current.title,
            due_date=due or current.due_date,
            overdue=current.overdue and not (ok and due),
            renewed=ok,
            previous_due=self._previous_due.get(item_id, "") if ok else "",
            refusal=Refusal.NONE
            if ok
            else (refusal if refusal is not Refusal.NONE else Refusal.OTHER),
            message=message,
            offline=offline,
        )
        self._results[item_id] = line
        self._renewal_lines[item_id] = ReceiptLine(
            item_id=item_id,
            title=line.title,
            due_date=line.due_date if ok else "",
            ok=ok,
            refusal=line.refusal,
            message=message,
            renewal=True,
            offline=offline,
        )
        loans = tuple(line if loan.item_id == item_id else loan for loan in self._state.loans)
        self._state = replace(self._state, loans=loans)

    def _build(self, patron: Patron) -> AccountState:
        now = self._clock.now()
        loans = []
        for loan in patron.loans:
            line = self._line(loan, now)
            tried = self._results.get(loan.item_id)
            if tried is not None:
                line = replace(
                    line,
                    renewed=tried.renewed,
                    refusal=tried.refusal,
                    message=tried.message,
                    offline=tried.offline,
                    previous_due=self._previous_due.get(loan.item_id, ""),
                )
            loans.append(line)
        holds = tuple(sorted(patron.holds, key=lambda h: not h.ready))
        renew_ok = (
            self._renew_supported
            and not self._offline
            and BlockReason.RENEWAL_DENIED not in patron.blocks
            and bool(loans)
        )
        return AccountState(
            loans=tuple(loans),
            holds=holds,
            fees=patron.fees,
            fee_total=patron.fee_total,
            currency=patron.currency,
            renew_available=renew_ok,
            offline=self._offline,
            message=patron.screen_message,
        )

    @staticmethod
    def _line(loan: Loan, now: datetime) -> LoanLine:
        due = parse_due_date(loan.due_date)
        overdue = loan.overdue or (due is not None and due < now)
        return LoanLine(
            item_id=loan.item_id, title=loan.title, due_date=loan.due_date, overdue=overdue
        )
