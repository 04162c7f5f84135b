"""PagerDuty Events API v2 (``POST /v2/enqueue``): the request, validated as PagerDuty does, and its answers.

A tool written for PagerDuty must work by changing only its base URL, so the limits (512 KB,
summary 1024 characters, dedup_key 255, a 32-character routing key) and both answer shapes are
PagerDuty's: ``202 {"status": "success", "message": "Event processed", "dedup_key": ...}`` and
``400 {"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from incident_engine.adapters.sources.reader import (
    Invalid,
    Obj,
    bounded_details,
    bounded_raw,
    decode_body,
    link,
    links,
)
from incident_engine.domain.alerts import (
    MAX_LABEL_VALUE,
    MAX_LINK_TEXT,
    MAX_LINKS,
    MAX_SOURCE,
    MAX_SUMMARY,
    MAX_URL,
    PAGERDUTY_SEVERITIES,
    Alert,
    AlertAction,
    FieldError,
    Image,
    Integration,
    Link,
    Rejected,
    clean_line,
)

MAX_BODY_BYTES = 512 * 1024
MAX_DEDUP_KEY = 255
ROUTING_KEY_LENGTH = 32
MAX_CONTEXT_ITEMS = 100  # links or images a request may carry; the alert keeps MAX_LINKS of each
ACTIONS = {
    "trigger": AlertAction.TRIGGER,
    "acknowledge": AlertAction.ACKNOWLEDGE,
    "resolve": AlertAction.RESOLVE,
}


@dataclass(frozen=True)
class PagerDutyEvent:
    routing_key: str  # the integration key: it names the service; never stored with the alert
    alert: Alert
    dedup_key_generated: bool  # a trigger without dedup_key got one, to be returned to the caller


def new_dedup_key() -> str:
    """What PagerDuty does for a trigger without a key: a fresh UUID."""
    return uuid.uuid4().hex


def parse_enqueue(
    body: str | bytes | None, make_dedup_key: Callable[[], str] = new_dedup_key
) -> PagerDutyEvent | Rejected:
    """One Events API v2 request body to an alert, or every reason it is invalid."""
    try:
        value = decode_body(body, MAX_BODY_BYTES)
        event = Obj(value, "")
    except Invalid as bad:
        return bad.rejected()
    errors: list[FieldError] = []

    def check(read: Callable[[], Any]) -> Any:
        try:
            return read()
        except Invalid as bad:
            errors.append(FieldError(bad.field, bad.message))
            return None

    routing_key = check(lambda: _routing_key(event))
    action = check(lambda: _action(event))
    dedup_key = check(lambda: event.identity("dedup_key", MAX_DEDUP_KEY))
    if action is not None and action is not AlertAction.TRIGGER and dedup_key is None:
        errors.append(FieldError("dedup_key", f"is required for event_action {action.value}"))
    # PagerDuty ignores the payload of acknowledge and resolve events; so do we.
    trigger = check(lambda: _trigger_fields(event)) if action is AlertAction.TRIGGER else None
    context = check(lambda: (_links(event), _images(event)))
    if errors:
        return Rejected(tuple(errors))
    assert routing_key is not None and action is not None and context is not None

    generated = dedup_key is None
    alert = Alert(
        integration=Integration.PAGERDUTY,
        action=action,
        dedup_key=make_dedup_key() if dedup_key is None else dedup_key,
        summary="",
        source="",
        links=context[0],
        images=context[1],
        raw=bounded_raw({k: v for k, v in event.data.items() if k != "routing_key"}),
    )
    if trigger is not None:
        client_link = trigger.pop("client_link")
        alert = replace(alert, **trigger, links=links(*alert.links, client_link))
    return PagerDutyEvent(routing_key=routing_key, alert=alert, dedup_key_generated=generated)


def accepted(dedup_key: str) -> tuple[int, dict[str, str]]:
    return 202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def invalid(rejected: Rejected) -> tuple[int, dict[str, Any]]:
    return 400, {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [f"'{e.field}' {e.message}" for e in rejected.errors],
    }


# --- fields ---------------------------------------------------------------------------------------


def _routing_key(event: Obj) -> str:
    key = event.identity("routing_key", 256, required=True)
    assert key is not None
    if len(key) != ROUTING_KEY_LENGTH:
        raise Invalid("routing_key", f"has the wrong length (should be {ROUTING_KEY_LENGTH} characters)")
    return key


def _action(event: Obj) -> AlertAction:
    word = event.string("event_action", 32, required=True)
    if word not in ACTIONS:
        raise Invalid("event_action", "must be one of trigger, acknowledge, resolve")
    return ACTIONS[word]


def _trigger_fields(event: Obj) -> dict[str, Any]:
    """What a trigger adds to the alert, all checked before any of it is used."""
    payload = event.child("payload", required=True)
    assert payload is not None
    summary = clean_line(payload.text("summary", MAX_SUMMARY), MAX_SUMMARY)
    source = clean_line(payload.text("source", MAX_SOURCE), MAX_SOURCE)
    for name, cleaned in (("summary", summary), ("source", source)):
        if not cleaned:  # nothing printable left once control characters are gone
            raise Invalid(payload.at(name), "is blank")
    severity = payload.string("severity", 32, required=True)
    if severity not in PAGERDUTY_SEVERITIES:
        raise Invalid("payload.severity", "must be one of critical, error, warning, info")
    labels = {
        name: clean_line(value, MAX_LABEL_VALUE)
        for name in ("component", "group", "class")
        if (value := payload.string(name, MAX_LABEL_VALUE))
    }
    details = payload.raw("custom_details")
    # Many PagerDuty clients send a plain string as custom_details; PagerDuty shows it as text.
    if isinstance(details, str):
        details = {"details": details}
    elif details is not None and not isinstance(details, dict):
        raise Invalid("payload.custom_details", "must be an object")
    client = event.string("client", MAX_LINK_TEXT)
    client_url = event.string("client_url", MAX_URL)
    return {
        "summary": summary,
        "source": source,
        "severity": PAGERDUTY_SEVERITIES[severity],
        "source_severity": severity,
        "labels": labels,
        "custom_details": bounded_details(details or {}, "payload.custom_details"),
        "timestamp": payload.timestamp("timestamp"),
        "client_link": link(client_url, client or "Client"),
    }


def _links(event: Obj) -> tuple[Link, ...]:
    found: list[Link | None] = []
    for i, item in enumerate(event.array("links", MAX_CONTEXT_ITEMS)):
        entry = Obj(item, f"links[{i}]")
        href = entry.text("href", MAX_URL)
        found.append(link(href, entry.string("text", 4096)))
    return links(*found)


def _images(event: Obj) -> tuple[Image, ...]:
    images: list[Image] = []
    for i, item in enumerate(event.array("images", MAX_CONTEXT_ITEMS)):
        entry = Obj(item, f"images[{i}]")
        src = link(entry.text("src", MAX_URL), None)
        href = link(entry.string("href", MAX_URL), None)
        alt = entry.string("alt", 4096)
        # PagerDuty shows only images served over HTTPS; an http one would be a mixed-content hole.
        if src is not None and src.href.lower().startswith("https://"):
            images.append(
                Image(src.href, href.href if href else None, clean_line(alt, MAX_LINK_TEXT) if alt else None)
            )
    return tuple(images[:MAX_LINKS])
