"""/tokens routes: API tokens, made and revoked by admins. A token is shown once, when made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from pydantic import AwareDatetime, BaseModel, Field

from incident_engine.api.context import actor
from incident_engine.api.schemas import Name, _In
from incident_engine.domain.timefmt import to_iso
from incident_engine.domain.tokens import ApiToken
from incident_engine.wiring import services

router = Router()
Scope = Literal["read", "write", "admin"]


class TokenIn(_In):
    name: Name = Field(description="Who or what uses it; actions taken with it are recorded under this name")
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)] = Field(
        description="read: every GET (webhooks and tokens aside); write: read, and acting on incidents; "
        "admin: everything, configuration and tokens included"
    )
    team_ids: Annotated[list[Name], Field(min_length=1, max_length=50)] | None = Field(
        default=None,
        description="Hold the token to these teams' incidents (an incident's team, or its service's "
        "team_id); others answer 404. Not with admin.",
    )
    expires_at: AwareDatetime | None = Field(default=None, description="Stops working at this time")


class TokenOut(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart; never the token")
    scopes: list[str]
    team_ids: list[str] | None
    created_at: str
    created_by: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None = Field(description="Updated at most once a minute")
    active: bool

    @staticmethod
    def of(t: ApiToken) -> TokenOut:
        return TokenOut(
            id=t.id,
            name=t.name,
            prefix=t.prefix,
            scopes=list(t.scopes),
            team_ids=list(t.team_ids) if t.team_ids is not None else None,
            created_at=to_iso(t.created_at),
            created_by=t.created_by,
            expires_at=to_iso(t.expires_at) if t.expires_at else None,
            revoked_at=to_iso(t.revoked_at) if t.revoked_at else None,
            last_used_at=to_iso(t.last_used_at) if t.last_used_at else None,
            active=t.active(datetime.now(UTC)),
        )


class TokenCreatedOut(TokenOut):
    token: str = Field(description="The token itself: shown this once, stored only as a SHA-256 hash")


class TokenList(BaseModel):
    items: list[TokenOut]


@router.post("/tokens", tags=["tokens"], summary="Make an API token; the token is in the answer, this once")
def create_token(body: TokenIn) -> Response[TokenCreatedOut]:
    new = (
        services()
        .tokens()
        .create(body.name, list(body.scopes), body.team_ids, body.expires_at, actor(router, None))  # type: ignore[arg-type]
    )
    out = TokenOut.of(new.token)
    return Response(
        status_code=201,
        content_type="application/json",
        body=TokenCreatedOut(**out.model_dump(), token=new.secret),
    )


@router.get("/tokens", tags=["tokens"], summary="List API tokens (their prefixes, never the tokens)")
def list_tokens() -> TokenList:
    return TokenList(items=[TokenOut.of(t) for t in services().tokens().list_tokens()])


@router.delete(
    "/tokens/<token_id>",
    tags=["tokens"],
    summary="Revoke an API token: it stops working within 60 seconds (the record stays)",
)
def revoke_token(token_id: str) -> TokenOut:
    return TokenOut.of(services().tokens().revoke(unquote(token_id)))
