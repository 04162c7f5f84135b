"""Services: what alerts are about, and the integration keys that let a source send them.

A service names the policy and team its incidents escalate to, the default severity of its
alerts, and which CloudWatch alarms are its own (by name prefix or by tag). Pure: no AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from incident_engine.domain.severity import Severity

CATCH_ALL_ID = "svc_unrouted"
CATCH_ALL_NAME = "Unrouted alerts"


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    team_id: str | None = None
    policy_id: str | None = None
    default_severity: Severity = Severity.P2
    alarm_name_prefixes: tuple[str, ...] = ()
    auto_resolve: bool = True  # an OK / resolved alert resolves the incident
    insufficient_data: str = "ignore"  # "ignore" | "trigger": CloudWatch's INSUFFICIENT_DATA
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1


@dataclass(frozen=True)
class IntegrationKey:
    """A credential that reaches only the ingestion routes of one service. Only its hash and a
    short prefix (to tell keys apart in a list) are stored; the key itself is shown once."""

    id: str
    service_id: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class Principal:
    """Who a credential speaks for, as the authorizer hands it to the API."""

    kind: str  # "admin" | "token" | "integration"
    name: str
    service_id: str | None = None
    scopes: tuple[str, ...] = field(default_factory=tuple)
    id: str = ""  # the API token's or integration key's id
    team_ids: tuple[str, ...] | None = None  # an API token's teams; None: every team


def service_for_alarm(
    services: Iterable[Service], alarm_name: str, tagged_service: str | None
) -> Service | None:
    """The alarm's service: its ``incident-service`` tag (a service id or name) first, else the
    enabled service with the longest matching alarm-name prefix, else none (the catch-all)."""
    enabled = [s for s in services if s.enabled]
    if tagged_service:
        for s in enabled:
            if tagged_service in (s.id, s.name):
                return s
    best: tuple[int, Service] | None = None
    for s in enabled:
        for prefix in s.alarm_name_prefixes:
            if alarm_name.startswith(prefix) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), s)
    return best[1] if best else None
