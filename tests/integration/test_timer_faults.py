"""Faults injected at every boundary of the timer protocol; each guarantee must still hold.

Guarantees (DESIGN.md): a level fires at most once per token; every due level is notified at
least once, within about a minute even after a crash, repeats carrying the same dedup id; and
after an ack, resolve or cancel has committed, no new level fires.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import boto3
import pytest

from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.adapters.timers import EscalationTimerQueue
from incident_engine.domain.timefmt import parse_iso
from incident_engine.store.incidents import IncidentRepository
from local.template import LocalStack
from tests.support import Api, Tap, Timers, reconcile

A, B, C = "a@example.com", "b@example.com", "c@example.com"
GRACE = 20  # RECONCILE_GRACE_SECONDS default


@pytest.fixture
def incident(api: Api, tap: Tap) -> Iterator[str]:
    """An incident escalating on [A now, B after 3 s, C 3 s later]; level 0 already paged (and tapped)."""
    levels = [
        {"delay_minutes": d, "targets": [{"type": "user", "email": who}]}
        for d, who in ((0, A), (0.05, B), (0.05, C))
    ]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    yield api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]


def page_counts(tap: Tap) -> Counter[str]:
    return Counter(m["attributes"]["recipient"] for m in tap.messages() if m["attributes"]["kind"] == "page")


@contextmanager
def run_after_first_read(monkeypatch: pytest.MonkeyPatch, action: Callable[[], object]) -> Iterator[None]:
    """Interleave: the first incident read returns its snapshot only after `action` has run."""
    original_get = IncidentRepository.get
    done: list[bool] = []

    def read_then_act(self: IncidentRepository, incident_id: str) -> object:
        snapshot = original_get(self, incident_id)
        if not done:
            done.append(True)
            action()
        return snapshot

    with monkeypatch.context() as patch:
        patch.setattr(IncidentRepository, "get", read_then_act)
        yield
    assert done, "the interleaving never happened"


def tick_every_minute(aws: LocalStack, timers: Timers, clock, minutes: int) -> None:
    """The scheduler's ticks, with the worker draining the queue between them."""
    for _ in range(minutes):
        clock.shift(60)
        reconcile(aws)
        timers.deliver()


