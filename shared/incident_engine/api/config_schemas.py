"""Request and response shapes for users, teams, schedules and overrides.

Every string and list is bounded; names refuse control characters; zones must be IANA names;
addresses are checked per channel (e-mail, E.164 phone number, https URL without credentials).
Rules that span fields are checked in ``to_domain`` and answer 422 naming the field.
"""

from __future__ import annotations

from datetime import datetime, time
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StringConstraints

from incident_engine.domain.errors import InvalidInput
from incident_engine.domain.people import ContactMethod, Team, User
from incident_engine.domain.schedules import (
    DAY_ABBREVIATIONS,
    OVERRIDE,
    WEEKDAYS,
    Layer,
    Override,
    Restriction,
    Rotation,
    Schedule,
    Shift,
)
from incident_engine.domain.text import EMAIL_PATTERN, NAME_PATTERN, line_problem
from incident_engine.domain.timefmt import to_iso
from incident_engine.domain.urls import UrlRefused, check_url
from incident_engine.settings import get_settings

MAX_CONTACT_METHODS = 10
MAX_TEAM_MEMBERS = 50
MAX_LAYERS = 10
MAX_LAYER_USERS = 50
MAX_SCHEDULE_USERS = 50  # each is checked and marked in the schedule's one transaction (<= 100 items)
MAX_RESTRICTIONS = 7
MAX_DELAY_MINUTES = 1_440


def _one_line(value: str) -> str:
    problem = line_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# No control, invisible or direction-changing characters: names end up in pages and calendars.
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_one_line),
    Field(json_schema_extra={"pattern": NAME_PATTERN}),
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        max_length=254,
        pattern=EMAIL_PATTERN,
    ),
]
Phone = Annotated[str, StringConstraints(max_length=16, pattern=r"^\+[1-9][0-9]{6,14}$")]
HourMinute = Annotated[str, StringConstraints(max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    from zoneinfo import available_timezones

    return frozenset(available_timezones())


def _iana_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA time zone name (such as Europe/Berlin or America/New_York)")
    return value


def _https_url(value: str) -> str:
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise ValueError("a URL has no spaces or control characters")
    try:
        urlsplit(value).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a URL") from None
    try:
        # The same rules as registered webhooks: https (plain http only where private targets are
        # allowed), no credentials, never metadata or (unless allowed) private addresses.
        check_url(value, allow_private=get_settings().allow_private_targets)
    except UrlRefused as exc:
        raise ValueError(str(exc)) from None
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_iana_zone)]
HttpsUrl = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_https_url)]
Delay = Annotated[
    StrictFloat, Field(ge=0, le=MAX_DELAY_MINUTES, description="Minutes after the page; 0 = at once")
]


# Validators are built on first use, not at import: the api's cold start builds only those of
# the routes a container actually serves.
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class _Out(BaseModel):
    model_config = ConfigDict(defer_build=True)


# --- users and teams ---------------------------------------------------------------------------


class EmailContactIn(_In):
    type: Literal["email"]
    address: Email
    delay_minutes: Delay = 0


class SmsContactIn(_In):
    type: Literal["sms"]
    address: Phone = Field(description="E.164, such as +14155550100")
    delay_minutes: Delay = 0


class WebhookContactIn(_In):
    type: Literal["webhook"]
    address: HttpsUrl
    delay_minutes: Delay = 0


class SlackContactIn(_In):
    type: Literal["slack"]
    address: HttpsUrl = Field(description="A Slack incoming-webhook URL")
    delay_minutes: Delay = 0


ContactIn = Annotated[
    EmailContactIn | SmsContactIn | WebhookContactIn | SlackContactIn, Field(discriminator="type")
]


class UserIn(_In):
    name: Name
    email: Email
    time_zone: TimeZone = "UTC"
    contact_methods: Annotated[list[ContactIn], Field(max_length=MAX_CONTACT_METHODS)] = Field(
        default_factory=list
    )
    version: int | None = Field(
        default=None, ge=1, description="PUT only: the version you read; 409 if stale"
    )

    def to_domain(self) -> User:
        return User(
            id="",
            name=self.name,
            email=self.email,
            time_zone=self.time_zone,
            contact_methods=tuple(
                ContactMethod(c.type, c.address, c.delay_minutes) for c in self.contact_methods
            ),
        )


class TeamIn(_In):
    name: Name
    members: Annotated[list[Id], Field(max_length=MAX_TEAM_MEMBERS)] = Field(default_factory=list)
    version: int | None = Field(
        default=None, ge=1, description="PUT only: the version you read; 409 if stale"
    )

    def to_domain(self) -> Team:
        seen: set[str] = set()
        for i, member in enumerate(self.members):
            if member in seen:
                raise InvalidInput(f"members.{i}", f"user {member} is listed twice")
            seen.add(member)
        return Team(id="", name=self.name, members=tuple(self.members))


