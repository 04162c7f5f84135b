"""/heartbeats routes: a job pings its heartbeat every interval; a missed one opens an incident."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import Field, StrictInt

from incident_engine.api.context import base_url, caller
from incident_engine.api.schemas import Name, _In
from incident_engine.domain.errors import NotFound
from incident_engine.domain.heartbeats import MAX_INTERVAL_MINUTES, MIN_INTERVAL_MINUTES, Heartbeat
from incident_engine.domain.timefmt import to_iso
from incident_engine.usecases.heartbeats import HeartbeatFields, HeartbeatService
from incident_engine.wiring import services

router = Router()


class HeartbeatIn(_In):
    name: Name
    service_id: Name
    interval_minutes: Annotated[StrictInt, Field(ge=MIN_INTERVAL_MINUTES, le=MAX_INTERVAL_MINUTES)] = Field(
        description=f"A ping is expected at least this often ({MIN_INTERVAL_MINUTES}..{MAX_INTERVAL_MINUTES})"
    )

    def fields(self) -> HeartbeatFields:
        return HeartbeatFields(self.name, self.service_id, self.interval_minutes)


def _heartbeats() -> HeartbeatService:
    return services().heartbeat_service(base_url(router))  # type: ignore[arg-type]


def _time(at: Any) -> str | None:
    return to_iso(at) if at else None


def _incident_id(hb: Heartbeat) -> str | None:
    """The incident a miss opened, unless the caller is a token held to teams and that incident is
    another team's: then it is not named here either (GET /incidents/{id} answers it 404, as if
    it did not exist, and no listing may tell otherwise)."""
    teams = caller(router).team_ids  # type: ignore[arg-type]
    if hb.incident_id is None or teams is None:
        return hb.incident_id
    try:
        incident = services().incident_service(base_url(router)).get_incident(hb.incident_id)  # type: ignore[arg-type]
    except NotFound:
        return None
    return hb.incident_id if incident.team in teams else None


def _out(hb: Heartbeat) -> dict[str, Any]:
    url = base_url(router)  # type: ignore[arg-type]
    path = f"/heartbeats/{quote(hb.id)}/ping"
    return {
        "id": hb.id,
        "name": hb.name,
        "service_id": hb.service_id,
        "interval_minutes": hb.interval_minutes,
        "enabled": hb.enabled,
        "status": hb.status.value if hb.enabled else "disabled",
        "ping_url": f"{url}{path}" if url else path,
        "last_ping_at": _time(hb.last_ping_at),
        "next_ping_due_by": _time(hb.deadline),
        "missed_at": _time(hb.missed_at),
        "incident_id": _incident_id(hb),
        "created_at": to_iso(hb.created_at),
        "updated_at": to_iso(hb.updated_at),
        "version": hb.version,
    }


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@router.post(
    "/heartbeats",
    tags=["heartbeats"],
    summary="Declare a heartbeat; ping its ping_url with the service's integration key every interval",
)
def create_heartbeat(body: HeartbeatIn) -> Response[dict[str, Any]]:
    return _json(201, _out(_heartbeats().create(body.fields())))


@router.get("/heartbeats", tags=["heartbeats"], summary="List heartbeats")
def list_heartbeats(include_disabled: Annotated[bool, Query()] = False) -> dict[str, Any]:
    return {"items": [_out(hb) for hb in _heartbeats().list_heartbeats(include_disabled)]}


@router.get("/heartbeats/<heartbeat_id>", tags=["heartbeats"], summary="Get one heartbeat")
def get_heartbeat(heartbeat_id: str) -> dict[str, Any]:
    return _out(_heartbeats().get(unquote(heartbeat_id)))


@router.put(
    "/heartbeats/<heartbeat_id>",
    tags=["heartbeats"],
    summary="Rename a heartbeat or change its interval (counted from its last ping)",
)
def replace_heartbeat(heartbeat_id: str, body: HeartbeatIn) -> dict[str, Any]:
    return _out(_heartbeats().replace(unquote(heartbeat_id), body.fields()))


@router.delete(
    "/heartbeats/<heartbeat_id>", tags=["heartbeats"], summary="Disable a heartbeat (it is never erased)"
)
def delete_heartbeat(heartbeat_id: str) -> dict[str, Any]:
    return _out(_heartbeats().disable(unquote(heartbeat_id)))


@router.post(
    "/heartbeats/<heartbeat_id>/ping",
    tags=["heartbeats"],
    summary="Ping (Bearer <the service's integration key>); the body, if any, is ignored",
)
def ping_heartbeat(heartbeat_id: str) -> Response[dict[str, Any]]:
    context = (router.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    service_id = context.get("service_id") if context.get("role") == "integration" else None
    if not service_id:
        return _json(
            403,
            {
                "error": "forbidden",
                "field": "Authorization",
                "message": "send the heartbeat's service's integration key as the Bearer token",
            },
        )
    try:
        hb = _heartbeats().ping(unquote(heartbeat_id), str(service_id))
    except PermissionError as exc:
        return _json(403, {"error": "forbidden", "field": "Authorization", "message": str(exc)})
    return _json(200, {"status": "ok", "heartbeat": _out(hb)})
