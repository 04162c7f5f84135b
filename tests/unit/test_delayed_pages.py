"""A contact's delay_minutes in the engine: scheduled rows, their timers, and who retires them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from incident_engine.domain import engine
from incident_engine.domain.lifecycle import Status
from incident_engine.domain.model import Change, Incident, Notification
from incident_engine.domain.people import ContactMethod, User
from incident_engine.domain.policy import Level, Policy, Repeat, Target
from incident_engine.domain.targets import ConfigView
from tests.unit.builders import BASE, T0

SMS, MAIL = "+15550001234", "ann@example.com"
ANN = User(
    "usr_ann",
    "Ann",
    MAIL,
    "UTC",
    (ContactMethod("sms", SMS), ContactMethod("email", MAIL, 5)),
)
VIEW = ConfigView(users={ANN.id: ANN})


def ann_policy(repeat: Repeat | None = None, stop_on_ack: bool = True) -> Policy:
    levels = (
        Level(0, (Target("user", ANN.id, "user_id"),)),
        Level(60, (Target("user", "lead@example.com"),)),
    )
    return Policy("pol_1", "p", levels, repeat=repeat, stop_on_ack=stop_on_ack, created_at=T0)


def opened(p: Policy | None = None) -> Change:
    new = engine.NewIncident(title="db down", severity=engine.Severity.P1)
    return engine.open_incident("INC-20261122-001", new, p or ann_policy(), T0, "alice", BASE, view=VIEW)


def scheduled_row(change: Change) -> Notification:
    [row] = [n for n in change.outbox if n.status == "scheduled"]
    return row


def test_a_delayed_contact_is_scheduled_with_a_timer_of_its_own_and_not_yet_paged() -> None:
    change = opened()
    inc = change.incident
    # the SMS is a pending row (published after the commit); the e-mail waits 5 minutes
    assert {(n.recipient, n.status) for n in change.outbox} == {(SMS, "pending"), (MAIL, "scheduled")}
    row = scheduled_row(change)
    assert row.due_at == T0 + timedelta(minutes=5)
    [timer] = change.page_timers
    assert (timer.page, timer.due_at, timer.incident_id) == (row.dedup_id, row.due_at, inc.id)
    # the incident lists it, and only the SMS counts as paged (closure notices go to those paged)
    assert [(s.dedup_id, s.address) for s in inc.scheduled] == [(row.dedup_id, MAIL)]
    assert inc.paged == (("sms", SMS),)
    # level 1's own timer is untouched
    assert change.timer is not None and change.timer.page is None
    fired = next(e for e in change.events if e.type == "level_fired")
    assert fired.data["recipients"] == [SMS]
    assert [d["outcome"] for d in fired.data["delayed"]] == ["scheduled"]


def test_its_timer_releases_it_once() -> None:
    first = opened()
    row = scheduled_row(first)
    due = row.due_at
    assert due is not None
    change = engine.on_page_timer(first.incident, row, due)
    assert change is not None
    assert [(n.dedup_id, n.status) for n in change.released] == [(row.dedup_id, "pending")]
    assert change.incident.scheduled == () and ("email", MAIL) in change.incident.paged
    assert change.expected_version == first.incident.version  # conditional like any change
    assert [e.type for e in change.events] == ["delayed_page_sent"]
    # the same timer again (a duplicate or late delivery) finds the row moved on: nothing to do
    assert engine.on_page_timer(change.incident, replace(row, status="pending"), due) is None
    assert engine.on_page_timer(change.incident, row, due) is None  # no longer listed


def test_an_ack_retires_it_in_the_same_change() -> None:
    first = opened()
    row = scheduled_row(first)
    change = engine.acknowledge(first.incident, "bob", T0 + timedelta(minutes=1))
    assert change.retired == [row.dedup_id] and change.incident.scheduled == ()
    assert "delayed_pages_superseded" in [e.type for e in change.events]
    assert engine.on_page_timer(change.incident, row, T0 + timedelta(minutes=5)) is None


def test_snooze_resolve_and_cancel_retire_it_too() -> None:
    first = opened()
    row = scheduled_row(first)
    later = T0 + timedelta(minutes=1)
    for change in (
        engine.snooze(first.incident, 10, "bob", later),
        engine.resolve(first.incident, "bob", None, later, BASE),
        engine.cancel(first.incident, "bob", None, later, BASE),
    ):
        assert change.retired == [row.dedup_id] and change.incident.scheduled == ()
        # nobody is told of a closure on a channel never paged
        assert {(n.channel, n.recipient) for n in change.outbox} <= {("sms", SMS)}


def test_a_closing_change_stays_within_its_bound_and_leaves_the_rest_to_their_timers() -> None:
    first = opened()
    row = scheduled_row(first)
    many = tuple(replace(first.incident.scheduled[0], dedup_id=f"x/{n}") for n in range(30))
    inc = replace(first.incident, scheduled=many + first.incident.scheduled)
    change = engine.resolve(inc, "bob", None, T0, BASE)
    assert len(change.retired) == engine.MAX_SUPERSEDED and change.incident.scheduled == ()
    # the row left out is not listed any more: its timer retires it instead of sending it
    assert engine.on_page_timer(change.incident, row, T0 + timedelta(minutes=5)) is None


def test_a_level_firing_again_keeps_the_earlier_scheduled_page() -> None:
    # a one-level policy repeating every minute
    p = Policy("pol_1", "p", (ann_policy().levels[0],), repeat=Repeat(2, 1), created_at=T0)
    first = opened(p)
    inc = first.incident
    assert inc.token is not None and inc.due_at is not None
    again = engine.on_timer(inc, inc.token, inc.due_at, BASE, view=VIEW)
    assert again is not None
    assert [n.recipient for n in again.outbox] == [SMS] and not again.page_timers
    assert again.incident.scheduled == inc.scheduled
    fired = next(e for e in again.events if e.type == "level_fired")
    assert [d["outcome"] for d in fired.data["delayed"]] == ["already_scheduled"]


def test_on_an_acknowledged_incident_that_pages_on_the_delayed_contact_is_superseded_at_once() -> None:
    # stop_on_ack false: level 1 still fires after the ack; Ann is on level 1 this time
    levels = (Level(0, (Target("user", "desk@example.com"),)), Level(1, (Target("user", ANN.id, "user_id"),)))
    p = Policy("pol_1", "p", levels, stop_on_ack=False, created_at=T0)
    first = opened(p)
    acked = engine.acknowledge(first.incident, "bob", T0).incident
    assert acked.status is Status.ACKNOWLEDGED and acked.token is not None and acked.due_at is not None
    change = engine.on_timer(acked, acked.token, acked.due_at, BASE, view=VIEW)
    assert change is not None
    assert {(n.recipient, n.status) for n in change.outbox} == {(SMS, "pending"), (MAIL, "superseded")}
    assert not change.page_timers and change.incident.scheduled == ()


def test_past_the_bound_a_delayed_contact_is_paged_at_once_never_lost() -> None:
    first = opened()
    full = tuple(
        replace(first.incident.scheduled[0], dedup_id=f"x/{n}", address=f"u{n}@example.com")
        for n in range(engine.MAX_SCHEDULED)
    )
    inc: Incident = replace(first.incident, scheduled=full)
    # level 1 (the lead) fires now; escalating again wraps to Ann's level 0, in a new loop
    change = engine.escalate(inc, "bob", T0, None, BASE, view=VIEW)
    again = engine.escalate(change.incident, "bob", T0, None, BASE, view=VIEW)
    assert (MAIL, "pending") in [(n.recipient, n.status) for n in again.outbox]
    fired = next(e for e in again.events if e.type == "level_fired")
    assert [d["outcome"] for d in fired.data["delayed"]] == ["paged_now"]
