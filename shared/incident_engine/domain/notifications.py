"""Message templates in the runbooks' style: severity banner, title, impact, status, link, ack."""

from __future__ import annotations

from datetime import UTC, datetime

from incident_engine.domain.model import Incident
from incident_engine.domain.severity import BANNERS
from incident_engine.domain.text import quoted_block

SUBJECT_LIMIT = 99  # SNS subjects are ASCII, one line, under 100 characters


def iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if at else None


def _ascii_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat.encode("ascii", "replace").decode("ascii")


def _flat(text: str) -> str:
    """One line of a client's text: whatever it holds, it cannot start a line of its own."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())


def _field(label: str, text: str | None, missing: str) -> list[str]:
    """A labelled free text: one line when it is one, else each of its lines quoted under the
    label, so a client's text can never pass for a line of ours (such as how to acknowledge)."""
    if not text:
        return [f"{label} {missing}"]
    lines = text.splitlines()
    if len(lines) == 1:
        return [f"{label} {_flat(text)}"]
    return [label, *quoted_block("\n".join(_flat(line) for line in lines))]


def _subject(prefix: str, incident: Incident) -> str:
    text = _ascii_line(f"{prefix} {incident.id}: {incident.title}")
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def incident_link(incident_id: str, base_url: str | None) -> str:
    return f"{base_url.rstrip('/')}/incidents/{incident_id}" if base_url else incident_id


def _duration(start: datetime, end: datetime) -> str:
    seconds = max(0, int((end - start).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def render_page(
    incident: Incident,
    level: int,
    loop: int,
    level_count: int,
    base_url: str | None,
    ack_url: str | None = None,
    resolve_url: str | None = None,
    why: str | None = None,
) -> tuple[str, str]:
    """``why``: what the status line says paged this recipient instead of an escalation level."""
    link = incident_link(incident.id, base_url)
    api_ack = f"{link}/acknowledge" if base_url else f"/incidents/{incident.id}/acknowledge"
    repeat = f", repeat {loop}" if loop else ""
    paged_by = why or f"escalation level {level + 1} of {level_count}{repeat}"
    lines = [
        f"{BANNERS[incident.severity]} - Incident Engine",
        "",
        f"INCIDENT: {incident.id} - {_flat(incident.title)}",
        f"STARTED:  {iso(incident.created_at)}",
        *_field("IMPACT:  ", incident.description, "not stated yet"),
        f"STATUS:   {incident.status.value.upper()} ({paged_by})",
    ]
    if incident.service or incident.team:
        lines.append(f"SERVICE:  {_flat(incident.service or '-')}    TEAM: {_flat(incident.team or '-')}")
    lines += [
        "",
        f"Incident: {link}",
    ]
    if ack_url and resolve_url:
        lines += [
            f"Acknowledge (stops escalation): {ack_url}",
            f"Resolve: {resolve_url}",
            "  (links for you alone; they ask you to confirm, and expire in 24 hours)",
        ]
    lines += [
        f"Acknowledge to stop escalation: POST {api_ack}",
        "  (with your API bearer token; acknowledging stops further levels from paging)",
    ]
    prefix = f"[{incident.severity.value}]"
    return _subject(prefix, incident), "\n".join(lines) + "\n"


def render_closure(incident: Incident, kind: str, at: datetime, base_url: str | None) -> tuple[str, str]:
    """The resolution (or cancellation) notice sent to everyone who was paged."""
    link = incident_link(incident.id, base_url)
    if kind == "resolution":
        head, prefix = "✅ RESOLVED - Incident Engine", "[RESOLVED]"
        who = incident.resolved_by or "unknown"
        detail = [
            *_field("RESOLUTION:", incident.resolution_note, "no note given"),
            f"Resolved by: {_flat(who)}",
        ]
    else:
        head, prefix = "⛔ CANCELLED - Incident Engine", "[CANCELLED]"
        detail = _field("REASON:", incident.cancel_reason, "no reason given")
    lines = [
        head,
        "",
        f"INCIDENT: {incident.id} - {_flat(incident.title)} ({incident.severity.value})",
        f"DURATION: {iso(incident.created_at)} to {iso(at)} ({_duration(incident.created_at, at)})",
        *detail,
        "",
        f"Incident: {link}",
        "No further pages will be sent for this incident.",
    ]
    return _subject(prefix, incident), "\n".join(lines) + "\n"
