"""Acknowledge or resolve for a key no active incident holds is a no-op that says so (issue 9, 5)."""

from __future__ import annotations

from typing import Any

from local.template import LocalStack
from tests.integration.test_alertmanager_api import post
from tests.support import Api, load_event


def enqueue(api: Api, sample: str, key: str, **changes: Any) -> tuple[int, Any]:
    return api.call("POST", "/v2/enqueue", {**load_event(sample), "routing_key": key, **changes})


def service(api: Api, name: str) -> dict[str, Any]:
    return api.ok("POST", "/services", {"name": name}, expect=201)  # type: ignore[no-any-return]


def test_pagerduty_acknowledge_and_resolve_of_unknown_or_closed_keys_say_so(api: Api) -> None:
    key = service(api, "checkout")["integration_key"]
    # An acknowledge for a key never seen: accepted as PagerDuty does, with what happened
    status, body = enqueue(api, "pagerduty_enqueue_acknowledge.json", key, dedup_key="never-seen")
    assert status == 202 and body["status"] == "success" and body["outcome"] == "ignored", body
    assert "no active incident" in body["detail"] and "incident_id" not in body
    assert api.ok("GET", "/incidents")["items"] == []
    # A resolve for a key whose incident is closed already changes nothing
    opened = enqueue(api, "pagerduty_enqueue_trigger.json", key, dedup_key="k1")[1]
    assert enqueue(api, "pagerduty_enqueue_resolve.json", key, dedup_key="k1")[1]["outcome"] == "resolved"
    before = api.ok("GET", f"/incidents/{opened['incident_id']}")
    for sample in ("pagerduty_enqueue_resolve.json", "pagerduty_enqueue_acknowledge.json"):
        status, body = enqueue(api, sample, key, dedup_key="k1")
        assert status == 202 and body["outcome"] == "ignored" and "no active incident" in body["detail"]
    assert api.ok("GET", f"/incidents/{opened['incident_id']}") == before


def test_a_key_is_per_service_another_services_resolve_is_a_no_op(api: Api) -> None:
    # Given an incident open on checkout under dedup key "shared"
    checkout, billing = service(api, "checkout"), service(api, "billing")
    opened = enqueue(api, "pagerduty_enqueue_trigger.json", checkout["integration_key"], dedup_key="shared")
    # When billing's key resolves "shared"
    status, body = enqueue(
        api, "pagerduty_enqueue_resolve.json", billing["integration_key"], dedup_key="shared"
    )
    # Then nothing happens to checkout's incident, and the answer says so
    assert status == 202 and body["outcome"] == "ignored", body
    assert api.ok("GET", f"/incidents/{opened[1]['incident_id']}")["status"] != "resolved"


def test_alertmanager_resolved_for_unknown_fingerprints_is_a_no_op_that_says_so(
    aws: LocalStack, api: Api
) -> None:
    key = service(api, "checkout")["integration_key"]
    resolved = load_event("alertmanager_webhook_resolved.json")
    status, body = post(aws, api, key, resolved)
    assert status == 200 and body["status"] == "success", body
    assert [r["outcome"] for r in body["results"]] == ["ignored"] * len(resolved["alerts"])
    assert all("no active incident" in r["detail"] and r["incident_id"] is None for r in body["results"])
    assert api.ok("GET", "/incidents")["items"] == []
