"""Incident use cases: create, read, list, and every lifecycle action."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from incident_engine.domain import engine
from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.model import Change, EscalationRecord, Incident, Notification, TimelineEvent
from incident_engine.domain.policy import Policy, select_policy
from incident_engine.domain.severity import Severity
from incident_engine.usecases.dispatch import Dispatcher
from incident_engine.usecases.ports import (
    Clock,
    DedupKeyTaken,
    IncidentFilter,
    IncidentStore,
    Page,
    PolicyStore,
    VersionConflict,
)

T = TypeVar("T")
MAX_ATTEMPTS = 5  # optimistic retries when another writer changed the incident first


@dataclass(frozen=True)
class CreateResult:
    incident: Incident
    created: bool  # False when the dedup key matched an incident that is still active


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        policies: PolicyStore,
        dispatcher: Dispatcher,
        clock: Clock,
        base_url: str | None,
    ) -> None:
        self._store = store
        self._policies = policies
        self._dispatcher = dispatcher
        self._clock = clock
        self._base_url = base_url

    # --- create and read ------------------------------------------------------------------

    def create_incident(self, new: engine.NewIncident, policy_id: str | None, actor: str) -> CreateResult:
        if new.dedup_key:
            existing = self._existing_for(new.dedup_key, actor)
            if existing is not None:
                return CreateResult(existing, created=False)
        policy = self._policy_for(new, policy_id)
        now = self._clock.now()
        change = engine.open_incident(self._store.allocate_id(now), new, policy, now, actor, self._base_url)
        try:
            self._store.commit(change)
        except DedupKeyTaken:
            # Lost a race with another trigger carrying the same key: join the winner.
            assert new.dedup_key is not None
            existing = self._existing_for(new.dedup_key, actor)
            if existing is None:
                raise Conflict("dedup_key is being claimed concurrently; retry", field="dedup_key") from None
            return CreateResult(existing, created=False)
        self._dispatcher.after_commit(change)
        return CreateResult(change.incident, created=True)

    def get_incident(self, incident_id: str) -> Incident:
        incident = self._store.get(incident_id)
        if incident is None:
            raise NotFound(f"incident {incident_id} not found", id=incident_id)
        return incident

    def list_incidents(self, flt: IncidentFilter, limit: int, cursor: str | None) -> Page[Incident]:
        return self._store.list_page(flt, limit, cursor)

    def timeline(self, incident_id: str, limit: int, cursor: str | None) -> Page[TimelineEvent]:
        return self._known(incident_id, self._store.timeline(incident_id, limit, cursor))

    def escalations(self, incident_id: str, limit: int, cursor: str | None) -> Page[EscalationRecord]:
        return self._known(incident_id, self._store.escalations(incident_id, limit, cursor))

    def notifications(self, incident_id: str, limit: int, cursor: str | None) -> Page[Notification]:
        return self._known(incident_id, self._store.notifications(incident_id, limit, cursor))

    def _known(self, incident_id: str, page: Page[T]) -> Page[T]:
        """Items of an incident; only an empty page costs the read that tells "none" from "no incident"."""
        if not page.items:
            self.get_incident(incident_id)
        return page

    # --- lifecycle ----------------------------------------------------------------------------

    def acknowledge_incident(self, incident_id: str, by: str) -> Incident:
        return self._apply(incident_id, lambda i, now: engine.acknowledge(i, by, now))

    def snooze_incident(self, incident_id: str, minutes: int, by: str) -> Incident:
        return self._apply(incident_id, lambda i, now: engine.snooze(i, minutes, by, now))

    def escalate_incident(self, incident_id: str, by: str) -> Incident:
        def decide(incident: Incident, now: datetime) -> Change:
            policy = None
            if incident.escalation is None:
                policy = self._select(incident.severity, incident.service, incident.team)
            return engine.escalate(incident, by, now, policy, self._base_url)

        return self._apply(incident_id, decide)

    def resolve_incident(self, incident_id: str, by: str, note: str | None) -> Incident:
        return self._apply(incident_id, lambda i, now: engine.resolve(i, by, note, now, self._base_url))

    def cancel_incident(self, incident_id: str, by: str, reason: str | None) -> Incident:
        return self._apply(incident_id, lambda i, now: engine.cancel(i, by, reason, now, self._base_url))

    def add_note(self, incident_id: str, text: str, by: str) -> TimelineEvent:
        incident = self.get_incident(incident_id)
        event = engine.add_note(incident, text, by, self._clock.now())
        self._store.append_event(event, incident.version)
        return event

    # --- internals ------------------------------------------------------------------------------

    def _apply(self, incident_id: str, decide: Callable[[Incident, datetime], Change]) -> Incident:
        for _ in range(MAX_ATTEMPTS):
            incident = self.get_incident(incident_id)
            change = decide(incident, self._clock.now())
            try:
                self._store.commit(change)
            except VersionConflict:
                continue  # someone else changed it: decide again on the fresh state
            self._dispatcher.after_commit(change)
            return change.incident
        raise Conflict("the incident kept changing while this request ran; try again", id=incident_id)

    def _existing_for(self, dedup_key: str, actor: str) -> Incident | None:
        incident_id = self._store.active_incident_for_dedup_key(dedup_key)
        incident = self._store.get(incident_id) if incident_id else None
        if incident is not None:
            self._store.append_event(
                TimelineEvent(
                    incident.id, self._clock.now(), "deduplicated", actor, {"dedup_key": dedup_key}
                ),
                incident.version,
            )
        return incident

    def _policy_for(self, new: engine.NewIncident, policy_id: str | None) -> Policy | None:
        if policy_id is None:
            return self._select(new.severity, new.service, new.team)
        policy = self._policies.get(policy_id)
        if policy is None or not policy.enabled:
            raise InvalidInput("policy_id", f"no enabled escalation policy has id {policy_id}")
        return policy

    def _select(self, severity: Severity, service: str | None, team: str | None) -> Policy | None:
        policies, default_id = self._policies.routing_view()  # one read for policies and default
        return select_policy(policies, severity, service, team, default_id)
