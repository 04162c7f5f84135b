"""Edges of the lifecycle and the timer protocol, each reproduced from a defect report."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.store.incidents import IncidentRepository
from local.template import LocalStack
from tests.support import Api, Tap, Timers, reconcile

A, B = "a@example.com", "b@example.com"
GRACE = 20


def two_levels(api: Api, delay: float = 0.05, repeat: dict[str, Any] | None = None) -> None:
    body: dict[str, Any] = {
        "name": "p",
        "is_default": True,
        "levels": [
            {"delay_minutes": 0, "targets": [{"type": "user", "email": A}]},
            {"delay_minutes": delay, "targets": [{"type": "user", "email": B}]},
        ],
    }
    if repeat:
        body["repeat"] = repeat
    api.ok("POST", "/policies", body, expect=201)


def kinds_in_order(tap: Tap) -> list[tuple[str, str]]:
    return [(m["attributes"]["kind"], m["attributes"]["recipient"]) for m in tap.messages()]


def test_a_page_left_pending_by_a_crash_never_follows_the_resolution(
    api: Api, aws: LocalStack, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given level 0's page to A was committed but SNS never got it (the process died)
    two_levels(api)
    with monkeypatch.context() as patch:
        patch.setattr(
            SnsNotificationPublisher, "publish_all", lambda self, rows: (_ for _ in ()).throw(OSError())
        )
        inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    # When the incident is resolved before the reconciler's next tick, and the reconciler then runs
    api.ok("POST", f"/incidents/{inc}/resolve", {"by": A})
    clock.shift(GRACE + 1)
    reconcile(aws)
    # Then the page was superseded in the resolve's transaction: only the resolution went out
    rows = {r["kind"]: r["status"] for r in api.ok("GET", f"/incidents/{inc}/notifications")["items"]}
    assert rows == {"page": "superseded", "resolution": "sent"}
    assert kinds_in_order(tap) == [("resolution", A)]
    events = [e["type"] for e in api.ok("GET", f"/incidents/{inc}/timeline")["items"]]
    assert "pages_superseded" in events


def test_the_reconciler_supersedes_pages_of_an_incident_closed_without_seeing_them(
    api: Api, aws: LocalStack, tap: Tap, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a pending page the closing transaction could not see (as if past its bound)
    two_levels(api)
    with monkeypatch.context() as patch:
        patch.setattr(
            SnsNotificationPublisher, "publish_all", lambda self, rows: (_ for _ in ()).throw(OSError())
        )
        inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    with monkeypatch.context() as patch:
        patch.setattr(IncidentRepository, "unsent_pages", lambda self, incident_id: [])
        api.ok("POST", f"/incidents/{inc}/cancel", {"reason": "false alarm"})
    # When the reconciler finds the page still pending
    clock.shift(GRACE + 1)
    assert reconcile(aws)["notifications_republished"] == 0
    # Then it supersedes it instead of paging after the cancellation
    rows = {r["kind"]: r["status"] for r in api.ok("GET", f"/incidents/{inc}/notifications")["items"]}
    assert rows == {"page": "superseded", "cancellation": "sent"}
    assert kinds_in_order(tap) == [("cancellation", A)]


def test_a_snooze_that_wakes_clears_the_earlier_acknowledgement(
    api: Api, timers: Timers, tap: Tap, clock
) -> None:
    # Given an incident acknowledged, then snoozed for a minute
    two_levels(api)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    api.ok("POST", f"/incidents/{inc}/acknowledge", {"by": A})
    api.ok("POST", f"/incidents/{inc}/snooze", {"minutes": 1})
    # When the snooze ends
    clock.shift(61)
    timers.deliver()
    # Then it escalates again from level 0, and nobody is recorded as holding it
    body = api.ok("GET", f"/incidents/{inc}")
    assert body["status"] == "escalating"
    assert body["acknowledged_at"] is None and body["acknowledged_by"] is None
    assert Counter(r for k, r in kinds_in_order(tap) if k == "page") == Counter({A: 2})


def test_losing_a_dedup_race_burns_no_incident_number(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two triggers with one dedup key, the second looking before the first has committed
    original = IncidentRepository.dedup_holder
    raced: list[Any] = []

    def look_then_lose(self: IncidentRepository, dedup_key: str) -> Any:
        seen = original(self, dedup_key)
        if not raced:
            raced.append("racing")
            raced[0] = api.ok(
                "POST", "/incidents", {"title": "first", "severity": "P2", "dedup_key": "k"}, expect=201
            )
        return seen

    monkeypatch.setattr(IncidentRepository, "dedup_holder", look_then_lose)
    second = api.ok("POST", "/incidents", {"title": "second", "severity": "P2", "dedup_key": "k"}, expect=200)
    monkeypatch.undo()
    # Then the loser joined the winner, and the next incident takes the very next number
    assert second["id"] == raced[0]["id"] == "INC-20261122-001"
    third = api.ok("POST", "/incidents", {"title": "third", "severity": "P2"}, expect=201)
    assert third["id"] == "INC-20261122-002"


def test_a_manual_escalation_past_the_last_loop_arms_nothing_automatic(
    api: Api, timers: Timers, tap: Tap, clock
) -> None:
    # Given a two-level policy without repeat that has run out
    two_levels(api)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    clock.shift(3)
    timers.deliver()
    assert api.ok("GET", f"/incidents/{inc}")["escalation"]["next_level"] is None
    # When someone escalates by hand
    body = api.ok("POST", f"/incidents/{inc}/escalate", {"by": "lead"})
    # Then level 0 is paged once more and nothing further is armed, however long we wait
    assert body["escalation"]["next_level"] is None and body["escalation"]["next_at"] is None
    for _ in range(5):
        clock.shift(600)
        timers.deliver()
    assert Counter(r for k, r in kinds_in_order(tap) if k == "page") == Counter({A: 2, B: 1})


def test_a_replaced_timer_stops_hopping(api: Api, timers: Timers, clock) -> None:
    # Given an incident snoozed for a week (a chain of 15-minute hops), then acknowledged
    two_levels(api)
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1"}, expect=201)["id"]
    api.ok("POST", f"/incidents/{inc}/snooze", {"minutes": 10_080})
    api.ok("POST", f"/incidents/{inc}/acknowledge", {"by": A})
    # When the snooze timer's first hop arrives
    clock.shift(901)
    delivered = timers.deliver()
    # Then it is dropped, not sent on for another 670 hops
    assert delivered >= 1
    assert timers.depth() == {"visible": 0, "delayed": 0, "in_flight": 0}


# --- Idempotency-Key -----------------------------------------------------------------------------


def test_a_retried_create_with_an_idempotency_key_returns_the_first_answer_and_pages_once(
    api: Api, tap: Tap
) -> None:
    two_levels(api)
    body = {"title": "Checkout down", "severity": "P1"}
    key = {"Idempotency-Key": "retry-7f3a"}
    # When the same request is sent three times with one key
    answers = [api.call("POST", "/incidents", body, headers=key) for _ in range(3)]
    # Then all three answers are the first one (201), one incident exists, and A was paged once
    assert [s for s, _ in answers] == [201, 201, 201]
    assert len({b["id"] for _, b in answers}) == 1
    assert api.last_headers.get("idempotent-replayed") == "true"
    assert len(api.ok("GET", "/incidents")["items"]) == 1
    assert kinds_in_order(tap) == [("page", A)]


def test_an_idempotency_key_reused_with_another_body_is_refused(api: Api) -> None:
    key = {"Idempotency-Key": "k-1"}
    api.ok("POST", "/incidents", {"title": "one", "severity": "P3"}, expect=201)
    first = api.call("POST", "/incidents", {"title": "two", "severity": "P3"}, headers=key)
    status, body = api.call("POST", "/incidents", {"title": "three", "severity": "P3"}, headers=key)
    assert first[0] == 201
    assert status == 422 and body["field"] == "Idempotency-Key"
    assert len(api.ok("GET", "/incidents")["items"]) == 2


def test_an_invalid_idempotency_key_names_the_header(api: Api) -> None:
    status, body = api.call(
        "POST", "/incidents", {"title": "x", "severity": "P3"}, headers={"Idempotency-Key": "a b"}
    )
    assert status == 422 and body["field"] == "Idempotency-Key"


def test_a_create_that_fails_frees_its_idempotency_key(api: Api) -> None:
    key = {"Idempotency-Key": "k-2"}
    body = {"title": "x", "severity": "P3", "policy_id": "nope"}
    assert api.call("POST", "/incidents", body, headers=key)[0] == 422
    # the client fixes the request and retries with a new body: the key is free again
    status, _ = api.call("POST", "/incidents", {"title": "x", "severity": "P3"}, headers=key)
    assert status == 201
