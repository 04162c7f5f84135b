"""Maintenance windows through the real handlers on moto: alerts inside one are recorded, not paged."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine

from tests.support import Api, load_event

WINDOW = {"start": "2026-11-22T06:30:00Z", "end": "2026-11-22T08:00:00Z", "reason": "database upgrade"}


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    policy = json.loads(load_event("api_create_policy.json")["body"])
    api.ok("POST", "/policies", policy, expect=201)
    return api.ok("POST", "/services", {"name": "checkout"}, expect=201)  # type: ignore[no-any-return]


def trigger(api: Api, key: str, dedup_key: str) -> dict[str, Any]:
    body = {**load_event("pagerduty_enqueue_trigger.json"), "routing_key": key, "dedup_key": dedup_key}
    status, answer = api.call("POST", "/v2/enqueue", body)
    assert status == 202, answer
    return api.ok("GET", f"/incidents/{answer['incident_id']}")  # type: ignore[no-any-return]


def test_an_alert_inside_a_window_is_recorded_not_paged(
    api: Api, service: dict[str, Any], clock: time_machine.Traveller
) -> None:
    # Given a window over now (07:00) on the service
    window = api.ok("POST", f"/services/{service['id']}/maintenance-windows", WINDOW, expect=201)
    assert api.ok("GET", f"/services/{service['id']}/maintenance-windows")["items"] == [window]
    # When an alert arrives inside it
    inside = trigger(api, service["integration_key"], "during")
    # Then the incident is recorded, suppressed, never escalated; the window is on its timeline
    assert inside["suppressed"] is True and inside["escalation"] is None
    events = api.ok("GET", f"/incidents/{inside['id']}/timeline")["items"]
    [noted] = [e for e in events if e["type"] == "maintenance_window"]
    assert noted["data"]["window_id"] == window["id"] and noted["data"]["reason"] == "database upgrade"
    assert noted["data"]["start"].startswith("2026-11-22T06:30") and noted["data"]["end"].startswith(
        "2026-11-22T08:00"
    )
    # When the window has ended, the next alert pages as usual
    clock.shift(3600 + 60)
    after = trigger(api, service["integration_key"], "after")
    assert after["suppressed"] is False and after["escalation"] is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"end": "2026-11-22T06:00:00Z"}, "end"),
        ({"start": "2026-11-22T06:30:00"}, "start"),
        ({"reason": ""}, "reason"),
        ({"end": "2027-01-22T06:00:00Z"}, "end"),
    ],
)
def test_a_bad_window_is_refused_naming_the_field(
    api: Api, service: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    status, body = api.call("POST", f"/services/{service['id']}/maintenance-windows", {**WINDOW, **change})
    assert status == 422 and body["field"] == field, body


def test_a_window_needs_a_service(api: Api) -> None:
    status, body = api.call("POST", "/services/svc_nope/maintenance-windows", WINDOW)
    assert status == 404, body
