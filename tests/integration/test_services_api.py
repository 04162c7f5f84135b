"""Services and integration keys through the real handlers on moto; keys through the authorizer."""

from __future__ import annotations

import re
from typing import Any

import pytest

from local.runtime import authorize, invoke
from local.template import LocalStack
from tests.support import TOKEN, Api, load_event

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"


def create(api: Api, **fields: Any) -> dict[str, Any]:
    return api.ok("POST", "/services", {"name": "checkout", **fields}, expect=201)


def authorize_as(aws: LocalStack, secret: str, method: str, path: str) -> int:
    status, _ = authorize(
        aws.function("AuthorizerFunction"), {"Authorization": f"Bearer {secret}"}, f"{ARN}/{method}{path}"
    )
    return status


def test_a_service_is_created_with_one_key_shown_once(api: Api) -> None:
    # When a service is created
    body = create(api, default_severity="P1", alarm_name_prefixes=["checkout-", "payments-"])
    # Then its key is 32 hex characters, listed by prefix only, and never shown again
    key = body["integration_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert body["id"].startswith("svc_") and body["version"] == 1 and body["enabled"] is True
    assert body["default_severity"] == "P1" and body["auto_resolve"] is True
    assert body["insufficient_data"] == "ignore"
    [listed] = body["integration_keys"]
    assert listed["prefix"] == key[:6] and listed["active"] is True
    again = api.ok("GET", f"/services/{body['id']}")
    assert key not in str(again) and "integration_key" not in again
    assert [s["id"] for s in api.ok("GET", "/services")["items"]] == [body["id"]]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "a\nb"}, "name"),
        ({"policy_id": "pol_nope"}, "policy_id"),
        ({"insufficient_data": "maybe"}, "insufficient_data"),
        ({"auto_resolve": "yes"}, "auto_resolve"),
        ({"default_severity": "SEV1"}, "default_severity"),
        ({"alarm_name_prefixes": ["x"] * 21}, "alarm_name_prefixes"),
        ({"integration_key": "mine"}, "integration_key"),  # server-owned: never set by a client
    ],
)
def test_bad_service_fields_are_named(api: Api, fields: dict[str, Any], field: str) -> None:
    status, body = api.call("POST", "/services", {"name": "checkout", **fields})
    assert status == 422 and body["field"].startswith(field), body


def test_a_service_is_replaced_by_version_and_disabled_not_erased(api: Api) -> None:
    svc = create(api)
    policy = api.ok(
        "POST",
        "/policies",
        {
            "name": "p",
            "levels": [{"delay_minutes": 0, "targets": [{"type": "user", "email": "a@example.com"}]}],
        },
        expect=201,
    )
    replaced = api.ok("PUT", f"/services/{svc['id']}", {"name": "checkout-v2", "policy_id": policy["id"]})
    assert replaced["version"] == 2 and replaced["policy_id"] == policy["id"]
    disabled = api.ok("DELETE", f"/services/{svc['id']}")
    assert disabled["enabled"] is False and disabled["name"] == "checkout-v2"
    assert api.ok("GET", "/services")["items"] == []
    assert [s["id"] for s in api.ok("GET", "/services", query={"include_disabled": "true"})["items"]] == [
        svc["id"]
    ]
    assert api.call("PUT", f"/services/{svc['id']}", {"name": "again"})[0] == 409
    assert api.call("GET", "/services/svc_nope")[0] == 404


