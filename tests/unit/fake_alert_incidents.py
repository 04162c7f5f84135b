"""In-memory stand-ins for the ingest use case's ports, with the store's conditional semantics."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from incident_engine.domain.alerts import Alert
from incident_engine.domain.lifecycle import Action, Status, ensure_allowed
from incident_engine.domain.model import Incident
from incident_engine.domain.routing import Rule
from incident_engine.usecases.ingest import AlertIncident, ServiceConfig
from incident_engine.usecases.ports import DedupKeyTaken, VersionConflict

T0 = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


@dataclass
class InMemoryAlertIncidents:
    """Incidents keyed by id; (service, dedup key) claims held by active incidents only."""

    incidents: dict[str, Incident] = field(default_factory=dict)
    opened: dict[str, AlertIncident] = field(default_factory=dict)
    alert_counts: dict[str, int] = field(default_factory=dict)
    claims: dict[tuple[str, str], str] = field(default_factory=dict)
    last: dict[tuple[str, str], str] = field(default_factory=dict)
    service_of: dict[str, str] = field(default_factory=dict)
    before_open: Callable[[AlertIncident], None] | None = None  # to stage a concurrent writer

    def find(self, service_id: str, dedup_key: str) -> tuple[Incident | None, str | None]:
        active_id = self.claims.get((service_id, dedup_key))
        return (self.incidents[active_id] if active_id else None), self.last.get((service_id, dedup_key))

    def open(self, new: AlertIncident) -> Incident:
        if self.before_open is not None:
            hook, self.before_open = self.before_open, None
            hook(new)
        key = (new.service.id, new.alert.dedup_key)
        if key in self.claims:  # the conditional write: attribute_not_exists on the claim
            raise DedupKeyTaken(new.alert.dedup_key)
        incident_id = f"INC-20261122-{len(self.incidents) + 1:03d}"
        incident = Incident(
            id=incident_id,
            title=new.alert.summary,
            severity=new.severity,
            status=Status.OPEN,
            created_at=T0,
            updated_at=T0,
            description=new.alert.description,
            service=new.service.name,
            team=new.alert.team,
            source=new.alert.source,
            labels=dict(new.labels),
            dedup_key=new.alert.dedup_key,
        )
        self.incidents[incident_id] = incident
        self.opened[incident_id] = new
        self.alert_counts[incident_id] = 1
        self.claims[key] = self.last[key] = incident_id
        self.service_of[incident_id] = new.service.id
        return incident

    def append(self, incident: Incident, alert: Alert) -> Incident:
        self._check_version(incident)
        self.alert_counts[incident.id] += 1
        return self._save(replace(incident, version=incident.version + 1))

    def acknowledge(self, incident: Incident, by: str) -> Incident:
        self._check_version(incident)
        ensure_allowed(incident.status, Action.ACKNOWLEDGE)
        return self._save(
            replace(incident, status=Status.ACKNOWLEDGED, acknowledged_by=by, version=incident.version + 1)
        )

    def resolve(self, incident: Incident, by: str, note: str | None, alert: Alert | None = None) -> Incident:
        self._check_version(incident)
        ensure_allowed(incident.status, Action.RESOLVE)
        resolved = self._save(
            replace(incident, status=Status.RESOLVED, resolved_by=by, version=incident.version + 1)
        )
        self.claims.pop((self.service_of[incident.id], incident.dedup_key or ""), None)  # release the key
        return resolved

    def _check_version(self, incident: Incident) -> None:
        if self.incidents[incident.id].version != incident.version:
            raise VersionConflict(incident.id)

    def _save(self, incident: Incident) -> Incident:
        self.incidents[incident.id] = incident
        return incident


@dataclass
class Services:
    services: list[ServiceConfig]
    fallback: ServiceConfig

    def by_name(self, name: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.name == name), None)

    def by_alarm_name(self, alarm_name: str) -> ServiceConfig | None:
        candidates = [
            (len(prefix), s)
            for s in self.services
            for prefix in s.alarm_name_prefixes
            if alarm_name.startswith(prefix)
        ]
        return max(candidates, key=lambda c: c[0])[1] if candidates else None

    def catch_all(self) -> ServiceConfig:
        return self.fallback


@dataclass
class Rules:
    rules: Sequence[Rule] = ()

    def routing_rules(self) -> Sequence[Rule]:
        return self.rules


@dataclass
class Tags:
    by_arn: dict[str, Mapping[str, str]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)

    def tags_for(self, alarm_arn: str) -> Mapping[str, str]:
        self.lookups.append(alarm_arn)
        return self.by_arn.get(alarm_arn, {})
