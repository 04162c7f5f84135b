"""Expanding a policy level's targets to recipients, at the instant the level fires.

Pure code over a view of the configuration read just before the fire. A user target reaches the
user's contact methods (or, without any, the account e-mail); a team reaches every enabled member;
a schedule reaches whoever is on call at that instant (an override wins over every layer); a
webhook target reaches the registered webhook. The legacy ``{"type": "user", "email"}`` is a bare
address. Disabled or unknown users, teams, schedules and webhooks reach nobody and are reported
as skipped. The same channel and address is paged once (at its shortest delay), and every
recipient says why it was paged, so the timeline can show who was on call and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from incident_engine.domain.people import Team, User
from incident_engine.domain.schedules import Override, Schedule, ScheduleEvaluator


@dataclass(frozen=True)
class Why:
    """Which target of the level led to a recipient, and through what."""

    target: int  # index of the target in the level
    type: str  # user | team | schedule | webhook
    id: str  # the user, team, schedule or webhook id; the address for a bare e-mail target
    user_id: str | None = None  # the user reached, for a team or schedule
    source: str | None = None  # schedule: the layer's name or "override"
    override_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Recipient:
    user_id: str | None  # None for a bare address or a webhook
    channel: str  # email | sms | webhook | slack
    address: str  # e-mail address, E.164 number, URL, or the webhook id
    delay_minutes: float
    why: Why

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "channel": self.channel,
            "address": self.address,
            "delay_minutes": self.delay_minutes,
            "why": self.why.to_dict(),
        }


@dataclass(frozen=True)
class Skipped:
    """A target, or a person it named, that reached nobody, and why."""

    target: int
    type: str
    id: str
    reason: str  # unknown | disabled | nobody_on_call | no_members | invalid
    user_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Expansion:
    recipients: tuple[Recipient, ...]
    skipped: tuple[Skipped, ...] = ()

    @property
    def nobody(self) -> bool:
        """True when the level reaches no one: record it and move on, never wait in silence."""
        return not self.recipients


@dataclass(frozen=True)
class ConfigView:
    """The configuration a fire reads: only what the level's targets name is needed."""

    users: Mapping[str, User] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    overrides: Mapping[str, Sequence[Override]] = field(default_factory=dict)  # by schedule id
    webhooks: Mapping[str, str] = field(default_factory=dict)  # webhook id -> kind: generic | slack


def referenced_ids(targets: Sequence[Mapping[str, Any]]) -> dict[str, set[str]]:
    """The ids a level names, by kind, so the caller reads only those (team members come after)."""
    wanted: dict[str, set[str]] = {"user": set(), "team": set(), "schedule": set(), "webhook": set()}
    for t in targets:
        kind = t.get("type")
        key = f"{kind}_id"
        if kind in wanted and isinstance(t.get(key), str):
            wanted[str(kind)].add(t[key])
    return wanted


def expand_targets(targets: Sequence[Mapping[str, Any]], view: ConfigView, at: datetime) -> Expansion:
    """The recipients of a level firing at ``at``, deduplicated, in target order."""
    found: list[Recipient] = []
    skipped: list[Skipped] = []

    def reach_user(user_id: str, why: Why, i: int, kind: str, target_id: str) -> None:
        user = view.users.get(user_id)
        if user is None or not user.enabled:
            reason = "unknown" if user is None else "disabled"
            skipped.append(Skipped(i, kind, target_id, reason, user_id=user_id if kind != "user" else None))
            return
        methods = user.contact_methods
        if not methods:
            found.append(Recipient(user.id, "email", user.email, 0, why))
            return
        found.extend(Recipient(user.id, m.type, m.address, m.delay_minutes, why) for m in methods)

    for i, target in enumerate(targets):
        kind = str(target.get("type"))
        if kind == "user" and "user_id" in target:
            user_id = str(target["user_id"])
            reach_user(user_id, Why(i, "user", user_id), i, "user", user_id)
        elif kind == "user" and "email" in target:
            address = str(target["email"])
            found.append(Recipient(None, "email", address, 0, Why(i, "user", address)))
        elif kind == "team":
            team_id = str(target.get("team_id"))
            team = view.teams.get(team_id)
            if team is None or not team.enabled:
                skipped.append(Skipped(i, "team", team_id, "unknown" if team is None else "disabled"))
            elif not team.members:
                skipped.append(Skipped(i, "team", team_id, "no_members"))
            for member in team.members if team and team.enabled else ():
                reach_user(member, Why(i, "team", team_id, user_id=member), i, "team", team_id)
        elif kind == "schedule":
            schedule_id = str(target.get("schedule_id"))
            schedule = view.schedules.get(schedule_id)
            if schedule is None or not schedule.enabled:
                skipped.append(
                    Skipped(i, "schedule", schedule_id, "unknown" if schedule is None else "disabled")
                )
                continue
            on_call = ScheduleEvaluator(schedule, view.overrides.get(schedule_id, ())).on_call_at(at)
            if not on_call:
                skipped.append(Skipped(i, "schedule", schedule_id, "nobody_on_call"))
            for c in on_call:
                why = Why(i, "schedule", schedule_id, c.user_id, c.source, c.override_id)
                reach_user(c.user_id, why, i, "schedule", schedule_id)
        elif kind == "webhook" and "webhook_id" in target:
            webhook_id = str(target["webhook_id"])
            webhook_kind = view.webhooks.get(webhook_id)
            if webhook_kind is None:
                skipped.append(Skipped(i, "webhook", webhook_id, "unknown"))
            else:
                # One channel for both kinds: the webhook sender reads the kind and shapes the request.
                found.append(Recipient(None, "webhook", webhook_id, 0, Why(i, "webhook", webhook_id)))
        elif kind == "webhook" and "url" in target:
            # Inline URLs are retired for new policies, but snapshots taken before still carry them.
            url = str(target["url"])
            found.append(Recipient(None, "webhook", url, 0, Why(i, "webhook", url)))
        else:
            skipped.append(Skipped(i, kind, str(target.get(f"{kind}_id", "")), "invalid"))
    return Expansion(_dedupe(found), tuple(skipped))


def _dedupe(recipients: list[Recipient]) -> tuple[Recipient, ...]:
    """One page per channel and address: the first reason, at the shortest delay asked for."""
    kept: dict[tuple[str, str], Recipient] = {}
    for r in recipients:
        key = (r.channel, r.address.lower() if r.channel == "email" else r.address)
        first = kept.get(key)
        if first is None:
            kept[key] = r
        elif r.delay_minutes < first.delay_minutes:
            kept[key] = replace(first, delay_minutes=r.delay_minutes)
    return tuple(kept.values())
