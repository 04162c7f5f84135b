"""API tokens: named bearer credentials with scopes, optionally held to some teams' incidents.

Only a token's SHA-256 and a short prefix (to tell tokens apart in a list) are stored; the token
itself is shown once, when it is made. Every token starts with ``TOKEN_PREFIX`` so that a secret
scanner, or our own log masking, can recognise one. Pure: no AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

TOKEN_PREFIX = "iet_"  # noqa: S105 - "incident engine token": a marker, not a secret
PREFIX_SHOWN = len(TOKEN_PREFIX) + 8  # what lists show: enough to tell tokens apart, useless to an attacker
LAST_USED_EVERY_SECONDS = 60  # last_used_at is written at most this often per token


@dataclass(frozen=True)
class ApiToken:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    team_ids: tuple[str, ...] | None  # None: every team's incidents
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
