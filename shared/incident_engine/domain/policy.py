"""Escalation policies: ordered levels of targets, optional repeat, and routing filters."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from incident_engine.domain.severity import Severity

TargetType = Literal["user", "team", "schedule", "webhook"]
# The field that names a target, by type; a user is named by id, or (the first form) by a bare e-mail.
TARGET_KEYS = ("email", "user_id", "team_id", "schedule_id", "webhook_id")
DEFAULT_KEY = {"user": "email", "team": "team_id", "schedule": "schedule_id", "webhook": "webhook_id"}


@dataclass(frozen=True)
class Target:
    type: str
    address: str  # the bare e-mail, or the id of the user, team, schedule or webhook
    key: str = ""  # which of TARGET_KEYS names it ("" = the type's default)

    @property
    def field(self) -> str:
        return self.key or DEFAULT_KEY[self.type]

    def to_dict(self) -> dict[str, str]:
        return {"type": self.type, self.field: self.address}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Target:
        kind = str(data["type"])
        for key in TARGET_KEYS:
            if key in data:
                return Target(kind, str(data[key]), "" if key == DEFAULT_KEY.get(kind) else key)
        # Snapshots taken before webhooks were registered carry their URL.
        return Target(kind, str(data.get("url")), "url")


@dataclass(frozen=True)
class Level:
    delay_minutes: float
    targets: tuple[Target, ...]

    @property
    def delay(self) -> timedelta:
        return timedelta(minutes=self.delay_minutes)


@dataclass(frozen=True)
class Repeat:
    max_repeats: int
    interval_minutes: float


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    levels: tuple[Level, ...]
    repeat: Repeat | None = None
    # After an acknowledge, stop paging (the default) or keep paging the remaining levels.
    stop_on_ack: bool = True
    # Paged when a level reaches nobody (nobody on call, an empty team, disabled people).
    fallback: tuple[Target, ...] = ()
    severities: tuple[Severity, ...] = ()
    service: str | None = None
    team: str | None = None
    enabled: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 1

    def matches(self, severity: Severity, service: str | None, team: str | None) -> bool:
        if self.severities and severity not in self.severities:
            return False
        if self.service is not None and self.service != service:
            return False
        return not (self.team is not None and self.team != team)

    def specificity(self) -> int:
        return sum((bool(self.severities), self.service is not None, self.team is not None))

    def has_filters(self) -> bool:
        return self.specificity() > 0

    # The snapshot an incident keeps, so later edits never change an escalation in flight.
    def snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "levels": [
                {"delay_minutes": lv.delay_minutes, "targets": [t.to_dict() for t in lv.targets]}
                for lv in self.levels
            ],
            "repeat": (
                {"max_repeats": self.repeat.max_repeats, "interval_minutes": self.repeat.interval_minutes}
                if self.repeat
                else None
            ),
            "stop_on_ack": self.stop_on_ack,
            "fallback": [t.to_dict() for t in self.fallback],
        }

    @staticmethod
    def from_snapshot(data: dict[str, Any]) -> Policy:
        repeat = data.get("repeat")
        return Policy(
            id=data["id"],
            name=data["name"],
            version=int(data.get("version", 1)),
            levels=tuple(
                Level(
                    delay_minutes=float(lv["delay_minutes"]),
                    targets=tuple(Target.from_dict(t) for t in lv["targets"]),
                )
                for lv in data["levels"]
            ),
            repeat=Repeat(int(repeat["max_repeats"]), float(repeat["interval_minutes"])) if repeat else None,
            stop_on_ack=bool(data.get("stop_on_ack", True)),
            fallback=tuple(Target.from_dict(t) for t in data.get("fallback") or ()),
        )


def select_policy(
    policies: Iterable[Policy],
    severity: Severity,
    service: str | None,
    team: str | None,
    default_policy_id: str | None,
) -> Policy | None:
    """The most specific enabled policy whose filters match; else the default; else none.

    Ties between equally specific policies go to the oldest, so adding a policy never
    silently steals traffic from one that already matched.
    """
    enabled = [p for p in policies if p.enabled]
    candidates = [p for p in enabled if p.has_filters() and p.matches(severity, service, team)]
    if candidates:
        epoch = datetime.min.replace(tzinfo=None)
        return sorted(
            candidates,
            key=lambda p: (
                -p.specificity(),
                (p.created_at.replace(tzinfo=None) if p.created_at else epoch),
                p.id,
            ),
        )[0]
    for p in enabled:
        if p.id == default_policy_id:
            return p
    return None
