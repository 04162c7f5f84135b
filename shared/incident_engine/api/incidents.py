"""/incidents routes."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from incident_engine.api.context import actor, base_url, caller, principal
from incident_engine.api.schemas import (
    ActorIn,
    CancelIn,
    EscalationRecordOut,
    EscalationsOut,
    IncidentCreate,
    IncidentOut,
    IncidentPage,
    NoteIn,
    NoteOut,
    NotificationOut,
    NotificationsOut,
    ResolveIn,
    SnoozeIn,
    StatusFilter,
    TimelineEventOut,
    TimelineOut,
)
from incident_engine.domain.engine import NewIncident
from incident_engine.domain.errors import InvalidInput, NotFound
from incident_engine.domain.severity import Severity
from incident_engine.observability import logger
from incident_engine.usecases.incidents import IdempotencyRequest, IncidentService
from incident_engine.usecases.ports import IncidentFilter
from incident_engine.wiring import services

router = Router()
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def _service() -> IncidentService:
    return services().incident_service(base_url(router))  # type: ignore[arg-type]


def _id(incident_id: str) -> str:
    """The path's incident id, once this caller may see that incident: a token held to some teams
    gets the same 404 for another team's incident as for one that does not exist."""
    found = unquote(incident_id)  # API Gateway hands path parameters over URL-encoded
    teams = caller(router).team_ids  # type: ignore[arg-type]
    if teams is not None:
        incident = _service().get_incident(found)
        if incident.team not in teams:
            raise NotFound(f"incident {found} not found", id=found)
    return found


@router.post(
    "/incidents",
    tags=["incidents"],
    summary="Open an incident (or join the active one with its dedup_key)",
    description=(
        "Send an `Idempotency-Key` header (any unique string, at most 255 characters) to make "
        "retries safe: a repeat of the same request within 24 hours returns the first answer "
        "(with `Idempotent-Replayed: true`) and opens and pages nothing new; the same key with a "
        "different body answers 422."
    ),
    responses={200: {"description": "dedup_key matched an active incident"}},
)
def create_incident(body: IncidentCreate) -> Response[IncidentOut]:
    credential = principal(router)  # type: ignore[arg-type]
    key = router.current_event.headers.get("Idempotency-Key")  # case-insensitive
    idempotency = None
    if key is not None:
        if not IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidInput("Idempotency-Key", "1 to 255 printable ASCII characters")
        idempotency = IdempotencyRequest.of(credential, key, body.model_dump_json())
    new = NewIncident(
        title=body.title,
        severity=body.severity,
        description=body.description,
        service=body.service,
        service_id=body.service_id,
        team=body.team,
        source=body.source,
        labels=dict(body.labels),
        dedup_key=body.dedup_key,
    )
    new, policy_id = services().routing_rules().route_api_create(new, body.policy_id)
    if body.policy_id is None and policy_id is not None and not _service().usable_policy(policy_id):
        # A routing rule names a policy since disabled: the client never sent policy_id, so it is no
        # 422 of theirs; the incident opens on the service's policy or the best match, as an alert does.
        logger.warning(
            "routed policy unusable; using the service's or the default", extra={"policy_id": policy_id}
        )
        policy_id = None
    teams = caller(router).team_ids  # type: ignore[arg-type]
    if teams is not None and new.team is None and new.service_id is None and len(teams) == 1:
        new = replace(new, team=next(iter(teams)))  # a one-team token's incidents are its team's
    result = _service().create_incident(
        new,
        policy_id,
        actor(router, None),  # type: ignore[arg-type]
        idempotency,
        teams=teams,
    )
    return Response(
        status_code=201 if result.created else 200,
        content_type="application/json",
        body=IncidentOut.of(result.incident),
        headers={"Idempotent-Replayed": "true"} if result.replayed else None,
    )


Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[
    str | None,
    Query(max_length=2048, description="next_cursor of the previous page; signed, so only as returned"),
]


