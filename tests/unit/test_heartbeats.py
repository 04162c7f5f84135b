"""Heartbeat state changes, pure: every change replaces the token; an outage is never lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from incident_engine.domain import heartbeats as hbd
from incident_engine.domain.alerts import AlertAction, Integration
from incident_engine.domain.heartbeats import HeartbeatStatus, HeartbeatTimer, TimerVerdict

T0 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def fresh(interval: int = 5) -> hbd.Heartbeat:
    return hbd.create("hb_1", "backup", "svc_1", interval, T0)


def timer_of(hb: hbd.Heartbeat) -> HeartbeatTimer:
    timer = hb.timer()
    assert timer is not None
    return timer


def test_a_new_heartbeat_is_armed_one_interval_ahead() -> None:
    hb = fresh()
    assert hb.status is HeartbeatStatus.UP and hb.synced and hb.version == 1
    assert hb.deadline == hb.due_at == T0 + 5 * MIN and hb.token


def test_a_ping_rearms_with_a_new_token_and_the_old_timer_is_stale() -> None:
    hb = fresh()
    old = timer_of(hb)
    pinged = hbd.ping(hb, T0 + 3 * MIN)
    assert pinged.token != hb.token and pinged.deadline == T0 + 8 * MIN and pinged.version == 2
    assert hbd.judge_timer(pinged, old, T0 + 6 * MIN) is TimerVerdict.STALE
    assert hbd.judge_timer(pinged, timer_of(pinged), T0 + 7 * MIN) is TimerVerdict.EARLY
    assert hbd.judge_timer(pinged, timer_of(pinged), T0 + 8 * MIN) is TimerVerdict.MISSED


def test_a_miss_records_the_outage_then_the_incident_work_is_due_at_once() -> None:
    hb = fresh()
    missed = hbd.miss(hb, T0 + 5 * MIN + timedelta(seconds=2))
    assert missed.status is HeartbeatStatus.DOWN and not missed.synced
    assert missed.missed_at == T0 + 5 * MIN and missed.outage_since == T0 + 5 * MIN + timedelta(seconds=2)
    assert missed.due_at == missed.outage_since  # in the due index until synced
    assert hbd.judge_timer(missed, timer_of(missed), missed.outage_since) is TimerVerdict.SYNC
    done = hbd.synced(missed, "INC-1", T0 + 6 * MIN)
    # Down and recorded: nothing more is due until a ping
    assert done.synced and done.due_at is None and done.timer() is None and done.incident_id == "INC-1"
    assert done.outage_since == missed.outage_since


def test_the_ping_after_a_miss_ends_the_outage() -> None:
    down = hbd.synced(hbd.miss(fresh(), T0 + 6 * MIN), "INC-1", T0 + 6 * MIN)
    pinged = hbd.ping(down, T0 + 9 * MIN)
    assert pinged.status is HeartbeatStatus.UP and not pinged.synced and pinged.recovered_at == T0 + 9 * MIN
    up = hbd.synced(pinged, None, T0 + 9 * MIN)
    assert up.outage_since is None and up.due_at == up.deadline == T0 + 14 * MIN


def test_a_ping_after_the_deadline_that_no_timer_saw_records_the_miss_itself() -> None:
    # Given the timer is late: the deadline (07:05) passed and nothing recorded it
    late = hbd.ping(fresh(), T0 + 7 * MIN)
    # Then the ping records the outage and its end: the miss is not lost
    assert late.missed_at == T0 + 5 * MIN and late.outage_since == T0 + 7 * MIN and not late.synced
    assert late.status is HeartbeatStatus.UP


def test_a_disabled_heartbeat_leaves_the_due_index_and_its_timer_is_stale() -> None:
    hb = fresh()
    disabled = hbd.disable(hb, T0 + MIN)
    assert not disabled.enabled and disabled.due_at is None and disabled.token != hb.token
    assert hbd.judge_timer(disabled, timer_of(hb), T0 + 10 * MIN) is TimerVerdict.STALE


def test_an_edit_counts_the_new_interval_from_the_last_ping() -> None:
    pinged = hbd.ping(fresh(), T0 + 2 * MIN)
    edited = hbd.edit(pinged, "backup v2", 30, T0 + 3 * MIN)
    assert edited.deadline == T0 + 32 * MIN and edited.token != pinged.token and edited.name == "backup v2"


def test_an_outage_has_its_incident_once() -> None:
    missed = hbd.miss(fresh(), T0 + 6 * MIN)
    assert hbd.needs_incident(missed, None)
    assert hbd.needs_incident(missed, T0)  # the previous outage's incident does not count
    assert not hbd.needs_incident(missed, T0 + 6 * MIN)
    assert not hbd.needs_incident(missed, T0 + 6 * MIN - timedelta(seconds=1))  # a skewed clock
    assert not hbd.needs_incident(fresh(), None)  # no outage, no incident


def test_the_alerts_carry_one_dedup_key_per_heartbeat() -> None:
    missed = hbd.miss(fresh(), T0 + 6 * MIN)
    alert = hbd.miss_alert(missed, "nightly")
    assert alert.integration is Integration.HEARTBEAT and alert.action is AlertAction.TRIGGER
    assert alert.dedup_key == "heartbeat/hb_1" and alert.service == "nightly"
    assert alert.custom_details["missed_at"] == (T0 + 5 * MIN).isoformat()
    recovery = hbd.recovery_alert(hbd.ping(missed, T0 + 8 * MIN), "nightly")
    assert recovery.action is AlertAction.RESOLVE and recovery.dedup_key == alert.dedup_key
