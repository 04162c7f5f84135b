"""``POST /v2/enqueue``: PagerDuty's Events API v2, so a tool written for PagerDuty works by changing
only its base URL. Public at API Gateway: the body's ``routing_key`` is the credential, and every
answer, refusals included, is in PagerDuty's own shape."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Response, Router

from incident_engine.adapters.sources import pagerduty as pd
from incident_engine.api.context import Caller, base_url
from incident_engine.api.rate_limit import RATE_LIMIT
from incident_engine.domain.access import INGEST
from incident_engine.domain.alerts import Rejected
from incident_engine.domain.errors import Conflict
from incident_engine.usecases.alert_incidents import service_for_key
from incident_engine.wiring import services

router = Router()
PATH = "/v2/enqueue"


def _answer(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


@router.post(PATH, tags=["alerts in"], summary="PagerDuty Events API v2 (the routing_key is the credential)")
def enqueue() -> Response[dict[str, Any]]:
    parsed = pd.parse_enqueue(router.current_event.decoded_body)
    if isinstance(parsed, Rejected):
        return _answer(*pd.invalid(parsed))
    wired = services()
    keyed = service_for_key(wired.service_catalog(), parsed.routing_key)
    if keyed is None:
        # PagerDuty answers an unknown routing key as an invalid event, not as 401/403.
        return _answer(*pd.invalid(Rejected.of("routing_key", "is not a valid integration key")))
    service, key_id = keyed
    # The routing key is this route's credential, so it has the same per-credential limit as a
    # bearer key (one counter: the key's Alertmanager calls count too).
    wait = RATE_LIMIT.wait_for(
        Caller("integration", service.name, key_id, frozenset({INGEST}), None, service.id)
    )
    if wait:
        message = f"this routing key made too many requests this minute; retry in {wait} s"
        return _answer(429, {"status": "throttle event", "message": message}, {"Retry-After": str(wait)})
    try:
        result = wired.alert_ingest(base_url(router)).ingest_alert(parsed.alert, service)  # type: ignore[arg-type]
    except Conflict as exc:
        # PagerDuty clients retry a 429 with back-off; nothing was lost, nothing half-written.
        return _answer(429, {"status": "throttle event", "message": exc.message})
    status, body = pd.accepted(result.dedup_key)
    answer: dict[str, Any] = {**body, "outcome": result.outcome.value}
    if result.reason:
        answer["detail"] = result.reason  # e.g. a resolve for a key no incident holds: a no-op
    if result.incident is not None:
        answer["incident_id"] = result.incident.id
    return _answer(status, answer)
