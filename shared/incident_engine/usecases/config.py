"""Configuration use cases: users, teams, schedules and overrides. Nothing is erased: delete
disables, and refuses while something still names the item (the answer says where)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.people import SUBSCRIBED_CHANNELS, ContactMethod, Reference, Team, User
from incident_engine.domain.policy import Policy
from incident_engine.domain.schedules import OnCall, Override, Schedule, ScheduleEvaluator, Shift
from incident_engine.domain.targets import ConfigView, referenced_ids
from incident_engine.observability import logger
from incident_engine.usecases.ports import (
    Clock,
    ContactSubscriptions,
    Page,
    SubscriptionRefused,
    SubscriptionUnavailable,
    VersionConflict,
)

T = TypeVar("T")
MAX_SHIFT_RANGE = timedelta(days=90)
MAX_OVERRIDE_LENGTH = timedelta(days=90)


class UserStore(Protocol):
    def create(self, user: User) -> None: ...
    def replace(self, user: User, expected_version: int, expected_ref_changes: int | None = None) -> None: ...
    def get(self, user_id: str) -> tuple[User, int] | None: ...
    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]: ...
    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[User]: ...
    def list_all(self) -> list[User]: ...


class TeamStore(Protocol):
    def create(self, team: Team) -> None: ...
    def replace(self, team: Team, expected_version: int, expected_ref_changes: int | None = None) -> None: ...
    def get(self, team_id: str) -> tuple[Team, int] | None: ...
    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Team]: ...
    def list_all(self) -> list[Team]: ...


class ScheduleStore(Protocol):
    def create(self, schedule: Schedule) -> None: ...
    def replace(
        self, schedule: Schedule, expected_version: int, expected_ref_changes: int | None = None
    ) -> None: ...
    def get(self, schedule_id: str) -> tuple[Schedule, int] | None: ...
    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Schedule]: ...
    def list_all(self) -> list[Schedule]: ...
    def add_override(self, schedule_id: str, override: Override, created_at: datetime, by: str) -> None: ...
    def overrides_page(
        self,
        schedule_id: str,
        ending_after: datetime,
        starting_before: datetime,
        limit: int,
        cursor: str | None,
    ) -> Page[Override]: ...
    def overrides_between(self, schedule_id: str, start: datetime, end: datetime) -> list[Override]: ...
    def delete_override(
        self, schedule_id: str, override_id: str, now: datetime, by: str
    ) -> Override | None: ...
    def users_in_live_overrides(
        self, schedule_ids: list[str], now: datetime
    ) -> list[tuple[str, Override]]: ...


class PolicyLister(Protocol):
    def list_all(self, include_disabled: bool) -> list[Policy]: ...


_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _known_shape(kind: str, item_id: str) -> str:
    """Ids this API made are short and plain; anything else cannot exist (and could break a key)."""
    if not _ID.fullmatch(item_id):
        raise NotFound(f"{kind} {item_id[:64]!r} not found", id=item_id[:64])
    return item_id


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def _policy_targets(policy: Policy) -> Iterator[tuple[str, dict[str, Any]]]:
    """(field, target) for every target of a policy, in the dict form policies are stored in."""
    for li, level in enumerate(policy.snapshot()["levels"]):
        for ti, target in enumerate(level["targets"]):
            yield f"levels.{li}.targets.{ti}", target


@dataclass(frozen=True)
class OnCallEntry:
    on_call: OnCall
    user: User | None  # None if the user record is gone (it never is: users are only disabled)


@dataclass(frozen=True)
class ShiftView:
    schedule: Schedule
    start: datetime
    end: datetime
    shifts: list[Shift]
    users: dict[str, User]  # the users the shifts name


class ConfigService:
    def __init__(
        self,
        users: UserStore,
        teams: TeamStore,
        schedules: ScheduleStore,
        policies: PolicyLister,
        clock: Clock,
        subscriptions: ContactSubscriptions | None = None,
    ) -> None:
        self._subscriptions = subscriptions
        self._users = users
        self._teams = teams
        self._schedules = schedules
        self._policies = policies
        self._clock = clock

    # --- users ---------------------------------------------------------------------------------

    def create_user(self, draft: User) -> User:
        now = self._clock.now()
        # Subscribed first, so the user and its subscriptions' ARNs are one conditional write.
        draft = self._subscribe(draft)
        user = replace(draft, id=_new_id("usr"), created_at=now, updated_at=now, version=1, enabled=True)
        self._users.create(user)
        return user

    def is_enabled(self, kind: str, item_id: str) -> bool:
        """Whether a policy may name this user, team or schedule (it exists and is enabled)."""
        try:
            if kind == "user":
                return self.get_user(item_id).enabled
            if kind == "team":
                return self.get_team(item_id).enabled
            return self.get_schedule(item_id).enabled
        except NotFound:
            return False

    def get_user(self, user_id: str) -> User:
        """With each subscription's state as SNS tells it now (read only: nothing is written)."""
        return self._live(self._user_and_refs(user_id)[0], every=True)

    def list_users(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[User]:
        # A list asks SNS only about subscriptions still waiting for their confirmation.
        page = self._users.list_page(include_disabled, limit, cursor)
        return Page([self._live(u, every=False) for u in page.items], page.next_cursor)

    def replace_user(self, user_id: str, draft: User, expected_version: int | None) -> User:
        current, _ = self._user_and_refs(user_id)
        self._check_replaceable("user", current.id, current.enabled, current.version, expected_version)
        draft = self._subscribe(draft)
        user = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
            enabled=True,
        )
        self._write("user", user_id, lambda: self._users.replace(user, current.version))
        kept = {(c.type, c.address) for c in user.contact_methods}
        self._unsubscribe(user.id, [c for c in current.contact_methods if (c.type, c.address) not in kept])
        return user

    def disable_user(self, user_id: str) -> User:
        current, ref_changes = self._user_and_refs(user_id)
        if not current.enabled:
            return current  # deleting twice is not an error
        self._refuse_if_named("user", user_id, self.references_to_user(user_id))
        # The contact methods are kept (history); their subscriptions end once the user is disabled.
        methods = tuple(
            replace(c, subscription_status="unsubscribed") if c.subscription_arn else c
            for c in current.contact_methods
        )
        user = replace(
            current,
            enabled=False,
            contact_methods=methods,
            updated_at=self._clock.now(),
            version=current.version + 1,
        )
        self._write("user", user_id, lambda: self._users.replace(user, current.version, ref_changes))
        self._unsubscribe(user.id, list(current.contact_methods))
        return user

    # --- contact methods as SNS subscriptions ------------------------------------------------------

    def _subscribe(self, draft: User) -> User:
        """Each e-mail and SMS method subscribed to the notifications topic, filtered on its
        address; SNS keeps one subscription per address, so saving again changes nothing."""
        if self._subscriptions is None:
            return draft
        methods: list[ContactMethod] = []
        for i, c in enumerate(draft.contact_methods):
            if c.type not in SUBSCRIBED_CHANNELS:
                methods.append(c)
                continue
            field = f"contact_methods.{i}.address"
            try:
                arn = self._subscriptions.subscribe(c.type, c.address)
            except SubscriptionRefused as exc:
                raise InvalidInput(field, f"SNS refused to subscribe this {c.type} address: {exc}") from None
            except SubscriptionUnavailable as exc:
                raise Conflict(
                    f"SNS could not subscribe contact_methods.{i} now ({exc}); nothing was saved, retry",
                    field=field,
                ) from None
            methods.append(
                replace(c, subscription_arn=arn, subscription_status=self._subscriptions.status(arn))
            )
        return replace(draft, contact_methods=tuple(methods))

    def _unsubscribe(self, user_id: str, methods: list[ContactMethod]) -> None:
        """After the write: end the subscriptions of methods no longer in use. SNS shares one
        subscription among everyone with the same address, so one another enabled user still
        has is kept. A failure is logged; reading the user then shows the subscription alive."""
        ending = [c for c in methods if c.subscription_arn and c.type in SUBSCRIBED_CHANNELS]
        if not ending or self._subscriptions is None:
            return
        held = {
            (c.type, c.address)
            for u in self._users.list_all()
            if u.enabled and u.id != user_id
            for c in u.contact_methods
        }
        for c in ending:
            if (c.type, c.address) in held or c.subscription_arn is None:
                continue
            if not self._subscriptions.unsubscribe(c.subscription_arn):
                logger.warning("could not unsubscribe a contact method", extra={"user_id": user_id})

    def _live(self, user: User, every: bool) -> User:
        if (
            self._subscriptions is None
            or not user.enabled  # its subscriptions ended when it was disabled
            or not any(c.subscription_arn for c in user.contact_methods)
        ):
            return user
        methods = tuple(
            replace(c, subscription_status=self._subscriptions.status(c.subscription_arn))
            if c.subscription_arn and (every or c.subscription_status == "pending_confirmation")
            else c
            for c in user.contact_methods
        )
        return replace(user, contact_methods=methods)

    def references_to_user(self, user_id: str) -> list[Reference]:
        refs = [
            Reference("team", t.id, t.name, f"members.{i}")
            for t in self._teams.list_all()
            if t.enabled
            for i, member in enumerate(t.members)
            if member == user_id
        ]
        schedules = [s for s in self._schedules.list_all() if s.enabled]
        for s in schedules:
            refs += [
                Reference("schedule", s.id, s.name, f"layers.{li}.users.{ui}")
                for li, layer in enumerate(s.layers)
                for ui, member in enumerate(layer.users)
                if member == user_id
            ]
        refs += [
            Reference(
                "override", o.id, next(s.name for s in schedules if s.id == sid), f"schedules/{sid}/overrides"
            )
            for sid, o in self._schedules.users_in_live_overrides(
                [s.id for s in schedules], self._clock.now()
            )
            if o.user_id == user_id
        ]
        return refs + self._policy_references("user_id", user_id)

    def _user_and_refs(self, user_id: str) -> tuple[User, int]:
        found = self._users.get(_known_shape("user", user_id))
        if found is None:
            raise NotFound(f"user {user_id} not found", id=user_id)
        return found

    def _check_users(self, field_of: Callable[[str], str], user_ids: Iterable[str]) -> None:
        """Every named user exists and is enabled; else 422 naming the first that is not."""
        wanted = list(dict.fromkeys(user_ids))
        known = self._users.get_many(wanted)
        for user_id in wanted:
            user = known.get(user_id)
            if user is None or not user.enabled:
                state = "is disabled" if user else "does not exist"
                raise InvalidInput(field_of(user_id), f"user {user_id} {state}")

    # --- teams ---------------------------------------------------------------------------------

    def create_team(self, draft: Team) -> Team:
        self._check_users(lambda u: f"members.{draft.members.index(u)}", draft.members)
        now = self._clock.now()
        team = replace(draft, id=_new_id("team"), created_at=now, updated_at=now, version=1, enabled=True)
        self._write("team", team.id, lambda: self._teams.create(team))
        return team

    def get_team(self, team_id: str) -> Team:
        return self._team_and_refs(team_id)[0]

    def list_teams(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Team]:
        return self._teams.list_page(include_disabled, limit, cursor)

    def replace_team(self, team_id: str, draft: Team, expected_version: int | None) -> Team:
        current, _ = self._team_and_refs(team_id)
        self._check_replaceable("team", current.id, current.enabled, current.version, expected_version)
        self._check_users(lambda u: f"members.{draft.members.index(u)}", draft.members)
        team = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
            enabled=True,
        )
        self._write("team", team_id, lambda: self._teams.replace(team, current.version))
        return team

    def disable_team(self, team_id: str) -> Team:
        current, ref_changes = self._team_and_refs(team_id)
        if not current.enabled:
            return current
        self._refuse_if_named("team", team_id, self._policy_references("team_id", team_id))
        team = replace(current, enabled=False, updated_at=self._clock.now(), version=current.version + 1)
        self._write("team", team_id, lambda: self._teams.replace(team, current.version, ref_changes))
        return team

    def _team_and_refs(self, team_id: str) -> tuple[Team, int]:
        found = self._teams.get(_known_shape("team", team_id))
        if found is None:
            raise NotFound(f"team {team_id} not found", id=team_id)
        return found

    # --- schedules -----------------------------------------------------------------------------

    def create_schedule(self, draft: Schedule) -> Schedule:
        self._check_schedule_users(draft)
        now = self._clock.now()
        schedule = replace(draft, id=_new_id("sch"), created_at=now, updated_at=now, version=1, enabled=True)
        self._write("schedule", schedule.id, lambda: self._schedules.create(schedule))
        return schedule

    def get_schedule(self, schedule_id: str) -> Schedule:
        return self._schedule_and_refs(schedule_id)[0]

    def list_schedules(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Schedule]:
        return self._schedules.list_page(include_disabled, limit, cursor)

    def replace_schedule(self, schedule_id: str, draft: Schedule, expected_version: int | None) -> Schedule:
        current, _ = self._schedule_and_refs(schedule_id)
        self._check_replaceable("schedule", current.id, current.enabled, current.version, expected_version)
        self._check_schedule_users(draft)
        schedule = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
            enabled=True,
        )
        self._write("schedule", schedule_id, lambda: self._schedules.replace(schedule, current.version))
        return schedule

    def disable_schedule(self, schedule_id: str) -> Schedule:
        current, ref_changes = self._schedule_and_refs(schedule_id)
        if not current.enabled:
            return current
        self._refuse_if_named("schedule", schedule_id, self._policy_references("schedule_id", schedule_id))
        schedule = replace(current, enabled=False, updated_at=self._clock.now(), version=current.version + 1)
        self._write(
            "schedule", schedule_id, lambda: self._schedules.replace(schedule, current.version, ref_changes)
        )
        return schedule

    def _check_schedule_users(self, s: Schedule) -> None:
        where: dict[str, str] = {}
        for li, layer in enumerate(s.layers):
            for ui, user_id in enumerate(layer.users):
                where.setdefault(user_id, f"layers.{li}.users.{ui}")
        self._check_users(where.__getitem__, where)

    def _schedule_and_refs(self, schedule_id: str) -> tuple[Schedule, int]:
        found = self._schedules.get(_known_shape("schedule", schedule_id))
        if found is None:
            raise NotFound(f"schedule {schedule_id} not found", id=schedule_id)
        return found

    def _enabled_schedule(self, schedule_id: str) -> Schedule:
        schedule = self.get_schedule(schedule_id)
        if not schedule.enabled:
            raise Conflict(f"schedule {schedule_id} is disabled", id=schedule_id)
        return schedule

    # --- overrides, on call, shifts ------------------------------------------------------------

    def add_override(
        self, schedule_id: str, user_id: str, start: datetime, end: datetime, by: str
    ) -> Override:
        self._enabled_schedule(schedule_id)
        now = self._clock.now()
        if end <= start:
            raise InvalidInput("end", "end must be after start")
        if end <= now:
            raise InvalidInput("end", "end must be in the future: past on-call cannot be rewritten")
        if end - start > MAX_OVERRIDE_LENGTH:
            raise InvalidInput("end", "an override lasts at most 90 days")
        self._check_users(lambda _: "user_id", [user_id])
        override = Override(_new_id("ovr"), user_id, start, end)
        self._write(
            "schedule",
            schedule_id,
            lambda: self._schedules.add_override(schedule_id, override, now, by),
        )
        return override

    def list_overrides(
        self, schedule_id: str, start: datetime | None, end: datetime | None, limit: int, cursor: str | None
    ) -> Page[Override]:
        self.get_schedule(schedule_id)
        lo, hi = self._range(start, end, default=MAX_SHIFT_RANGE)
        return self._schedules.overrides_page(schedule_id, lo, hi, limit, cursor)

    def delete_override(self, schedule_id: str, override_id: str, by: str) -> Override:
        self.get_schedule(schedule_id)
        _known_shape("override", override_id)
        deleted = self._schedules.delete_override(schedule_id, override_id, self._clock.now(), by)
        if deleted is None:
            raise NotFound(
                f"no current or future override {override_id} on schedule {schedule_id}", id=override_id
            )
        return deleted

    def on_call(self, schedule_id: str, at: datetime | None) -> tuple[datetime, list[OnCallEntry]]:
        schedule = self._enabled_schedule(schedule_id)
        at = at or self._clock.now()
        overrides = self._schedules.overrides_between(schedule_id, at, at + timedelta(microseconds=1))
        found = ScheduleEvaluator(schedule, overrides).on_call_at(at)
        users = self._users.get_many(c.user_id for c in found)
        return at, [OnCallEntry(c, users.get(c.user_id)) for c in found]

    def shifts(
        self, schedule_id: str, start: datetime | None, end: datetime | None, default: timedelta
    ) -> ShiftView:
        """The resolved shifts over [start, end); start defaults to now, end to start + default."""
        schedule = self._enabled_schedule(schedule_id)
        lo, hi = self._range(start, end, default)
        overrides = self._schedules.overrides_between(schedule_id, lo, hi)
        shifts = ScheduleEvaluator(schedule, overrides).shifts(lo, hi)
        return ShiftView(schedule, lo, hi, shifts, self._users.get_many(s.user_id for s in shifts))

    def _range(
        self, start: datetime | None, end: datetime | None, default: timedelta
    ) -> tuple[datetime, datetime]:
        lo = start or self._clock.now()
        hi = end or lo + default
        if hi <= lo:
            raise InvalidInput("to", "to must be after from")
        if hi - lo > MAX_SHIFT_RANGE:
            raise InvalidInput("to", "at most 90 days per call; page through longer ranges")
        return lo, hi

    # --- what a level fire reads ----------------------------------------------------------------

    def view_for_targets(self, targets: Sequence[Mapping[str, Any]], at: datetime) -> ConfigView:
        """Just the configuration ``expand_targets`` needs for these targets at ``at``: one read per
        team and schedule, one override query per schedule, then one batch read of every user
        the expansion can reach (named directly, team members, and whoever is on call)."""
        wanted = referenced_ids(targets)
        teams: dict[str, Team] = {}
        for team_id in sorted(i for i in wanted["team"] if _ID.fullmatch(i)):
            found_team = self._teams.get(team_id)
            if found_team is not None:
                teams[team_id] = found_team[0]
        schedules: dict[str, Schedule] = {}
        overrides: dict[str, list[Override]] = {}
        user_ids = set(wanted["user"])
        for team in teams.values():
            user_ids.update(team.members)
        for schedule_id in sorted(i for i in wanted["schedule"] if _ID.fullmatch(i)):
            found = self._schedules.get(schedule_id)
            if found is None:
                continue
            schedule = schedules[schedule_id] = found[0]
            live = overrides[schedule_id] = self._schedules.overrides_between(
                schedule_id, at, at + timedelta(microseconds=1)
            )
            user_ids.update(c.user_id for c in ScheduleEvaluator(schedule, live).on_call_at(at))
        users = self._users.get_many(u for u in user_ids if _ID.fullmatch(u))
        return ConfigView(users=users, teams=teams, schedules=schedules, overrides=overrides)

    # --- shared --------------------------------------------------------------------------------

    def _policy_references(self, key: str, value: str) -> list[Reference]:
        return [
            Reference("policy", p.id, p.name, field)
            for p in self._policies.list_all(include_disabled=False)
            for field, target in _policy_targets(p)
            if target.get(key) == value
        ]

    @staticmethod
    def _refuse_if_named(kind: str, item_id: str, refs: list[Reference]) -> None:
        if refs:
            places = ", ".join(f"{r.kind} {r.id} ({r.field})" for r in refs[:5])
            raise Conflict(
                f"{kind} {item_id} is still named by {places}; change those first",
                id=item_id,
                references=[r.to_dict() for r in refs],
            )

    @staticmethod
    def _check_replaceable(
        kind: str, item_id: str, enabled: bool, version: int, expected_version: int | None
    ) -> None:
        if not enabled:
            raise Conflict(f"{kind} {item_id} is disabled; create a new one", id=item_id)
        if expected_version is not None and expected_version != version:
            raise Conflict(
                f"{kind} {item_id} is at version {version}, not {expected_version}; reload and retry",
                id=item_id,
                version=version,
            )

    @staticmethod
    def _write(kind: str, item_id: str, write: Callable[[], None]) -> None:
        try:
            write()
        except VersionConflict:
            raise Conflict(
                f"{kind} {item_id}, or something it names, changed while this request ran; try again",
                id=item_id,
            ) from None
