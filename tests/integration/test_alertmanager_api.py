"""POST /integrations/alertmanager through the authorizer and the real handler on moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from local.runtime import authorize, invoke
from local.template import LocalStack
from tests.support import TOKEN, Api, load_event

ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
PATH = "/integrations/alertmanager"


@pytest.fixture
def service(api: Api) -> dict[str, Any]:
    return api.ok("POST", "/services", {"name": "checkout"}, expect=201)  # type: ignore[no-any-return]


def post(aws: LocalStack, api: Api, secret: str, body: Any, raw: str | None = None) -> tuple[int, Any]:
    """As API Gateway does it: the authorizer first, its context handed to the handler."""
    status, context = authorize(
        aws.function("AuthorizerFunction"), {"Authorization": f"Bearer {secret}"}, f"{ARN}/POST{PATH}"
    )
    if status:
        return status, None
    event = api.event("POST", PATH, body, raw_body=raw)
    event["requestContext"]["authorizer"] = context
    response = invoke(api.spec, event)
    return int(response["statusCode"]), json.loads(response["body"])


def incidents(api: Api) -> list[dict[str, Any]]:
    items = api.ok("GET", "/incidents")["items"]
    return [api.ok("GET", f"/incidents/{i['id']}") for i in items]


def test_one_incident_per_fingerprint_resolved_when_the_alert_clears(
    aws: LocalStack, api: Api, service: dict[str, Any]
) -> None:
    # Given Alertmanager's firing batch, sent with the service's integration key
    firing = load_event("alertmanager_webhook_firing.json")
    fingerprints = {a["fingerprint"] for a in firing["alerts"]}
    status, body = post(aws, api, service["integration_key"], firing)
    # Then it is stored in full before the 2xx: one incident per fingerprint, on the service
    assert status == 200 and [r["outcome"] for r in body["results"]] == ["opened"] * len(fingerprints)
    opened = incidents(api)
    assert {i["dedup_key"] for i in opened} == fingerprints
    assert all(i["service_id"] == service["id"] and i["severity"] == "P0" for i in opened)
    assert all(i["labels"]["alertname"] == "HighErrorRate" for i in opened)
    # When the same batch is sent again (Alertmanager's repeat interval), nothing new opens
    assert post(aws, api, service["integration_key"], firing)[0] == 200
    assert {i["alert_count"] for i in incidents(api)} == {2}
    # When the alerts resolve
    status, body = post(
        aws, api, service["integration_key"], load_event("alertmanager_webhook_resolved.json")
    )
    assert status == 200, body
    resolved = load_event("alertmanager_webhook_resolved.json")
    gone = {a["fingerprint"] for a in resolved["alerts"] if a["status"] == "resolved"}
    assert gone and gone < fingerprints  # one cleared, the other still firing
    by_status = {i["dedup_key"]: i["status"] for i in incidents(api)}
    assert {k for k, v in by_status.items() if v == "resolved"} == gone


def test_an_admin_token_is_told_to_use_an_integration_key(aws: LocalStack, api: Api) -> None:
    status, body = post(aws, api, TOKEN, load_event("alertmanager_webhook_firing.json"))
    assert status == 403 and "integration key" in body["message"], body
    assert api.ok("GET", "/incidents")["items"] == []


def test_an_unknown_key_is_refused_by_the_authorizer(aws: LocalStack, api: Api) -> None:
    assert post(aws, api, "0" * 32, load_event("alertmanager_webhook_firing.json"))[0] == 401


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("not json", "body"),
        ("[]", "body"),
        (json.dumps({**load_event("alertmanager_webhook_firing.json"), "alerts": "many"}), "alerts"),
        (json.dumps({**load_event("alertmanager_webhook_firing.json"), "status": 4}), "status"),
        (
            json.dumps(
                {
                    **load_event("alertmanager_webhook_firing.json"),
                    "alerts": [
                        {**load_event("alertmanager_webhook_firing.json")["alerts"][0], "status": "odd"}
                    ],
                }
            ),
            "alerts[0].status",
        ),
    ],
)
def test_malformed_batches_get_a_4xx_naming_the_field(
    aws: LocalStack, api: Api, service: dict[str, Any], raw: str, field: str
) -> None:
    status, body = post(aws, api, service["integration_key"], None, raw=raw)
    assert status == 422 and body["field"].startswith(field), body
    assert api.ok("GET", "/incidents")["items"] == []


def test_a_lost_race_answers_5xx_so_alertmanager_retries_the_batch(
    aws: LocalStack, api: Api, service: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a store where every alert keeps losing its race
    from incident_engine.domain.errors import Conflict
    from incident_engine.usecases.ingest import AlertIngest

    def racing(self: AlertIngest, alert: Any, service: Any = None) -> Any:
        raise Conflict("alerts with this dedup key keep racing; retry")

    monkeypatch.setattr(AlertIngest, "ingest_alert", racing)
    # When a batch arrives, then the answer is one Alertmanager retries (5xx, not 4xx)
    status, body = post(aws, api, service["integration_key"], load_event("alertmanager_webhook_firing.json"))
    assert status == 503 and "retry" in body["message"], body


def test_the_incident_shows_the_latest_alert_with_its_annotations(
    aws: LocalStack, api: Api, service: dict[str, Any]
) -> None:
    # Given a firing batch stored, and an incident opened by hand
    firing = load_event("alertmanager_webhook_firing.json")
    assert post(aws, api, service["integration_key"], firing)[0] == 200
    by_hand = api.ok("POST", "/incidents", {"title": "by hand", "severity": "P3"}, expect=201)
    # When each incident is read
    listed = api.ok("GET", "/incidents")["items"]
    shown = {i["id"]: api.ok("GET", f"/incidents/{i['id']}") for i in listed}
    # Then an alert's incident shows the alert as Alertmanager sent it, annotations included
    for alert in firing["alerts"]:
        [incident] = [i for i in shown.values() if i["dedup_key"] == alert["fingerprint"]]
        kept = incident["latest_alert"]
        assert kept["integration"] == "alertmanager" and kept["action"] == "trigger", kept
        assert kept["raw"]["alert"]["annotations"] == alert["annotations"]
        assert kept["raw"]["alert"]["labels"] == alert["labels"]
    # And one opened by hand has none; a list page carries none (it would be too large)
    assert shown[by_hand["id"]]["latest_alert"] is None
    assert all(i["latest_alert"] is None for i in listed)
