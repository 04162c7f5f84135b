"""/services/{id}/maintenance-windows routes: alerts inside a window are recorded, not paged."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from pydantic import AfterValidator, AwareDatetime, StringConstraints

from incident_engine.api.schemas import AS_NAME, _In, _one_line
from incident_engine.domain.maintenance import MaintenanceWindow
from incident_engine.domain.timefmt import to_iso
from incident_engine.wiring import services

router = Router()
Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_one_line),
    AS_NAME,
]


class WindowIn(_In):
    start: AwareDatetime
    end: AwareDatetime
    reason: Reason


def _out(w: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": w.id,
        "service_id": w.service_id,
        "start": to_iso(w.start),
        "end": to_iso(w.end),
        "reason": w.reason,
        "created_at": to_iso(w.created_at),
    }


@router.post(
    "/services/<service_id>/maintenance-windows",
    tags=["services"],
    summary="Declare a maintenance window: alerts inside it open suppressed incidents, never paged",
)
def create_window(service_id: str, body: WindowIn) -> Response[dict[str, Any]]:
    window = services().maintenance_windows().create(unquote(service_id), body.start, body.end, body.reason)
    return Response(status_code=201, content_type="application/json", body=_out(window))


@router.get("/services/<service_id>/maintenance-windows", tags=["services"], summary="A service's windows")
def list_windows(service_id: str) -> dict[str, Any]:
    return {"items": [_out(w) for w in services().maintenance_windows().list_for(unquote(service_id))]}
