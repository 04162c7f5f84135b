"""The REST resolver: routers, OpenAPI, and the one place domain errors become HTTP answers."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query

from incident_engine.api import health as health_routes
from incident_engine.api.context import ANONYMOUS, Caller, caller_of
from incident_engine.api.rate_limit import RATE_LIMIT
from incident_engine.api.routes import LazyRouters
from incident_engine.api.security import add_security_headers, page_csp
from incident_engine.domain.access import INGEST, PUBLIC, allows, scope_of
from incident_engine.domain.errors import Conflict, InvalidInput, InvalidTransition, NotFound
from incident_engine.observability import logger

TITLE = "Incident Engine API"
VERSION = "0.1.0"

app = APIGatewayRestResolver(enable_validation=True)
# Each router is included by the first request whose path needs it (api/routes.py).
ROUTERS = LazyRouters(app)
DESCRIPTION = (
    "Incidents, escalation policies, timed escalation, people and on-call schedules. "
    "Every route needs `Authorization: Bearer <token>` (the deploy-time admin token, or an API token "
    "made with POST /tokens: scopes read, write, admin) but those whose security is empty: /health, "
    "the one-click links /a/{token} (the signed link is the credential) and /v2/enqueue (the body's "
    "routing_key is); /integrations/alertmanager takes a service's integration key as its bearer token. "
    'Every error, the gateway\'s included, is `{"error": <code>, "message": <text>, ...}` '
    "(schema Error), but on /v2/enqueue, which answers in PagerDuty's own shape."
)


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get(
    "/health",
    tags=["meta"],
    summary="Liveness; needs no token. deep=1 (admin token): queues, overdue timers, the reconciler",
    security=[],
    responses={
        200: {"description": "ok; with deep=1, the engine's state"},
        401: {"description": "deep=1 without a bearer token", "content": health_routes.ERROR_CONTENT},
        403: {"description": "deep=1 with another token", "content": health_routes.ERROR_CONTENT},
    },
)
def health(
    deep: Annotated[Literal["1"] | None, Query(description="1: the engine's own state (admin token)")] = None,
) -> Response[health_routes.HealthOut | health_routes.DeepHealthOut | health_routes.ErrorOut]:
    if deep is None:
        return Response(status_code=200, content_type="application/json", body=health_routes.HealthOut())
    return health_routes.deep_health(app)


def openapi_json() -> str:
    # Imported here, not at module level: Powertools' OpenAPI models cost ~60 ms of every cold
    # start, and only these two documentation routes need them.
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    from incident_engine.api.openapi import complete

    ROUTERS.include_all()
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
    # The page's own inline scripts, by hash, and nothing else may run.
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    csp = page_csp(scripts=scripts, inline_style_attributes=True)
    return Response(
        status_code=200, content_type="text/html", body=page, headers={"Content-Security-Policy": csp}
    )


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
# The routes that bound their bodies themselves (pagerduty.PATH, alertmanager.PATH; a unit test
# checks they agree): named here so that a request to another route imports neither parser.
PAGERDUTY_PATH = "/v2/enqueue"
ALERTMANAGER_PATH = "/integrations/alertmanager"
MAX_JSON_DEPTH = 32


def _body_problem(event: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """Refuse what no route takes, before any parser sees it: an oversized body, JSON nested
    deeper than any of our shapes (the parser would recurse), a body that is not an object."""
    body = event.get("body")
    if body is None or body == "":
        return None
    size = len(body.encode("utf-8", "surrogatepass")) if isinstance(body, str) else len(body)
    if event.get("resource") == PAGERDUTY_PATH:
        from incident_engine.adapters.sources import pagerduty as pd_source

        # PagerDuty's own limit, answered in PagerDuty's shape; its parser bounds depth itself.
        if size > pd_source.MAX_BODY_BYTES:
            return 413, {
                "status": "invalid event",
                "message": f"request bodies are limited to {pd_source.MAX_BODY_BYTES} bytes",
                "errors": [f"'body' is larger than {pd_source.MAX_BODY_BYTES} bytes"],
            }
        return None
    if event.get("resource") == ALERTMANAGER_PATH:
        from incident_engine.adapters.sources import alertmanager as am_source

        # An Alertmanager batch may be larger than our own bodies (its parser bounds depth).
        if size > am_source.MAX_BODY_BYTES:
            return 413, {
                "error": "payload_too_large",
                "message": f"Alertmanager batches are limited to {am_source.MAX_BODY_BYTES} bytes",
            }
        return None
    if event.get("isBase64Encoded"):
        return 415, {"error": "unsupported_media_type", "message": "send the body as JSON text"}
    if size > MAX_BODY_BYTES:
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


def _refusal(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    out = {"Content-Type": "application/json", **(headers or {})}
    return {
        "statusCode": status,
        "headers": out,
        "multiValueHeaders": {k: [v] for k, v in out.items()},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


def _access_problem(event: dict[str, Any]) -> tuple[Caller, dict[str, Any] | None]:
    """The route table again (the authorizer's policy said the same): a credential reaches only
    the routes its scopes do. Then the per-credential rate limit."""
    method, resource = str(event.get("httpMethod") or ""), str(event.get("resource") or "")
    if scope_of(method, resource) == PUBLIC:
        return ANONYMOUS, None
    who = caller_of(event)
    if who.kind == "anonymous":
        return who, _refusal(401, {"error": "unauthorized", "message": "send Authorization: Bearer <token>"})
    if not allows(who.scopes, method, resource):
        message = "this token may not call this route"
        if scope_of(method, resource) == INGEST:
            message = "send a service's integration key as the Bearer token, not an API or admin token"
        return who, _refusal(403, {"error": "forbidden", "message": message})
    wait = RATE_LIMIT.wait_for(who)
    if wait:
        message = f"this credential made too many requests this minute; retry in {wait} s"
        return who, _refusal(
            429, {"error": "too_many_requests", "message": message}, {"Retry-After": str(wait)}
        )
    return who, None


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Resolve one API Gateway event, and put the security headers on whatever answers it. Every
    body this API takes is JSON, whatever the client's Content-Type says (curl -d sends form
    encoding by default), so it is read as JSON."""
    return add_security_headers(_handle(event, context))


def _handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    _, refused_access = _access_problem(event)
    if refused_access is not None:
        return refused_access
    refused = _body_problem(event)
    if refused is not None:
        status, payload = refused
        return _refusal(status, payload)
    headers = event.get("headers") or {}
    for name in [k for k in headers if k.lower() == "content-type"]:
        del headers[name]
    headers["Content-Type"] = "application/json"
    event["headers"] = headers
    if event.get("multiValueHeaders"):
        event["multiValueHeaders"] = {
            k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"
        } | {"Content-Type": ["application/json"]}
    ROUTERS.include_for(str(event.get("path") or ""))
    result: dict[str, Any] = app.resolve(event, context)
    return result


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response[dict[str, Any]]:
    # Nothing a client sends should land here; if it does, it is our bug, logged with the request id.
    logger.exception("unhandled error")
    return _json(500, {"error": "internal_error", "message": "unexpected error; it has been logged"})
