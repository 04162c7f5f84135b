"""Alertmanager's webhook (``version: "4"``) to one ``Alert`` per alert fingerprint.

Alertmanager groups alerts and resends the whole group on every change, so the group is not the
unit: each alert's ``fingerprint`` (a hash of its label set) is its dedup key, ``firing`` triggers
and ``resolved`` resolves. Labels are kept as labels, annotations under
``custom_details.annotations``, severity comes from the ``severity`` label through the table in
``domain/alerts.py``.

A batch is all or nothing: one malformed alert rejects it, naming ``alerts[i].<field>``, since
Alertmanager does not retry a 4xx and a partial success could not say which alerts were kept.
Set the receiver's ``max_alerts`` at or below ``MAX_ALERTS``.
"""

from __future__ import annotations

import hashlib
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
    MAX_SOURCE,
    MAX_SUMMARY,
    MAX_URL,
    Alert,
    AlertAction,
    Integration,
    Rejected,
    clean_line,
    severity_from_label,
)

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_ALERTS = 1000
MAX_GROUP_KEY = 4096
MAX_FINGERPRINT = 64
STATUSES = {"firing": AlertAction.TRIGGER, "resolved": AlertAction.RESOLVE}
# Alertmanager writes Go's zero time as the end of an alert that is still firing.
_ZERO_TIME = "0001-01-01T00:00:00Z"


def parse_webhook(body: str | bytes | None) -> tuple[Alert, ...] | Rejected:
    """The request body Alertmanager posts, to its alerts in order."""
    try:
        return _webhook(decode_body(body, MAX_BODY_BYTES))
    except Invalid as bad:
        return bad.rejected()


def parse_webhook_payload(payload: object) -> tuple[Alert, ...] | Rejected:
    """The same, from JSON already decoded."""
    try:
        return _webhook(payload)
    except Invalid as bad:
        return bad.rejected()


def _webhook(payload: object) -> tuple[Alert, ...]:
    message = Obj(payload, "")
    if message.string("version", 16, required=True) != "4":
        raise Invalid("version", 'must be "4" (the Alertmanager webhook format this endpoint reads)')
    if message.string("status", 16, required=True) not in STATUSES:
        raise Invalid("status", "must be firing or resolved")
    group: dict[str, Any] = {
        "receiver": clean_line(message.string("receiver", 1024) or "", 1024),
        "group_key": message.string("groupKey", MAX_GROUP_KEY),
        "group_labels": message.mapping("groupLabels"),
        "external_url": message.string("externalURL", MAX_URL),
    }
    truncated = message.number("truncatedAlerts")
    if truncated is not None and 0 < truncated < 1e9:
        # Alertmanager left alerts out (the receiver's max_alerts); they come in a later batch.
        group["truncated_alerts"] = int(truncated)
    message.mapping("commonLabels")
    message.mapping("commonAnnotations", prose=True)
    envelope = {k: message.raw(k) for k in ("version", "receiver", "groupKey", "externalURL")}
    alerts = message.array("alerts", MAX_ALERTS, required=True)
    return tuple(_alert(Obj(item, f"alerts[{i}]"), group, envelope) for i, item in enumerate(alerts))


def _alert(alert: Obj, group: dict[str, Any], envelope: dict[str, Any]) -> Alert:
    status = alert.string("status", 16, required=True)
    if status not in STATUSES:
        raise Invalid(alert.at("status"), "must be firing or resolved")
    labels = alert.mapping("labels", required=True)
    annotations = alert.mapping("annotations", prose=True)
    starts_at = alert.timestamp("startsAt")
    ends_at = None if alert.raw("endsAt") == _ZERO_TIME else alert.timestamp("endsAt")
    generator_url = alert.string("generatorURL", MAX_URL)
    fingerprint = alert.identity("fingerprint", MAX_FINGERPRINT) or _fingerprint(labels)
    summary = (
        annotations.get("summary")
        or annotations.get("title")
        or labels.get("alertname")
        or f"Alertmanager alert {fingerprint}"
    )
    description = annotations.get("description") or annotations.get("message")
    severity_word = labels.get("severity")
    external_url = group["external_url"]
    return Alert(
        integration=Integration.ALERTMANAGER,
        action=STATUSES[status],
        dedup_key=fingerprint,
        summary=clean_line(summary, MAX_SUMMARY),
        source=clean_line(labels.get("instance") or labels.get("job") or "alertmanager", MAX_SOURCE),
        severity=severity_from_label(severity_word),
        source_severity=severity_word,
        service=labels.get("service") or None,
        team=labels.get("team") or None,
        # Annotations are prose: their line breaks survive (labels were cleaned to one line).
        description=description or None,
        labels=labels,
        custom_details=bounded_details(
            {
                "annotations": annotations,
                "fingerprint": fingerprint,
                "starts_at": alert.raw("startsAt") if starts_at else None,
                "ends_at": alert.raw("endsAt") if ends_at else None,
                "generator_url": generator_url,
                **group,
            },
            alert.at("annotations"),
        ),
        links=links(
            link(annotations.get("runbook_url"), "Runbook"),
            link(annotations.get("dashboard_url"), "Dashboard"),
            link(generator_url, "Source"),
            link(external_url, "Alertmanager"),
        ),
        timestamp=ends_at if status == "resolved" and ends_at else starts_at,
        raw=bounded_raw({**envelope, "alert": alert.data}),
    )


def _fingerprint(labels: dict[str, str]) -> str:
    """Alertmanagers before 0.19 sent no fingerprint: derive a stable one from the label set."""
    canonical = "\xff".join(f"{k}\xfe{v}" for k, v in sorted(labels.items()))
    return "labels-" + hashlib.sha256(canonical.encode("utf-8", "replace")).hexdigest()[:16]
