"""Request and response shapes. They generate the OpenAPI document and validate every request."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    model_validator,
)

from incident_engine.domain.engine import sla_deadlines
from incident_engine.domain.lifecycle import allowed_actions
from incident_engine.domain.model import EscalationRecord, Incident, Notification, TimelineEvent
from incident_engine.domain.policy import Level, Policy, Repeat, Target
from incident_engine.domain.severity import Severity
from incident_engine.domain.text import (
    BLOCK_PATTERN,
    EMAIL_PATTERN,
    LINE_PATTERN,
    NAME_PATTERN,
    TEXT_PATTERN,
    block_problem,
    line_problem,
)
from incident_engine.domain.timefmt import to_iso
from incident_engine.domain.urls import UrlRefused, check_url
from incident_engine.settings import get_settings


def _one_line(value: str) -> str:
    problem = line_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def _free_text(value: str) -> str:
    problem = block_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# The document states each rule as a pattern (the validators above give the reasons).
AS_NAME = Field(json_schema_extra={"pattern": NAME_PATTERN})
AS_LINE = Field(json_schema_extra={"pattern": LINE_PATTERN})
AS_BLOCK = Field(json_schema_extra={"pattern": BLOCK_PATTERN})
AS_TEXT = Field(json_schema_extra={"pattern": TEXT_PATTERN})

# Every string a client sends is bounded, and one-line strings carry no control, invisible or
# direction-changing characters (they end up in pages, subjects and logs).
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_one_line),
    AS_NAME,
]
Actor = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
    AS_NAME,
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_one_line),
    AS_NAME,
]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        max_length=254,
        pattern=EMAIL_PATTERN,
    ),
]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(_one_line), AS_LINE]
LabelValue = Annotated[str, StringConstraints(max_length=256), AfterValidator(_one_line), AS_LINE]
FreeText = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_free_text), AS_BLOCK]
Minutes = Annotated[float, Field(strict=True)]  # a JSON number: never "5", never true


class StatusFilter(StrEnum):
    """A status, or `active`: every status that is not terminal (one sparse index serves it)."""

    ACTIVE = "active"
    OPEN = "open"
    ESCALATING = "escalating"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


MAX_URL_LENGTH = 2_048
# A wait is 0 (at once) or at least 3 seconds: 1e-300 minutes is a typo, not a policy.
MIN_DELAY_MINUTES = 0.05
MAX_LEVELS = 10
MAX_TARGETS_PER_LEVEL = 5  # keeps one fire (and one resolution notice) inside one transaction


# Validators are built on first use, not at import (as in config_schemas.py): a container builds
# only those of the routes it serves.
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


class IncidentCreate(_In):
    title: Title
    severity: Severity
    description: FreeText | None = None
    service: Name | None = None
    service_id: Name | None = Field(
        default=None,
        description="A service from /services: its policy and team apply, its name is the service",
    )
    team: Name | None = None
    source: Name | None = None
    dedup_key: (
        Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_one_line), AS_LINE]
        | None
    ) = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=50)] = Field(default_factory=dict)
    policy_id: Name | None = None


class ActorIn(_In):
    by: Actor | None = None


class SnoozeIn(_In):
    minutes: StrictInt = Field(ge=1, le=10_080, description="How long to pause paging, 1 minute to 7 days")
    by: Actor | None = None


class ResolveIn(_In):
    by: Actor | None = None
    resolution_note: (
        Annotated[str, StringConstraints(max_length=5_000), AfterValidator(_free_text), AS_BLOCK] | None
    ) = None


class CancelIn(_In):
    by: Actor | None = None
    reason: (
        Annotated[str, StringConstraints(max_length=5_000), AfterValidator(_free_text), AS_BLOCK] | None
    ) = None


class NoteIn(_In):
    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000),
        AfterValidator(_free_text),
        AS_TEXT,
    ]
    by: Actor | None = None


ConfigId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class UserTargetIn(_In):
    """A user from /users (``user_id``: their contact methods), or a bare ``email`` address."""

    type: Literal["user"]
    email: Email | None = None
    user_id: ConfigId | None = None

    @model_validator(mode="after")
    def _one_way(self) -> UserTargetIn:
        if (self.email is None) == (self.user_id is None):
            raise ValueError("give either user_id (a user from /users) or email, not both")
        return self

    def to_target(self) -> Target:
        if self.user_id is not None:
            return Target("user", self.user_id, "user_id")
        assert self.email is not None
        return Target("user", self.email.lower())


class TeamTargetIn(_In):
    type: Literal["team"]
    team_id: ConfigId = Field(description="A team from /teams: every enabled member is paged")

    def to_target(self) -> Target:
        return Target("team", self.team_id)


class ScheduleTargetIn(_In):
    type: Literal["schedule"]
    schedule_id: ConfigId = Field(
        description="A schedule from /schedules: whoever is on call when the level fires"
    )

    def to_target(self) -> Target:
        return Target("schedule", self.schedule_id)


def _bounded_url(url: AnyHttpUrl) -> AnyHttpUrl:
    # Measured after normalisation: each non-ASCII character becomes 6 bytes of %-escapes.
    if len(str(url)) > MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {MAX_URL_LENGTH} characters once encoded")
    try:
        check_url(str(url), allow_private=get_settings().allow_private_targets)
    except UrlRefused as exc:
        raise ValueError(str(exc)) from None
    return url


class WebhookTargetIn(_In):
    type: Literal["webhook"]
    webhook_id: Name | None = Field(default=None, description="A webhook registered with POST /webhooks")
    url: Any = Field(default=None, description="Retired: register the URL with POST /webhooks")

    @model_validator(mode="after")
    def _registered(self) -> WebhookTargetIn:
        if self.url is not None:
            raise ValueError(
                "inline webhook URLs are retired: register the URL with POST /webhooks (it gets a signing "
                'secret) and target it as {"type": "webhook", "webhook_id": ...}'
            )
        if not self.webhook_id:
            raise ValueError("webhook_id is required")
        return self


TargetIn = Annotated[
    UserTargetIn | TeamTargetIn | ScheduleTargetIn | WebhookTargetIn, Field(discriminator="type")
]


class LevelIn(_In):
    delay_minutes: Minutes = Field(
        ge=0,
        le=10_080,
        description="Wait after the previous level fired (level 0: after the trigger). Fractions allowed.",
    )
    targets: Annotated[list[TargetIn], Field(min_length=1, max_length=MAX_TARGETS_PER_LEVEL)]

    @model_validator(mode="after")
    def _sane_delay(self) -> LevelIn:
        if 0 < self.delay_minutes < MIN_DELAY_MINUTES:
            raise ValueError(f"delay_minutes must be 0 or at least {MIN_DELAY_MINUTES} (3 seconds)")
        return self


class RepeatIn(_In):
    max_repeats: StrictInt = Field(ge=1, le=20)
    interval_minutes: Minutes = Field(ge=MIN_DELAY_MINUTES, le=10_080)


class PolicyIn(_In):
    name: Name
    levels: Annotated[list[LevelIn], Field(min_length=1, max_length=MAX_LEVELS)]
    repeat: RepeatIn | None = None
    severities: Annotated[list[Severity], Field(max_length=len(Severity))] | None = None
    service: Name | None = None
    team: Name | None = None
    is_default: StrictBool = False
    stop_on_ack: StrictBool = Field(
        default=True, description="false: keep paging the remaining levels after an acknowledge"
    )
    fallback: Annotated[list[TargetIn], Field(max_length=MAX_TARGETS_PER_LEVEL)] = Field(
        default_factory=list,
        description="Paged when a level reaches nobody; the policy then moves on at once",
    )

    def to_domain(self) -> Policy:
        return Policy(
            id="",
            name=self.name,
            levels=tuple(
                Level(
                    lv.delay_minutes,
                    tuple(_target(t) for t in lv.targets),
                )
                for lv in self.levels
            ),
            repeat=Repeat(self.repeat.max_repeats, self.repeat.interval_minutes) if self.repeat else None,
            stop_on_ack=self.stop_on_ack,
            fallback=tuple(_target(t) for t in self.fallback),
            severities=tuple(dict.fromkeys(self.severities or ())),
            service=self.service,
            team=self.team,
        )


def _target(t: UserTargetIn | TeamTargetIn | ScheduleTargetIn | WebhookTargetIn) -> Target:
    if isinstance(t, WebhookTargetIn):
        return Target("webhook", str(t.webhook_id))
    return t.to_target()


# --- responses ---------------------------------------------------------------------------------


def _t(at: Any) -> str | None:
    return to_iso(at) if at else None


class EscalationOut(_Out):
    policy_id: str
    policy_name: str
    level: int | None = Field(description="Last level fired (0-based); null before the first")
    loop: int
    next_level: int | None
    next_at: str | None


class SlaOut(_Out):
    response_minutes: int | None
    resolution_minutes: int | None
    ack_due_at: str | None
    resolve_due_at: str | None


class IncidentOut(_Out):
    id: str
    title: str
    description: str | None
    severity: Severity
    status: str
    service: str | None
    service_id: str | None
    team: str | None
    source: str | None
    labels: dict[str, str]
    dedup_key: str | None
    created_at: str
    updated_at: str
    acknowledged_at: str | None
    acknowledged_by: str | None
    resolved_at: str | None
    resolved_by: str | None
    resolution_note: str | None
    cancelled_at: str | None
    cancel_reason: str | None
    snoozed_until: str | None
    escalation: EscalationOut | None
    sla: SlaOut
    allowed_actions: list[str]
    version: int
    alert_count: int = Field(description="Alerts gathered by this incident (0: opened by hand)")
    last_seen_at: str | None
    previous_incident_id: str | None = Field(description="The last incident of this dedup key")
    suppressed: bool = Field(description="Recorded but not paged (routing rule or maintenance)")
    assignees: list[str]
    runbooks: list[dict[str, Any]]
    latest_alert: dict[str, Any] | None = Field(
        default=None,
        description="GET /incidents/{id} only: the latest alert as its source sent it (labels, "
        "annotations, custom details), bounded; null for an incident opened by hand",
    )

    @staticmethod
    def of(i: Incident) -> IncidentOut:
        cur = i.escalation
        sla = sla_deadlines(i)
        return IncidentOut(
            id=i.id,
            title=i.title,
            description=i.description,
            severity=i.severity,
            status=i.status.value,
            service=i.service,
            service_id=i.service_id,
            team=i.team,
            source=i.source,
            labels=i.labels,
            dedup_key=i.dedup_key,
            created_at=to_iso(i.created_at),
            updated_at=to_iso(i.updated_at),
            acknowledged_at=_t(i.acknowledged_at),
            acknowledged_by=i.acknowledged_by,
            resolved_at=_t(i.resolved_at),
            resolved_by=i.resolved_by,
            resolution_note=i.resolution_note,
            cancelled_at=_t(i.cancelled_at),
            cancel_reason=i.cancel_reason,
            snoozed_until=_t(i.snoozed_until),
            escalation=EscalationOut(
                policy_id=cur.policy_id,
                policy_name=str(cur.policy.get("name", "")),
                level=cur.level,
                loop=cur.loop,
                next_level=cur.next_level,
                next_at=_t(i.due_at) if cur.next_level is not None else None,
            )
            if cur
            else None,
            sla=SlaOut(
                response_minutes=sla["response_minutes"],
                resolution_minutes=sla["resolution_minutes"],
                ack_due_at=_t(sla["ack_due_at"]),
                resolve_due_at=_t(sla["resolve_due_at"]),
            ),
            allowed_actions=allowed_actions(i.status),
            version=i.version,
            alert_count=i.alert_count,
            last_seen_at=_t(i.last_seen_at),
            previous_incident_id=i.previous_incident_id,
            suppressed=i.suppressed,
            assignees=list(i.assignees),
            runbooks=[dict(r) for r in i.runbooks],
        )


class IncidentPage(_Out):
    items: list[IncidentOut]
    next_cursor: str | None


class TimelineEventOut(_Out):
    at: str
    type: str
    actor: str
    data: dict[str, Any]

    @staticmethod
    def of(e: TimelineEvent) -> TimelineEventOut:
        data = {k: (to_iso(v) if hasattr(v, "isoformat") else v) for k, v in e.data.items()}
        return TimelineEventOut(at=to_iso(e.at), type=e.type, actor=e.actor, data=data)


class TimelineOut(_Out):
    items: list[TimelineEventOut]
    next_cursor: str | None


class EscalationRecordOut(_Out):
    level: int
    loop: int
    status: Literal["pending", "executed", "cancelled"]
    scheduled_at: str
    executed_at: str | None
    cancelled_at: str | None
    targets: list[dict[str, str]]
    recipients: list[dict[str, Any]] = Field(
        description="Who the targets reached when the level fired, and why (layer, override, team member)"
    )

    @staticmethod
    def of(r: EscalationRecord) -> EscalationRecordOut:
        return EscalationRecordOut(
            level=r.level,
            loop=r.loop,
            status=r.status,  # type: ignore[arg-type]
            scheduled_at=to_iso(r.scheduled_at),
            executed_at=_t(r.executed_at),
            cancelled_at=_t(r.cancelled_at),
            targets=[dict(t) for t in r.targets],
            recipients=[dict(x) for x in r.recipients],
        )


class EscalationsOut(_Out):
    items: list[EscalationRecordOut]
    next_cursor: str | None


class NotificationOut(_Out):
    kind: str
    level: int | None
    loop: int | None
    recipient: str
    channel: str
    status: str = Field(
        description="pending | sent | superseded (closed first) | parked (kept failing); scheduled (a "
        "contact's delay_minutes holds it until due_at; superseded if acknowledged, snoozed, resolved "
        "or cancelled first)"
    )
    dedup_id: str
    subject: str
    created_at: str
    sent_at: str | None
    attempts: int = Field(description="Failed publish attempts")
    last_error: str | None
    delivery_attempts: int = Field(description="Webhook POSTs made (webhook rows)")
    last_http_status: int | None = Field(description="The webhook's last answer (webhook rows)")
    due_at: str | None = Field(default=None, description="A delayed contact's page: when it is due")

    @staticmethod
    def of(n: Notification) -> NotificationOut:
        return NotificationOut(
            kind=n.kind,
            level=n.level,
            loop=n.loop,
            recipient=n.recipient,
            channel=n.channel,
            status=n.status,
            dedup_id=n.dedup_id,
            subject=n.subject,
            created_at=to_iso(n.created_at),
            sent_at=_t(n.sent_at),
            attempts=n.attempts,
            last_error=n.last_error,
            delivery_attempts=n.delivery_attempts,
            last_http_status=n.last_http_status,
            due_at=_t(n.due_at),
        )


class NotificationsOut(_Out):
    items: list[NotificationOut]
    next_cursor: str | None


class PolicyOut(_Out):
    id: str
    name: str
    levels: list[dict[str, Any]]
    repeat: dict[str, Any] | None
    stop_on_ack: bool
    fallback: list[dict[str, str]]
    severities: list[Severity]
    service: str | None
    team: str | None
    is_default: bool
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int

    @staticmethod
    def of(p: Policy, default_id: str | None) -> PolicyOut:
        snap = p.snapshot()
        return PolicyOut(
            id=p.id,
            name=p.name,
            levels=snap["levels"],
            repeat=snap["repeat"],
            stop_on_ack=snap["stop_on_ack"],
            fallback=snap["fallback"],
            severities=list(p.severities),
            service=p.service,
            team=p.team,
            is_default=p.id == default_id and p.enabled,
            enabled=p.enabled,
            created_at=_t(p.created_at),
            updated_at=_t(p.updated_at),
            version=p.version,
        )


class PolicyList(_Out):
    items: list[PolicyOut]


class NoteOut(_Out):
    at: str
    type: str
    actor: str
    data: dict[str, Any]