class SubscriptionOut(_Out):
    status: str = Field(
        description="pending_confirmation (e-mail: until the recipient confirms) | confirmed | "
        "unsubscribed | unknown (SNS did not answer)"
    )
    arn: str | None = None
    message: str | None = None

    @staticmethod
    def of(c: ContactMethod) -> SubscriptionOut | None:
        if not c.subscription_arn:
            return None
        status = c.subscription_status or "unknown"
        message = None
        if status == "pending_confirmation" and c.type == "email":
            message = (
                f"AWS sent a confirmation e-mail to {c.address}: the recipient must open it and confirm "
                "the subscription before any page reaches this address"
            )
        elif status == "unsubscribed":
            message = (
                "no longer subscribed: pages do not reach this address (save the user again to subscribe)"
            )
        return SubscriptionOut(status=status, arn=c.subscription_arn, message=message)


class ContactMethodOut(_Out):
    type: str
    address: str
    delay_minutes: float
    subscription: SubscriptionOut | None = Field(
        default=None, description="E-mail and SMS: the subscription to the notifications topic"
    )


class UserOut(_Out):
    id: str
    name: str
    email: str
    time_zone: str
    contact_methods: list[ContactMethodOut]
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int

    @staticmethod
    def of(u: User) -> UserOut:
        return UserOut(
            id=u.id,
            name=u.name,
            email=u.email,
            time_zone=u.time_zone,
            contact_methods=[
                ContactMethodOut(
                    type=c.type,
                    address=c.address,
                    delay_minutes=c.delay_minutes,
                    subscription=SubscriptionOut.of(c),
                )
                for c in u.contact_methods
            ],
            enabled=u.enabled,
            created_at=_t(u.created_at),
            updated_at=_t(u.updated_at),
            version=u.version,
        )


class UserPage(_Out):
    items: list[UserOut]
    next_cursor: str | None


class TeamOut(_Out):
    id: str
    name: str
    members: list[str]
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int

    @staticmethod
    def of(t: Team) -> TeamOut:
        return TeamOut(
            id=t.id,
            name=t.name,
            members=list(t.members),
            enabled=t.enabled,
            created_at=_t(t.created_at),
            updated_at=_t(t.updated_at),
            version=t.version,
        )


class TeamPage(_Out):
    items: list[TeamOut]
    next_cursor: str | None


# --- schedules ---------------------------------------------------------------------------------

