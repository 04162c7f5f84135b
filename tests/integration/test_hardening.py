"""Limits and hardening (issue 10): per-credential rate limits, security headers on every answer,
bodies bounded per route, no internals in any error body, nothing secret in a log line."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
from typing import Any

import pytest
import time_machine

from incident_engine.api.rate_limit import RATE_LIMIT
from incident_engine.api.security import GATEWAY_HEADERS, SECURITY_HEADERS
from incident_engine.observability import logger, redact
from incident_engine.wiring import reset_services
from local.template import LocalStack, load_template
from tests.support import TOKEN, Api, load_event

INTERNALS = re.compile(r"(?i)traceback|arn:aws|incident-engine-local-|\.py\b|botocore|pynamodb|dynamodb")


def assert_secure(headers: dict[str, str], html: bool = False) -> None:
    for name, value in SECURITY_HEADERS.items():
        if name == "Content-Security-Policy" and html:
            continue
        assert headers.get(name.lower()) == value, (name, headers)
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp


# --- rate limits ----------------------------------------------------------------------------------


def test_a_credential_over_its_rate_gets_429_with_retry_after_then_its_next_minute(
    api: Api, monkeypatch: pytest.MonkeyPatch, clock: time_machine.Traveller
) -> None:
    monkeypatch.setenv("TOKEN_RATE_PER_MINUTE", "3")
    reset_services()
    RATE_LIMIT.reset()
    secret = api.ok("POST", "/tokens", {"name": "busy", "scopes": ["read"]}, expect=201)["token"]
    other = api.ok("POST", "/tokens", {"name": "calm", "scopes": ["read"]}, expect=201)["token"]
    assert [api.call_as(secret, "GET", "/incidents")[0] for _ in range(3)] == [200] * 3
    clock.shift(20)  # 07:00:20 (the admin's own calls above count for the admin alone)
    status, body = api.call_as(secret, "GET", "/incidents")
    assert status == 429 and body["error"] == "too_many_requests"
    assert api.last_headers["retry-after"] == "40"
    assert_secure(api.last_headers)
    # another token is counted apart; public routes are not counted at all
    assert api.call_as(other, "GET", "/incidents")[0] == 200
    assert api.call_as(None, "GET", "/health")[0] == 200
    clock.shift(40)  # the next minute
    assert api.call_as(secret, "GET", "/incidents")[0] == 200


def _rate_windows(aws: LocalStack) -> dict[str, int]:
    """The stored per-minute counters: RATE#<kind>#<caller> -> hits."""
    import boto3

    table = boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["ConfigTable"])
    items = table.scan()["Items"]
    return {str(i["pk"]): int(i["hits"]) for i in items if str(i["pk"]).startswith("RATE#")}


