"""The incidents API through the real handler on moto: status, body and what was stored."""

from __future__ import annotations

import boto3
import pytest

from local.runtime import invoke
from local.template import LocalStack
from tests.support import Api, load_event

PAGE_TWO_LEVELS = {
    "name": "Payments on-call",
    "is_default": True,
    "levels": [
        {"delay_minutes": 0, "targets": [{"type": "user", "email": "oncall@example.com"}]},
        {"delay_minutes": 5, "targets": [{"type": "user", "email": "lead@example.com"}]},
    ],
}


def stored_item(stack: LocalStack, incident_id: str) -> dict:
    table = boto3.resource("dynamodb", region_name=stack.region).Table(stack.physical["IncidentsTable"])
    return table.get_item(Key={"pk": f"INC#{incident_id}", "sk": "META"}, ConsistentRead=True)["Item"]


def test_health_needs_no_token(api: Api) -> None:
    assert api.call("GET", "/health") == (200, {"status": "ok"})


def test_create_from_the_sample_event_without_a_policy_stays_open(api: Api, aws: LocalStack) -> None:
    # Given no escalation policy exists
    # When the sample create event (events/api_create_incident.json) reaches the handler
    response = invoke(aws.function("ApiFunction"), load_event("api_create_incident.json"))
    # Then the incident is created, open, with the runbook's P1 SLA
    assert response["statusCode"] == 201
    body = api.ok("GET", "/incidents/INC-20261122-001")
    assert body["status"] == "open" and body["escalation"] is None
    assert body["title"] == "Checkout API error rate above 20%" and body["labels"] == {"region": "us-east-1"}
    assert body["sla"] == {
        "response_minutes": 15,
        "resolution_minutes": 120,
        "ack_due_at": "2026-11-22T07:15:00.000Z",
        "resolve_due_at": "2026-11-22T09:00:00.000Z",
    }
    item = stored_item(aws, "INC-20261122-001")
    assert item["status"] == "open" and item["version"] == 1 and "due_pk" not in item


def test_ids_count_up_per_day(api: Api, clock) -> None:
    ids = [
        api.ok("POST", "/incidents", {"title": f"t{n}", "severity": "P3"}, expect=201)["id"] for n in range(3)
    ]
    clock.shift(24 * 3600)
    ids.append(api.ok("POST", "/incidents", {"title": "next day", "severity": "P3"}, expect=201)["id"])
    assert ids == ["INC-20261122-001", "INC-20261122-002", "INC-20261122-003", "INC-20261123-001"]


def test_create_with_a_default_policy_starts_escalating(api: Api) -> None:
    policy = api.ok("POST", "/policies", PAGE_TWO_LEVELS, expect=201)
    body = api.ok("POST", "/incidents", {"title": "DB down", "severity": "P0"}, expect=201)
    assert body["status"] == "escalating"
    assert body["escalation"] == {
        "policy_id": policy["id"],
        "policy_name": "Payments on-call",
        "level": 0,
        "loop": 0,
        "next_level": 1,
        "next_at": "2026-11-22T07:05:00.000Z",
    }


def test_unknown_policy_id_is_a_422_naming_the_field(api: Api) -> None:
    status, body = api.call("POST", "/incidents", {"title": "x", "severity": "P1", "policy_id": "pol_nope"})
    assert status == 422 and body["field"] == "policy_id"


