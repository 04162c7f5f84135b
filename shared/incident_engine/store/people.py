"""UserRepository and TeamRepository: people in the config table, versioned, never erased.

  USER / <user id>   a user and their contact methods
  TEAM / <team id>   a team and its members

Every item that may be named elsewhere carries ``ref_changes``, a counter that each write naming
it (a team, a schedule, an override) bumps in its own transaction, on the condition that the item
is enabled. Disabling reads the counter before it looks for references and writes on the
condition that it has not moved, so nothing can come to name an item while it is being disabled.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pynamodb.attributes import BooleanAttribute, JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from incident_engine.domain.people import ContactMethod, Team, User
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.cursor import decode_cursor, encode_cursor
from incident_engine.store.models import ConfigItem
from incident_engine.usecases.ports import Page, VersionConflict

USER = "USER"
TEAM = "TEAM"


class _VersionedConfigItem(ConfigItem):
    name = UnicodeAttribute()
    enabled = BooleanAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    version = NumberAttribute()
    ref_changes = NumberAttribute(default=0)


class UserItem(_VersionedConfigItem, discriminator="user"):
    email = UnicodeAttribute()
    body = JSONAttribute()  # time_zone, contact_methods


class TeamItem(_VersionedConfigItem, discriminator="team"):
    members = JSONAttribute()


def transact_conflict(exc: TransactWriteError) -> bool:
    return any(r is not None and r.code == "ConditionalCheckFailed" for r in exc.cancellation_reasons)


# What a replace writes: everything but the key, created_at and the ref_changes counter, which a
# concurrent writer naming the item may be bumping.
_USER_FIELDS = ("name", "email", "body", "enabled", "updated_at", "version")
_TEAM_FIELDS = ("name", "members", "enabled", "updated_at", "version")


def set_actions(item: Any, fields: Iterable[str]) -> list[Any]:
    cls = type(item)
    return [getattr(cls, f).set(getattr(item, f)) for f in fields]


def list_page(
    model: Any, partition: str, include_disabled: bool, limit: int, cursor: str | None
) -> tuple[list[Any], str | None]:
    results = model.query(
        partition,
        filter_condition=None if include_disabled else model.enabled == True,  # noqa: E712
        consistent_read=True,
        limit=limit,
        page_size=max(limit, 50),
        last_evaluated_key=decode_cursor(cursor, partition),
    )
    items = list(results)
    more = results.last_evaluated_key if len(items) == limit else None
    return items, encode_cursor(more)


def mark_named(tx: TransactWrite, model: Any, partition: str, ids: Iterable[str]) -> None:
    """Within ``tx``: each item must exist and be enabled, and learns it is named once more.

    Any write that comes to name a user, team or schedule (a team, a schedule, an override, and
    a policy once its targets name them) calls this, so that a racing disable fails."""
    for item_id in sorted(set(ids)):
        tx.update(
            model(partition, item_id),
            actions=[model.ref_changes.add(1)],
            condition=model.enabled == True,  # noqa: E712
        )


def name_users(tx: TransactWrite, user_ids: Iterable[str]) -> None:
    mark_named(tx, UserItem, USER, user_ids)


class UserRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    def create(self, user: User) -> None:
        self._to_item(user).save(condition=UserItem.pk.does_not_exist())

    def replace(self, user: User, expected_version: int, expected_ref_changes: int | None = None) -> None:
        """Write ``user`` if it is still at ``expected_version`` (and, when disabling, nothing
        has come to name it since ``expected_ref_changes`` was read)."""
        condition: Condition = UserItem.version == expected_version
        if expected_ref_changes is not None:
            condition &= UserItem.ref_changes == expected_ref_changes
        item = self._to_item(user)
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.update(item, actions=set_actions(item, _USER_FIELDS), condition=condition)
        except TransactWriteError as exc:
            if transact_conflict(exc):
                raise VersionConflict(user.id) from exc
            raise

    def get(self, user_id: str) -> tuple[User, int] | None:
        """The user and its ``ref_changes`` counter."""
        try:
            item = UserItem.get(USER, user_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_user(item), int(item.ref_changes or 0)

    def get_many(self, user_ids: Iterable[str]) -> dict[str, User]:
        keys = [(USER, u) for u in sorted(set(user_ids))]
        return (
            {i.sk: self._to_user(i) for i in UserItem.batch_get(keys, consistent_read=True)} if keys else {}
        )

    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[User]:
        items, next_cursor = list_page(UserItem, USER, include_disabled, limit, cursor)
        return Page([self._to_user(i) for i in items], next_cursor)

    def list_all(self) -> list[User]:
        return [self._to_user(i) for i in UserItem.query(USER, consistent_read=True)]

    @staticmethod
    def _to_item(u: User) -> UserItem:
        assert u.created_at is not None and u.updated_at is not None
        return UserItem(
            USER,
            u.id,
            name=u.name,
            email=u.email,
            body={
                "time_zone": u.time_zone,
                "contact_methods": [_contact_body(c) for c in u.contact_methods],
            },
            enabled=u.enabled,
            created_at=to_key(u.created_at),
            updated_at=to_key(u.updated_at),
            version=u.version,
            ref_changes=0,
        )

    @staticmethod
    def _to_user(i: UserItem) -> User:
        body = i.body or {}
        return User(
            id=i.sk,
            name=i.name,
            email=i.email,
            time_zone=str(body.get("time_zone", "UTC")),
            contact_methods=tuple(
                ContactMethod(
                    c["type"],
                    c["address"],
                    float(c.get("delay_minutes") or 0),
                    (c.get("subscription") or {}).get("arn"),
                    (c.get("subscription") or {}).get("status"),
                )
                for c in body.get("contact_methods") or ()
            ),
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
            version=int(i.version),
        )


def _contact_body(c: ContactMethod) -> dict[str, Any]:
    body: dict[str, Any] = {"type": c.type, "address": c.address, "delay_minutes": c.delay_minutes}
    if c.subscription_arn:
        body["subscription"] = {"arn": c.subscription_arn, "status": c.subscription_status}
    return body


class TeamRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    def create(self, team: Team) -> None:
        self._write(team, TeamItem.pk.does_not_exist(), replace=False)

    def replace(self, team: Team, expected_version: int, expected_ref_changes: int | None = None) -> None:
        condition: Condition = TeamItem.version == expected_version
        if expected_ref_changes is not None:
            condition &= TeamItem.ref_changes == expected_ref_changes
        self._write(team, condition, replace=True)

    def get(self, team_id: str) -> tuple[Team, int] | None:
        try:
            item = TeamItem.get(TEAM, team_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_team(item), int(item.ref_changes or 0)

    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Team]:
        items, next_cursor = list_page(TeamItem, TEAM, include_disabled, limit, cursor)
        return Page([self._to_team(i) for i in items], next_cursor)

    def list_all(self) -> list[Team]:
        return [self._to_team(i) for i in TeamItem.query(TEAM, consistent_read=True)]

    def _write(self, team: Team, condition: Condition, replace: bool) -> None:
        assert team.created_at is not None and team.updated_at is not None
        item = TeamItem(
            TEAM,
            team.id,
            name=team.name,
            members=list(team.members),
            enabled=team.enabled,
            created_at=to_key(team.created_at),
            updated_at=to_key(team.updated_at),
            version=team.version,
            ref_changes=0,
        )
        try:
            with TransactWrite(connection=self._connection) as tx:
                if replace:
                    tx.update(item, actions=set_actions(item, _TEAM_FIELDS), condition=condition)
                else:
                    tx.save(item, condition=condition)
                if team.enabled:
                    name_users(tx, team.members)
        except TransactWriteError as exc:
            if transact_conflict(exc):
                raise VersionConflict(team.id) from exc
            raise

    @staticmethod
    def _to_team(i: TeamItem) -> Team:
        return Team(
            id=i.sk,
            name=i.name,
            members=tuple(i.members or ()),
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
            version=int(i.version),
        )
