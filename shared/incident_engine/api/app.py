"""The REST resolver: routers, OpenAPI, and the one place domain errors become HTTP answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from incident_engine.api import (
    alertmanager,
    incidents,
    links,
    maintenance,
    pagerduty,
    people,
    policies,
    routing_rules,
    schedules,
    services,
    webhooks,
)
from incident_engine.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from incident_engine.observability import logger

TITLE = "Incident Engine API"
VERSION = "0.1.0"

app = APIGatewayRestResolver(enable_validation=True)
app.include_router(incidents.router)
app.include_router(policies.router)
app.include_router(people.router)
app.include_router(schedules.router)
app.include_router(services.router)
app.include_router(webhooks.router)
app.include_router(links.router)
app.include_router(routing_rules.router)
app.include_router(pagerduty.router)
app.include_router(alertmanager.router)
app.include_router(maintenance.router)
DESCRIPTION = (
    "Incidents, escalation policies, timed escalation, people and on-call schedules. "
    "Every route needs `Authorization: Bearer <token>` but those whose security is empty: /health, "
    "the one-click links /a/{token} (the signed link is the credential) and /v2/enqueue (the body's "
    "routing_key is); /integrations/alertmanager takes a service's integration key as its bearer token. "
    'Every error, the gateway\'s included, is `{"error": <code>, "message": <text>, ...}` '
    "(schema Error), but on /v2/enqueue, which answers in PagerDuty's own shape."
)


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/health", tags=["meta"], summary="Liveness; needs no token", security=[])
def health() -> dict[str, str]:
    return {"status": "ok"}


def openapi_json() -> str:
    # Imported here, not at module level: Powertools' OpenAPI models cost ~60 ms of every cold
    # start, and only these two documentation routes need them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from incident_engine.api.openapi import complete

    generated = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={"bearer": HTTPBearer()},
        security=[{"bearer": []}],
    )
    return json.dumps(complete(json.loads(generated)), separators=(",", ":"))


@app.get("/openapi.json", tags=["meta"], summary="This API's OpenAPI document")
def openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_json())


@app.get("/docs", tags=["meta"], summary="Swagger UI for this API", include_in_schema=False)
def swagger_ui() -> Response[str]:
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    assets = Path(generate_swagger_html.__code__.co_filename).parent
    page = generate_swagger_html(
        openapi_json().replace("</", "<\\/"),  # keep "</script>" inside the spec from closing the tag
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=page)


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[dict[str, Any]]:
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc) or "body"
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "json_invalid":
            where, message = "body", "request body is not valid JSON"
        fields.append({"field": where, "message": message})
    first = fields[0] if fields else {"field": "body", "message": "invalid request"}
    return _json(
        422,
        {
            "error": "validation_error",
            "message": f"{first['field']}: {first['message']}",
            "field": first["field"],
            "fields": fields,
        },
    )


@app.exception_handler(InvalidInput)
def _invalid_input(exc: InvalidInput) -> Response[dict[str, Any]]:
    return _json(422, {"error": exc.code, "message": exc.message, "field": exc.field})


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> Response[dict[str, Any]]:
    return _json(404, {"error": exc.code, "message": exc.message})


@app.exception_handler(InvalidTransition)
def _invalid_transition(exc: InvalidTransition) -> Response[dict[str, Any]]:
    return _json(409, {"error": exc.code, "message": exc.message, **exc.details})


@app.exception_handler(Conflict)
def _conflict(exc: Conflict) -> Response[dict[str, Any]]:
    return _json(409, {"error": exc.code, "message": exc.message, **exc.details})


@app.not_found
def _no_route(exc: NotFoundError) -> Response[dict[str, Any]]:
    method, path = app.current_event.http_method, app.current_event.path
    allowed = sorted(
        {route.method for route in app._dynamic_routes + app._static_routes if route.rule.match(path)}
        - {method}
    )
    if allowed:
        # The path exists with other methods: RFC 9110's 405, naming them.
        return Response(
            status_code=405,
            content_type="application/json",
            body={"error": "method_not_allowed", "message": f"{method} is not allowed on {path}"},
            headers={"Allow": ", ".join(allowed)},
        )
    return _json(404, {"error": "not_found", "message": f"no route for {method} {path}"})


MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32


def _body_problem(event: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """Refuse what no route takes, before any parser sees it: an oversized body, JSON nested
    deeper than any of our shapes (the parser would recurse), a body that is not an object."""
    body = event.get("body")
    if body is None or body == "":
        return None
    if event.get("resource") in (pagerduty.PATH, alertmanager.PATH):
        # Their parsers bound size (512 KB, 4 MB) and depth themselves; PagerDuty's answers in
        # PagerDuty's shape, and an Alertmanager batch may be larger than our own bodies.
        return None
    if event.get("isBase64Encoded"):
        return 415, {"error": "unsupported_media_type", "message": "send the body as JSON text"}
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        return 413, {
            "error": "payload_too_large",
            "message": f"request bodies are limited to {MAX_BODY_BYTES} bytes",
        }
    try:
        parsed = json.loads(body)
    except RecursionError:
        parsed = _TOO_DEEP
    except ValueError:
        return None  # not JSON at all: the validator names it
    if parsed is _TOO_DEEP or _depth(parsed) > MAX_JSON_DEPTH:
        return 422, {
            "error": "validation_error",
            "field": "body",
            "message": f"body: JSON is nested deeper than {MAX_JSON_DEPTH} levels",
        }
    if not isinstance(parsed, dict):
        return 422, {"error": "validation_error", "field": "body", "message": "body: must be a JSON object"}
    return None


_TOO_DEEP = object()


def _depth(value: Any) -> int:
    """Nesting depth, without recursion (the value came from outside)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, level + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, level + 1) for v in node)
    return deepest


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve one API Gateway event. Every body this API takes is JSON, whatever the client's
    Content-Type says (curl -d sends form encoding by default), so it is read as JSON."""
    refused = _body_problem(event)
    if refused is not None:
        status, payload = refused
        return {
            "statusCode": status,
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(payload),
            "isBase64Encoded": False,
        }
    headers = event.get("headers") or {}
    for name in [k for k in headers if k.lower() == "content-type"]:
        del headers[name]
    headers["Content-Type"] = "application/json"
    event["headers"] = headers
    if event.get("multiValueHeaders"):
        event["multiValueHeaders"] = {
            k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"
        } | {"Content-Type": ["application/json"]}
    return app.resolve(event, context)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
    # Nothing a client sends should land here; if it does, it is our bug, logged with the request id.
    logger.exception("unhandled error")
    return _json(500, {"error": "internal_error", "message": "unexpected error; it has been logged"})