def test_duplicate_delivery_fires_a_level_once(
    aws: LocalStack, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    # Given the level-1 timer is delivered three times (SQS is at-least-once)
    sqs = boto3.client("sqs", region_name=aws.region)
    [timer] = timers.receive_raw() or [None]
    assert timer is None  # still delayed: nothing visible yet
    clock.shift(3)
    [timer] = timers.receive_raw()
    for _ in range(2):
        sqs.send_message(QueueUrl=timers.url, MessageBody=timer["Body"])
    clock.shift(181)  # the received copy becomes visible again too
    # When the worker gets all three
    assert timers.deliver() == 3
    # Then B was paged exactly once, and level 2 is armed once
    assert page_counts(tap) == Counter({A: 1, B: 1})
    assert timers.depth() == {"visible": 0, "delayed": 1, "in_flight": 0}
    clock.shift(3)
    timers.deliver()
    assert page_counts(tap) == Counter({A: 1, B: 1, C: 1})


def test_crash_between_commit_and_timer_send_is_repaired_by_the_reconciler(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the process dies after committing a fire but before sending the next timer
    def crash(self: EscalationTimerQueue, message: object, delay: int) -> None:
        raise ConnectionError("lost the process before SendMessage")

    clock.shift(3)
    with monkeypatch.context() as patch:
        patch.setattr(EscalationTimerQueue, "send", crash)
        timers.deliver()  # level 1 fires and commits; level 2's timer is never sent
    assert page_counts(tap) == Counter({A: 1, B: 1})
    assert timers.depth() == {"visible": 0, "delayed": 0, "in_flight": 0}
    # When the reconciler ticks each minute
    tick_every_minute(aws, timers, clock, 1)
    # Then level 2 fires within about a minute of its due time, once
    assert page_counts(tap) == Counter({A: 1, B: 1, C: 1})
    step = api.ok("GET", f"/incidents/{incident}/escalations")["items"][2]
    lateness = parse_iso(step["executed_at"]) - parse_iso(step["scheduled_at"])
    assert step["status"] == "executed" and lateness <= timedelta(seconds=60 + GRACE)


def test_lost_timer_message_is_rearmed(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock
) -> None:
    # Given the level-1 timer message is lost
    boto3.client("sqs", region_name=aws.region).purge_queue(QueueUrl=timers.url)
    clock.shift(3)
    assert timers.deliver() == 0
    assert page_counts(tap) == Counter({A: 1})
    # When the reconciler runs before the grace period is over, it leaves the timer alone
    clock.shift(GRACE - 5)
    assert reconcile(aws) == {"timers_rearmed": 0, "notifications_republished": 0}
    # Then on the next tick past the grace period it re-arms it, and B is paged once
    clock.shift(10)
    assert reconcile(aws)["timers_rearmed"] == 1
    timers.deliver()
    assert page_counts(tap) == Counter({A: 1, B: 1})


def test_crash_between_publish_and_mark_sent_republishes_with_the_same_dedup_id(
    aws: LocalStack, api: Api, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the first notification is published but the process dies before marking it sent
    def crash(self: IncidentRepository, notification: object, at: object) -> bool:
        raise ConnectionError("lost the process before UpdateItem")

    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "email": A}]}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    with monkeypatch.context() as patch:
        patch.setattr(IncidentRepository, "mark_sent", crash)
        inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    [row] = api.ok("GET", f"/incidents/{inc}/notifications")["items"]
    assert row["status"] == "pending"
    # When the reconciler ticks
    clock.shift(GRACE + 1)
    assert reconcile(aws) == {"timers_rearmed": 0, "notifications_republished": 1}
    # Then the message went out again with the same dedup id, and is now marked sent
    messages = tap.messages()
    assert [m["attributes"]["dedup_id"] for m in messages] == [row["dedup_id"], row["dedup_id"]]
    [row] = api.ok("GET", f"/incidents/{inc}/notifications")["items"]
    assert row["status"] == "sent"
    clock.shift(60)
    assert reconcile(aws)["notifications_republished"] == 0


def test_crash_before_publish_still_notifies_once_the_reconciler_runs(
    aws: LocalStack, api: Api, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: SnsNotificationPublisher, notifications: object) -> list[object]:
        raise ConnectionError("SNS throttled us")

    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "email": A}, {"type": "user", "email": B}]}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    with monkeypatch.context() as patch:
        patch.setattr(SnsNotificationPublisher, "publish_all", crash)
        status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P1"})
    # the incident was committed; the client is told so even though delivery failed
    assert status == 201 and body["status"] == "escalating"
    assert tap.messages() == []
    clock.shift(GRACE + 1)
    assert reconcile(aws)["notifications_republished"] == 2
    assert page_counts(tap) == Counter({A: 1, B: 1})


