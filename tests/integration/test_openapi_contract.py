"""The served OpenAPI document against what the API and its gateway really answer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from incident_engine.api.app import openapi_json
from incident_engine.api.openapi import PUBLIC
from incident_engine.domain.access import scope_of
from local.gateway import Gateway
from local.template import gateway_responses, load_template
from tests.support import Api


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(openapi_json())
    return document


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, methods in doc["paths"].items() for m, op in methods.items()]


def test_every_operation_declares_its_errors_in_the_one_error_shape(doc: dict[str, Any]) -> None:
    error = {"$ref": "#/components/schemas/Error"}
    for method, path, op in operations(doc):
        answers = op["responses"]
        assert "429" in answers, (method, path)  # API Gateway's throttling comes before any route
        if (method, path) not in PUBLIC:
            assert {"401", "403"} <= set(answers), (method, path)
            assert op.get("security") != [], (method, path)
        if "{" in path and not path.startswith("/a/"):
            assert "404" in answers, (method, path)
        if "requestBody" in op and path != "/v2/enqueue":
            assert {"400", "413", "422"} <= set(answers), (method, path)
        for status, answer in answers.items():
            media = answer.get("content", {}).get("application/json")
            if status.startswith("4") and media and path != "/v2/enqueue":
                assert media["schema"] == error, (method, path, status)
    assert "HTTPValidationError" not in doc["components"]["schemas"]  # Powertools' shape, never answered


def test_creates_declare_201_and_pagerduty_its_own_shapes(doc: dict[str, Any]) -> None:
    for method, path, op in operations(doc):
        if method == "post" and path in (
            "/policies",
            "/users",
            "/teams",
            "/schedules",
            "/services",
            "/webhooks",
            "/heartbeats",
            "/routing-rules",
            "/tokens",
        ):
            assert "201" in op["responses"] and "200" not in op["responses"], path
    enqueue = doc["paths"]["/v2/enqueue"]["post"]
    assert set(enqueue["responses"]) == {"202", "400", "413", "429"}
    assert enqueue["security"] == []
    assert "PagerDutyError" in json.dumps(enqueue["responses"]["400"])


def test_public_routes_are_the_templates_and_docs_is_declared(doc: dict[str, Any]) -> None:
    template = load_template()
    public = {
        (event["Properties"]["Method"], event["Properties"]["Path"])
        for event in template["Resources"]["ApiFunction"]["Properties"]["Events"].values()
        if event["Type"] == "Api"
        and event["Properties"].get("Auth", {}).get("Authorizer") == "NONE"
        and event["Properties"]["Method"] != "any"
    }
    assert public == set(PUBLIC)
    declared_public = {(m, p) for m, p, op in operations(doc) if op.get("security") == []}
    assert declared_public == set(PUBLIC)
    assert doc["paths"]["/integrations/alertmanager"]["post"]["security"] == [{"integrationKey": []}]
    assert "text/html" in doc["paths"]["/docs"]["get"]["responses"]["200"]["content"]


def test_the_local_gateway_answers_what_the_template_declares() -> None:
    declared = gateway_responses()
    for kind in (
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "MISSING_AUTHENTICATION_TOKEN",
        "THROTTLED",
        "REQUEST_TOO_LARGE",
    ):
        status, body, _ = Gateway.gateway_answer(kind)
        assert status == declared[kind].status
        assert set(json.loads(body)) == {"error", "message"}, kind
    status, body, _ = Gateway.gateway_answer("INTEGRATION_FAILURE", 'say "hi"')
    assert status == 502 and json.loads(body) == {"error": "gateway_error", "message": 'say "hi"'}
    assert Gateway.gateway_answer("THROTTLED")[2]["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/health", "GET"),
        ("QUERY", "/health", "GET"),
        ("PUT", "/v2/enqueue", "POST"),
        ("PATCH", "/a/anything", "GET, POST"),
    ],
)
def test_another_method_on_a_public_path_is_405_without_a_token_too(
    api: Api, method: str, path: str, allow: str
) -> None:
    # Given no token: API Gateway sends the path's ANY route on without any authorizer
    # When another method comes, Then it is the 405 naming the path's methods, not a 401
    status, body = api.call_as(None, method, path)
    assert (status, body["error"], api.last_headers["allow"]) == (405, "method_not_allowed", allow), body
    # And only a path with an ANY route is so: elsewhere an undeclared method needs an admin
    resource, _ = api._route(method, path)
    assert (scope_of(method, resource), scope_of(method, "/incidents/{incident_id}")) == ("public", "admin")


def test_another_method_on_a_public_path_is_405_naming_the_allowed(api: Api) -> None:
    status, body = api.call("DELETE", "/health")
    assert status == 405 and body["error"] == "method_not_allowed"
    assert api.last_headers["allow"] == "GET"
    status, body = api.call("PUT", "/v2/enqueue")
    assert status == 405 and api.last_headers["allow"] == "POST"