def test_same_dedup_key_joins_the_active_incident(api: Api) -> None:
    first = api.ok(
        "POST", "/incidents", {"title": "disk 95%", "severity": "P2", "dedup_key": "disk-a"}, expect=201
    )
    again = api.ok(
        "POST", "/incidents", {"title": "disk 96%", "severity": "P2", "dedup_key": "disk-a"}, expect=200
    )
    assert again["id"] == first["id"]
    types = [e["type"] for e in api.ok("GET", f"/incidents/{first['id']}/timeline")["items"]]
    assert types == ["created", "deduplicated"]
    # once resolved, the key is free again and opens a new incident
    api.ok("POST", f"/incidents/{first['id']}/resolve", {})
    third = api.ok(
        "POST", "/incidents", {"title": "disk 97%", "severity": "P2", "dedup_key": "disk-a"}, expect=201
    )
    assert third["id"] != first["id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"severity": "P1"}, "title"),
        ({"title": "x", "severity": "P9"}, "severity"),
        ({"title": "", "severity": "P1"}, "title"),
        ({"title": "x", "severity": "P1", "sevrity": "P1"}, "sevrity"),
        ({"title": "x", "severity": "P1", "labels": {"a": 1}}, "labels.a"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(api: Api, body: dict, field: str) -> None:
    status, payload = api.call("POST", "/incidents", body)
    assert status == 422 and payload["error"] == "validation_error" and payload["field"] == field


def test_a_body_that_is_not_json_is_a_422(api: Api) -> None:
    status, payload = api.call("POST", "/incidents", raw_body="{not json")
    assert status == 422 and payload["field"] == "body"


def test_unknown_incident_is_404(api: Api) -> None:
    for path in ("/incidents/INC-20991231-001", "/incidents/INC-20991231-001/timeline"):
        status, payload = api.call("GET", path)
        assert status == 404 and payload["error"] == "not_found"
    assert api.call("POST", "/incidents/INC-20991231-001/acknowledge", {})[0] == 404


def test_invalid_transition_is_409_with_status_and_allowed_actions(api: Api, aws: LocalStack) -> None:
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P2"}, expect=201)
    api.ok("POST", f"/incidents/{inc['id']}/resolve", {"resolution_note": "fixed"})
    status, payload = api.call("POST", f"/incidents/{inc['id']}/acknowledge", {})
    assert status == 409
    assert payload == {
        "error": "invalid_transition",
        "message": "cannot acknowledge an incident that is resolved",
        "status": "resolved",
        "allowed": [],
    }
    assert stored_item(aws, inc["id"])["status"] == "resolved"


def test_lifecycle_records_actor_and_every_step(api: Api, clock) -> None:
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P2"}, expect=201)
    path = f"/incidents/{inc['id']}"
    acked = api.ok("POST", f"{path}/acknowledge", {"by": "bob@example.com"})
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "bob@example.com"
    clock.shift(60)
    snoozed = api.ok("POST", f"{path}/snooze", {"minutes": 30})
    assert snoozed["status"] == "snoozed" and snoozed["snoozed_until"] == "2026-11-22T07:31:00.000Z"
    resolved = api.ok("POST", f"{path}/resolve", {"resolution_note": "restarted"})
    assert resolved["resolved_by"] == "admin"  # the authorizer's principal when no `by` is given
    timeline = api.ok("GET", f"{path}/timeline")["items"]
    assert [(e["type"], e["actor"]) for e in timeline] == [
        ("created", "admin"),
        ("acknowledged", "bob@example.com"),
        ("snoozed", "admin"),
        ("resolved", "admin"),
    ]
    assert timeline[3]["data"] == {"from": "snoozed", "to": "resolved", "note": "restarted"}


def test_cancel_with_reason(api: Api) -> None:
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P4"}, expect=201)
    body = api.ok("POST", f"/incidents/{inc['id']}/cancel", {"reason": "test alarm"})
    assert body["status"] == "cancelled" and body["cancel_reason"] == "test alarm"


def test_notes_append_to_the_timeline_without_touching_the_incident(api: Api, aws: LocalStack) -> None:
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P3"}, expect=201)
    note = api.ok(
        "POST", f"/incidents/{inc['id']}/notes", {"text": "looking at the LB logs", "by": "eve"}, expect=201
    )
    assert (
        note["type"] == "note"
        and note["actor"] == "eve"
        and note["data"] == {"text": "looking at the LB logs"}
    )
    assert api.call("POST", f"/incidents/{inc['id']}/notes", {"text": "   "})[0] == 422
    assert [e["type"] for e in api.ok("GET", f"/incidents/{inc['id']}/timeline")["items"]] == [
        "created",
        "note",
    ]
    assert stored_item(aws, inc["id"])["version"] == 1


def test_list_filters_and_paginates_newest_first(api: Api, clock) -> None:
    made = []
    for n in range(7):
        clock.shift(1)
        sev = "P1" if n % 2 else "P3"
        made.append(
            api.ok("POST", "/incidents", {"title": f"i{n}", "severity": sev, "team": "core"}, expect=201)
        )
    api.ok("POST", f"/incidents/{made[0]['id']}/resolve", {})
    seen, cursor = [], None
    while True:
        query = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", "/incidents", query=query)
        assert len(page["items"]) <= 3
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i["id"] for i in reversed(made)]
    p1 = api.ok("GET", "/incidents", query={"severity": "P1", "limit": "2"})
    assert [i["title"] for i in p1["items"]] == ["i5", "i3"] and p1["next_cursor"]
    rest = api.ok("GET", "/incidents", query={"severity": "P1", "limit": "2", "cursor": p1["next_cursor"]})
    assert [i["title"] for i in rest["items"]] == ["i1"]
    assert [i["title"] for i in api.ok("GET", "/incidents", query={"status": "resolved"})["items"]] == ["i0"]
    assert api.ok("GET", "/incidents", query={"team": "other"})["items"] == []


def test_bad_list_parameters_are_422(api: Api) -> None:
    assert api.call("GET", "/incidents", query={"limit": "0"})[0] == 422
    assert api.call("GET", "/incidents", query={"status": "bogus"})[0] == 422
    status, body = api.call("GET", "/incidents", query={"cursor": "not-a-cursor"})
    assert status == 422 and body["field"] == "cursor"


def test_openapi_document_lists_the_routes(api: Api) -> None:
    doc = api.ok("GET", "/openapi.json")
    assert doc["info"]["title"] == "Incident Engine API"
    assert {"/incidents", "/incidents/{incident_id}/acknowledge", "/policies/{policy_id}"} <= set(
        doc["paths"]
    )
    status, page = api.call("GET", "/docs")
    assert status == 200 and "<title>Swagger UI</title>" in page


def test_authorizer_accepts_the_token_and_rejects_others(aws: LocalStack) -> None:
    spec = aws.function("AuthorizerFunction")
    event = load_event("authorizer_token.json")
    allowed = invoke(spec, event)
    assert allowed["principalId"] == "admin"
    statement = allowed["policyDocument"]["Statement"][0]
    assert statement["Effect"] == "Allow"
    assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"]
    for bad in ("Bearer wrong", "Basic abc", "", "Bearer "):
        event["authorizationToken"] = bad
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            invoke(spec, event)


def test_the_sample_events_drive_create_acknowledge_resolve(api: Api, aws: LocalStack) -> None:
    # Given a default policy, and the clock on the day the samples' incident id names
    api.ok("POST", "/policies", PAGE_TWO_LEVELS, expect=201)
    handler = aws.function("ApiFunction")
    # When the three sample events arrive in order
    created, acked, resolved = (
        invoke(handler, load_event(name))
        for name in ("api_create_incident.json", "api_acknowledge_incident.json", "api_resolve_incident.json")
    )
    # Then each answered as the contract says, and the incident ends resolved by the on-call
    assert [created["statusCode"], acked["statusCode"], resolved["statusCode"]] == [201, 200, 200]
    body = api.ok("GET", "/incidents/INC-20261122-001")
    assert body["status"] == "resolved" and body["acknowledged_by"] == "oncall@example.com"
    assert body["resolution_note"] == "Rolled back release 2026.11.22-3"
    assert stored_item(aws, "INC-20261122-001")["version"] == 3