def test_acknowledge_racing_a_fire_wins_and_nothing_fires_after_it(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the worker has read the incident to fire level 1, when an acknowledge commits
    # before the worker's transaction (the worker then decides on what it read before the ack)
    clock.shift(3)
    with run_after_first_read(
        monkeypatch, lambda: api.ok("POST", f"/incidents/{incident}/acknowledge", {"by": A})
    ):
        timers.deliver()
    # Then the fire's conditional write loses, the retry sees the ack, and B is never paged
    assert page_counts(tap) == Counter({A: 1})
    inc = api.ok("GET", f"/incidents/{incident}")
    assert inc["status"] == "acknowledged" and inc["escalation"]["level"] == 0
    steps = api.ok("GET", f"/incidents/{incident}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "cancelled")]
    tick_every_minute(aws, timers, clock, 2)
    assert page_counts(tap) == Counter({A: 1})


def test_a_fire_racing_an_acknowledge_lands_first_and_the_ack_still_stops_the_rest(
    aws: LocalStack, api: Api, incident: str, timers: Timers, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an acknowledge has read the incident, and the level-1 fire commits before it writes
    clock.shift(3)
    with run_after_first_read(monkeypatch, timers.deliver):
        acked = api.ok("POST", f"/incidents/{incident}/acknowledge", {"by": B})
    # Then the ack retried on fresh state and won; level 1 fired once and level 2 never does
    assert acked["status"] == "acknowledged" and acked["escalation"]["level"] == 1
    tick_every_minute(aws, timers, clock, 2)
    assert page_counts(tap) == Counter({A: 1, B: 1})
    steps = api.ok("GET", f"/incidents/{incident}/escalations")["items"]
    assert [(s["level"], s["status"]) for s in steps] == [(0, "executed"), (1, "executed"), (2, "cancelled")]


def test_reconciler_reads_only_overdue_incidents(aws: LocalStack, api: Api, timers: Timers, clock) -> None:
    # Given 3 incidents whose timers were lost, and 30 armed far in the future
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "user", "email": A}]},
        {"delay_minutes": 0.05, "targets": [{"type": "user", "email": B}]},
    ]
    soon = api.ok("POST", "/policies", {"name": "soon", "levels": levels}, expect=201)
    later = api.ok(
        "POST",
        "/policies",
        {
            "name": "later",
            "levels": [levels[0], {"delay_minutes": 600, "targets": [{"type": "user", "email": B}]}],
        },
        expect=201,
    )
    for _ in range(3):
        api.ok("POST", "/incidents", {"title": "x", "severity": "P1", "policy_id": soon["id"]}, expect=201)
    boto3.client("sqs", region_name=aws.region).purge_queue(QueueUrl=timers.url)
    for _ in range(30):
        api.ok("POST", "/incidents", {"title": "y", "severity": "P3", "policy_id": later["id"]}, expect=201)
    # When the reconciler runs past the grace period, counting the items its queries return
    from incident_engine.store.models import IncidentItem

    returned: list[int] = []
    client = IncidentItem._get_connection().connection.client
    handler = lambda parsed, **_: returned.append(int(parsed.get("Count", 0)))  # noqa: E731
    client.meta.events.register("after-call.dynamodb.Query", handler)
    try:
        clock.shift(GRACE + 5)
        report = reconcile(aws)
    finally:
        client.meta.events.unregister("after-call.dynamodb.Query", handler)
    # Then it re-armed the 3 and read 3 incidents (plus no outbox rows), not 33
    assert report == {"timers_rearmed": 3, "notifications_republished": 0}
    assert sum(returned) == 3


def test_a_batch_that_sns_accepts_in_part_leaves_only_the_rest_pending(
    aws: LocalStack, api: Api, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given SNS accepts the first entry of a PublishBatch and fails the second
    original = SnsNotificationPublisher.publish_all

    def accept_first_only(self: SnsNotificationPublisher, notifications: list) -> list:
        return original(self, notifications[:1])

    levels = [{"delay_minutes": 0, "targets": [{"type": "user", "email": A}, {"type": "user", "email": B}]}]
    api.ok("POST", "/policies", {"name": "p", "is_default": True, "levels": levels}, expect=201)
    with monkeypatch.context() as patch:
        patch.setattr(SnsNotificationPublisher, "publish_all", accept_first_only)
        inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    rows = {n["recipient"]: n["status"] for n in api.ok("GET", f"/incidents/{inc}/notifications")["items"]}
    assert rows == {A: "sent", B: "pending"}
    # When the reconciler ticks, only the failed one goes out again
    clock.shift(GRACE + 1)
    assert reconcile(aws)["notifications_republished"] == 1
    assert page_counts(tap) == Counter({A: 1, B: 1})
