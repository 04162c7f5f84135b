"""A routing rule's ``notify`` action: its extra targets are paged once, when the incident opens."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import time_machine

from incident_engine.store.incidents import IncidentRepository
from local.template import LocalStack
from tests.support import Api, Tap, Timers, load_event, reconcile

DUTY_MANAGER = "duty.manager@example.com"
NOTIFY = {
    "name": "tell the duty manager about checkout",
    "priority": 10,
    "conditions": [{"field": "service", "operator": "equals", "value": "checkout"}],
    "actions": [{"type": "notify", "targets": [{"type": "user", "email": DUTY_MANAGER}]}],
}


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    policy = json.loads(load_event("api_create_policy.json")["body"])
    api.ok("POST", "/policies", policy, expect=201)
    api.ok("POST", "/routing-rules", NOTIFY, expect=201)
    return api.ok("POST", "/services", {"name": "checkout"}, expect=201)  # type: ignore[no-any-return]


def trigger(api: Api, service: dict[str, Any], dedup_key: str = "db-down") -> dict[str, Any]:
    body = {**load_event("pagerduty_enqueue_trigger.json"), "routing_key": service["integration_key"]}
    status, answer = api.call("POST", "/v2/enqueue", {**body, "dedup_key": dedup_key})
    assert status == 202, answer
    return answer  # type: ignore[no-any-return]


def pages_to(tap: Tap, address: str) -> Counter[str]:
    return Counter(
        m["attributes"]["dedup_id"]
        for m in tap.messages()
        if m["attributes"]["kind"] == "page" and m["attributes"]["recipient"] == address
    )


def test_notify_targets_are_paged_once_when_the_incident_opens(
    api: Api, service: dict[str, Any], tap: Tap, timers: Timers, clock: time_machine.Traveller
) -> None:
    # When an alert the rule matches opens an incident, and repeats twice
    first = trigger(api, service)
    for _ in range(2):
        assert trigger(api, service)["outcome"] == "appended"
    incident_id = first["incident_id"]
    # Then the duty manager got one page, recorded once on /notifications, with why on the timeline
    rows = api.ok("GET", f"/incidents/{incident_id}/notifications")["items"]
    mine = [n for n in rows if n["recipient"] == DUTY_MANAGER]
    assert len(mine) == 1 and mine[0]["kind"] == "page" and mine[0]["channel"] == "email"
    assert mine[0]["dedup_id"].startswith(f"{incident_id}/notify/")
    assert pages_to(tap, DUTY_MANAGER) == Counter({mine[0]["dedup_id"]: 1})
    [notified] = [
        e
        for e in api.ok("GET", f"/incidents/{incident_id}/timeline")["items"]
        if e["type"] == "routing_notified"
    ]
    assert notified["data"]["recipients"] == [DUTY_MANAGER]
    # And the escalation policy goes on as usual, never paging the duty manager again
    clock.shift(3600)
    timers.deliver()
    assert sum(pages_to(tap, DUTY_MANAGER).values()) == 1
    # When it is resolved, the duty manager hears it, like everyone paged
    api.ok("POST", f"/incidents/{incident_id}/resolve", {})
    kinds = [m["attributes"]["kind"] for m in tap.messages() if m["attributes"]["recipient"] == DUTY_MANAGER]
    assert kinds == ["page", "resolution"]


def test_a_notify_page_left_unsent_by_a_crash_is_republished_with_the_same_dedup_id(
    api: Api,
    aws: LocalStack,
    service: dict[str, Any],
    tap: Tap,
    clock: time_machine.Traveller,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the process dies after the opening commit, before marking the page sent
    def crash(self: IncidentRepository, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("lost the process before marking it sent")

    with monkeypatch.context() as patch:
        patch.setattr(IncidentRepository, "mark_all_sent", crash)
        incident_id = trigger(api, service)["incident_id"]
    # When the reconciler ticks
    clock.shift(60)
    reconcile(aws)
    # Then the page went out again under the same dedup id, and the row is sent once
    [dedup_id] = pages_to(tap, DUTY_MANAGER)
    rows = api.ok("GET", f"/incidents/{incident_id}/notifications")["items"]
    [row] = [n for n in rows if n["recipient"] == DUTY_MANAGER]
    assert row["dedup_id"] == dedup_id and row["status"] == "sent"


def test_a_suppressed_incident_notifies_nobody(api: Api, service: dict[str, Any], tap: Tap) -> None:
    # Given a rule that suppresses what the notify rule matches
    quiet = {
        "name": "quiet",
        "priority": 1,
        "conditions": [{"field": "service", "operator": "equals", "value": "checkout"}],
        "actions": [{"type": "suppress", "reason": "drill"}],
    }
    api.ok("POST", "/routing-rules", quiet, expect=201)
    incident_id = trigger(api, service)["incident_id"]
    assert api.ok("GET", f"/incidents/{incident_id}")["suppressed"] is True
    assert pages_to(tap, DUTY_MANAGER) == Counter()


def test_notify_applies_to_incidents_opened_through_the_api(
    api: Api, service: dict[str, Any], tap: Tap
) -> None:
    created = api.ok(
        "POST", "/incidents", {"title": "checkout slow", "severity": "P2", "service": "checkout"}, expect=201
    )
    rows = api.ok("GET", f"/incidents/{created['id']}/notifications")["items"]
    assert [n["recipient"] for n in rows if n["dedup_id"].startswith(f"{created['id']}/notify/")] == [
        DUTY_MANAGER
    ]
