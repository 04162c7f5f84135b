"""The ingest use case's ports (``usecases/ingest.py``) over the real services and store.

``ServiceDirectory`` reads the service catalogue, ``AlertIncidents`` opens, appends to,
acknowledges and resolves incidents through ``IncidentService`` (so dedup claims, policies,
timers and pages work exactly as for an API create), and ``RuleSource`` reads the stored rules.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any, Protocol

from incident_engine.domain.alerts import Alert, AlertAction, Integration
from incident_engine.domain.engine import NewIncident
from incident_engine.domain.errors import InvalidInput
from incident_engine.domain.keys import dedup_scope
from incident_engine.domain.lifecycle import TERMINAL
from incident_engine.domain.model import Incident
from incident_engine.domain.routing import Rule
from incident_engine.domain.services import Service
from incident_engine.observability import logger
from incident_engine.usecases.incidents import IncidentService
from incident_engine.usecases.ingest import ACTOR, AlertIncident, ServiceConfig
from incident_engine.usecases.maintenance import MaintenanceWindows
from incident_engine.usecases.ports import DedupHolder, VersionConflict
from incident_engine.usecases.services import ServiceCatalog

# A repeat alert only adds one to a count, so on a lost version race it is re-applied to the
# fresh incident here rather than spending the use case's few re-decisions: a burst of repeats
# of one key (a flapping alarm, a retrying client) must all be counted, none refused.
APPEND_ATTEMPTS = 60
APPEND_BACKOFF_SECONDS = 0.02


def service_config(service: Service) -> ServiceConfig:
    return ServiceConfig(
        id=service.id,
        name=service.name,
        team=service.team_id,
        policy_id=service.policy_id,
        default_severity=service.default_severity,
        alarm_name_prefixes=service.alarm_name_prefixes,
        auto_resolve=service.auto_resolve,
        trigger_on_insufficient_data=service.insufficient_data == "trigger",
    )


class CatalogDirectory:
    """``ServiceDirectory`` over the catalogue; one Query reads every service."""

    def __init__(self, catalog: ServiceCatalog) -> None:
        self._catalog = catalog

    def by_name(self, name: str) -> ServiceConfig | None:
        # An ``incident-service`` tag may name a service by id or by name.
        for service in self._catalog.list_services(include_disabled=False):
            if name in (service.id, service.name):
                return service_config(service)
        return None

    def by_id(self, service_id: str) -> ServiceConfig | None:
        service = self._catalog.get_service(service_id)
        return service_config(service) if service.enabled else None

    def by_alarm_name(self, alarm_name: str) -> ServiceConfig | None:
        best: tuple[int, Service] | None = None
        for service in self._catalog.list_services(include_disabled=False):
            for prefix in service.alarm_name_prefixes:
                if alarm_name.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), service)
        return service_config(best[1]) if best else None

    def catch_all(self) -> ServiceConfig:
        return service_config(self._catalog.catch_all())


class DedupReader(Protocol):
    def dedup_record(self, dedup_key: str) -> tuple[DedupHolder | None, str | None]: ...
    def get(self, incident_id: str) -> Incident | None: ...


class StoreAlertIncidents:
    """``AlertIncidents`` over ``IncidentService`` and the incident store."""

    def __init__(
        self, incidents: IncidentService, store: DedupReader, windows: MaintenanceWindows | None = None
    ) -> None:
        self._incidents = incidents
        self._store = store
        self._windows = windows

    def find(self, service_id: str, dedup_key: str) -> tuple[Incident | None, str | None]:
        holder, last_id = self._store.dedup_record(dedup_scope(service_id, dedup_key))
        if holder is None or holder.incident_id is None:
            # Free, or a create still under way: opening then waits for it and reports it taken.
            return None, last_id if holder is None else None
        return self._store.get(holder.incident_id), None

    def open(self, new: AlertIncident) -> Incident:
        alert = new.alert
        window = self._windows.open_now(new.service.id) if self._windows else None
        suppressed, reasons = new.suppressed, new.suppress_reasons
        if window is not None:
            # Inside a maintenance window: recorded on the incident, never paged.
            suppressed, reasons = True, (*reasons, f"maintenance window {window.id}: {window.reason}")
        incident = NewIncident(
            title=alert.summary or alert.dedup_key,
            severity=new.severity,
            description=alert.description,
            service=new.service.name,
            service_id=new.service.id,
            team=alert.team,
            source=alert.source or None,
            labels=dict(new.labels),
            dedup_key=alert.dedup_key,
            alert=alert_payload(alert),
            previous_incident_id=new.previous_incident_id,
            suppressed=suppressed,
            suppress_reasons=reasons,
            maintenance=window.timeline_data() if window else None,
            assignees=new.assignees,
            runbooks=tuple(
                {"url": r.url, "title": r.title, "checklist": list(r.checklist)} for r in new.runbooks
            ),
            routing_matches=tuple(m.timeline_data() for m in new.routing.matches) if new.routing else (),
            events=source_events(alert),
            notify=tuple(t.to_dict() for t in new.notify),
        )
        try:
            result = self._incidents.create_incident(
                incident, new.policy_id, ACTOR[alert.integration], join=False
            )
        except InvalidInput as exc:
            if exc.field != "policy_id" or new.policy_id is None:
                raise
            # A routing rule or the service names a policy since disabled (or never made): an alert
            # is never lost for it. Nothing was written (the policy is chosen before the commit), so
            # open it again on the service's enabled policy, else the best match or the default.
            logger.warning(
                "routed policy unusable; using the service's or the default",
                extra={"policy_id": new.policy_id, "service_id": new.service.id},
            )
            result = self._incidents.create_incident(incident, None, ACTOR[alert.integration], join=False)
        return result.incident

    def append(self, incident: Incident, alert: Alert) -> Incident:
        payload = alert_payload(alert)
        by = ACTOR[alert.integration]
        current = incident
        for _ in range(APPEND_ATTEMPTS):
            try:
                return self._incidents.append_alert(current, payload, alert.summary, by)
            except VersionConflict:
                fresh = self._store.get(incident.id)
                if fresh is None or fresh.status in TERMINAL:
                    raise  # closed meanwhile: the use case decides again (a new incident)
                current = fresh
                time.sleep(random.uniform(0, APPEND_BACKOFF_SECONDS))  # noqa: S311 - jitter
        raise VersionConflict(incident.id)

    def acknowledge(self, incident: Incident, by: str) -> Incident:
        return self._incidents.acknowledge_incident(incident.id, by)

    def resolve(self, incident: Incident, by: str, note: str | None, alert: Alert | None = None) -> Incident:
        events = source_events(alert) if alert is not None else ()
        return self._incidents.resolve_incident(incident.id, by, note, events)


def source_events(alert: Alert) -> tuple[tuple[str, dict[str, Any]], ...]:
    """What a source says on the timeline in its own words, in the same commit as the change."""
    if alert.integration is Integration.HEARTBEAT:
        kind = "heartbeat_missed" if alert.action is AlertAction.TRIGGER else "heartbeat_recovered"
        return ((kind, dict(alert.custom_details)),)
    return ()


def alert_payload(alert: Alert) -> dict[str, Any]:
    """What the incident keeps of its latest alert: the parser's bounded raw payload."""
    return {
        "integration": alert.integration.value,
        "action": alert.action.value,
        "summary": alert.summary,
        "source_severity": alert.source_severity,
        "raw": dict(alert.raw),
    }


class RuleStore(Protocol):
    def enabled_rules(self) -> list[Rule]: ...


class StoredRules:
    """``RuleSource`` over the routing-rules store: read on every alert, so an edit applies at once."""

    def __init__(self, store: RuleStore) -> None:
        self._store = store

    def routing_rules(self) -> Sequence[Rule]:
        return self._store.enabled_rules()


def service_for_key(catalog: ServiceCatalog, secret: str) -> tuple[ServiceConfig, str] | None:
    """The enabled service an integration key speaks for (PagerDuty's routing_key) and the key's
    id (what its rate limit is counted by), or None."""
    principal = catalog.principal_for(secret)
    if principal is None or principal.service_id is None:
        return None
    service = catalog.service_or_none(principal.service_id)
    if service is None or not service.enabled:
        return None
    return service_config(service), principal.id
