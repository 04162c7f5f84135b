"""Webhooks: registered receivers of pages, the signed JSON they get, and Slack's message shape.

Pure: the sender function does the HTTP; this decides what is sent and how it is signed. The
signature is ``X-Incident-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``,
so a receiver can check both who sent it and that it is fresh.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SIGNATURE_HEADER = "X-Incident-Signature"
EVENT_OF_KIND = {
    "page": "incident.page",
    "resolution": "incident.resolved",
    "cancellation": "incident.cancelled",
}


@dataclass(frozen=True)
class Webhook:
    id: str
    name: str
    url: str
    kind: str = "generic"  # "generic" (signed JSON) | "slack" (an incoming-webhook message)
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (and what our tests do): same HMAC, and a recent timestamp."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass(frozen=True)
class Delivery:
    """One notification as the sender received it from the topic."""

    incident_id: str
    dedup_id: str
    kind: str  # page | resolution | cancellation
    level: int | None
    severity: str
    subject: str
    message: str
    link: str | None
    acknowledge_url: str | None = None
    resolve_url: str | None = None
    channel: str = "webhook"  # "slack" for a person's own Slack contact method


def generic_body(delivery: Delivery, webhook_id: str) -> dict[str, Any]:
    return {
        "event": EVENT_OF_KIND.get(delivery.kind, f"incident.{delivery.kind}"),
        "incident": {"id": delivery.incident_id, "severity": delivery.severity, "summary": delivery.subject},
        "level": delivery.level,
        "recipient": webhook_id,
        "dedup_id": delivery.dedup_id,
        "link": delivery.link,
        "actions": {"acknowledge": delivery.acknowledge_url, "resolve": delivery.resolve_url},
        "message": delivery.message,
    }


def slack_body(delivery: Delivery) -> dict[str, Any]:
    """A readable Slack message: severity, title, link, and how to acknowledge."""
    lines = [f"*{_slack_escape(delivery.subject)}*"]
    if delivery.link:
        lines.append(f"<{delivery.link}|Open {delivery.incident_id}>")
    if delivery.kind == "page":
        if delivery.acknowledge_url:
            lines.append(f"<{delivery.acknowledge_url}|Acknowledge> to stop escalation")
        else:
            lines.append(f"Acknowledge: POST /incidents/{delivery.incident_id}/acknowledge")
    text = "\n".join(lines)
    return {"text": text, "unfurl_links": False}


def _slack_escape(text: str) -> str:
    # Slack reads &, < and > as markup (links, mentions): a client's title must not be.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_contact_url(recipient: str) -> bool:
    """A person's own webhook or Slack contact method is its URL; a registered webhook, its id."""
    return recipient.startswith(("https://", "http://"))


def render(delivery: Delivery, webhook: Webhook) -> bytes:
    body = slack_body(delivery) if webhook.kind == "slack" else generic_body(delivery, webhook.id)
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def delivery_from_envelope(body: str, base_url: str | None) -> tuple[Delivery, str]:
    """The SNS envelope an SQS subscription receives -> (what to deliver, to which webhook).

    Raises ValueError for anything that is not one of our notifications."""
    envelope = json.loads(body)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("Message"), str):
        raise ValueError("not an SNS notification envelope")
    raw_attrs = envelope.get("MessageAttributes") or {}
    if not isinstance(raw_attrs, dict):
        raise ValueError("MessageAttributes is not an object")
    attrs = {k: str(v.get("Value", "")) for k, v in raw_attrs.items() if isinstance(v, dict)}
    missing = [k for k in ("incident_id", "dedup_id", "recipient", "kind") if not attrs.get(k)]
    if missing:
        raise ValueError(f"message attributes missing: {', '.join(missing)}")
    incident_id = attrs["incident_id"]
    link = f"{base_url.rstrip('/')}/incidents/{incident_id}" if base_url else None
    level = attrs.get("level", "-")
    delivery = Delivery(
        incident_id=incident_id,
        dedup_id=attrs["dedup_id"],
        kind=attrs["kind"],
        level=int(level) if level.isdigit() else None,
        severity=attrs.get("severity", ""),
        subject=str(envelope.get("Subject") or ""),
        message=envelope["Message"],
        link=link,
        acknowledge_url=attrs.get("ack_url") or None,
        resolve_url=attrs.get("resolve_url") or None,
        channel=attrs.get("channel") or "webhook",
    )
    return delivery, attrs["recipient"]