def test_a_container_claims_a_busy_credential_s_requests_in_blocks_and_one_by_one_near_the_limit(
    api: Api, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a limit of 1,000 a minute (blocks of 10) and a token
    monkeypatch.setenv("TOKEN_RATE_PER_MINUTE", "1000")
    reset_services()
    RATE_LIMIT.reset()
    secret = api.ok("POST", "/tokens", {"name": "busy", "scopes": ["read"]}, expect=201)["token"]
    before = set(_rate_windows(aws))
    # When it makes 25 requests
    assert [api.call_as(secret, "GET", "/incidents")[0] for _ in range(25)] == [200] * 25
    # Then the stored counter holds the three blocks this container claimed, not 25 writes' worth
    [counter] = set(_rate_windows(aws)) - before
    assert _rate_windows(aws)[counter] == 30
    # Given other containers have claimed the minute up to 995, and a new container serves it
    import boto3

    table = boto3.resource("dynamodb", region_name=aws.region).Table(aws.physical["ConfigTable"])
    minute = table.scan()["Items"]
    [item] = [i for i in minute if i["pk"] == counter]
    table.update_item(
        Key={"pk": item["pk"], "sk": item["sk"]},
        UpdateExpression="SET hits = :h",
        ExpressionAttributeValues={":h": 995},
    )
    RATE_LIMIT.reset()
    # When it makes six requests, Then a block no longer fits: five are counted one by one, up to
    # the limit exactly, and the sixth is refused
    assert [api.call_as(secret, "GET", "/incidents")[0] for _ in range(6)] == [200] * 5 + [429]
    assert _rate_windows(aws)[counter] == 1000


def test_no_limit_is_counted_when_it_is_off(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_RATE_PER_MINUTE", "0")
    reset_services()
    for _ in range(5):
        assert api.call("GET", "/incidents")[0] == 200


# --- security headers -----------------------------------------------------------------------------


def test_every_kind_of_answer_carries_the_security_headers(api: Api) -> None:
    cases = [
        (200, lambda: api.call("GET", "/health")),
        (201, lambda: api.call("POST", "/incidents", {"title": "x", "severity": "P1"})),
        (404, lambda: api.call("GET", "/incidents/INC-20990101-001")),
        (422, lambda: api.call("POST", "/incidents", {"severity": "P1"})),
        (413, lambda: api.call("POST", "/incidents", raw_body='{"title": "' + "x" * 300_000 + '"}')),
        (422, lambda: api.call("POST", "/incidents", raw_body="[1]")),  # refused before the resolver
        (200, lambda: api.call("GET", "/openapi.json")),
        (401, lambda: api.call_as(None, "GET", "/incidents")),
        (403, lambda: api.call_as(TOKEN, "POST", "/integrations/alertmanager", {})),
    ]
    for expected, call in cases:
        status, _ = call()
        assert status == expected
        assert_secure(api.last_headers)


def test_the_link_pages_and_the_docs_allow_only_their_own_inline_code(api: Api) -> None:
    status, page = api.call("GET", "/a/not-a-real-link-token-at-all")
    assert status == 400 and "<style>" in page
    assert_secure(api.last_headers, html=True)
    csp = api.last_headers["content-security-policy"]
    style = re.search(r"<style>(.*?)</style>", page, re.DOTALL)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert (
        f"style-src 'sha256-{digest}'" in csp and "script-src 'none'" in csp and "form-action 'self'" in csp
    )
    status, docs = api.call("GET", "/docs")
    assert status == 200
    csp = api.last_headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", docs, re.DOTALL)
    assert len(scripts) == 2
    for script in scripts:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]


def test_the_gateways_own_answers_carry_the_same_headers(template: dict[str, Any]) -> None:
    responses = template["Resources"]["IncidentApi"]["Properties"]["GatewayResponses"]
    assert {"UNAUTHORIZED", "ACCESS_DENIED", "THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for name, response in responses.items():
        headers = {k: v.strip("'") for k, v in response["ResponseParameters"]["Headers"].items()}
        expected = {**GATEWAY_HEADERS, **({"Retry-After": "1"} if name == "THROTTLED" else {})}
        assert headers == expected, name
        body = response["ResponseTemplates"]["application/json"]
        assert '"error"' in body and '"message"' in body
    assert responses["THROTTLED"]["StatusCode"] == "429"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def test_the_template_throttles_the_stage_and_each_credential(template: dict[str, Any]) -> None:
    res = template["Resources"]
    settings = res["IncidentApi"]["Properties"]["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] > 0 and settings["ThrottlingBurstLimit"] > 0
    env = res["ApiFunction"]["Properties"]["Environment"]["Variables"]
    assert env["TOKEN_RATE_PER_MINUTE"] == {"Ref": "TokenRateLimitPerMinute"}
    assert int(template["Parameters"]["TokenRateLimitPerMinute"]["Default"]) > 0
    ttl = res["ConfigTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "ttl", "Enabled": True}
    # the authorizer caches nothing itself, and API Gateway at most 60 s: revocation within 60 s
    auth = res["IncidentApi"]["Properties"]["Auth"]["Authorizers"]["BearerTokenAuthorizer"]
    assert auth["Identity"]["ReauthorizeEvery"] <= 60


# --- bounded bodies -------------------------------------------------------------------------------


def test_each_route_has_its_body_limit(api: Api) -> None:
    key = api.ok("POST", "/services", {"name": "checkout"}, expect=201)["integration_key"]
    enqueue = json.dumps({"routing_key": key, "event_action": "trigger", "pad": "x" * 600_000})
    status, body = api.call("POST", "/v2/enqueue", raw_body=enqueue)
    assert status == 413 and body["status"] == "invalid event"
    # within 512 KB it is PagerDuty's own validation that answers
    status, body = api.call("POST", "/v2/enqueue", raw_body=enqueue[:300_000] + '"}')
    assert status == 400 and body["status"] == "invalid event"
    big = json.dumps({**load_event("alertmanager_webhook_firing.json"), "pad": "x" * (4 * 1024 * 1024)})
    assert api.call_as(key, "POST", "/integrations/alertmanager", raw_body=big)[0] == 413
    for path in ("/policies", "/users", "/tokens", "/routing-rules", "/webhooks"):
        status, body = api.call("POST", path, raw_body='{"name": "' + "x" * 270_000 + '"}')
        assert status == 413 and body["error"] == "payload_too_large", path
        status, body = api.call("POST", path, raw_body='{"name": "' + "x" * 1_000 + '"}')
        assert status == 422, (path, body)


def test_deep_json_is_refused_on_every_route_that_takes_a_body(api: Api) -> None:
    deep = '{"a": ' * 2_000 + "1" + "}" * 2_000
    for method, path in [
        ("POST", "/incidents"),
        ("POST", "/policies"),
        ("PUT", "/users/u_1"),
        ("POST", "/schedules"),
        ("POST", "/tokens"),
        ("POST", "/routing-rules/test"),
        ("POST", "/v2/enqueue"),
    ]:
        status, body = api.call(method, path, raw_body=deep)
        assert status in (400, 413, 422), (path, status, body)
        assert not INTERNALS.search(json.dumps(body)), body


# --- no internals in error bodies -----------------------------------------------------------------


def test_an_error_of_ours_names_no_table_arn_or_stack_frame(
    api: Api, aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given tables that are not there (a misdeployment; DynamoDB's message names the table)
    monkeypatch.setenv("INCIDENTS_TABLE", "missing-incidents-table")
    monkeypatch.setenv("CONFIG_TABLE", "missing-config-table")
    reset_services()
    for method, path, body in (
        ("GET", "/incidents", None),
        ("POST", "/incidents", {"title": "x", "severity": "P1"}),
        ("GET", "/policies", None),
        ("POST", "/tokens", {"name": "x", "scopes": ["read"]}),
        ("GET", "/services", None),
    ):
        status, answer = api.call(method, path, body)
        assert status == 500, (path, answer)
        text = json.dumps(answer)
        assert answer == {"error": "internal_error", "message": "unexpected error; it has been logged"}
        assert "missing-" not in text and not INTERNALS.search(text)


# --- nothing secret in a log line -----------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "iet_AbCdEf0123456789-_abcdefABCDEF0123456789xyz",
        "whsec_0123456789abcdefghijklmnopqrstuvwxyzABCDEF",
        "0123456789abcdef0123456789abcdef",  # an integration key
        "alice.smith@example.com",
        "+14155550123",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX",
        "https://user:hunter2@hooks.example.com/x",
    ],
)
def test_redact_masks_every_kind_of_secret(secret: str) -> None:
    for text in (
        secret,
        f"sent to {secret}.",
        json.dumps({"to": secret, "nested": [secret]}),
        f"Authorization: Bearer {secret}",
    ):
        masked = redact(text)
        assert secret not in masked, masked
    core = secret.split("@")[0].split("//")[-1]
    assert core not in redact(f"x {secret} y") or len(core) < 6


def test_redact_masks_bearer_values_whatever_their_shape_and_signed_links() -> None:
    assert "s3cr3t-token" not in redact('{"headers": {"Authorization": "Bearer s3cr3t-token"}}')
    assert "s3cr3t-token" not in redact('"authorization": "s3cr3t-token"')
    assert "AbCdEfGhIjKlMnOpQrSt" not in redact("GET /a/AbCdEfGhIjKlMnOpQrSt.sig -> 200")
    # what is not secret stays readable
    assert redact("incident INC-20261122-001 acknowledged by admin") == (
        "incident INC-20261122-001 acknowledged by admin"
    )


def test_the_engines_logger_masks_what_it_is_given() -> None:
    handler = logger.registered_handler
    stream = io.StringIO()
    previous = handler.setStream(stream)  # type: ignore[attr-defined]
    level = logger.log_level
    logger.setLevel(logging.INFO)
    try:
        logger.info(
            "paged alice@example.com",
            extra={"phone": "+14155550123", "key": "0123456789abcdef0123456789abcdef"},
        )
        try:
            raise ValueError("token iet_AbCdEf0123456789abcdef leaked")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.setLevel(level)
        handler.setStream(previous)  # type: ignore[attr-defined]
    out = stream.getvalue()
    assert "paged a***@example.com" in out and '"exception"' in out
    for secret in ("alice@example.com", "+14155550123", "0123456789abcdef0123456789abcdef", "iet_AbCd"):
        assert secret not in out
