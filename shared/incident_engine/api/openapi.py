"""The served OpenAPI document, completed: every answer an operation really gives, in the one error
shape, and the credential each route really takes.

Powertools generates the operations, their parameters and bodies, and their success answer from
the routes; it knows nothing of what happens around the handler (the authorizer's 401 and 403,
API Gateway's throttling and size limits, the body checks in api/app.py) nor of the error handlers.
`complete` adds those from the rules below, so a new route is described by the same rules without
a word of its own. Only the PagerDuty route keeps another error shape: PagerDuty's, for its clients.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}

# The one error shape of every answer this API gives, the gateway's included (template.yaml's
# GatewayResponses and local/gateway.py write the same), PagerDuty's route aside.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {
            "type": "string",
            "description": "A stable machine-readable code: validation_error, invalid_input, not_found, "
            "invalid_transition, conflict, unauthorized, forbidden, payload_too_large, "
            "too_many_requests, ...",
        },
        "message": {"type": "string", "description": "What went wrong, for a person."},
        "field": {
            "type": ["string", "null"],
            "description": "The field at fault (validation_error, invalid_input).",
        },
        "fields": {
            "type": "array",
            "description": "Every field at fault (validation_error).",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
    # A 409 adds what the caller needs to decide: status and allowed actions, references, ids.
    "additionalProperties": True,
}

PAGERDUTY_ACCEPTED: dict[str, Any] = {
    "title": "PagerDutyAccepted",
    "type": "object",
    "required": ["status", "message", "dedup_key"],
    "properties": {
        "status": {"type": "string", "const": "success"},
        "message": {"type": "string"},
        "dedup_key": {"type": "string"},
        "outcome": {"type": "string"},
        "detail": {"type": "string"},
        "incident_id": {"type": "string"},
    },
}
PAGERDUTY_ERROR: dict[str, Any] = {
    "title": "PagerDutyError",
    "description": "PagerDuty's own error shape, kept so that PagerDuty clients understand it.",
    "type": "object",
    "required": ["status", "message"],
    "properties": {
        "status": {"type": "string", "description": '"invalid event" or "throttle event"'},
        "message": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "string"}},
    },
}
_PD_COMMON: dict[str, Any] = {
    "routing_key": {"type": "string", "minLength": 32, "maxLength": 32},
    "dedup_key": {"type": "string", "minLength": 1, "maxLength": 255},
    "client": {"type": "string"},
    "client_url": {"type": "string"},
    "links": {
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "object",
            "required": ["href"],
            "properties": {"href": {"type": "string", "minLength": 1}, "text": {"type": "string"}},
        },
    },
    "images": {
        "type": "array",
        "maxItems": 100,
        "items": {
            "type": "object",
            "required": ["src"],
            "properties": {
                "src": {"type": "string", "minLength": 1},
                "href": {"type": "string"},
                "alt": {"type": "string"},
            },
        },
    },
}
PAGERDUTY_EVENT: dict[str, Any] = {
    "title": "PagerDutyEvent",
    "description": "An Events API v2 event. `routing_key` is a service's integration key: the credential. "
    "A trigger carries a payload; an acknowledge or resolve, the dedup_key of the alert it ends.",
    "oneOf": [
        {
            "type": "object",
            "required": ["routing_key", "event_action", "payload"],
            "properties": {
                **_PD_COMMON,
                "event_action": {"type": "string", "const": "trigger"},
                "payload": {
                    "type": "object",
                    "required": ["summary", "source", "severity"],
                    "properties": {
                        "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                        "source": {"type": "string", "minLength": 1, "maxLength": 255},
                        "severity": {"type": "string", "enum": ["critical", "error", "warning", "info"]},
                        "timestamp": {"type": "string", "format": "date-time"},
                        "component": {"type": "string"},
                        "group": {"type": "string"},
                        "class": {"type": "string"},
                        "custom_details": {"type": "object"},
                    },
                },
            },
        },
        {
            "type": "object",
            "required": ["routing_key", "event_action", "dedup_key"],
            "properties": {
                **_PD_COMMON,
                "event_action": {"type": "string", "enum": ["acknowledge", "resolve"]},
            },
        },
    ],
}
ALERTMANAGER_WEBHOOK: dict[str, Any] = {
    "title": "AlertmanagerWebhook",
    "description": "Alertmanager's webhook payload, version 4.",
    "type": "object",
    "required": ["version", "status", "alerts"],
    "properties": {
        "version": {"type": "string", "const": "4"},
        "status": {"type": "string", "enum": ["firing", "resolved"]},
        "receiver": {"type": "string"},
        "groupKey": {"type": "string"},
        "alerts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["status", "labels"],
                "properties": {
                    "status": {"type": "string", "enum": ["firing", "resolved"]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                    "startsAt": {"type": "string", "format": "date-time"},
                    "endsAt": {"type": "string", "format": "date-time"},
                    "generatorURL": {"type": "string"},
                    "fingerprint": {"type": "string"},
                },
            },
        },
    },
}


def _nullable_optionals(schema: dict[str, Any]) -> dict[str, Any]:
    """The alert parsers read JSON null as absent for every optional field: say so in the schema."""
    schema = copy.deepcopy(schema)
    for option in schema.get("oneOf", [schema]):
        _nullable_in(option)
    return schema


def _nullable_in(obj: dict[str, Any]) -> None:
    required = set(obj.get("required", []))
    for name, prop in obj.get("properties", {}).items():
        if name not in required and "type" in prop and "const" not in prop:
            kind = prop["type"]
            kinds = kind if isinstance(kind, list) else [kind]
            if "null" not in kinds:  # a property shared by two options is met twice
                prop["type"] = [*kinds, "null"]
                if "enum" in prop:
                    prop["enum"] = [*prop["enum"], None]
        if prop.get("type") in ("object", ["object", "null"]):
            _nullable_in(prop)
        items = prop.get("items")
        if isinstance(items, dict):
            _nullable_in(items)


PAGERDUTY_EVENT = _nullable_optionals(PAGERDUTY_EVENT)
ALERTMANAGER_WEBHOOK = _nullable_optionals(ALERTMANAGER_WEBHOOK)

ALERTMANAGER_RESULT: dict[str, Any] = {
    "title": "AlertmanagerResult",
    "type": "object",
    "required": ["status", "results"],
    "properties": {"status": {"type": "string"}, "results": {"type": "array", "items": {"type": "object"}}},
}
HTML = {"text/html": {"schema": {"type": "string"}}}
# Success answers that are not JSON objects described by the route's return type.
CONTENT = {
    ("get", "/schedules/{schedule_id}/calendar.ics"): {"text/calendar": {"schema": {"type": "string"}}},
    ("get", "/openapi.json"): {"application/json": {"schema": {"type": "object"}}},
}

# Routes API Gateway lets through without the bearer authorizer (`Authorizer: NONE` in
# template.yaml; a test holds the two lists equal), and what stands in for it.
PUBLIC = {
    ("get", "/health"): "none: liveness",
    ("get", "/a/{token}"): "the signed link in the path: one action on one incident, 24 hours",
    ("post", "/a/{token}"): "the signed link in the path: one action on one incident, 24 hours",
    ("post", "/v2/enqueue"): "the integration key in the body's routing_key",
}
# Routes whose bearer token is a service's integration key, not an API token.
INTEGRATION_KEY_ROUTES = {("post", "/integrations/alertmanager")}
LINK_ROUTES = {("get", "/a/{token}"), ("post", "/a/{token}")}
# Success answers other than Powertools' default 200, and 200s that mean something of their own.
SUCCESS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/incidents"): {201: "Opened", 200: "dedup_key matched an active incident: that incident"},
    ("post", "/incidents/{incident_id}/notes"): {201: "Appended to the timeline"},
    ("post", "/policies"): {201: "Created"},
    ("post", "/users"): {201: "Created"},
    ("post", "/teams"): {201: "Created"},
    ("post", "/schedules"): {201: "Created"},
    ("post", "/schedules/{schedule_id}/overrides"): {201: "Created"},
    ("post", "/services"): {201: "Created, with its integration key (shown only here)"},
    ("post", "/services/{service_id}/integration-keys"): {201: "Created (the key is shown only here)"},
    ("post", "/services/{service_id}/maintenance-windows"): {201: "Created"},
    ("post", "/webhooks"): {201: "Created, with its signing secret (shown only here)"},
    ("post", "/routing-rules"): {201: "Created"},
    ("post", "/tokens"): {201: "Created (the token is shown only here)"},
    ("post", "/heartbeats"): {201: "Created, with its ping_url"},
    ("post", "/v2/enqueue"): {202: "Event processed"},
}
# Answers the shape rules miss: reads of a disabled schedule's views are a 409; the rule tester stores
# nothing, so it has no conflict to report.
MORE: dict[tuple[str, str], set[int]] = {
    ("get", "/schedules/{schedule_id}/oncall"): {409},
    ("get", "/schedules/{schedule_id}/shifts"): {409},
    ("get", "/schedules/{schedule_id}/calendar.ics"): {409},
    ("get", "/schedules/{schedule_id}/overrides"): {409},
}
FEWER: dict[tuple[str, str], set[int]] = {("post", "/routing-rules/test"): {409}}

DESCRIPTIONS = {
    400: "The request could not be read: a body that is not UTF-8, a malformed request",
    401: "No bearer token, or one this API does not know",
    403: "The token may not call this route",
    404: "No such resource (or one this token may not see)",
    409: "Not allowed in the resource's current state, a stale version, or a race to retry",
    413: "The body is larger than this route takes (256 KB)",
    422: "The request is well formed but invalid: every field at fault is named",
    429: "Throttled: retry after the Retry-After header's seconds",
    503: "A concurrent write won a race; the whole batch may be sent again (Alertmanager retries 5xx)",
}


def _error(status: int, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": schema or ERROR_REF}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
    return answer


def _answers(method: str, path: str, operation: dict[str, Any]) -> dict[int | str, Any]:
    """The error answers of one operation, by its shape."""
    key = (method, path)
    public = key in PUBLIC
    has_input = bool(operation.get("parameters")) or "requestBody" in operation
    statuses: set[int] = {429}  # API Gateway's throttling comes before any route
    if not public:
        statuses |= {401, 403}
    if "{" in path:
        statuses.add(404)
    if has_input:
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413}  # the gateway refuses a body that is not UTF-8; app.py, one too large
    if method in ("post", "put", "delete"):
        statuses.add(409)
    statuses = (statuses | MORE.get(key, set())) - FEWER.get(key, set())
    return {status: _error(status) for status in sorted(statuses)}


def _success(method: str, path: str, operation: dict[str, Any]) -> dict[int | str, Any]:
    generated = operation.get("responses", {})
    ok = copy.deepcopy(generated.get(200) or generated.get("200") or {"description": "OK"})
    if (method, path) in CONTENT:
        ok["content"] = copy.deepcopy(CONTENT[(method, path)])
    declared = SUCCESS.get((method, path))
    if declared is None:
        return {200: ok}
    out: dict[int | str, Any] = {}
    for status, text in declared.items():
        out[status] = {**copy.deepcopy(ok), "description": text}
    return out


def _pagerduty(operation: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PagerDutyEvent"}}},
    }
    pd_error = {"$ref": "#/components/schemas/PagerDutyError"}
    operation["responses"] = {
        202: {
            "description": "Event processed",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PagerDutyAccepted"}}},
        },
        400: {
            "description": "Invalid event (an unknown routing_key too), in PagerDuty's shape; a body "
            "that is not UTF-8 is refused by the gateway first, in the API's",
            "content": {"application/json": {"schema": {"anyOf": [pd_error, ERROR_REF]}}},
        },
        413: {
            "description": "The body is larger than 512 KB, in PagerDuty's shape",
            "content": {"application/json": {"schema": pd_error}},
        },
        429: {
            "description": "Throttled, in PagerDuty's shape when this API throttles; retry with back-off",
            "content": {"application/json": {"schema": {"anyOf": [pd_error, ERROR_REF]}}},
        },
    }


def _alertmanager(operation: dict[str, Any]) -> None:
    operation["requestBody"] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertmanagerWebhook"}}},
    }
    answers = _answers("post", "/integrations/alertmanager", operation)
    answers[503] = _error(503)
    operation["responses"] = {
        200: {
            "description": "Every alert of the batch is stored",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlertmanagerResult"}}},
        },
        **answers,
    }


def _drop_null_body(operation: dict[str, Any]) -> None:
    """An optional body is `X | None` to Powertools, which documents JSON `null` as a valid body; a
    body is either absent or an object (api/app.py refuses the rest), so the document says so."""
    body = operation.get("requestBody")
    if not body:
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        options = schema.get("anyOf")
        if isinstance(options, list) and any(o.get("type") == "null" for o in options):
            kept = [o for o in options if o.get("type") != "null"]
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            media["schema"] = {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
            body["required"] = False


def complete(doc: dict[str, Any]) -> dict[str, Any]:
    """The document Powertools generated, with every real answer and the right credentials."""
    doc = copy.deepcopy(doc)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)  # Powertools' shape, which this API never answers
    schemas.pop("ValidationError", None)
    schemas.update(
        Error=ERROR_SCHEMA,
        PagerDutyEvent=PAGERDUTY_EVENT,
        PagerDutyAccepted=PAGERDUTY_ACCEPTED,
        PagerDutyError=PAGERDUTY_ERROR,
        AlertmanagerWebhook=ALERTMANAGER_WEBHOOK,
        AlertmanagerResult=ALERTMANAGER_RESULT,
    )
    schemes = components.setdefault("securitySchemes", {})
    schemes["integrationKey"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A service's integration key (POST /services answers it once).",
    }
    paths = doc.setdefault("paths", {})
    paths["/docs"] = {
        "get": {
            "tags": ["meta"],
            "summary": "Swagger UI for this API",
            "operationId": "swagger_ui_docs_get",
            "responses": {200: {"description": "The Swagger UI page", "content": HTML}},
        }
    }
    for path, operations in paths.items():
        for method, operation in operations.items():
            key = (method, path)
            if key in PUBLIC:
                operation["security"] = []
                operation["description"] = (
                    (operation.get("description") or "") + f"\n\nNo bearer token: {PUBLIC[key]}."
                ).strip()
            elif key in INTEGRATION_KEY_ROUTES:
                operation["security"] = [{"integrationKey": []}]
            if key == ("post", "/v2/enqueue"):
                _pagerduty(operation)
                continue
            if key == ("post", "/integrations/alertmanager"):
                _alertmanager(operation)
                continue
            _drop_null_body(operation)
            answers: dict[int | str, Any] = {
                **_success(method, path, operation),
                **_answers(method, path, operation),
            }
            if key in LINK_ROUTES:
                # A person's browser follows these from a page: every answer of the handler is a page.
                answers = {k: v for k, v in answers.items() if k not in (404, 422)}
                answers[200]["content"] = HTML
                answers[400] = {"description": "The link was changed or cut short", "content": HTML}
                answers[409] = {"description": "Nothing to do in the incident's state", "content": HTML}
                answers[410] = {"description": "The link has expired", "content": HTML}
            operation["responses"] = dict(sorted(answers.items(), key=lambda kv: int(kv[0])))
    return doc
