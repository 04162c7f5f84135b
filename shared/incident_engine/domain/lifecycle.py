"""The incident lifecycle: the one transition table every action is checked against."""

from __future__ import annotations

from enum import StrEnum

from incident_engine.domain.errors import InvalidTransition


class Status(StrEnum):
    OPEN = "open"
    ESCALATING = "escalating"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ESCALATE = "escalate"
    SNOOZE = "snooze"
    RESOLVE = "resolve"
    CANCEL = "cancel"


# Which actions each status accepts. `escalate` on an acknowledged or snoozed incident
# re-opens paging at the next level (as PagerDuty's "escalate" does); terminal states accept none.
TRANSITIONS: dict[Status, tuple[Action, ...]] = {
    Status.OPEN: (Action.ACKNOWLEDGE, Action.ESCALATE, Action.SNOOZE, Action.RESOLVE, Action.CANCEL),
    Status.ESCALATING: (Action.ACKNOWLEDGE, Action.ESCALATE, Action.SNOOZE, Action.RESOLVE, Action.CANCEL),
    Status.ACKNOWLEDGED: (Action.ESCALATE, Action.SNOOZE, Action.RESOLVE, Action.CANCEL),
    Status.SNOOZED: (Action.ACKNOWLEDGE, Action.ESCALATE, Action.RESOLVE, Action.CANCEL),
    Status.RESOLVED: (),
    Status.CANCELLED: (),
}

TERMINAL: frozenset[Status] = frozenset({Status.RESOLVED, Status.CANCELLED})


def allowed_actions(status: Status) -> list[str]:
    return [a.value for a in TRANSITIONS[status]]


def ensure_allowed(status: Status, action: Action) -> None:
    if action not in TRANSITIONS[status]:
        raise InvalidTransition(
            f"cannot {action.value} an incident that is {status.value}",
            status=status.value,
            allowed=allowed_actions(status),
        )