LocalDateTime = Annotated[
    str,
    StringConstraints(max_length=19, pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?$"),
    Field(description="Local wall-clock date-time in the schedule's zone, no offset: 2026-03-02T09:00"),
]


class _RotationIn(_In):
    start: LocalDateTime

    def local_start(self, field: str) -> datetime:
        try:
            start = datetime.fromisoformat(self.start)
        except ValueError:
            raise InvalidInput(field, "not a valid date-time") from None
        if not 2000 <= start.year <= 2100:
            raise InvalidInput(field, "must be between the years 2000 and 2100")
        return start


class DailyRotationIn(_RotationIn):
    type: Literal["daily"]
    handoff_time: HourMinute | None = Field(default=None, description="HH:MM; default: the start's time")


class WeeklyRotationIn(_RotationIn):
    type: Literal["weekly"]
    handoff_time: HourMinute | None = Field(default=None, description="HH:MM; default: the start's time")
    handoff_day: Literal[WEEKDAYS] | None = Field(  # type: ignore[valid-type]
        default=None, description="monday..sunday; default: the start's weekday"
    )


class CustomRotationIn(_RotationIn):
    type: Literal["custom"]
    shift_hours: int = Field(ge=1, le=8_760, description="Wall-clock hours per shift")


RotationIn = Annotated[DailyRotationIn | WeeklyRotationIn | CustomRotationIn, Field(discriminator="type")]
Day = Literal[DAY_ABBREVIATIONS]  # type: ignore[valid-type]


class RestrictionIn(_In):
    days: Annotated[list[Day], Field(min_length=1, max_length=7)]
    start: HourMinute
    end: HourMinute = Field(description="At or before start: the window ends the next day")


class LayerIn(_In):
    name: Name
    users: Annotated[list[Id], Field(min_length=1, max_length=MAX_LAYER_USERS)]
    rotation: RotationIn
    restrictions: Annotated[list[RestrictionIn], Field(max_length=MAX_RESTRICTIONS)] = Field(
        default_factory=list
    )

    def to_domain(self, field: str) -> Layer:
        rot = self.rotation
        start = rot.local_start(f"{field}.rotation.{rot.type}.start")
        if isinstance(rot, CustomRotationIn):
            rotation = Rotation("custom", start, shift_hours=rot.shift_hours)
        else:
            handoff = time.fromisoformat(rot.handoff_time) if rot.handoff_time else start.time()
            day = start.weekday()
            if isinstance(rot, WeeklyRotationIn) and rot.handoff_day:
                day = WEEKDAYS.index(rot.handoff_day)
            rotation = Rotation(rot.type, start, handoff_time=handoff, handoff_day=day)
        return Layer(
            self.name,
            tuple(self.users),
            rotation,
            tuple(
                Restriction(
                    frozenset(DAY_ABBREVIATIONS.index(d) for d in r.days),
                    time.fromisoformat(r.start),
                    time.fromisoformat(r.end),
                )
                for r in self.restrictions
            ),
        )


class ScheduleIn(_In):
    name: Name
    time_zone: TimeZone
    layers: Annotated[list[LayerIn], Field(min_length=1, max_length=MAX_LAYERS)] = Field(
        description="Later layers are higher: where a higher layer has someone on call, it wins"
    )
    version: int | None = Field(
        default=None, ge=1, description="PUT only: the version you read; 409 if stale"
    )

    def to_domain(self) -> Schedule:
        names: set[str] = set()
        for i, layer in enumerate(self.layers):
            if layer.name.lower() == OVERRIDE:
                raise InvalidInput(f"layers.{i}.name", f'"{OVERRIDE}" is reserved for overrides')
            if layer.name in names:
                raise InvalidInput(f"layers.{i}.name", "layer names must differ within a schedule")
            names.add(layer.name)
        if len({u for layer in self.layers for u in layer.users}) > MAX_SCHEDULE_USERS:
            raise InvalidInput("layers", f"a schedule names at most {MAX_SCHEDULE_USERS} distinct users")
        return Schedule(
            id="",
            name=self.name,
            time_zone=self.time_zone,
            layers=tuple(layer.to_domain(f"layers.{i}") for i, layer in enumerate(self.layers)),
        )


class RotationOut(_Out):
    type: str
    start: str
    handoff_time: str | None = None
    handoff_day: str | None = None
    shift_hours: int | None = None


class RestrictionOut(_Out):
    days: list[str]
    start: str
    end: str


class LayerOut(_Out):
    name: str
    users: list[str]
    rotation: RotationOut
    restrictions: list[RestrictionOut]

    @staticmethod
    def of(layer: Layer) -> LayerOut:
        rot = layer.rotation
        return LayerOut(
            name=layer.name,
            users=list(layer.users),
            rotation=RotationOut(
                type=rot.type,
                start=rot.start.isoformat(timespec="minutes"),
                handoff_time=rot.handoff_time.strftime("%H:%M") if rot.type != "custom" else None,
                handoff_day=WEEKDAYS[rot.handoff_day] if rot.type == "weekly" else None,
                shift_hours=rot.shift_hours if rot.type == "custom" else None,
            ),
            restrictions=[
                RestrictionOut(
                    days=[DAY_ABBREVIATIONS[d] for d in sorted(r.days)],
                    start=r.start.strftime("%H:%M"),
                    end=r.end.strftime("%H:%M"),
                )
                for r in layer.restrictions
            ],
        )


class ScheduleOut(_Out):
    id: str
    name: str
    time_zone: str
    layers: list[LayerOut]
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int

    @staticmethod
    def of(s: Schedule) -> ScheduleOut:
        return ScheduleOut(
            id=s.id,
            name=s.name,
            time_zone=s.time_zone,
            layers=[LayerOut.of(layer) for layer in s.layers],
            enabled=s.enabled,
            created_at=_t(s.created_at),
            updated_at=_t(s.updated_at),
            version=s.version,
        )


class SchedulePage(_Out):
    items: list[ScheduleOut]
    next_cursor: str | None


def _bounded_instant(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be between the years 2000 and 2100")
    return value


Instant = Annotated[datetime, AfterValidator(_bounded_instant)]


class OverrideIn(_In):
    user_id: Id
    start: Instant = Field(description="ISO 8601 instant with an offset or Z")
    end: Instant = Field(description="ISO 8601 instant with an offset or Z; after start, at most 90 days")

    def checked(self) -> tuple[datetime, datetime]:
        for field, value in (("start", self.start), ("end", self.end)):
            if value.tzinfo is None:
                raise InvalidInput(field, "give an offset or Z: an override is a pair of instants")
        return self.start, self.end


class OverrideOut(_Out):
    id: str
    user_id: str
    start: str
    end: str

    @staticmethod
    def of(o: Override) -> OverrideOut:
        return OverrideOut(id=o.id, user_id=o.user_id, start=to_iso(o.start), end=to_iso(o.end))


class OverridePage(_Out):
    items: list[OverrideOut]
    next_cursor: str | None


class OnCallUserOut(_Out):
    user_id: str
    name: str | None
    source: str = Field(description='The layer\'s name, or "override"')


class OnCallOut(_Out):
    schedule_id: str
    at: str
    oncall: list[OnCallUserOut]


class ShiftOut(_Out):
    user_id: str
    name: str | None
    start: str
    end: str
    source: str

    @staticmethod
    def of(s: Shift, users: dict[str, User]) -> ShiftOut:
        user = users.get(s.user_id)
        return ShiftOut(
            user_id=s.user_id,
            name=user.name if user else None,
            start=to_iso(s.start),
            end=to_iso(s.end),
            source=s.source,
        )


class ShiftsOut(_Out):
    schedule_id: str
    time_zone: str
    start: str
    end: str
    items: list[ShiftOut]


def _t(at: Any) -> str | None:
    return to_iso(at) if at else None
