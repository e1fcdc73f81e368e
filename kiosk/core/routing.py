"""The site's return-routing table: which bin a returned item goes to and what the patron or staff are told.

    table = RoutingTable.from_config(cfg)          # [[routing]] rows + [sorter] bins
    decision = table.decide(outcome, routing, media_type=..., owner=...)  -> RouteDecision

Rows are tried in order and the first whose conditions all hold wins (an empty condition matches
anything). A row without `outcome` applies to items checked in (online or queued offline); a row
with `outcome = "other_library"` (any ReturnOutcome value) applies to that exception. Without a
matching row: exceptions and items with an alert go to `[sorter] exception_bin`; other items go to
the library system's numeric sort bin (CL) if it gave one, else `[sorter] default_bin`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kiosk.core.domain import AlertType, Routing
from kiosk.core.errors import RoutingTableError


class ReturnOutcome(enum.StrEnum):
    """What happened to one returned item; each exception has its own code, bin and journal record."""

    CHECKED_IN = "checked_in"
    QUEUED_OFFLINE = "queued_offline"
    SET_INCOMPLETE = "set_incomplete"
    UNREADABLE_TAG = "unreadable_tag"
    UNKNOWN_ITEM = "unknown_item"
    OTHER_LIBRARY = "other_library"
    NOT_ON_LOAN = "not_on_loan"
    REFUSED = "refused"  # the library system said no for another reason
    LINK_DOWN = "link_down"  # unreachable and the offline policy does not allow queuing
    SECURITY_FAILED = "security_failed"  # checked in, but the tag could not be re-secured
    SORTER_FAILED = "sorter_failed"  # book drop: the sorter refused or is down

    @property
    def is_exception(self) -> bool:
        return self not in (ReturnOutcome.CHECKED_IN, ReturnOutcome.QUEUED_OFFLINE)


class Instruction(enum.StrEnum):
    """What to tell the patron (or staff) about a returned item; screens word these codes."""

    DONE = "done"  # nothing to do: leave it in the return bin / on the trolley
    HOLD_SHELF = "hold_shelf"  # wanted here by another patron (put in the reservation box)
    OTHER_BRANCH = "other_branch"  # wanted at another branch
    TRANSIT = "transit"  # belongs elsewhere
    SPECIAL = "special"  # special handling
    TAKE_TO_DESK = "take_to_desk"
    PLACE_ALL_PARTS = "place_all_parts"


_ALERT_INSTRUCTION = {
    AlertType.HOLD_HERE: Instruction.HOLD_SHELF,
    AlertType.HOLD_OTHER_BRANCH: Instruction.OTHER_BRANCH,
    AlertType.HOLD_ILL: Instruction.OTHER_BRANCH,
    AlertType.TRANSIT: Instruction.TRANSIT,
    AlertType.OTHER: Instruction.SPECIAL,
    AlertType.UNKNOWN: Instruction.SPECIAL,
}
_HOLD_ALERTS = (AlertType.HOLD_HERE, AlertType.HOLD_OTHER_BRANCH, AlertType.HOLD_ILL)


@dataclass(frozen=True)
class RouteDecision:
    """Where an item goes: a bin, an instruction code (or the site's own text key) and whether to print a hold slip."""

    bin: int
    instruction: str
    hold_slip: bool = False
    rule: int | None = (
        None  # index of the [[routing]] row that matched, None for the built-in default
    )
    exception: bool = False


@dataclass(frozen=True)
class Rule:
    """A validated `[[routing]]` row (see kiosk.config.RoutingRule)."""

    bin: int
    instruction: str = ""
    outcome: ReturnOutcome | None = None
    sort_bin: str = ""
    alert_type: AlertType | None = None
    alert: bool | None = None
    media_type: str = ""
    owner: str = ""
    hold_slip: bool = False


def _alert_type(value: str, where: str) -> AlertType | None:
    if not value:
        return None
    for member in AlertType:
        if value == member.value or value.lower() == member.name.lower():
            return member
    names = ", ".join(f"{m.value} ({m.name.lower()})" for m in AlertType if m.value)
    raise RoutingTableError(f"{where}.alert_type: expected one of {names}, got {value!r}")


def _outcome(value: str, where: str) -> ReturnOutcome | None:
    if not value:
        return None
    try:
        return ReturnOutcome(value)
    except ValueError:
        names = ", ".join(o.value for o in ReturnOutcome)
        raise RoutingTableError(
            f"{where}.outcome: expected one of {names}, got {value!r}"
        ) from None


class RoutingTable:
    """First-match rule table over returned items; see the module docstring for the defaults."""

    def __init__(
        self, rules: tuple[Rule, ...] = (), default_bin: int = 1, exception_bin: int = 0
    ) -> None:
        self.rules = rules
        self.default_bin = default_bin
        self.exception_bin = exception_bin

    @classmethod
    def from_config(cls, cfg: object) -> RoutingTable:
        """Build from a kiosk.config.Config (`routing` rows, `[sorter] default_bin/exception_bin`)."""
        rules = []
        for i, row in enumerate(getattr(cfg, "routing", ())):
            where = f"routing[{i}]"
            rules.append(
                Rule(
                    bin=row.bin,
                    instruction=row.instruction,
                    outcome=_outcome(getattr(row, "outcome", ""), where),
                    sort_bin=row.sort_bin,
                    alert_type=_alert_type(row.alert_type, where),
                    alert=row.alert,
                    media_type=row.media_type,
                    owner=row.owner,
                    hold_slip=row.hold_slip,
                )
            )
        sorter = getattr(cfg, "sorter", None)
        return cls(
            tuple(rules),
            default_bin=getattr(sorter, "default_bin", 1),
            exception_bin=getattr(sorter, "exception_bin", 0),
        )

    def decide(
        self,
        outcome: ReturnOutcome,
        routing: Routing | None = None,
        *,
        media_type: str = "",
        owner: str = "",
    ) -> RouteDecision:
        """The bin and instruction for one returned item; `media_type`/`owner` fill in what the answer lacks."""
        routing = routing or Routing()
        media = routing.media_type or media_type
        own = routing.owner or owner
        default = self._default(outcome, routing)
        for index, rule in enumerate(self.rules):
            if self._matches(rule, outcome, routing, media, own):
                return RouteDecision(
                    bin=rule.bin,
                    instruction=rule.instruction or default.instruction,
                    hold_slip=rule.hold_slip or default.hold_slip,
                    rule=index,
                    exception=outcome.is_exception,
                )
        return default

    @staticmethod
    def _matches(
        rule: Rule, outcome: ReturnOutcome, routing: Routing, media: str, owner: str
    ) -> bool:
        if rule.outcome is None:
            if outcome.is_exception:
                return False
        elif rule.outcome is not outcome:
            return False
        if rule.sort_bin and rule.sort_bin != routing.sort_bin:
            return False
        if rule.alert_type is not None and rule.alert_type is not routing.alert_type:
            return False
        if rule.alert is not None and rule.alert != routing.alert:
            return False
        if rule.media_type and rule.media_type != media:
            return False
        if rule.owner and rule.owner != owner:
            return False
        return True

    def _default(self, outcome: ReturnOutcome, routing: Routing) -> RouteDecision:
        hold = routing.alert_type in _HOLD_ALERTS or (
            bool(routing.hold_patron_id) and not outcome.is_exception
        )
        if outcome.is_exception:
            instruction = (
                Instruction.PLACE_ALL_PARTS
                if outcome is ReturnOutcome.SET_INCOMPLETE
                else Instruction.TAKE_TO_DESK
            )
            return RouteDecision(self.exception_bin, instruction, hold_slip=False, exception=True)
        # Koha may send CV 00 on every successful check-in (cv_send_00_on_success): not an alert.
        if routing.alert or routing.alert_type not in (AlertType.NONE, AlertType.UNKNOWN):
            instruction = _ALERT_INSTRUCTION.get(routing.alert_type, Instruction.SPECIAL)
            return RouteDecision(self.exception_bin, instruction, hold_slip=hold)
        if routing.sort_bin.strip().isdigit():
            return RouteDecision(int(routing.sort_bin), Instruction.DONE, hold_slip=hold)
        return RouteDecision(self.default_bin, Instruction.DONE, hold_slip=hold)