@router.get(
    "/incidents",
    tags=["incidents"],
    summary="List incidents, newest first",
    description=(
        "Filters combine. `status=active` means open, escalating, acknowledged or snoozed. Each "
        "request reads a bounded part of the history, so a page filtered on several fields can come "
        "back with fewer than `limit` items (even none) and a `next_cursor`: keep following "
        "`next_cursor` until it is null to see every match."
    ),
)
def list_incidents(
    status: Annotated[StatusFilter | None, Query()] = None,
    severity: Annotated[Severity | None, Query()] = None,
    service: Annotated[str | None, Query(max_length=100)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 25,
    cursor: Cursor = None,
) -> IncidentPage:
    teams = caller(router).team_ids  # type: ignore[arg-type]
    if teams is not None and team is not None and team not in teams:
        return IncidentPage(items=[], next_cursor=None)  # another team's: nothing to see, as if none
    flt = IncidentFilter(
        status=status.value if status else None,
        severity=severity.value if severity else None,
        service=service,
        team=team if team is not None or teams is None or len(teams) != 1 else next(iter(teams)),
        teams=teams,
    )
    page = _service().list_incidents(flt, limit, cursor)
    return IncidentPage(items=[IncidentOut.of(i) for i in page.items], next_cursor=page.next_cursor)


@router.get("/incidents/<incident_id>", tags=["incidents"], summary="Get one incident")
def get_incident(incident_id: str) -> IncidentOut:
    incident = _service().get_incident(_id(incident_id))
    # Only here: a list page of alert payloads (up to 32 KB each) would be too large to be useful.
    return IncidentOut.of(incident).model_copy(update={"latest_alert": incident.latest_alert})


@router.post("/incidents/<incident_id>/acknowledge", tags=["lifecycle"], summary="Acknowledge: stop paging")
def acknowledge_incident(incident_id: str, body: Annotated[ActorIn | None, Body()] = None) -> IncidentOut:
    by = actor(router, body.by if body else None)  # type: ignore[arg-type]
    return IncidentOut.of(_service().acknowledge_incident(_id(incident_id), by))


@router.post("/incidents/<incident_id>/escalate", tags=["lifecycle"], summary="Fire the next level now")
def escalate_incident(incident_id: str, body: Annotated[ActorIn | None, Body()] = None) -> IncidentOut:
    by = actor(router, body.by if body else None)  # type: ignore[arg-type]
    return IncidentOut.of(_service().escalate_incident(_id(incident_id), by))


@router.post("/incidents/<incident_id>/snooze", tags=["lifecycle"], summary="Pause paging for some minutes")
def snooze_incident(incident_id: str, body: SnoozeIn) -> IncidentOut:
    by = actor(router, body.by)  # type: ignore[arg-type]
    return IncidentOut.of(_service().snooze_incident(_id(incident_id), body.minutes, by))


@router.post(
    "/incidents/<incident_id>/resolve", tags=["lifecycle"], summary="Resolve and notify everyone paged"
)
def resolve_incident(incident_id: str, body: Annotated[ResolveIn | None, Body()] = None) -> IncidentOut:
    body = body or ResolveIn()
    by = actor(router, body.by)  # type: ignore[arg-type]
    return IncidentOut.of(_service().resolve_incident(_id(incident_id), by, body.resolution_note))


@router.post("/incidents/<incident_id>/cancel", tags=["lifecycle"], summary="Cancel (a false alarm)")
def cancel_incident(incident_id: str, body: Annotated[CancelIn | None, Body()] = None) -> IncidentOut:
    body = body or CancelIn()
    by = actor(router, body.by)  # type: ignore[arg-type]
    return IncidentOut.of(_service().cancel_incident(_id(incident_id), by, body.reason))


@router.post("/incidents/<incident_id>/notes", tags=["timeline"], summary="Add a note to the timeline")
def add_note(incident_id: str, body: NoteIn) -> Response[NoteOut]:
    event = _service().add_note(_id(incident_id), body.text, actor(router, body.by))  # type: ignore[arg-type]
    out = TimelineEventOut.of(event)
    return Response(status_code=201, content_type="application/json", body=NoteOut(**out.model_dump()))


@router.get(
    "/incidents/<incident_id>/timeline", tags=["timeline"], summary="Everything that happened, in order"
)
def get_timeline(incident_id: str, limit: Limit = 100, cursor: Cursor = None) -> TimelineOut:
    page = _service().timeline(_id(incident_id), limit, cursor)
    return TimelineOut(items=[TimelineEventOut.of(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/incidents/<incident_id>/escalations", tags=["timeline"], summary="Escalation steps and their state"
)
def get_escalations(incident_id: str, limit: Limit = 100, cursor: Cursor = None) -> EscalationsOut:
    page = _service().escalations(_id(incident_id), limit, cursor)
    return EscalationsOut(items=[EscalationRecordOut.of(r) for r in page.items], next_cursor=page.next_cursor)


@router.get(
    "/incidents/<incident_id>/notifications",
    tags=["timeline"],
    summary="The notification outbox, in dedup_id order",
)
def get_notifications(incident_id: str, limit: Limit = 100, cursor: Cursor = None) -> NotificationsOut:
    page = _service().notifications(_id(incident_id), limit, cursor)
    return NotificationsOut(items=[NotificationOut.of(n) for n in page.items], next_cursor=page.next_cursor)
