"""The escalation engine as pure functions: every change it makes, checked field by field."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from incident_engine.domain import engine
from incident_engine.domain.errors import Conflict, InvalidTransition
from incident_engine.domain.lifecycle import TERMINAL, Status
from incident_engine.domain.model import Change, Incident
from incident_engine.domain.policy import Repeat
from tests.unit.builders import BASE, T0, opened, policy


def fire(incident: Incident, after: float) -> Change:
    assert incident.token is not None and incident.due_at is not None
    change = engine.on_timer(incident, incident.token, incident.due_at + timedelta(seconds=after), BASE)
    assert change is not None
    return change


def test_without_a_policy_the_incident_stays_open_and_nothing_is_armed() -> None:
    change = opened(None)
    assert change.incident.status is Status.OPEN
    assert change.incident.escalation is None and change.timer is None and not change.outbox
    assert [e.type for e in change.events] == ["created"]
    assert change.expected_version is None and change.incident.version == 1


def test_level_zero_with_no_delay_fires_inside_the_creating_change() -> None:
    change = opened(policy(0, 3))
    inc = change.incident
    assert inc.status is Status.ESCALATING
    assert [e.type for e in change.events] == ["created", "escalation_started", "level_fired"]
    assert [n.recipient for n in change.outbox] == ["l0-0@example.com"]
    # level 1 is armed 3 minutes after level 0 fired, with a fresh token
    assert change.timer is not None and change.timer.due_at == T0 + timedelta(minutes=3)
    assert change.timer.token == inc.token and inc.due_at == change.timer.due_at
    assert inc.escalation is not None and (inc.escalation.level, inc.escalation.next_level) == (0, 1)
    # one record per step, written once when it is done: level 0 executed; level 1, armed, is the
    # incident's cursor until it fires or is cancelled
    assert [(r.level, r.status) for r in change.records] == [(0, "executed")]
    armed = engine.armed_step(inc)
    assert armed is not None and (armed.seq, armed.level, armed.status) == (2, 1, "pending")
    assert armed.scheduled_at == inc.due_at


def test_level_zero_with_a_delay_is_armed_not_fired() -> None:
    change = opened(policy(2))
    assert not change.outbox and change.timer is not None
    assert change.timer.due_at == T0 + timedelta(minutes=2)
    assert change.records == []
    armed = engine.armed_step(change.incident)
    assert armed is not None and (armed.seq, armed.level, armed.status) == (1, 0, "pending")


def test_fire_advances_cursor_and_token_and_records_dedup_ids() -> None:
    first = opened(policy(0, 0.05, 1)).incident
    change = fire(first, 0.2)
    inc = change.incident
    assert change.expected_version == first.version and inc.version == first.version + 1
    assert inc.token != first.token
    assert [n.dedup_id for n in change.outbox] == [f"{inc.id}/{first.token}/l1-0@example.com"]
    assert inc.escalation is not None and (inc.escalation.level, inc.escalation.next_level) == (1, 2)
    # the next wait counts from when the level actually fired
    assert change.timer is not None and change.timer.due_at == first.due_at + timedelta(
        seconds=0.2, minutes=1
    )  # type: ignore[operator]


def test_last_level_without_repeat_exhausts_the_policy() -> None:
    change = fire(opened(policy(0, 1)).incident, 0)
    inc = change.incident
    assert change.timer is None and inc.due_at is None
    assert (
        inc.status is Status.ESCALATING and inc.escalation is not None and inc.escalation.next_level is None
    )
    assert change.events[-1].type == "escalation_exhausted"


def test_repeat_loops_back_to_level_zero_until_max_repeats() -> None:
    inc = opened(policy(0, 1, repeat=Repeat(max_repeats=1, interval_minutes=10))).incident
    change = fire(inc, 0)  # level 1, loop 0 -> wraps to level 0 of loop 1 after the interval
    assert change.timer is not None and change.timer.due_at == inc.due_at + timedelta(minutes=10)  # type: ignore[operator]
    assert change.incident.escalation is not None and change.incident.escalation.next_loop == 1
    change = fire(change.incident, 0)  # level 0, loop 1
    change = fire(change.incident, 0)  # level 1, loop 1: the last one
    assert change.timer is None and change.events[-1].type == "escalation_exhausted"
    assert change.outbox[0].loop == 1


def test_a_timer_with_a_replaced_token_is_stale() -> None:
    inc = opened(policy(0, 1)).incident
    assert engine.on_timer(inc, "not-the-token", inc.due_at, BASE) is None  # type: ignore[arg-type]
    acked = engine.acknowledge(inc, "bob", T0).incident
    assert engine.on_timer(acked, inc.token, inc.due_at, BASE) is None  # type: ignore[arg-type]


def test_acknowledge_stops_escalation_and_cancels_the_pending_step() -> None:
    inc = opened(policy(0, 1)).incident
    change = engine.acknowledge(inc, "bob", T0 + timedelta(seconds=30))
    acked = change.incident
    assert acked.status is Status.ACKNOWLEDGED and acked.acknowledged_by == "bob"
    assert acked.token != inc.token and acked.due_at is None and change.timer is None
    assert [(r.level, r.status) for r in change.records] == [(1, "cancelled")]
    assert change.events[0].data == {"from": "escalating", "to": "acknowledged"}


def test_repeated_alerts_fold_into_one_event_per_run() -> None:
    alert = {"integration": "pagerduty", "action": "trigger", "summary": "5xx", "source_severity": "critical"}
    inc = opened(None).incident
    # Each repeat counts on the incident alone: no event appended, the run (first_at, opening
    # version) counted + 1, so the store writes it as one conditional put
    first = engine.append_alert(inc, alert, "5xx", "pagerduty", T0 + timedelta(seconds=1))
    second = engine.append_alert(first.incident, alert, "5xx", "pagerduty", T0 + timedelta(seconds=2))
    assert first.events == [] and second.events == [] and second.records == [] and second.outbox == []
    run = second.incident.repeats
    assert run is not None and (run.first_at, run.version, run.count) == (T0 + timedelta(seconds=1), 2, 2)
    # The open run reads as one event, from the incident item
    event = engine.repeat_event(second.incident)
    assert event is not None and event.fold == run and event.at == run.first_at
    assert event.type == "alert_repeated" and event.actor == "pagerduty"
    assert event.data["count"] == 2 and event.data["alert_count"] == 3
    assert event.data["last_at"] == "2026-11-22T07:00:02.000Z" and event.data["summary"] == "5xx"
    # Any other change ends the run and writes its event, unchanged, in the same change
    ack = engine.acknowledge(second.incident, "bob", T0 + timedelta(seconds=3))
    acked = ack.incident
    assert acked.repeats is None and engine.repeat_event(acked) is None
    assert [e.type for e in ack.events] == ["acknowledged", "alert_repeated"] and ack.events[1] == event
    again = engine.append_alert(acked, alert, "5xx", "pagerduty", T0 + timedelta(seconds=4))
    assert again.incident.repeats is not None and again.incident.repeats.count == 1
    assert again.incident.repeats.version == acked.version + 1


def test_snooze_then_wake_repages_from_level_zero() -> None:
    inc = engine.acknowledge(opened(policy(0, 1)).incident, "bob", T0).incident
    snoozed = engine.snooze(inc, 30, "bob", T0)
    assert snoozed.incident.status is Status.SNOOZED
    assert snoozed.timer is not None and snoozed.timer.due_at == T0 + timedelta(minutes=30)
    woken = fire(snoozed.incident, 0)
    assert woken.incident.status is Status.ESCALATING
    assert [e.type for e in woken.events] == ["snooze_ended", "escalation_started", "level_fired"]
    assert [n.level for n in woken.outbox] == [0]


def test_snooze_without_policy_wakes_to_open() -> None:
    snoozed = engine.snooze(opened(None).incident, 5, "bob", T0).incident
    woken = fire(snoozed, 0).incident
    assert woken.status is Status.OPEN and woken.due_at is None


def test_escalate_fires_the_armed_level_now_and_keeps_its_dedup_id() -> None:
    inc = opened(policy(0, 10)).incident
    change = engine.escalate(inc, "bob", T0 + timedelta(minutes=1), None, BASE)
    assert [n.dedup_id for n in change.outbox] == [f"{inc.id}/{inc.token}/l1-0@example.com"]
    assert [(r.level, r.status) for r in change.records] == [(1, "executed")]


def test_escalate_after_acknowledge_goes_to_the_next_level() -> None:
    inc = engine.acknowledge(opened(policy(0, 10, 10)).incident, "bob", T0).incident
    change = engine.escalate(inc, "bob", T0, None, BASE)
    assert change.incident.status is Status.ESCALATING
    assert [n.level for n in change.outbox] == [1]
    assert [(r.level, r.status) for r in change.records] == [(1, "executed")]
    armed = engine.armed_step(change.incident)
    assert armed is not None and (armed.level, armed.status) == (2, "pending")


def test_escalate_an_open_incident_needs_a_policy() -> None:
    inc = opened(None).incident
    with pytest.raises(Conflict):
        engine.escalate(inc, "bob", T0, None, BASE)
    change = engine.escalate(inc, "bob", T0, policy(5), BASE)
    assert change.incident.status is Status.ESCALATING and [n.level for n in change.outbox] == [0]


def test_resolve_notifies_everyone_paged_once_each() -> None:
    inc = opened(policy(0, 0, repeat=Repeat(1, 1), per_level=2)).incident
    inc = fire(inc, 0).incident  # level 1
    inc = fire(inc, 0).incident  # level 0 again (loop 1): same people, paged again
    change = engine.resolve(inc, "bob", "rolled back", T0 + timedelta(hours=1), BASE)
    assert change.incident.status is Status.RESOLVED and change.timer is None
    assert sorted(n.recipient for n in change.outbox) == [
        "l0-0@example.com",
        "l0-1@example.com",
        "l1-0@example.com",
        "l1-1@example.com",
    ]
    assert {n.kind for n in change.outbox} == {"resolution"}
    assert all(n.dedup_id == f"{inc.id}/resolution/{n.recipient}" for n in change.outbox)


def test_terminal_incidents_refuse_actions_with_the_allowed_list() -> None:
    inc = engine.cancel(opened(policy(0)).incident, "bob", "false alarm", T0, BASE).incident
    with pytest.raises(InvalidTransition) as err:
        engine.acknowledge(inc, "bob", T0)
    assert err.value.details == {"status": "cancelled", "allowed": []}


# --- properties over any sequence of actions and timers ------------------------------------

ACTIONS = st.sampled_from(["timer", "stale_timer", "acknowledge", "snooze", "escalate", "resolve", "cancel"])


@settings(max_examples=300, deadline=None)
@given(st.lists(ACTIONS, max_size=25), st.integers(min_value=1, max_value=4))
def test_protocol_invariants_hold_for_any_sequence(steps: list[str], levels: int) -> None:
    p = policy(*([0] + [0.5] * (levels - 1)), repeat=Repeat(1, 2))
    change = opened(p)
    inc, now = change.incident, T0
    fired_dedup_ids: set[str] = {n.dedup_id for n in change.outbox}
    for step in steps:
        now += timedelta(minutes=1)
        try:
            if step == "timer":
                change = engine.on_timer(inc, inc.token or "", now, BASE)  # type: ignore[assignment]
            elif step == "stale_timer":
                assert engine.on_timer(inc, "stale", now, BASE) is None
                continue
            elif step == "acknowledge":
                change = engine.acknowledge(inc, "u", now)
            elif step == "snooze":
                change = engine.snooze(inc, 5, "u", now)
            elif step == "escalate":
                change = engine.escalate(inc, "u", now, p, BASE)
            elif step == "resolve":
                change = engine.resolve(inc, "u", None, now, BASE)
            else:
                change = engine.cancel(inc, "u", None, now, BASE)
        except (InvalidTransition, Conflict):
            assert step in ("acknowledge", "snooze", "escalate", "resolve", "cancel")
            continue
        if change is None:
            continue
        previous, inc = inc, change.incident
        # every change is conditional on the version it read, and bumps it by one
        assert change.expected_version == previous.version and inc.version == previous.version + 1
        # a change that arms a timer always hands it a token no earlier timer had
        if change.timer is not None:
            assert change.timer.token == inc.token != previous.token and change.timer.due_at == inc.due_at
        # a level fires at most once per token: dedup ids never repeat across pages
        pages = [n.dedup_id for n in change.outbox if n.kind == "page"]
        assert len(pages) == len(set(pages)) and not (set(pages) & fired_dedup_ids)
        fired_dedup_ids |= set(pages)
        # one transaction never writes the same record twice
        seqs = [r.seq for r in change.records]
        assert len(seqs) == len(set(seqs))
        # after an ack, resolve or cancel nothing is armed, and the old token is dead
        if inc.status in TERMINAL or inc.status is Status.ACKNOWLEDGED:
            assert inc.due_at is None and change.timer is None
            assert engine.on_timer(inc, previous.token or "", now + timedelta(hours=1), BASE) is None
