"""POST /v2/enqueue through the real handler on moto: PagerDuty's requests, answers and limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
import time_machine

from incident_engine.api.rate_limit import RATE_LIMIT
from incident_engine.wiring import reset_services
from tests.support import Api, load_event, route_summaries_to_a_disabled_policy


@pytest.fixture
def key(api: Api) -> str:
    service = api.ok("POST", "/services", {"name": "checkout"}, expect=201)
    return str(service["integration_key"])


def send(api: Api, sample: str, key: str, **changes: Any) -> tuple[int, Any]:
    return api.call("POST", "/v2/enqueue", {**load_event(sample), "routing_key": key, **changes})


def only_incident(api: Api) -> dict[str, Any]:
    [item] = api.ok("GET", "/incidents")["items"]
    return api.ok("GET", f"/incidents/{item['id']}")  # type: ignore[no-any-return]


def test_trigger_acknowledge_resolve_answer_as_pagerduty_does(api: Api, key: str) -> None:
    # When PagerDuty's trigger sample is sent with the service's key
    status, body = send(api, "pagerduty_enqueue_trigger.json", key)
    # Then it is accepted in PagerDuty's words and an incident opens on the service
    dedup_key = load_event("pagerduty_enqueue_trigger.json")["dedup_key"]
    assert status == 202, body
    assert (body["status"], body["message"], body["dedup_key"]) == ("success", "Event processed", dedup_key)
    incident = only_incident(api)
    assert incident["status"] in ("open", "escalating") and incident["severity"] == "P0"
    assert incident["title"].startswith("Checkout API 5xx") and incident["alert_count"] == 1
    # When the same trigger repeats, then the acknowledge and resolve samples follow
    assert send(api, "pagerduty_enqueue_trigger.json", key)[0] == 202
    assert only_incident(api)["alert_count"] == 2
    assert send(api, "pagerduty_enqueue_acknowledge.json", key)[0] == 202
    assert only_incident(api)["status"] == "acknowledged"
    status, body = send(api, "pagerduty_enqueue_resolve.json", key)
    assert status == 202 and body["outcome"] == "resolved", body
    assert only_incident(api)["status"] == "resolved"


def test_a_trigger_without_dedup_key_gets_one_generated_and_returned(api: Api, key: str) -> None:
    sample = load_event("pagerduty_enqueue_trigger.json")
    del sample["dedup_key"]
    status, body = api.call("POST", "/v2/enqueue", {**sample, "routing_key": key})
    assert status == 202 and len(body["dedup_key"]) >= 16, body
    assert only_incident(api)["dedup_key"] == body["dedup_key"]


def test_resolve_of_an_unknown_key_is_a_no_op_that_says_so(api: Api, key: str) -> None:
    status, body = send(api, "pagerduty_enqueue_resolve.json", key, dedup_key="never-seen")
    assert status == 202 and body["outcome"] == "ignored", body
    assert "no active incident" in body["detail"] and body["dedup_key"] == "never-seen"
    assert api.ok("GET", "/incidents")["items"] == []


def test_an_unknown_or_revoked_routing_key_is_an_invalid_event(api: Api, key: str) -> None:
    status, body = send(api, "pagerduty_enqueue_trigger.json", "0" * 32)
    assert status == 400 and body["status"] == "invalid event", body
    assert any("routing_key" in e for e in body["errors"])
    assert api.ok("GET", "/incidents")["items"] == []


TOO_BIG = json.dumps({"routing_key": "k" * 32, "event_action": "trigger", "pad": "x" * (520 * 1024)})


def test_an_event_over_512_kb_is_a_413_in_pagerdutys_shape(api: Api, key: str) -> None:
    status, body = api.call("POST", "/v2/enqueue", raw_body=TOO_BIG)
    assert status == 413 and body["status"] == "invalid event" and body["errors"], body
    assert api.ok("GET", "/incidents")["items"] == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", ""),
        ("[1, 2]", ""),
        ('"text"', ""),
        ("null", ""),
        ("{" * 5000, ""),
        (json.dumps({"event_action": "trigger"}), "routing_key"),
        (json.dumps({"routing_key": 5, "event_action": "trigger"}), "routing_key"),
        (json.dumps({"routing_key": "k" * 32, "event_action": "explode"}), "event_action"),
        (json.dumps({"routing_key": "k" * 32, "event_action": "resolve"}), "dedup_key"),
        (json.dumps({"routing_key": "k" * 32, "event_action": "trigger", "payload": []}), "payload"),
        (
            json.dumps(
                {
                    "routing_key": "k" * 32,
                    "event_action": "trigger",
                    "payload": {"summary": "s", "source": "h", "severity": "huge"},
                }
            ),
            "payload.severity",
        ),
    ],
)
def test_malformed_events_get_pagerdutys_400_never_a_500(api: Api, key: str, raw: str, field: str) -> None:
    status, body = api.call("POST", "/v2/enqueue", raw_body=raw)
    assert status == 400, (status, body)
    assert body["status"] == "invalid event" and body["message"] == "Event object is invalid", body
    assert body["errors"] and all(isinstance(e, str) for e in body["errors"])
    assert field in " ".join(body["errors"]), body
    assert api.ok("GET", "/incidents")["items"] == []


def test_the_route_needs_no_bearer_token_in_the_template(api: Api) -> None:
    # (and its other methods reach the handler too, which answers them 405)
    [route] = [r for r in api.spec.routes if r.path == "/v2/enqueue" and r.method != "ANY"]
    assert route.public and route.method == "POST"


def test_a_routing_key_over_its_rate_gets_pagerdutys_429_with_retry_after(
    api: Api, key: str, monkeypatch: pytest.MonkeyPatch, clock: time_machine.Traveller
) -> None:
    # Given a limit of 3 requests per credential per minute, and a second service's key
    monkeypatch.setenv("TOKEN_RATE_PER_MINUTE", "3")
    reset_services()
    RATE_LIMIT.reset()
    other = str(api.ok("POST", "/services", {"name": "search"}, expect=201)["integration_key"])
    # When the key sends the same trigger twice here and one batch to Alertmanager's route
    status, body = send(api, "pagerduty_enqueue_trigger.json", key)
    assert status == 202, body
    incident_id = body["incident_id"]
    assert send(api, "pagerduty_enqueue_trigger.json", key)[0] == 202
    alerts = load_event("alertmanager_webhook_firing.json")
    assert api.call_as(key, "POST", "/integrations/alertmanager", alerts)[0] == 200
    clock.shift(15)
    # Then its fourth request this minute (one counter for both routes) is refused in
    # PagerDuty's shape, with the seconds left in the minute
    status, body = send(api, "pagerduty_enqueue_trigger.json", key)
    assert status == 429 and body["status"] == "throttle event", body
    assert api.last_headers["retry-after"] == "45"
    # and another key is counted apart
    assert send(api, "pagerduty_enqueue_trigger.json", other)[0] == 202
    # When the next minute starts, the refused trigger was never stored, and the key works again
    clock.shift(45)
    assert api.ok("GET", f"/incidents/{incident_id}")["alert_count"] == 2
    assert send(api, "pagerduty_enqueue_trigger.json", key)[0] == 202
    assert api.ok("GET", f"/incidents/{incident_id}")["alert_count"] == 3


def test_an_alert_routed_to_a_disabled_policy_still_opens_and_pages_by_the_default(
    api: Api, key: str
) -> None:
    # Given a default policy, and a routing rule sending every alert to another policy since disabled
    default_id, _ = route_summaries_to_a_disabled_policy(api, contains="a")
    # When a monitor triggers an alert the rule matches
    status, body = send(
        api,
        "pagerduty_enqueue_trigger.json",
        key,
        payload={**load_event("pagerduty_enqueue_trigger.json")["payload"], "summary": "a disk is full"},
    )
    # Then the alert is not lost: an incident opens and escalates by the default policy
    assert status == 202 and body["outcome"] == "opened", body
    incident = only_incident(api)
    assert incident["status"] == "escalating" and incident["escalation"]["policy_id"] == default_id


def test_an_alert_for_a_service_whose_policy_is_disabled_opens_by_the_default(api: Api) -> None:
    # Given a default policy, and a service whose own policy was disabled since
    default = api.ok(
        "POST", "/policies", json.loads(load_event("api_create_policy.json")["body"]), expect=201
    )
    own = {
        "name": "own",
        "levels": [{"delay_minutes": 0, "targets": [{"type": "user", "email": "x@example.com"}]}],
    }
    own_id = api.ok("POST", "/policies", own, expect=201)["id"]
    service = api.ok("POST", "/services", {"name": "billing", "policy_id": own_id}, expect=201)
    assert api.call("DELETE", f"/policies/{own_id}")[0] == 200  # disabling it is allowed
    # When a monitor triggers an alert for it
    status, body = send(api, "pagerduty_enqueue_trigger.json", service["integration_key"])
    # Then the alert is not lost: an incident opens and escalates by the default policy
    assert status == 202 and body["outcome"] == "opened", body
    assert only_incident(api)["escalation"]["policy_id"] == default["id"]
