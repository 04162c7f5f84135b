"""GET /health?deep=1: the engine's own state, for the admin token only.

/health is public (API Gateway runs no authorizer for it, so that a load balancer or an uptime
check can call it without a secret) and answers from memory. The deep answer reads queues and the
table, so it is not public: the handler checks the admin token itself, as the authorizer would.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver
from pydantic import BaseModel, ConfigDict, Field

from incident_engine.domain.access import ADMIN
from incident_engine.domain.timefmt import to_iso

MAX_TOKEN_CHARS = 512  # as the authorizer


class _Out(BaseModel):
    # Built on first use: most containers never answer deep=1, and none at import.
    model_config = ConfigDict(defer_build=True)


class HealthOut(_Out):
    status: str = Field(default="ok", description="ok")


class QueueDepthOut(_Out):
    visible: int
    in_flight: int
    delayed: int


class OverdueTimerOut(_Out):
    incident_id: str
    due_at: str
    overdue_seconds: float


class ReconcilerOut(_Out):
    last_run_at: str
    seconds_ago: float
    timers_rearmed: int
    notifications_republished: int


class DeepHealthOut(_Out):
    status: str = Field(description="ok, or degraded when problems is not empty")
    problems: list[str]
    queues: dict[str, QueueDepthOut | None] = Field(
        description="timer, webhook and the dead-letter queues; null when one could not be read"
    )
    oldest_overdue_timer: OverdueTimerOut | None = Field(
        description="the armed timer furthest past its due time, if any is due"
    )
    reconciler: ReconcilerOut | None = Field(description="its last run; null if it never ran")


class ErrorOut(_Out):
    error: str
    message: str


ERROR_CONTENT: dict[str, Any] = {"application/json": {"model": ErrorOut}}


def caller_is_admin(app: ApiGatewayResolver) -> bool | None:
    """True for the admin token or an admin-scoped API token, False for another credential, None
    when no bearer token was sent."""
    header = app.current_event.headers.get("Authorization") or ""
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        return False
    # Not at import, and not the engine's services: telling the admin token from another needs
    # the settings and the credential store only (a refused caller builds nothing else).
    from incident_engine.auth_wiring import authenticator
    from incident_engine.settings import get_settings

    expected = get_settings().api_token_sha256
    if expected and hmac.compare_digest(hashlib.sha256(token.encode()).hexdigest(), expected):
        return True
    # /health is public (no authorizer runs), so an API token is checked here as the authorizer
    # would: unknown, revoked or expired ones are refused, and only the admin scope reaches deep=1.
    principal = authenticator().principal_for(token)
    return principal is not None and ADMIN in principal.scopes


def deep_health(app: ApiGatewayResolver) -> Response[Any]:
    admin = caller_is_admin(app)
    if admin is None:
        return _error(401, "unauthorized", "send Authorization: Bearer <admin token> for deep=1")
    if not admin:
        return _error(403, "forbidden", "deep=1 needs the admin token")
    from incident_engine.wiring import services

    report = services().engine_health().deep()
    timer = report.oldest_overdue_timer
    run = report.reconciler
    body = DeepHealthOut(
        status=report.status,
        problems=report.problems,
        queues={k: QueueDepthOut(**v) if v is not None else None for k, v in report.queues.items()},
        oldest_overdue_timer=(
            OverdueTimerOut(
                incident_id=timer["incident_id"],
                due_at=to_iso(timer["due_at"]),
                overdue_seconds=round(timer["overdue_seconds"], 3),
            )
            if timer
            else None
        ),
        reconciler=(
            ReconcilerOut(
                last_run_at=to_iso(run["last_run_at"]),
                seconds_ago=round(run["seconds_ago"], 3),
                timers_rearmed=run["timers_rearmed"],
                notifications_republished=run["notifications_republished"],
            )
            if run
            else None
        ),
    )
    return Response(status_code=200, content_type="application/json", body=body.model_dump())


def _error(status: int, code: str, message: str) -> Response[Any]:
    return Response(
        status_code=status, content_type="application/json", body={"error": code, "message": message}
    )
