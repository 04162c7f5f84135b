"""The one use case every alert source hands its ``Alert``s to: open, append, acknowledge, resolve or nothing.

Handlers parse (``adapters/sources``) and call ``AlertIngest.ingest_alert``. The decision itself
is the pure ``decide``; ``AlertIngest`` gathers what it needs (the service, the alarm's tags, the
incident the dedup key points at, the routing rules), carries the decision out through the
ports below, and on a lost race decides again on fresh state.

Dedup is per (service, dedup key): at most one active incident, enforced by the store's
conditional claim inside the opening transaction (``DedupKeyTaken``), never by read-then-write;
the read here only chooses the likely path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Protocol

from incident_engine.domain.alerts import (
    SERVICE_TAG,
    SEVERITY_TAG,
    Alert,
    AlertAction,
    Integration,
    choose_severity,
    severity_from_label,
)
from incident_engine.domain.errors import Conflict, InvalidTransition
from incident_engine.domain.lifecycle import TERMINAL, Status
from incident_engine.domain.model import Incident
from incident_engine.domain.policy import Target
from incident_engine.domain.routing import RoutingResult, Rule, Runbook, evaluate_rules
from incident_engine.domain.severity import Severity
from incident_engine.usecases.ports import DedupKeyTaken, VersionConflict

MAX_ATTEMPTS = 5
ACTOR = {
    Integration.CLOUDWATCH: "cloudwatch",
    Integration.PAGERDUTY: "events-api",
    Integration.ALERTMANAGER: "alertmanager",
    Integration.HEARTBEAT: "heartbeat",
    Integration.API: "api",
}


@dataclass(frozen=True)
class ServiceConfig:
    """What ingest reads of a service (issue 9's ``POST /services`` document)."""

    id: str
    name: str
    team: str | None = None
    policy_id: str | None = None
    default_severity: Severity | None = None
    alarm_name_prefixes: tuple[str, ...] = ()
    auto_resolve: bool = True  # monitors' recoveries (CloudWatch OK, Alertmanager resolved) resolve
    trigger_on_insufficient_data: bool = False


# --- ports ------------------------------------------------------------------------------------------


class ServiceDirectory(Protocol):
    def by_name(self, name: str) -> ServiceConfig | None: ...
    def by_alarm_name(self, alarm_name: str) -> ServiceConfig | None:
        """The service whose ``alarm_name_prefixes`` has the longest prefix of the name."""
        ...

    def catch_all(self) -> ServiceConfig:
        """Where an alarm that maps to no service goes, so it never disappears."""
        ...


class AlarmTags(Protocol):
    def tags_for(self, alarm_arn: str) -> Mapping[str, str]:
        """The alarm's tags (CloudWatch ListTagsForResource); empty when it has none or is gone."""
        ...


class RuleSource(Protocol):
    def routing_rules(self) -> Sequence[Rule]: ...


@dataclass(frozen=True)
class AlertIncident:
    """Everything opening an incident from an alert needs, routing applied."""

    service: ServiceConfig
    alert: Alert  # its summary, description, source, raw payload and dedup key
    severity: Severity
    labels: Mapping[str, str]
    policy_id: str | None
    assignees: tuple[str, ...] = ()
    notify: tuple[Target, ...] = ()  # paged once, outside the policy
    runbooks: tuple[Runbook, ...] = ()
    suppressed: bool = False  # recorded, not paged
    suppress_reasons: tuple[str, ...] = ()
    routing: RoutingResult | None = None  # its matches go on the timeline
    previous_incident_id: str | None = None  # the last incident of this key, now closed


class AlertIncidents(Protocol):
    """What ingest needs from the incident side (the store and the incident use cases)."""

    def find(self, service_id: str, dedup_key: str) -> tuple[Incident | None, str | None]:
        """The active incident holding (service, key), if any, and the last incident id the key had."""
        ...

    def open(self, new: AlertIncident) -> Incident:
        """Open and claim (service, key) in one transaction; ``DedupKeyTaken`` when held already."""
        ...

    def append(self, incident: Incident, alert: Alert) -> Incident:
        """A repeat: alert count + 1, last seen, latest payload, a timeline event; one transaction,
        conditional on ``incident.version`` (``VersionConflict`` otherwise)."""
        ...

    def acknowledge(self, incident: Incident, by: str) -> Incident: ...
    def resolve(
        self, incident: Incident, by: str, note: str | None, alert: Alert | None = None
    ) -> Incident: ...


# --- the decision -------------------------------------------------------------------------------------


class Outcome(StrEnum):
    OPENED = "opened"
    APPENDED = "appended"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    IGNORED = "ignored"  # a no-op that says why


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str | None = None


def decide(alert: Alert, service: ServiceConfig, active: Incident | None) -> Decision:
    """What an alert does to the incident its key points at. Pure; ``active`` is not terminal."""
    action = alert.action
    if action is AlertAction.INSUFFICIENT_DATA:
        if not service.trigger_on_insufficient_data:
            return Decision(Outcome.IGNORED, "alarm has insufficient data; the service does not page on it")
        action = AlertAction.TRIGGER
    if action is AlertAction.TRIGGER:
        return Decision(Outcome.APPENDED if active else Outcome.OPENED)
    if active is None:
        return Decision(Outcome.IGNORED, f"no active incident has dedup key {alert.dedup_key!r}")
    if action is AlertAction.ACKNOWLEDGE:
        if active.status is Status.ACKNOWLEDGED:
            return Decision(Outcome.IGNORED, "incident is already acknowledged")
        return Decision(Outcome.ACKNOWLEDGED)
    monitor_recovery = alert.integration in (Integration.CLOUDWATCH, Integration.ALERTMANAGER)
    if monitor_recovery and not service.auto_resolve:
        return Decision(Outcome.IGNORED, "the service does not resolve incidents when alerts clear")
    return Decision(Outcome.RESOLVED)


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    service_id: str
    dedup_key: str
    incident: Incident | None = None
    reason: str | None = None
    routing: RoutingResult | None = field(default=None, compare=False)


# --- orchestration ------------------------------------------------------------------------------------


class AlertIngest:
    def __init__(
        self,
        incidents: AlertIncidents,
        services: ServiceDirectory,
        rules: RuleSource,
        alarm_tags: AlarmTags | None = None,
    ) -> None:
        self._incidents = incidents
        self._services = services
        self._rules = rules
        self._alarm_tags = alarm_tags

    def ingest_alert(self, alert: Alert, service: ServiceConfig | None = None) -> IngestResult:
        """``service``: the one an integration key names (PagerDuty, Alertmanager); for
        CloudWatch, None, and the alarm's tags or name find it."""
        alert, service = self._place(alert, service)
        if alert.action is AlertAction.INSUFFICIENT_DATA and service.trigger_on_insufficient_data:
            alert = alert.as_trigger()
        actor = ACTOR[alert.integration]
        for _ in range(MAX_ATTEMPTS):
            active, last_id = self._incidents.find(service.id, alert.dedup_key)
            if active is not None and active.status in TERMINAL:
                active = None  # a key pointing at a closed incident is free
            decision = decide(alert, service, active)
            routing = self.route(alert) if decision.outcome is Outcome.OPENED else None
            try:
                incident = self._carry_out(decision, alert, service, active, last_id, actor, routing)
            except (DedupKeyTaken, VersionConflict):
                continue  # another alert with this key got there first: decide again on fresh state
            except InvalidTransition:
                continue  # the incident moved on (e.g. resolved meanwhile): decide again
            return IngestResult(
                decision.outcome, service.id, alert.dedup_key, incident, decision.reason, routing
            )
        raise Conflict("alerts with this dedup key keep racing; retry", dedup_key=alert.dedup_key)

    def route(self, alert: Alert) -> RoutingResult:
        """The rules on a placed alert (service, team and severity known); also the tester's path."""
        return evaluate_rules(self._rules.routing_rules(), alert)

    def _place(self, alert: Alert, service: ServiceConfig | None) -> tuple[Alert, ServiceConfig]:
        """The service, team and severity an alert belongs to, before routing reads it."""
        tags: Mapping[str, str] = {}
        if alert.alarm is not None:
            tags = alert.alarm.tags if alert.alarm.tags is not None else self._lookup_tags(alert.alarm.arn)
        if service is None:
            named = alert.service or tags.get(SERVICE_TAG)
            service = (
                (self._services.by_name(named) if named else None)
                or (self._services.by_alarm_name(alert.alarm.name) if alert.alarm else None)
                or self._services.catch_all()
            )
        severity = alert.severity or severity_from_label(tags.get(SEVERITY_TAG))
        placed = replace(
            alert,
            service=service.name,
            team=alert.team or service.team,
            severity=choose_severity(replace(alert, severity=severity), service.default_severity),
        )
        return placed, service

    def _lookup_tags(self, arn: str) -> Mapping[str, str]:
        return self._alarm_tags.tags_for(arn) if self._alarm_tags is not None else {}

    def _carry_out(
        self,
        decision: Decision,
        alert: Alert,
        service: ServiceConfig,
        active: Incident | None,
        last_id: str | None,
        actor: str,
        routing: RoutingResult | None,
    ) -> Incident | None:
        if decision.outcome is Outcome.OPENED:
            assert routing is not None
            return self._incidents.open(_new_incident(alert, service, routing, last_id))
        if decision.outcome is Outcome.IGNORED or active is None:
            return active
        if decision.outcome is Outcome.APPENDED:
            return self._incidents.append(active, alert)
        if decision.outcome is Outcome.ACKNOWLEDGED:
            return self._incidents.acknowledge(active, actor)
        return self._incidents.resolve(active, actor, f"resolved by {actor}", alert)


def _new_incident(
    alert: Alert, service: ServiceConfig, routing: RoutingResult, last_id: str | None
) -> AlertIncident:
    assert alert.severity is not None  # placing the alert always sets one
    return AlertIncident(
        service=service,
        alert=alert,
        severity=routing.severity or alert.severity,
        labels=routing.labels,
        policy_id=routing.policy_id or service.policy_id,
        assignees=routing.assignees,
        notify=routing.notify,
        runbooks=routing.runbooks,
        suppressed=routing.suppressed,
        suppress_reasons=routing.suppress_reasons,
        routing=routing,
        previous_incident_id=last_id,
    )
