"""What a route needs from the request besides its body: the caller and the public base URL."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from incident_engine.domain.access import ADMIN, effective


@dataclass(frozen=True)
class Caller:
    """Who the authorizer vouched for (its context, api/authorizer), or nobody on a public route."""

    kind: str  # admin | token | integration | anonymous
    name: str  # what `by` records: the token's name ("admin" for the deploy-time token)
    id: str  # the credential's id: what rate limits and Idempotency-Keys are kept per
    scopes: frozenset[str]  # effective: nesting applied
    team_ids: frozenset[str] | None  # None: every team's incidents
    service_id: str | None = None  # an integration key's service

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def sees_team(self, team: str | None) -> bool:
        """Whether this caller may see an incident of ``team`` (held-to-teams tokens see only theirs)."""
        return self.team_ids is None or (team is not None and team in self.team_ids)


ANONYMOUS = Caller("anonymous", "anonymous", "anonymous", frozenset(), None)


def caller_of(event: dict[str, Any]) -> Caller:
    authorizer = (event.get("requestContext") or {}).get("authorizer") or {}
    principal_id = authorizer.get("principalId")
    if not principal_id:
        return ANONYMOUS
    role = str(authorizer.get("role") or "")
    if role == "admin":
        return Caller("admin", str(principal_id), "admin", effective([ADMIN]), None)
    teams_text = str(authorizer.get("team_ids") or "")
    teams = frozenset(str(t) for t in json.loads(teams_text)) if teams_text else None
    return Caller(
        kind=role or "anonymous",
        name=str(principal_id),
        id=str(authorizer.get("credential_id") or principal_id),
        scopes=effective(str(authorizer.get("scopes") or "").split()),
        team_ids=teams,
        service_id=str(authorizer.get("service_id") or "") or None,
    )


def caller(app: ApiGatewayResolver) -> Caller:
    return caller_of(app.current_event.raw_event)


def actor(app: ApiGatewayResolver, given: str | None) -> str:
    """Who an action is recorded as: the credential's name. Only an admin may act for someone
    else by naming them in the body's ``by``; anyone else's ``by`` is not taken at its word."""
    who = caller(app)
    if given and who.is_admin:
        return given
    return who.name if who.kind != "anonymous" else "api"


def principal(app: ApiGatewayResolver) -> str:
    """The credential's id: what Idempotency-Keys are kept apart by."""
    who = caller(app)
    return who.id if who.kind != "anonymous" else "api"


def base_url(app: ApiGatewayResolver) -> str | None:
    from incident_engine.wiring import services  # not at import: the api's cold start needs no engine

    configured = services().settings.public_api_url
    if configured:
        return configured
    ctx = app.current_event.raw_event.get("requestContext") or {}
    domain, stage = ctx.get("domainName"), ctx.get("stage")
    if not domain:
        return None
    return f"https://{domain}/{stage}" if stage else f"https://{domain}"
