"""Domain entities: the incident with its escalation cursor, and what a state change writes."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from incident_engine.domain.lifecycle import Status
from incident_engine.domain.severity import Severity


@dataclass(frozen=True)
class EscalationCursor:
    """Where an incident is in its policy. Kept on the incident item itself.

    ``policy`` is the snapshot taken when escalation started. ``level``/``loop`` name the
    last level fired (``level`` is None before the first); ``next_level``/``next_loop`` the
    one armed, or None when the policy is exhausted or paging is stopped.
    """

    policy: dict[str, Any]
    level: int | None = None
    loop: int = 0
    next_level: int | None = 0
    next_loop: int = 0
    record_seq: int = 0  # last escalation-record number handed out

    @property
    def pending_seq(self) -> int | None:
        """The record of the armed step: arming always hands out the newest number."""
        return self.record_seq if self.next_level is not None else None

    @property
    def policy_id(self) -> str:
        return str(self.policy["id"])

    @property
    def level_count(self) -> int:
        return len(self.policy["levels"])


@dataclass(frozen=True)
class ScheduledPage:
    """A page a contact's own ``delay_minutes`` holds back: its outbox row waits as ``scheduled``.

    Listed on the incident item so that the change that stops paging (acknowledge, snooze,
    resolve, cancel) retires it in its own transaction, and so that a level firing again never
    schedules the same address twice. Only a page still listed here may be sent.
    """

    dedup_id: str
    channel: str
    address: str
    due_at: datetime


@dataclass(frozen=True)
class RepeatFold:
    """An open run of repeated alerts: one timeline event that every repeat rewrites (its count,
    last time and latest summary) instead of appending an event of its own, so an alert storm
    grows neither the timeline nor the item. Any other change closes the run; the next repeat
    opens a new one after it. What is kept of a run: how many, the first and last time, and the
    last alert (its payload also on the incident as ``latest_alert``); the repeats in between
    are counted, not stored one by one. While the run is open it lives on the incident item only
    (a repeat is then one conditional write, see ``engine.repeat_event``); the change that
    closes it writes its event to the timeline."""

    first_at: datetime
    version: int  # the incident version the opening change made: with first_at, names the event
    count: int
    actor: str = "alerts"  # who sent the run's alerts (the integration), the event's actor


@dataclass(frozen=True)
class Incident:
    id: str
    title: str
    severity: Severity
    status: Status
    created_at: datetime
    updated_at: datetime
    description: str | None = None
    service: str | None = None
    service_id: str | None = None  # the service the incident is about (alerts always have one)
    team: str | None = None
    source: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    dedup_key: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    resolution_note: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    snoozed_until: datetime | None = None
    escalation: EscalationCursor | None = None
    # Fencing token and due time of the one timer that may act on this incident. Any change
    # that arms, advances, stops or restarts escalation replaces the token.
    token: str | None = None
    due_at: datetime | None = None
    # Everyone paged so far, as (channel, recipient), so resolution notices reach them all.
    paged: tuple[tuple[str, str], ...] = ()
    # Delayed contacts of fired levels, not reached yet (their rows are ``scheduled``).
    scheduled: tuple[ScheduledPage, ...] = ()
    version: int = 1
    # Alerts in (issue 9): how many alerts this incident gathered, the latest one, and where
    # routing sent it. ``alert_count`` is 0 for incidents a person opened through the API.
    alert_count: int = 0
    last_seen_at: datetime | None = None
    latest_alert: dict[str, Any] | None = None  # the latest alert's payload, bounded by the parser
    previous_incident_id: str | None = None  # the last incident of this dedup key, closed before
    suppressed: bool = False  # recorded but never paged (a routing rule or a maintenance window)
    assignees: tuple[str, ...] = ()
    runbooks: tuple[dict[str, Any], ...] = ()  # {url, title, checklist}
    repeats: RepeatFold | None = None  # the open run of repeated alerts, if the last change was one


@dataclass(frozen=True)
class TimelineEvent:
    incident_id: str
    at: datetime
    type: str
    actor: str
    data: dict[str, Any] = field(default_factory=dict)
    # Set on a folded run of repeats: the store writes it at the run's one key, once, when the
    # run closes (in the closing change's transaction); while open the incident item holds it.
    fold: RepeatFold | None = None


@dataclass(frozen=True)
class EscalationRecord:
    incident_id: str
    seq: int
    level: int
    loop: int
    status: str  # pending | executed | cancelled
    scheduled_at: datetime
    targets: tuple[dict[str, str], ...]
    executed_at: datetime | None = None
    cancelled_at: datetime | None = None
    # Who the targets reached when the level fired, and why (layer, override, team member).
    recipients: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Notification:
    """One outbox row: a message to one recipient, published after the commit that wrote it."""

    incident_id: str
    dedup_id: str
    kind: str  # page | resolution | cancellation
    recipient: str
    channel: str
    subject: str
    message: str
    attributes: dict[str, str]
    created_at: datetime
    level: int | None = None
    loop: int | None = None
    # pending | sent | superseded (a terminal change came first) | parked (kept failing);
    # scheduled (a delayed contact, due at ``due_at``) until it is released (pending) or retired
    status: str = "pending"
    sent_at: datetime | None = None
    attempts: int = 0  # failed publish attempts so far
    last_error: str | None = None
    delivery_attempts: int = 0  # webhook POSTs the sender made
    last_http_status: int | None = None
    due_at: datetime | None = None  # a delayed contact's page: when it is to be sent


@dataclass(frozen=True)
class TimerMessage:
    """A timer of the incident's escalation (``page`` None), or of one delayed page (``page`` is
    its row's dedup id). Both travel the same queue, hop the same way and are re-armed by the
    reconciler from the same DueIndex."""

    incident_id: str
    token: str
    due_at: datetime
    page: str | None = None


@dataclass
class Change:
    """Everything one state change writes, committed as one transaction.

    ``expected_version`` is the incident version the change was computed from (None for a
    new incident); the commit is conditional on it, so concurrent writers cannot both win.
    """

    incident: Incident
    expected_version: int | None
    events: list[TimelineEvent] = field(default_factory=list)
    records: list[EscalationRecord] = field(default_factory=list)
    outbox: list[Notification] = field(default_factory=list)
    timer: TimerMessage | None = None
    # Unsent page rows that a terminal change retires, so no page follows the closure notice.
    superseded: list[Notification] = field(default_factory=list)
    # Delayed pages: timers for rows this change scheduled; rows it releases (scheduled -> pending,
    # published after the commit); and dedup ids of scheduled rows it retires (-> superseded).
    page_timers: list[TimerMessage] = field(default_factory=list)
    released: list[Notification] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    # The nonce of this request's claim on the incident's dedup key (bound to it on create).
    dedup_claim: str | None = None
    release_dedup_key: bool = False
    # The claimed Idempotency-Key item this create answers, and the answer's status code.
    idempotency: tuple[str, str, int] | None = None  # (key hash, nonce, status code)
    # Bumped when the same change is sent again after DynamoDB cancelled it: a new request
    # then gets a new ClientRequestToken (a token names one request, byte for byte).
    attempt: int = 0
    # Names this change apart from a concurrent one computed from the same version in the same
    # microsecond (two repeat alerts): stored on the item, it tells "ours committed" from "theirs".
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
