"""API tokens: made, listed and revoked by admins; presented credentials resolved to principals."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from incident_engine.domain.access import ADMIN, INGEST, TOKEN_SCOPES
from incident_engine.domain.errors import InvalidInput, NotFound
from incident_engine.domain.services import Principal
from incident_engine.domain.tokens import LAST_USED_EVERY_SECONDS, PREFIX_SHOWN, TOKEN_PREFIX, ApiToken
from incident_engine.usecases.ports import Clock, StoredCredential, VersionConflict
from incident_engine.usecases.services import secret_hash

TOKEN_BYTES = 32  # 256 bits


class TokenStore(Protocol):
    def create(self, token: ApiToken, secret_hash: str) -> None: ...
    def get(self, token_id: str) -> ApiToken | None: ...
    def list_all(self) -> list[ApiToken]: ...
    def revoke(self, token_id: str, revoked_at: datetime) -> None: ...
    def touch(self, token_id: str, now: datetime, every_seconds: float) -> bool: ...


class CredentialStore(Protocol):
    def credential(self, secret_hash: str) -> StoredCredential | None: ...


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


class Tokens:
    def __init__(self, store: TokenStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(
        self,
        name: str,
        scopes: list[str],
        team_ids: list[str] | None,
        expires_at: datetime | None,
        created_by: str,
    ) -> NewToken:
        now = self._clock.now()
        unknown = [s for s in scopes if s not in TOKEN_SCOPES]
        if unknown or not scopes:
            raise InvalidInput("scopes", f"one or more of {', '.join(TOKEN_SCOPES)}")
        if team_ids is not None and ADMIN in scopes:
            # An admin manages users, teams and tokens for everyone: held to some teams it could
            # simply make itself an unrestricted token.
            raise InvalidInput("team_ids", "an admin token cannot be held to teams")
        if expires_at is not None and expires_at <= now:
            raise InvalidInput("expires_at", "must be in the future")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        token = ApiToken(
            id=f"tok_{secrets.token_hex(6)}",
            name=name,
            prefix=secret[:PREFIX_SHOWN],
            scopes=tuple(s for s in TOKEN_SCOPES if s in scopes),
            team_ids=tuple(dict.fromkeys(team_ids)) if team_ids is not None else None,
            created_at=now,
            created_by=created_by,
            expires_at=expires_at,
        )
        self._store.create(token, secret_hash(secret))
        return NewToken(token, secret)

    def list_tokens(self) -> list[ApiToken]:
        return sorted(self._store.list_all(), key=lambda t: (t.created_at, t.id))

    def revoke(self, token_id: str) -> ApiToken:
        token = self._store.get(token_id)
        if token is None:
            raise NotFound(f"token {token_id} not found", id=token_id)
        if token.revoked_at is not None:
            return token  # revoking twice is not an error
        now = self._clock.now()
        with contextlib.suppress(VersionConflict):  # another request revoked it first
            self._store.revoke(token_id, now)
        return self._store.get(token_id) or token


class Authenticator:
    """What the authorizer asks: who does a presented secret speak for, if anyone?"""

    def __init__(self, credentials: CredentialStore, tokens: TokenStore, clock: Clock) -> None:
        self._credentials = credentials
        self._tokens = tokens
        self._clock = clock

    def principal_for(self, secret: str) -> Principal | None:
        """One consistent read by the secret's hash; None when unknown, revoked or expired."""
        stored = self._credentials.credential(secret_hash(secret))
        if stored is None or stored.revoked:
            return None
        if stored.kind == "integration":
            return Principal(
                kind="integration",
                name=stored.name,
                service_id=stored.service_id,
                scopes=(INGEST,),
                id=stored.key_id,
            )
        if stored.kind != "token":
            return None
        now = self._clock.now()
        if stored.expires_at is not None and now >= stored.expires_at:
            return None
        return Principal(
            kind="token",
            name=stored.name,
            scopes=stored.scopes,
            id=stored.key_id,
            team_ids=stored.team_ids,
        )

    def record_use(self, principal: Principal) -> None:
        """``last_used_at``, at most once a minute per token (a conditional write)."""
        if principal.kind == "token":
            self._tokens.touch(principal.id, self._clock.now(), LAST_USED_EVERY_SECONDS)
