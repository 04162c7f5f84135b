"""``POST /integrations/alertmanager``: Alertmanager's webhook (version 4), one incident per alert
fingerprint. The service is the one whose integration key the authorizer accepted; the answer is
2xx only once every alert of the batch is stored, so Alertmanager retries anything less."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import Response, Router

from incident_engine.adapters.sources.alertmanager import parse_webhook
from incident_engine.api.context import base_url
from incident_engine.domain.alerts import Rejected
from incident_engine.domain.errors import Conflict, InvalidInput
from incident_engine.usecases.alert_incidents import service_config
from incident_engine.wiring import services

router = Router()
PATH = "/integrations/alertmanager"


@router.post(PATH, tags=["alerts in"], summary="Alertmanager webhook receiver (Bearer <integration key>)")
def receive() -> Response[dict[str, Any]]:
    context = (router.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    service_id = context.get("service_id") if context.get("role") == "integration" else None
    if not service_id:
        # An admin token names no service: the key decides which service the alerts are about.
        return Response(
            status_code=403,
            content_type="application/json",
            body={
                "error": "forbidden",
                "message": "send a service's integration key as the Bearer token, not an admin token",
            },
        )
    parsed = parse_webhook(router.current_event.decoded_body)
    if isinstance(parsed, Rejected):
        return Response(
            status_code=422,
            content_type="application/json",
            body={
                "error": "validation_error",
                "field": parsed.field,
                "message": f"{parsed.field}: {parsed.message}",
                "fields": [{"field": e.field, "message": e.message} for e in parsed.errors],
            },
        )
    wired = services()
    service = wired.service_catalog().service_or_none(service_id)
    if service is None or not service.enabled:
        raise InvalidInput("Authorization", "the integration key's service is disabled")
    ingest = wired.alert_ingest(base_url(router))  # type: ignore[arg-type]
    # One by one, each its own conditional write. Alertmanager retries a 5xx, not a 4xx: a lost
    # race answers 503 so the whole batch comes again (a repeat only counts again, never duplicates).
    try:
        results = [ingest.ingest_alert(alert, service_config(service)) for alert in parsed]
    except Conflict as exc:
        return Response(
            status_code=503,
            content_type="application/json",
            body={"error": "conflict", "message": exc.message},
            headers={"Retry-After": "1"},
        )
    return Response(
        status_code=200,
        content_type="application/json",
        body={
            "status": "success",
            "results": [
                {
                    "dedup_key": r.dedup_key,
                    "outcome": r.outcome.value,
                    "incident_id": r.incident.id if r.incident else None,
                    **({"detail": r.reason} if r.reason else {}),
                }
                for r in results
            ],
        },
    )
