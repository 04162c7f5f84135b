"""TokenRepository: API tokens (TOKEN / <id>), their credentials (CRED#<sha256>), last use, and
the per-credential request counters of the rate limit (config table)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.domain.tokens import ApiToken
from incident_engine.store.models import ApiTokenItem, CredentialItem, RateWindowItem
from incident_engine.store.services import credential_pk
from incident_engine.usecases.ports import VersionConflict

TOKEN = "TOKEN"  # noqa: S105 - the partition key


class TokenRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    def create(self, token: ApiToken, secret_hash: str) -> None:
        """The list entry and the credential in one transaction."""
        created = to_key(token.created_at)
        expires = to_key(token.expires_at) if token.expires_at else None
        teams = list(token.team_ids) if token.team_ids is not None else None
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(
                    ApiTokenItem(
                        TOKEN,
                        token.id,
                        name=token.name,
                        prefix=token.prefix,
                        secret_hash=secret_hash,
                        scopes=list(token.scopes),
                        team_ids=teams,
                        created_at=created,
                        created_by=token.created_by,
                        expires_at=expires,
                    ),
                    condition=ApiTokenItem.pk.does_not_exist(),
                )
                tx.save(
                    CredentialItem(
                        credential_pk(secret_hash),
                        "CRED",
                        principal_kind="token",
                        name=token.name,
                        key_id=token.id,
                        revoked=False,
                        created_at=created,
                        scopes=list(token.scopes),
                        team_ids=teams,
                        expires_at=expires,
                    ),
                    condition=CredentialItem.pk.does_not_exist(),
                )
        except TransactWriteError as exc:
            raise VersionConflict(token.id) from exc

    def get(self, token_id: str) -> ApiToken | None:
        try:
            return self._to_token(ApiTokenItem.get(TOKEN, token_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list_all(self) -> list[ApiToken]:
        return [self._to_token(i) for i in ApiTokenItem.query(TOKEN, consistent_read=True)]

    def revoke(self, token_id: str, revoked_at: datetime) -> None:
        """The list entry and the credential together: the authorizer refuses it from its next call."""
        item = ApiTokenItem.get(TOKEN, token_id, consistent_read=True)
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(
                    ApiTokenItem(TOKEN, token_id),
                    actions=[ApiTokenItem.revoked_at.set(to_key(revoked_at))],
                    condition=ApiTokenItem.revoked_at.does_not_exist(),
                )
                tx.update(
                    CredentialItem(credential_pk(item.secret_hash), "CRED"),
                    actions=[CredentialItem.revoked.set(True)],
                    condition=CredentialItem.key_id == token_id,
                )
        except TransactWriteError as exc:  # revoked meanwhile by another request
            raise VersionConflict(token_id) from exc

    def touch(self, token_id: str, now: datetime, every_seconds: float) -> bool:
        """Record a use, unless one was recorded less than ``every_seconds`` ago (a conditional
        write: concurrent authorizers write it once). True when written."""
        cutoff = to_key(now - timedelta(seconds=every_seconds))
        try:
            ApiTokenItem(TOKEN, token_id).update(
                actions=[ApiTokenItem.last_used_at.set(to_key(now))],
                condition=ApiTokenItem.pk.exists()
                & (ApiTokenItem.last_used_at.does_not_exist() | (ApiTokenItem.last_used_at < cutoff)),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def count_request(self, caller: str, window: int, limit: int, expires: int, n: int = 1) -> bool:
        """Count ``n`` requests of ``caller`` in the window (a minute's epoch number): True if the
        count stays within ``limit`` with them, False (nothing counted) otherwise."""
        item = RateWindowItem(f"RATE#{caller}", str(window))
        try:
            item.update(
                actions=[RateWindowItem.hits.add(n), RateWindowItem.ttl.set(expires)],
                condition=RateWindowItem.hits.does_not_exist() | (RateWindowItem.hits <= limit - n),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    @staticmethod
    def _to_token(i: ApiTokenItem) -> ApiToken:
        teams: Any = i.team_ids
        return ApiToken(
            id=i.sk,
            name=i.name,
            prefix=i.prefix,
            scopes=tuple(i.scopes or ()),
            team_ids=tuple(teams) if teams is not None else None,
            created_at=parse_iso(i.created_at),
            created_by=i.created_by,
            expires_at=parse_iso(i.expires_at) if i.expires_at else None,
            revoked_at=parse_iso(i.revoked_at) if i.revoked_at else None,
            last_used_at=parse_iso(i.last_used_at) if i.last_used_at else None,
        )
