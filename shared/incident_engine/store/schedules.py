"""ScheduleRepository: on-call schedules and their overrides in the config table.

  SCHEDULE / <schedule id>                      a schedule: zone and layers
  OVERRIDE#<schedule id> / <end key>#<ovr id>   an override, sorted by its end, so the overrides
                                                still running after an instant are one key range
Overrides are never erased: deleting one stamps ``deleted_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from incident_engine.domain.schedules import Layer, Override, Restriction, Rotation, Schedule, user_ids
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.cursor import decode_cursor, encode_cursor
from incident_engine.store.models import ConfigItem
from incident_engine.store.people import (
    _VersionedConfigItem,
    list_page,
    name_users,
    set_actions,
    transact_conflict,
)
from incident_engine.usecases.ports import Page, VersionConflict

SCHEDULE = "SCHEDULE"
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
_SCHEDULE_FIELDS = ("name", "body", "enabled", "updated_at", "version")


class ScheduleItem(_VersionedConfigItem, discriminator="schedule"):
    body = JSONAttribute()  # time_zone, layers


class OverrideItem(ConfigItem, discriminator="override"):
    override_id = UnicodeAttribute()
    schedule_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    created_at = UnicodeAttribute()
    created_by = UnicodeAttribute()
    deleted_at = UnicodeAttribute(null=True)
    deleted_by = UnicodeAttribute(null=True)


def overrides_pk(schedule_id: str) -> str:
    return f"OVERRIDE#{schedule_id}"


def layers_to_json(layers: tuple[Layer, ...]) -> list[dict[str, Any]]:
    return [
        {
            "name": layer.name,
            "users": list(layer.users),
            "rotation": {
                "type": layer.rotation.type,
                "start": layer.rotation.start.isoformat(timespec="minutes"),
                "handoff_time": layer.rotation.handoff_time.strftime("%H:%M"),
                "handoff_day": layer.rotation.handoff_day,
                "shift_hours": layer.rotation.shift_hours,
            },
            "restrictions": [
                {"days": sorted(r.days), "start": r.start.strftime("%H:%M"), "end": r.end.strftime("%H:%M")}
                for r in layer.restrictions
            ],
        }
        for layer in layers
    ]


def layers_from_json(data: list[dict[str, Any]]) -> tuple[Layer, ...]:
    return tuple(
        Layer(
            name=lv["name"],
            users=tuple(lv["users"]),
            rotation=Rotation(
                type=lv["rotation"]["type"],
                start=datetime.fromisoformat(lv["rotation"]["start"]),
                handoff_time=time.fromisoformat(lv["rotation"]["handoff_time"]),
                handoff_day=int(lv["rotation"]["handoff_day"]),
                shift_hours=int(lv["rotation"]["shift_hours"]),
            ),
            restrictions=tuple(
                Restriction(
                    frozenset(int(d) for d in r["days"]),
                    time.fromisoformat(r["start"]),
                    time.fromisoformat(r["end"]),
                )
                for r in lv.get("restrictions") or ()
            ),
        )
        for lv in data
    )


class ScheduleRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    # --- schedules ---------------------------------------------------------------------------

    def create(self, schedule: Schedule) -> None:
        self._write(schedule, ScheduleItem.pk.does_not_exist(), replace=False)

    def replace(
        self, schedule: Schedule, expected_version: int, expected_ref_changes: int | None = None
    ) -> None:
        condition: Condition = ScheduleItem.version == expected_version
        if expected_ref_changes is not None:
            condition &= ScheduleItem.ref_changes == expected_ref_changes
        self._write(schedule, condition, replace=True)

    def get(self, schedule_id: str) -> tuple[Schedule, int] | None:
        try:
            item = ScheduleItem.get(SCHEDULE, schedule_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_schedule(item), int(item.ref_changes or 0)

    def list_page(self, include_disabled: bool, limit: int, cursor: str | None) -> Page[Schedule]:
        items, next_cursor = list_page(ScheduleItem, SCHEDULE, include_disabled, limit, cursor)
        return Page([self._to_schedule(i) for i in items], next_cursor)

    def list_all(self) -> list[Schedule]:
        return [self._to_schedule(i) for i in ScheduleItem.query(SCHEDULE, consistent_read=True)]

    def _write(self, schedule: Schedule, condition: Condition, replace: bool) -> None:
        assert schedule.created_at is not None and schedule.updated_at is not None
        item = ScheduleItem(
            SCHEDULE,
            schedule.id,
            name=schedule.name,
            body={"time_zone": schedule.time_zone, "layers": layers_to_json(schedule.layers)},
            enabled=schedule.enabled,
            created_at=to_key(schedule.created_at),
            updated_at=to_key(schedule.updated_at),
            version=schedule.version,
            ref_changes=0,
        )
        try:
            with TransactWrite(connection=self._connection) as tx:
                if replace:
                    tx.update(item, actions=set_actions(item, _SCHEDULE_FIELDS), condition=condition)
                else:
                    tx.save(item, condition=condition)
                if schedule.enabled:
                    name_users(tx, user_ids(schedule))
        except TransactWriteError as exc:
            if transact_conflict(exc):
                raise VersionConflict(schedule.id) from exc
            raise

    @staticmethod
    def _to_schedule(i: ScheduleItem) -> Schedule:
        return Schedule(
            id=i.sk,
            name=i.name,
            time_zone=i.body["time_zone"],
            layers=layers_from_json(i.body["layers"]),
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
            version=int(i.version),
        )

    # --- overrides ---------------------------------------------------------------------------

    def add_override(self, schedule_id: str, override: Override, created_at: datetime, by: str) -> None:
        """One transaction: the schedule is enabled, the user is enabled, the override is new."""
        item = OverrideItem(
            overrides_pk(schedule_id),
            f"{to_key(override.end)}#{override.id}",
            override_id=override.id,
            schedule_id=schedule_id,
            user_id=override.user_id,
            start=to_key(override.start),
            end=to_key(override.end),
            created_at=to_key(created_at),
            created_by=by,
        )
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(item, condition=OverrideItem.pk.does_not_exist())
                enabled = ScheduleItem.enabled == True  # noqa: E712
                tx.condition_check(ScheduleItem, SCHEDULE, schedule_id, condition=enabled)
                name_users(tx, [override.user_id])
        except TransactWriteError as exc:
            if transact_conflict(exc):
                raise VersionConflict(override.id) from exc
            raise

    def overrides_page(
        self,
        schedule_id: str,
        ending_after: datetime,
        starting_before: datetime,
        limit: int,
        cursor: str | None,
    ) -> Page[Override]:
        """Overrides not deleted that overlap (ending_after, starting_before), by end time."""
        pk = overrides_pk(schedule_id)
        results = OverrideItem.query(
            pk,
            OverrideItem.sk > to_key(ending_after),
            filter_condition=OverrideItem.deleted_at.does_not_exist()
            & (OverrideItem.start < to_key(starting_before)),
            consistent_read=True,
            limit=limit,
            page_size=max(limit, 50),
            last_evaluated_key=decode_cursor(cursor, pk, after_sk=to_key(ending_after)),
        )
        items = [self._to_override(i) for i in results]
        more = results.last_evaluated_key if len(items) == limit else None
        return Page(items, encode_cursor(more))

    def overrides_between(self, schedule_id: str, start: datetime, end: datetime) -> list[Override]:
        """Every live override overlapping [start, end): a key range on the end, then a filter."""
        return [
            self._to_override(i)
            for i in OverrideItem.query(
                overrides_pk(schedule_id),
                OverrideItem.sk > to_key(start),
                filter_condition=OverrideItem.deleted_at.does_not_exist()
                & (OverrideItem.start < to_key(end)),
                consistent_read=True,
            )
        ]

    def delete_override(self, schedule_id: str, override_id: str, now: datetime, by: str) -> Override | None:
        """Stamp a current or future override deleted; None when there is no such override."""
        found = list(
            OverrideItem.query(
                overrides_pk(schedule_id),
                OverrideItem.sk > to_key(now),
                filter_condition=(OverrideItem.override_id == override_id)
                & OverrideItem.deleted_at.does_not_exist(),
                consistent_read=True,
            )
        )
        if not found:
            return None
        item = found[0]
        try:
            item.update(
                actions=[OverrideItem.deleted_at.set(to_key(now)), OverrideItem.deleted_by.set(by)],
                condition=OverrideItem.deleted_at.does_not_exist(),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return None  # deleted by a concurrent request
            raise
        return self._to_override(item)

    def users_in_live_overrides(self, schedule_ids: list[str], now: datetime) -> list[tuple[str, Override]]:
        """(schedule id, override) for every override not yet over, across the given schedules."""
        out: list[tuple[str, Override]] = []
        for schedule_id in schedule_ids:
            out.extend((schedule_id, o) for o in self.overrides_between(schedule_id, now, FAR_FUTURE))
        return out

    @staticmethod
    def _to_override(i: OverrideItem) -> Override:
        return Override(i.override_id, i.user_id, parse_iso(i.start), parse_iso(i.end))