def test_keys_are_added_and_revoked_and_a_revoked_key_stops_working(api: Api, aws: LocalStack) -> None:
    svc = create(api)
    first = svc["integration_key"]
    second = api.ok("POST", f"/services/{svc['id']}/integration-keys", expect=201)
    assert second["integration_key"] != first and second["active"] is True
    # Both keys reach the ingestion routes
    assert authorize_as(aws, first, "POST", "/integrations/alertmanager") == 0
    assert authorize_as(aws, second["integration_key"], "POST", "/heartbeats/hb_1/ping") == 0
    # When the first is revoked
    first_id = svc["integration_keys"][0]["id"]
    revoked = api.ok("DELETE", f"/services/{svc['id']}/integration-keys/{first_id}")
    assert revoked["active"] is False and revoked["revoked_at"] is not None
    # Then it is refused, the other still works, and revoking again changes nothing
    assert authorize_as(aws, first, "POST", "/integrations/alertmanager") == 401
    assert authorize_as(aws, second["integration_key"], "POST", "/integrations/alertmanager") == 0
    assert (
        api.ok("DELETE", f"/services/{svc['id']}/integration-keys/{first_id}")["revoked_at"]
        == revoked["revoked_at"]
    )
    assert api.call("DELETE", f"/services/{svc['id']}/integration-keys/key_nope")[0] == 404
    keys = api.ok("GET", f"/services/{svc['id']}")["integration_keys"]
    assert {k["id"]: k["active"] for k in keys} == {first_id: False, second["id"]: True}


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/incidents"), ("GET", "/incidents"), ("POST", "/services"), ("GET", "/services/svc_1")],
)
def test_an_integration_key_reaches_only_the_ingestion_routes(
    api: Api, aws: LocalStack, method: str, path: str
) -> None:
    key = create(api)["integration_key"]
    assert authorize_as(aws, key, method, path) == 403
    assert authorize_as(aws, TOKEN, method, path) == 0


def test_the_authorizer_names_the_integration_and_its_service(api: Api, aws: LocalStack) -> None:
    svc = create(api)
    event = load_event("authorizer_token.json")
    event["authorizationToken"] = f"Bearer {svc['integration_key']}"
    answer = invoke(aws.function("AuthorizerFunction"), event)
    key_id = svc["integration_keys"][0]["id"]
    assert answer["context"] == {
        "role": "integration",
        "service_id": svc["id"],
        "credential_id": key_id,
        "scopes": "ingest",
        "team_ids": "",
    }
    assert answer["principalId"] == f"integration:{svc['id']}:{key_id}"
    assert sorted(answer["policyDocument"]["Statement"][0]["Resource"]) == [
        f"{ARN}/POST/heartbeats/*/ping",
        f"{ARN}/POST/integrations/alertmanager",
    ]
    for unknown in ("0" * 32, svc["integration_key"] + "x", "x" * 600):
        event["authorizationToken"] = f"Bearer {unknown}"
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            invoke(aws.function("AuthorizerFunction"), event)


def test_an_incident_on_a_service_takes_its_policy_team_and_name(api: Api, tap: Any) -> None:
    # Given a default policy paging A, and a service whose own policy pages B
    def one_level(name: str, email: str, default: bool) -> dict[str, Any]:
        level = {"delay_minutes": 0, "targets": [{"type": "user", "email": email}]}
        return api.ok(
            "POST", "/policies", {"name": name, "levels": [level], "is_default": default}, expect=201
        )

    one_level("default", "a@example.com", True)
    own = one_level("checkout on-call", "b@example.com", False)
    svc = create(api, policy_id=own["id"], team_id="payments")
    # When an incident is opened on the service
    inc = api.ok("POST", "/incidents", {"title": "x", "severity": "P1", "service_id": svc["id"]}, expect=201)
    # Then it carries the service, follows the service's policy, and pages B
    assert (inc["service_id"], inc["service"], inc["team"]) == (svc["id"], "checkout", "payments")
    assert inc["escalation"]["policy_id"] == own["id"]
    assert [m["attributes"]["recipient"] for m in tap.messages()] == ["b@example.com"]
    # and an unknown or disabled service is a 422 naming service_id
    assert api.call("POST", "/incidents", {"title": "x", "severity": "P1", "service_id": "svc_nope"})[1][
        "field"
    ] == ("service_id")


def test_a_dedup_key_is_scoped_to_its_service(api: Api) -> None:
    one, two = create(api), api.ok("POST", "/services", {"name": "search"}, expect=201)
    body = {"title": "disk full", "severity": "P2", "dedup_key": "host-7/disk"}
    first = api.ok("POST", "/incidents", {**body, "service_id": one["id"]}, expect=201)
    other = api.ok("POST", "/incidents", {**body, "service_id": two["id"]}, expect=201)
    again = api.ok("POST", "/incidents", {**body, "service_id": one["id"]}, expect=200)
    assert first["id"] != other["id"] and again["id"] == first["id"]
