"""API tokens with scopes (issue 10): made and revoked by admins, shown once, held to their scopes
and teams by the authorizer's policy and again by the api function, and recorded by name."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
import time_machine

from functions.authorizer.app import lambda_handler as authorizer_handler
from incident_engine.domain.access import ADMIN, INGEST, PUBLIC, READ, ROUTE_SCOPES, WRITE, policy_routes
from local.runtime import LambdaContext
from local.template import LocalStack, load_template
from tests.support import TOKEN, Api, load_event


def template_routes() -> list[tuple[str, str, bool]]:
    events = load_template()["Resources"]["ApiFunction"]["Properties"]["Events"]
    return [
        (
            e["Properties"]["Method"].upper(),
            e["Properties"]["Path"],
            e["Properties"].get("Auth", {}).get("Authorizer") == "NONE",
        )
        for e in events.values()
        if e["Type"] == "Api"
    ]


def make_token(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"name": "ci", "scopes": ["write"], **fields}
    return dict(api.ok("POST", "/tokens", body, expect=201))


def concrete(path: str) -> str:
    """A template path with made-up values for its parameters."""
    return re.sub(r"\{[^}]+\}", "x_1", path)


def open_incident(api: Api, team: str | None, title: str = "t", **fields: Any) -> dict[str, Any]:
    body = {"title": title, "severity": "P3", **({"team": team} if team else {}), **fields}
    return dict(api.ok("POST", "/incidents", body, expect=201))


# --- the table ------------------------------------------------------------------------------------


def test_every_route_of_the_template_has_one_scope_and_the_table_names_no_other() -> None:
    declared = {(m, p): public for m, p, public in template_routes()}
    assert set(declared) <= set(ROUTE_SCOPES), sorted(set(declared) - set(ROUTE_SCOPES))
    assert set(ROUTE_SCOPES) == set(declared), sorted(set(ROUTE_SCOPES) - set(declared))
    # a route the gateway lets through unauthenticated is exactly a public one in the table
    for route, public in declared.items():
        assert (ROUTE_SCOPES[route] == PUBLIC) == public, route
    assert set(ROUTE_SCOPES.values()) == {PUBLIC, INGEST, READ, WRITE, ADMIN}


def test_the_resolver_and_the_table_agree() -> None:
    from incident_engine.api.app import ROUTERS, app

    ROUTERS.include_all()  # a request includes only its own routers
    in_code = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    assert in_code <= set(ROUTE_SCOPES)


def test_a_read_policy_allows_exactly_the_read_routes() -> None:
    patterns = policy_routes([READ])
    regexes = [re.compile(".*".join(map(re.escape, p.split("*")))) for p in patterns]
    for (method, path), scope in ROUTE_SCOPES.items():
        if scope == PUBLIC:
            continue
        reached = any(r.fullmatch(f"{method}{concrete(path)}") for r in regexes)
        assert reached == (scope == READ), (method, path, scope, patterns)
    assert len(json.dumps(patterns)) < 2000  # a policy API Gateway caches per token: kept small


# --- made, shown once, listed, revoked ------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_a_hash_and_listed_by_prefix(api: Api, aws: LocalStack) -> None:
    made = make_token(api, name="deploy bot", scopes=["read", "write"])
    secret = made["token"]
    assert secret.startswith("iet_") and len(secret) > 40
    assert made["prefix"] == secret[:12] and made["scopes"] == ["read", "write"]
    assert made["created_by"] == "admin" and made["active"] is True and made["last_used_at"] is None
    listed = api.ok("GET", "/tokens")["items"]
    assert [t["id"] for t in listed] == [made["id"]]
    assert "token" not in listed[0] and secret not in json.dumps(listed)
    # the config table holds the hash, never the token
    import boto3

    table = boto3.client("dynamodb", region_name="us-east-1")
    items = table.scan(TableName=aws.physical["ConfigTable"])["Items"]
    assert secret not in json.dumps(items)
    assert hashlib.sha256(secret.encode()).hexdigest() in json.dumps(items)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["root"]}, "scopes.0"),
        ({"name": "x", "scopes": ["admin"], "team_ids": ["payments"]}, "team_ids"),
        ({"name": "x", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "expires_at": "2030-01-01T00:00:00"}, "expires_at"),
        ({"name": "x", "scopes": ["read"], "team_ids": []}, "team_ids"),
        ({"name": "x", "scopes": ["read"], "id": "tok_mine"}, "id"),
        ({"name": "x", "scopes": ["read"], "last_used_at": "2030-01-01T00:00:00Z"}, "last_used_at"),
        ({"name": "x\u202e", "scopes": ["read"]}, "name"),
    ],
)
def test_odd_tokens_are_refused(api: Api, body: dict[str, Any], field: str) -> None:
    status, answer = api.call("POST", "/tokens", body)
    assert status == 422 and answer["field"] == field, answer


def test_only_an_admin_manages_tokens(api: Api) -> None:
    writer = make_token(api)["token"]
    admin = make_token(api, name="ops", scopes=["admin"])["token"]
    assert api.call_as(writer, "GET", "/tokens")[0] == 403
    assert api.call_as(writer, "POST", "/tokens", {"name": "mine", "scopes": ["admin"]})[0] == 403
    # an admin token (not only the deploy-time one) manages them too, and is recorded as their maker
    status, made = api.call_as(admin, "POST", "/tokens", {"name": "other", "scopes": ["read"]})
    assert status == 201 and made["created_by"] == "ops"


def test_a_revoked_token_stops_and_an_expired_one_too(api: Api, clock: time_machine.Traveller) -> None:
    made = make_token(api, expires_at="2026-11-22T08:00:00Z")
    secret = made["token"]
    assert api.call_as(secret, "GET", "/incidents")[0] == 200
    # expiry: refused from the moment it passes (API Gateway's cache adds at most 60 s)
    clock.move_to("2026-11-22T08:00:00Z")
    assert api.call_as(secret, "GET", "/incidents")[0] == 401
    other = make_token(api, name="other")
    assert api.call_as(other["token"], "GET", "/incidents")[0] == 200
    revoked = api.ok("DELETE", f"/tokens/{other['id']}")
    assert revoked["active"] is False and revoked["revoked_at"]
    assert api.call_as(other["token"], "GET", "/incidents")[0] == 401
    assert api.ok("DELETE", f"/tokens/{other['id']}")["revoked_at"] == revoked["revoked_at"]  # idempotent
    assert api.call("DELETE", "/tokens/tok_nope")[0] == 404


def test_last_used_is_written_at_most_once_a_minute(api: Api, clock: time_machine.Traveller) -> None:
    made = make_token(api)

    def last_used() -> str | None:
        return str(
            next(t for t in api.ok("GET", "/tokens")["items"] if t["id"] == made["id"])["last_used_at"]
        )

    api.call_as(made["token"], "GET", "/incidents")
    first = last_used()
    assert first.startswith("2026-11-22T07:00:00")
    clock.shift(30)
    api.call_as(made["token"], "GET", "/incidents")
    assert last_used() == first  # within the minute: not written again
    clock.shift(31)
    api.call_as(made["token"], "GET", "/incidents")
    assert last_used() > first


# --- every route refuses what it must -------------------------------------------------------------


def test_every_route_refuses_no_token_a_wrong_one_a_revoked_one_and_too_small_a_scope(api: Api) -> None:
    reader = make_token(api, name="reader", scopes=["read"])["token"]
    writer = make_token(api, name="writer", scopes=["write"])["token"]
    gone = make_token(api, name="gone", scopes=["admin"])
    api.ok("DELETE", f"/tokens/{gone['id']}")
    checked = 0
    for method, path, public in template_routes():
        if public:
            continue
        url = concrete(path)
        assert api.call_as(None, method, url)[0] == 401, (method, path)
        assert api.call_as("iet_not-a-real-token-at-all", method, url)[0] == 401, (method, path)
        assert api.call_as(TOKEN + "x", method, url)[0] == 401, (method, path)
        assert api.call_as(gone["token"], method, url)[0] == 401, (method, path)
        scope = ROUTE_SCOPES[(method, path)]
        if scope in (WRITE, ADMIN, INGEST):
            assert api.call_as(reader, method, url, {})[0] == 403, (method, path)
        if scope in (ADMIN, INGEST):
            assert api.call_as(writer, method, url, {})[0] == 403, (method, path)
        checked += 1
    assert checked > 50


def test_the_api_checks_the_scope_itself_whatever_the_gateway_let_through(api: Api) -> None:
    # A context the authorizer gave a read token, on a route that needs write (a stale cached
    # policy, a misconfigured gateway): the function refuses it too.
    event = api.event("POST", "/incidents", {"title": "x", "severity": "P1"})
    event["requestContext"]["authorizer"] = {
        "principalId": "reader",
        "role": "token",
        "credential_id": "tok_1",
        "scopes": "read",
        "team_ids": "",
    }
    from local.runtime import invoke

    answer = invoke(api.spec, event)
    assert answer["statusCode"] == 403
    event["requestContext"]["authorizer"] = None
    assert invoke(api.spec, event)["statusCode"] == 401


def test_integration_keys_still_reach_only_the_ingestion_routes(api: Api) -> None:
    key = api.ok("POST", "/services", {"name": "checkout"}, expect=201)["integration_key"]
    assert api.call_as(key, "GET", "/incidents")[0] == 403
    assert api.call_as(key, "POST", "/incidents", {"title": "x", "severity": "P1"})[0] == 403
    assert api.call_as(key, "POST", "/tokens", {"name": "x", "scopes": ["admin"]})[0] == 403
    body = load_event("alertmanager_webhook_firing.json")
    assert api.call_as(key, "POST", "/integrations/alertmanager", body)[0] == 200


def test_the_authorizer_answers_a_token_with_its_scopes_routes_and_teams(api: Api) -> None:
    made = make_token(api, name="payments oncall", scopes=["write"], team_ids=["payments"])
    event = load_event("authorizer_token.json")
    event["authorizationToken"] = f"Bearer {made['token']}"
    answer = authorizer_handler(event, LambdaContext("AuthorizerFunction"))
    assert answer["principalId"] == "payments oncall"
    assert answer["context"] == {
        "role": "token",
        "credential_id": made["id"],
        "scopes": "write",
        "team_ids": '["payments"]',
        "service_id": "",
    }
    resources = answer["policyDocument"]["Statement"][0]["Resource"]
    assert any(r.endswith("/POST/incidents/*") for r in resources)
    assert not any("/tokens" in r or "/PUT/" in r or "/DELETE/" in r for r in resources)


# --- teams ----------------------------------------------------------------------------------------


def test_a_team_token_sees_and_acts_on_its_teams_incidents_only(api: Api) -> None:
    ours = open_incident(api, "payments", "ours")
    theirs = open_incident(api, "search", "theirs", dedup_key="disk-full")
    untagged = open_incident(api, None, "nobody's")
    secret = make_token(api, name="payments bot", scopes=["write"], team_ids=["payments"])["token"]
    # lists and facets: only ours, whatever the filter
    assert [i["id"] for i in api.call_as(secret, "GET", "/incidents")[1]["items"]] == [ours["id"]]
    for query in ({"team": "search"}, {"status": "active"}, {"severity": "P3"}, {"team": "payments"}):
        items = api.call_as(secret, "GET", "/incidents", query=query)[1]["items"]
        assert {i["id"] for i in items} <= {ours["id"]}, query
    # another team's incident, or one with no team, is a 404 like one that does not exist
    missing = api.call_as(secret, "GET", "/incidents/INC-20990101-001")
    for other in (theirs, untagged):
        for method, suffix, body in (
            ("GET", "", None),
            ("GET", "/timeline", None),
            ("GET", "/escalations", None),
            ("GET", "/notifications", None),
            ("POST", "/acknowledge", None),
            ("POST", "/resolve", None),
            ("POST", "/notes", {"text": "hi"}),
        ):
            status, answer = api.call_as(secret, method, f"/incidents/{other['id']}{suffix}", body)
            assert status == 404, (method, suffix, answer)
            assert answer["error"] == missing[1]["error"] and other["title"] not in json.dumps(answer)
    assert api.ok("GET", f"/incidents/{theirs['id']}")["status"] == "open"  # nothing acted
    # its own: acted on
    assert api.call_as(secret, "POST", f"/incidents/{ours['id']}/acknowledge")[1]["status"] == "acknowledged"
    # it opens incidents of its team only (a one-team token's are its team's by default)
    status, made = api.call_as(secret, "POST", "/incidents", {"title": "new", "severity": "P3"})
    assert status == 201 and made["team"] == "payments"
    status, _ = api.call_as(secret, "POST", "/incidents", {"title": "x", "severity": "P3", "team": "search"})
    assert status == 422
    # and another team's dedup key is neither joined nor named
    body = {"title": "x", "severity": "P3", "dedup_key": "disk-full"}
    status, answer = api.call_as(secret, "POST", "/incidents", body)
    assert status == 409 and theirs["id"] not in json.dumps(answer)
    timeline = api.ok("GET", f"/incidents/{theirs['id']}/timeline")["items"]
    assert "deduplicated" not in [e["type"] for e in timeline]


def test_a_token_of_several_teams_lists_all_of_theirs(api: Api) -> None:
    a, b = open_incident(api, "payments"), open_incident(api, "search")
    open_incident(api, "growth")
    secret = make_token(api, name="two", scopes=["read"], team_ids=["payments", "search"])["token"]
    items = api.call_as(secret, "GET", "/incidents")[1]["items"]
    assert {i["id"] for i in items} == {a["id"], b["id"]}


# --- who acted ------------------------------------------------------------------------------------


def test_by_records_the_tokens_name_unless_an_admin_acts_for_someone(api: Api) -> None:
    incident = open_incident(api, None)
    writer = make_token(api, name="pager bot", scopes=["write"])["token"]
    path = f"/incidents/{incident['id']}"
    assert api.call_as(writer, "POST", f"{path}/notes", {"text": "looking", "by": "the CEO"})[0] == 201
    api.call_as(writer, "POST", f"{path}/acknowledge", {"by": "the CEO"})
    api.ok("POST", f"{path}/resolve", {"by": "alice@example.com"})
    events = api.ok("GET", f"{path}/timeline")["items"]
    actors = {e["type"]: e["actor"] for e in events}
    assert actors["note"] == "pager bot" and actors["acknowledged"] == "pager bot"
    assert actors["resolved"] == "alice@example.com"  # the admin acted for alice
    assert actors["created"] == "admin"


# --- server-owned fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/incidents", {"title": "x", "severity": "P1", "status": "resolved"}, "status"),
        ("/incidents", {"title": "x", "severity": "P1", "version": 9}, "version"),
        ("/incidents", {"title": "x", "severity": "P1", "escalation": {"level": 3}}, "escalation"),
        ("/incidents", {"title": "x", "severity": "P1", "alert_count": 0}, "alert_count"),
        ("/incidents", {"title": "x", "severity": "P1", "id": "INC-1"}, "id"),
        ("/services", {"name": "s", "version": 5}, "version"),
        ("/services", {"name": "s", "enabled": False}, "enabled"),
        ("/webhooks", {"name": "w", "url": "https://hooks.example.com/x", "secret": "mine"}, "secret"),
        ("/teams", {"name": "t", "created_at": "2020-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_clients_never_set_server_owned_fields(api: Api, path: str, body: dict[str, Any], field: str) -> None:
    status, answer = api.call("POST", path, body)
    assert status == 422 and answer["field"] == field, answer


def test_every_request_body_forbids_unknown_fields_and_bounds_every_string_and_list() -> None:
    from incident_engine.api.app import openapi_json

    doc = json.loads(openapi_json())
    schemas = doc["components"]["schemas"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schemas[node["$ref"].rsplit("/", 1)[1]]
        return node

    problems: list[str] = []
    seen: set[int] = set()

    def walk(node: dict[str, Any], where: str) -> None:
        node = resolve(node)
        if id(node) in seen:
            return
        seen.add(id(node))
        kind = node.get("type")
        if kind == "object" or "properties" in node:
            if node.get("additionalProperties", True) is not False and "properties" in node:
                problems.append(f"{where}: unknown fields allowed")
            for name, sub in node.get("properties", {}).items():
                walk(sub, f"{where}.{name}")
            if isinstance(node.get("additionalProperties"), dict):
                if "maxProperties" not in node:
                    problems.append(f"{where}: unbounded map")
                walk(node["additionalProperties"], f"{where}.*")
        bounded = {"maxLength", "enum", "const"} & set(node) or node.get("format") in ("date-time", "uri")
        if kind == "string" and not bounded:
            problems.append(f"{where}: unbounded string")
        if kind == "array":
            if "maxItems" not in node:
                problems.append(f"{where}: unbounded list")
            walk(node.get("items", {}), f"{where}[]")
        for key in ("anyOf", "oneOf", "allOf"):
            for n, sub in enumerate(node.get(key, [])):
                walk(sub, f"{where}<{n}>")

    # Other products' formats (PagerDuty's events, Alertmanager's webhook) are described as their
    # senders send them: unknown fields are allowed there and long values are clipped by the
    # parser, not refused, so real clients keep working; their size is bounded by the body limit.
    foreign = {("post", "/v2/enqueue"), ("post", "/integrations/alertmanager")}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            if (method, path) in foreign:
                continue
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                walk(media["schema"], f"{method.upper()} {path}")
    assert problems == [], "\n".join(problems)
