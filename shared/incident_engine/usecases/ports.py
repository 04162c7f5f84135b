"""What the use cases need from the outside world. The store and adapters implement these."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, Protocol, TypeVar

from incident_engine.domain.model import (
    Change,
    EscalationRecord,
    Incident,
    Notification,
    TimelineEvent,
    TimerMessage,
)
from incident_engine.domain.policy import Policy


class VersionConflict(Exception):
    """The incident changed after it was read; reload and decide again."""


class TransientConflict(VersionConflict):
    """DynamoDB cancelled the change for contention or throttling; nothing was written."""


class DedupKeyTaken(Exception):
    """An active incident (or a create still under way) already holds this dedup key."""


class IdempotencyKeyTaken(Exception):
    """Another request claimed this Idempotency-Key first."""


@dataclass(frozen=True)
class DedupHolder:
    incident_id: str | None  # None while the holder's create is still under way
    claimed_at: datetime


@dataclass(frozen=True)
class IdempotencyRecord:
    request_hash: str
    incident_id: str | None  # None while the first request is still under way
    status_code: int | None


@dataclass(frozen=True)
class StoredCredential:
    kind: str  # "integration" | "token"
    name: str
    service_id: str | None
    key_id: str  # the integration key's id, or the API token's
    revoked: bool
    scopes: tuple[str, ...] = ()  # an API token's
    team_ids: tuple[str, ...] | None = None  # an API token's teams; None: every team
    expires_at: datetime | None = None


class Signer(Protocol):
    """MACs under one secret. `purpose` separates uses (list cursors, ack links), so a signature
    made for one purpose never verifies for another."""

    def sign(self, purpose: str, payload: bytes) -> bytes: ...
    def verify(self, purpose: str, payload: bytes, signature: bytes) -> bool: ...


class Clock(Protocol):
    def now(self) -> datetime: ...


@dataclass(frozen=True)
class IncidentFilter:
    status: str | None = None  # a Status value, or ACTIVE for every status that is not terminal
    severity: str | None = None
    service: str | None = None
    team: str | None = None
    teams: frozenset[str] | None = None  # a token held to some teams: only theirs


ACTIVE = "active"

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class ReconcilerRun:
    """When the reconciler last ran, and what that run repaired."""

    at: datetime
    timers_rearmed: int
    notifications_republished: int


class IncidentStore(Protocol):
    def allocate_id(self, now: datetime) -> str: ...
    def get(self, incident_id: str) -> Incident | None: ...
    def commit(self, change: Change) -> None: ...
    def active_incident_for_dedup_key(self, dedup_key: str) -> str | None: ...
    def dedup_holder(self, dedup_key: str) -> DedupHolder | None: ...
    def dedup_record(self, dedup_key: str) -> tuple[DedupHolder | None, str | None]: ...
    def claim_dedup_key(self, dedup_key: str, nonce: str, now: datetime, stale_after: timedelta) -> None: ...
    def release_dedup_claim(self, dedup_key: str, nonce: str) -> None: ...
    def claim_idempotency_key(
        self,
        key_hash: str,
        request_hash: str,
        nonce: str,
        now: datetime,
        ttl: timedelta,
        stale_after: timedelta,
    ) -> IdempotencyRecord | None: ...
    def idempotency_record(self, key_hash: str) -> IdempotencyRecord | None: ...
    def release_idempotency_claim(self, key_hash: str, nonce: str) -> None: ...
    def bind_idempotency_key(self, key_hash: str, nonce: str, incident_id: str, status_code: int) -> None: ...
    def append_event(self, event: TimelineEvent, after_version: int) -> None: ...
    def list_page(self, flt: IncidentFilter, limit: int, cursor: str | None) -> Page[Incident]: ...
    def timeline(self, incident_id: str, limit: int, cursor: str | None) -> Page[TimelineEvent]: ...
    def escalations(self, incident_id: str, limit: int, cursor: str | None) -> Page[EscalationRecord]: ...
    def notifications(self, incident_id: str, limit: int, cursor: str | None) -> Page[Notification]: ...
    def mark_all_sent(self, notifications: list[Notification], at: datetime) -> None: ...
    def record_publish_failures(
        self, failures: list[tuple[Notification, str, bool]], at: datetime
    ) -> list[Notification]: ...
    def unsent_pages(self, incident_id: str) -> list[Notification]: ...
    def supersede(self, notifications: list[Notification]) -> None: ...
    def overdue(self, cutoff: datetime, limit: int) -> list[TimerMessage]: ...
    def outbox_row(self, incident_id: str, dedup_id: str) -> Notification | None: ...
    def pending_notifications(self, cutoff: datetime, limit: int) -> list[Notification]: ...
    def record_reconciler_run(self, run: ReconcilerRun) -> bool: ...
    def last_reconciler_run(self) -> ReconcilerRun | None: ...


class PolicyStore(Protocol):
    def create(self, policy: Policy, make_default: bool) -> None: ...
    def get(self, policy_id: str) -> Policy | None: ...
    def list_all(self, include_disabled: bool) -> list[Policy]: ...
    def routing_view(self) -> tuple[list[Policy], str | None]: ...
    def replace(self, policy: Policy, expected_version: int, make_default: bool | None) -> None: ...
    def default_policy_id(self) -> str | None: ...


class TimerQueue(Protocol):
    def send(self, message: TimerMessage, delay_seconds: int) -> None: ...


@dataclass(frozen=True)
class PublishFailure:
    notification: Notification
    error: str
    permanent: bool  # SNS said the request itself is at fault: retrying the same will not help


@dataclass(frozen=True)
class PublishResult:
    accepted: list[Notification]
    failed: list[PublishFailure]


class NotificationPublisher(Protocol):
    def publish_all(self, notifications: list[Notification]) -> PublishResult:
        """Publish each; say which SNS accepted (the rest stay pending for the reconciler)."""
        ...


class SubscriptionRefused(Exception):
    """SNS refused to subscribe the address itself (bad input, not a passing failure)."""


class SubscriptionUnavailable(Exception):
    """SNS could not be asked now (throttled, unreachable); the same request may work later."""


class ContactSubscriptions(Protocol):
    """A user's e-mail and SMS contact methods as subscriptions to the notifications topic."""

    def subscribe(self, channel: str, address: str) -> str: ...
    def status(self, arn: str) -> str: ...
    def unsubscribe(self, arn: str) -> bool: ...
