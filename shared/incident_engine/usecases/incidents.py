"""Incident use cases: create, read, list, and every lifecycle action."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from incident_engine.domain import engine
from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.keys import dedup_scope
from incident_engine.domain.lifecycle import TERMINAL
from incident_engine.domain.links import LinkMaker
from incident_engine.domain.model import Change, EscalationRecord, Incident, Notification, TimelineEvent
from incident_engine.domain.policy import Policy, select_policy
from incident_engine.domain.services import Service
from incident_engine.domain.severity import Severity
from incident_engine.domain.targets import ConfigView
from incident_engine.usecases.dispatch import Dispatcher, back_off
from incident_engine.usecases.paging import PagingConfig
from incident_engine.usecases.ports import (
    Clock,
    DedupKeyTaken,
    IdempotencyKeyTaken,
    IncidentFilter,
    IncidentStore,
    Page,
    PolicyStore,
    TransientConflict,
    VersionConflict,
)

T = TypeVar("T")


class ServiceLookup(Protocol):
    def get(self, service_id: str) -> Service | None: ...


MAX_ATTEMPTS = 5  # optimistic retries when another writer changed the incident first


CLAIM_STALE = timedelta(seconds=30)  # a claim whose create never committed is taken over after this
CLAIM_POLLS = 100
CLAIM_POLL_SECONDS = 0.03
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True)
class CreateResult:
    incident: Incident
    created: bool  # False when the dedup key matched an incident that is still active
    replayed: bool = False  # an Idempotency-Key retry: the first answer, nothing new done


@dataclass(frozen=True)
class IdempotencyRequest:
    key_hash: str  # of the caller and the key, so two callers' keys never meet
    request_hash: str  # of the request body, so a reused key with another body is refused

    @staticmethod
    def of(caller: str, key: str, body: str) -> IdempotencyRequest:
        return IdempotencyRequest(
            hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest(),
            hashlib.sha256(body.encode()).hexdigest(),
        )


class IncidentService:
    def __init__(
        self,
        store: IncidentStore,
        policies: PolicyStore,
        dispatcher: Dispatcher,
        clock: Clock,
        base_url: str | None,
        services: ServiceLookup | None = None,
        action_links: LinkMaker | None = None,
        paging: PagingConfig | None = None,
    ) -> None:
        self._action_links = action_links
        self._paging = paging
        self._store = store
        self._policies = policies
        self._services = services
        self._dispatcher = dispatcher
        self._clock = clock
        self._base_url = base_url

    # --- create and read ------------------------------------------------------------------

    def create_incident(
        self,
        new: engine.NewIncident,
        policy_id: str | None,
        actor: str,
        idempotency: IdempotencyRequest | None = None,
        join: bool = True,
        teams: frozenset[str] | None = None,
    ) -> CreateResult:
        """Open an incident, or join the active one holding ``new.dedup_key``.

        With ``teams`` (a token held to some teams) the incident must be one of those teams', and
        an active holder of the dedup key that is another team's is neither joined nor named.

        With an ``idempotency`` key, a retry of the same request gets the first answer back and
        pages nobody again; the key is claimed before anything else is written. With ``join``
        False an active holder raises ``DedupKeyTaken`` instead: alert ingest then appends the
        alert to it (counted, on its timeline) rather than joining silently.
        """
        claim: str | None = None
        if idempotency is not None:
            replay, claim = self._claim_idempotency(idempotency)
            if replay is not None:
                return replay
        try:
            return self._create(new, policy_id, actor, idempotency, claim, join, teams)
        except Exception:
            if idempotency is not None and claim is not None:
                self._store.release_idempotency_claim(idempotency.key_hash, claim)
            raise

    def _create(
        self,
        new: engine.NewIncident,
        policy_id: str | None,
        actor: str,
        idempotency: IdempotencyRequest | None,
        idempotency_claim: str | None,
        join: bool = True,
        teams: frozenset[str] | None = None,
    ) -> CreateResult:
        new, service = self._with_service(new)
        if teams is not None and new.team not in teams:
            raise InvalidInput("team", "this token opens incidents of its own teams only: name one")
        dedup_claim: str | None = None
        scope = dedup_scope(new.service_id, new.dedup_key) if new.dedup_key else None
        if new.dedup_key and scope:
            joined, dedup_claim = self._join_or_claim(scope, new.dedup_key, actor, join, teams)
            if joined is not None:
                if idempotency is not None and idempotency_claim is not None:
                    self._store.bind_idempotency_key(idempotency.key_hash, idempotency_claim, joined.id, 200)
                return CreateResult(joined, created=False)
        try:
            policy = self._policy_for(new, policy_id, service)
            now = self._clock.now()
            # The number is drawn only once the dedup key is ours: a lost race burns none.
            incident_id = self._store.allocate_id(now)
            snapshot = policy.snapshot() if policy else {}
            wanted = policy is not None or bool(new.notify)
            view = self._view(snapshot, [0] if policy else [], now, new.notify) if wanted else None
            change = engine.open_incident(
                incident_id, new, policy, now, actor, self._base_url, dedup_claim, self._action_links, view
            )
            if idempotency is not None and idempotency_claim is not None:
                change.idempotency = (idempotency.key_hash, idempotency_claim, 201)
            self._commit_new(change)
        except Exception:
            if scope and dedup_claim:
                self._store.release_dedup_claim(scope, dedup_claim)
            raise
        self._dispatcher.after_commit(change)
        return CreateResult(change.incident, created=True)

    def _commit_new(self, change: Change) -> None:
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._store.commit(change)
                return
            except TransientConflict:
                back_off(attempt)  # nothing was written: the same change (same number) again
                change.attempt += 1
            except (DedupKeyTaken, IdempotencyKeyTaken):
                # Our claim went stale and was taken over while we worked: let the client retry.
                raise Conflict(
                    "the create took too long and lost its claim; retry", field="dedup_key"
                ) from None
        raise Conflict("the store is too busy to open the incident now; retry", id=change.incident.id)

    def _join_or_claim(
        self, scope: str, dedup_key: str, actor: str, join: bool = True, teams: frozenset[str] | None = None
    ) -> tuple[Incident | None, str | None]:
        """The active incident holding the key (joined), or a fresh claim on it (its nonce)."""
        for _ in range(CLAIM_POLLS):
            holder = self._store.dedup_holder(scope)
            now = self._clock.now()
            if holder is not None and holder.incident_id is not None and teams is not None:
                held = self._store.get(holder.incident_id)
                if held is not None and held.status not in TERMINAL and held.team not in teams:
                    # Neither joined (its timeline is not this token's to write) nor named.
                    raise Conflict("dedup_key is in use; choose another", field="dedup_key")
            if holder is not None and holder.incident_id is not None:
                if not join:
                    active = self._store.get(holder.incident_id)
                    if active is not None and active.status not in TERMINAL:
                        raise DedupKeyTaken(dedup_key)
                    existing = None
                else:
                    existing = self._existing_for(holder.incident_id, dedup_key, actor)
                if existing is not None:
                    return existing, None
            if holder is None or holder.incident_id is not None or now - holder.claimed_at > CLAIM_STALE:
                nonce = secrets.token_hex(8)
                try:
                    self._store.claim_dedup_key(scope, nonce, now, CLAIM_STALE)
                except DedupKeyTaken:
                    continue  # another trigger claimed it first: join it on the next look
                return None, nonce
            time.sleep(CLAIM_POLL_SECONDS)  # another create holds the key and is committing
        raise Conflict("dedup_key is being claimed concurrently; retry", field="dedup_key")

    def _claim_idempotency(self, request: IdempotencyRequest) -> tuple[CreateResult | None, str | None]:
        nonce = secrets.token_hex(8)
        for _ in range(CLAIM_POLLS):
            held = self._store.claim_idempotency_key(
                request.key_hash, request.request_hash, nonce, self._clock.now(), IDEMPOTENCY_TTL, CLAIM_STALE
            )
            if held is None:
                return None, nonce
            if held.request_hash != request.request_hash:
                raise InvalidInput(
                    "Idempotency-Key", "this Idempotency-Key was already used with a different request"
                )
            if held.incident_id is not None:
                incident = self.get_incident(held.incident_id)
                return CreateResult(incident, created=held.status_code == 201, replayed=True), None
            time.sleep(CLAIM_POLL_SECONDS)  # the first request is still being answered
        raise Conflict(
            "a request with this Idempotency-Key is still being processed; retry", field="Idempotency-Key"
        )

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
            snapshot = (
                incident.escalation.policy if incident.escalation else policy.snapshot() if policy else None
            )
            levels = range(len(snapshot["levels"])) if snapshot else []
            view = self._view(snapshot, levels, now) if snapshot else None
            return engine.escalate(incident, by, now, policy, self._base_url, self._action_links, view)

        return self._apply(incident_id, decide)

    def resolve_incident(
        self,
        incident_id: str,
        by: str,
        note: str | None,
        events: tuple[tuple[str, dict[str, Any]], ...] = (),
    ) -> Incident:
        return self._apply(
            incident_id,
            lambda i, now: engine.resolve(i, by, note, now, self._base_url, self._unsent_pages(i), events),
        )

    def cancel_incident(self, incident_id: str, by: str, reason: str | None) -> Incident:
        return self._apply(
            incident_id,
            lambda i, now: engine.cancel(i, by, reason, now, self._base_url, self._unsent_pages(i)),
        )

    def _unsent_pages(self, incident: Incident) -> list[Notification]:
        # Only an incident that ever paged can have a page row left pending by a crash.
        return (
            self._store.unsent_pages(incident.id)
            if incident.paged and incident.status not in TERMINAL
            else []
        )

    def append_alert(self, incident: Incident, alert: dict[str, Any], summary: str, by: str) -> Incident:
        """A repeat alert on ``incident``: one transaction conditional on its version. Raises
        ``VersionConflict`` (someone changed it: decide again) or ``InvalidTransition`` (closed)."""
        change = engine.append_alert(incident, alert, summary, by, self._clock.now())
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._store.commit(change)
            except TransientConflict:
                back_off(attempt)  # nothing was written: the same change again
                change.attempt += 1
                continue
            self._dispatcher.after_commit(change)
            return change.incident
        raise Conflict("the store is too busy to record the alert now; retry", id=incident.id)

    def add_note(self, incident_id: str, text: str, by: str) -> TimelineEvent:
        incident = self.get_incident(incident_id)
        event = engine.add_note(incident, text, by, self._clock.now())
        self._store.append_event(event, incident.version)
        return event

    # --- internals ------------------------------------------------------------------------------

    def _apply(self, incident_id: str, decide: Callable[[Incident, datetime], Change]) -> Incident:
        for attempt in range(MAX_ATTEMPTS):
            incident = self.get_incident(incident_id)
            change = decide(incident, self._clock.now())
            try:
                self._store.commit(change)
            except TransientConflict:
                back_off(attempt)  # DynamoDB cancelled it for contention: decide again
                continue
            except VersionConflict:
                continue  # someone else changed it: decide again on the fresh state
            self._dispatcher.after_commit(change)
            return change.incident
        raise Conflict("the incident kept changing while this request ran; try again", id=incident_id)

    def _existing_for(self, incident_id: str, dedup_key: str, actor: str) -> Incident | None:
        incident = self._store.get(incident_id)
        if incident is None or incident.status in TERMINAL:
            return None
        self._store.append_event(
            TimelineEvent(incident.id, self._clock.now(), "deduplicated", actor, {"dedup_key": dedup_key}),
            incident.version,
        )
        return incident

    def _view(
        self,
        snapshot: dict[str, Any],
        levels: Iterable[int],
        now: datetime,
        extra: tuple[dict[str, Any], ...] = (),
    ) -> ConfigView | None:
        return self._paging.view_for(snapshot, levels, now, extra) if self._paging else None

    def _with_service(self, new: engine.NewIncident) -> tuple[engine.NewIncident, Service | None]:
        """The incident as its service shapes it: the service's name, and its team unless given."""
        if new.service_id is None:
            return new, None
        service = self._services.get(new.service_id) if self._services else None
        if service is None or not service.enabled:
            raise InvalidInput("service_id", f"no enabled service has id {new.service_id}")
        return replace(new, service=new.service or service.name, team=new.team or service.team_id), service

    def usable_policy(self, policy_id: str) -> bool:
        """Whether an incident can escalate on this policy (it exists and is enabled)."""
        policy = self._policies.get(policy_id)
        return policy is not None and policy.enabled

    def _policy_for(
        self, new: engine.NewIncident, policy_id: str | None, service: Service | None = None
    ) -> Policy | None:
        if policy_id is None and service is not None and service.policy_id:
            # The service's own policy comes first; a disabled one falls back to routing.
            chosen = self._policies.get(service.policy_id)
            if chosen is not None and chosen.enabled:
                return chosen
        if policy_id is None:
            return self._select(new.severity, new.service, new.team)
        policy = self._policies.get(policy_id)
        if policy is None or not policy.enabled:
            raise InvalidInput("policy_id", f"no enabled escalation policy has id {policy_id}")
        return policy

    def _select(self, severity: Severity, service: str | None, team: str | None) -> Policy | None:
        policies, default_id = self._policies.routing_view()  # one read for policies and default
        return select_policy(policies, severity, service, team, default_id)
