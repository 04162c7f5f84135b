"""/routing-rules through the real handler on moto: CRUD, the tester, and rules on API creates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support import Api, load_event, route_summaries_to_a_disabled_policy

CHECKOUT_P0 = {
    "name": "checkout is critical",
    "priority": 10,
    "conditions": [
        {"field": "service", "operator": "equals", "value": "checkout"},
        {"field": "summary", "operator": "matches", "value": "5[0-9]{2}"},
    ],
    "actions": [
        {"type": "set_severity", "severity": "P0"},
        {"type": "add_labels", "labels": {"routed": "checkout"}},
    ],
}
QUIET = {
    "name": "quiet load tests",
    "priority": 5,
    "conditions": [{"field": "labels.env", "operator": "equals", "value": "loadtest"}],
    "actions": [{"type": "suppress", "reason": "load test"}],
}


def policy(api: Api) -> dict[str, Any]:
    body = json.loads(load_event("api_create_policy.json")["body"])
    return api.ok("POST", "/policies", body, expect=201)  # type: ignore[no-any-return]


def test_rules_are_created_listed_in_order_replaced_and_disabled_not_erased(api: Api) -> None:
    # Given two rules
    quiet = api.ok("POST", "/routing-rules", QUIET, expect=201)
    first = api.ok("POST", "/routing-rules", CHECKOUT_P0, expect=201)
    assert first["id"].startswith("rule_") and first["version"] == 1 and first["enabled"] is True
    # Then they are listed in the order they run: highest priority first
    assert [r["id"] for r in api.ok("GET", "/routing-rules")["items"]] == [first["id"], quiet["id"]]
    # When one is replaced
    replaced = api.ok("PUT", f"/routing-rules/{first['id']}", {**CHECKOUT_P0, "priority": 1})
    assert replaced["version"] == 2 and replaced["priority"] == 1
    assert [r["id"] for r in api.ok("GET", "/routing-rules")["items"]] == [quiet["id"], first["id"]]
    # When one is deleted, it is kept, disabled
    gone = api.ok("DELETE", f"/routing-rules/{quiet['id']}")
    assert gone["enabled"] is False and gone["version"] == 2
    assert [r["id"] for r in api.ok("GET", "/routing-rules")["items"]] == [first["id"]]
    listed = api.ok("GET", "/routing-rules", query={"include_disabled": "true"})["items"]
    assert {r["id"] for r in listed} == {first["id"], quiet["id"]}
    assert api.ok("GET", f"/routing-rules/{quiet['id']}")["enabled"] is False
    status, body = api.call("GET", "/routing-rules/rule_nope")
    assert status == 404, body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"actions": []}, "actions"),
        ({"conditions": [{"field": "nope", "operator": "equals", "value": "x"}]}, "conditions"),
        ({"conditions": [{"field": "summary", "operator": "like", "value": "x"}]}, "conditions"),
        ({"conditions": [{"field": "summary", "operator": "matches", "value": "(a"}]}, "conditions"),
        ({"actions": [{"type": "set_severity", "severity": "SEV1"}]}, "actions"),
        ({"id": "mine"}, "id"),
    ],
)
def test_a_bad_rule_is_refused_naming_the_field(api: Api, change: dict[str, Any], field: str) -> None:
    status, body = api.call("POST", "/routing-rules", {**CHECKOUT_P0, **change})
    assert status == 422 and body["field"].startswith(field), body
    assert api.ok("GET", "/routing-rules", query={"include_disabled": "true"})["items"] == []


def test_the_tester_explains_a_match_and_stores_nothing(api: Api) -> None:
    # Given both rules
    api.ok("POST", "/routing-rules", CHECKOUT_P0, expect=201)
    api.ok("POST", "/routing-rules", QUIET, expect=201)
    # When a sample alert is tested
    sample = {"summary": "HTTP 503 on /pay", "service": "checkout", "labels": {"env": "loadtest"}}
    result = api.ok("POST", "/routing-rules/test", sample)
    # Then both matches are named in the order they ran, with the incident they make
    assert [m["rule_name"] for m in result["matches"]] == ["checkout is critical", "quiet load tests"]
    incident = result["incident"]
    assert incident["severity"] == "P0" and incident["labels"] == {"env": "loadtest", "routed": "checkout"}
    assert incident["suppressed"] is True and incident["suppress_reasons"] == ["load test"]
    # And nothing was opened
    assert api.ok("GET", "/incidents")["items"] == []
    status, body = api.call("POST", "/routing-rules/test", {"summary": ""})
    assert status == 422 and body["field"] == "summary", body


def test_rules_run_on_api_creates(api: Api) -> None:
    # Given a default policy and both rules
    policy(api)
    api.ok("POST", "/routing-rules", CHECKOUT_P0, expect=201)
    api.ok("POST", "/routing-rules", QUIET, expect=201)
    # When a person opens a matching incident
    created = api.ok(
        "POST",
        "/incidents",
        {
            "title": "HTTP 502 at checkout",
            "severity": "P3",
            "service": "checkout",
            "labels": {"env": "loadtest"},
        },
        expect=201,
    )
    # Then the rules set its severity and labels, and suppress it: recorded, never escalated
    assert created["severity"] == "P0" and created["labels"]["routed"] == "checkout"
    assert created["suppressed"] is True and created["escalation"] is None
    types = [e["type"] for e in api.ok("GET", f"/incidents/{created['id']}/timeline")["items"]]
    assert types.count("routing_rule_matched") == 2 and "suppressed" in types
    # And an incident no rule matches escalates by the default policy as before
    plain = api.ok("POST", "/incidents", {"title": "disk full", "severity": "P3"}, expect=201)
    assert plain["suppressed"] is False and plain["escalation"] is not None


def test_an_incident_routed_to_a_disabled_policy_opens_by_the_default_not_a_422(api: Api) -> None:
    # Given a default policy, and a rule sending every "disk" incident to a policy since disabled
    default_id, gone_id = route_summaries_to_a_disabled_policy(api, contains="disk")
    # When someone opens a matching incident without naming a policy
    status, body = api.call("POST", "/incidents", {"title": "disk full on db-1", "severity": "P2"})
    # Then it opens (no 422 on a policy_id the client never sent) and escalates by the default
    assert status == 201, body
    assert api.ok("GET", f"/incidents/{body['id']}")["escalation"]["policy_id"] == default_id
    # while a client naming the disabled policy itself is still told so
    status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P2", "policy_id": gone_id})
    assert status == 422 and body["field"] == "policy_id", body
