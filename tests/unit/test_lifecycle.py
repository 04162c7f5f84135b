"""The transition table is the one place lifecycle rules live; every cell is checked here."""

import pytest

from incident_engine.domain.errors import InvalidTransition
from incident_engine.domain.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    Action,
    Status,
    allowed_actions,
    ensure_allowed,
)

EXPECTED = {
    Status.OPEN: {"acknowledge", "escalate", "snooze", "resolve", "cancel"},
    Status.ESCALATING: {"acknowledge", "escalate", "snooze", "resolve", "cancel"},
    Status.ACKNOWLEDGED: {"escalate", "snooze", "resolve", "cancel"},
    Status.SNOOZED: {"acknowledge", "escalate", "resolve", "cancel"},
    Status.RESOLVED: set(),
    Status.CANCELLED: set(),
}


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("action", list(Action))
def test_every_cell_of_the_table(status: Status, action: Action) -> None:
    if action.value in EXPECTED[status]:
        ensure_allowed(status, action)
    else:
        with pytest.raises(InvalidTransition) as err:
            ensure_allowed(status, action)
        assert err.value.details == {
            "status": status.value,
            "allowed": sorted(EXPECTED[status], key=[a.value for a in Action].index),
        }


def test_terminal_states_accept_nothing() -> None:
    assert {s for s in Status if not TRANSITIONS[s]} == set(TERMINAL) == {Status.RESOLVED, Status.CANCELLED}


def test_allowed_actions_keep_the_table_order() -> None:
    assert allowed_actions(Status.ACKNOWLEDGED) == ["escalate", "snooze", "resolve", "cancel"]
