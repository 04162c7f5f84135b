"""HeartbeatRepository: heartbeats in the incidents table, every write conditional on the version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError

from incident_engine.domain.heartbeats import Heartbeat, HeartbeatStatus
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import SHARDS, HeartbeatItem, shard_of
from incident_engine.usecases.ports import VersionConflict

PK = "HEARTBEAT"
DUE_PREFIX = "HBDUE"  # beside the incidents' DUE#<shard> partitions of the same sparse DueIndex


def _opt(at: datetime | None) -> str | None:
    return to_key(at) if at else None


def _time(text: Any) -> datetime | None:
    return parse_iso(str(text)) if text else None


class HeartbeatRepository:
    def save(self, hb: Heartbeat, expected_version: int | None) -> None:
        """One conditional write: a new heartbeat, or the version ``expected_version`` replaced."""
        condition = (
            HeartbeatItem.pk.does_not_exist()
            if expected_version is None
            else HeartbeatItem.version == expected_version
        )
        try:
            self._to_item(hb).save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise VersionConflict(hb.id) from exc
            raise

    def get(self, heartbeat_id: str) -> Heartbeat | None:
        try:
            return self._to_domain(HeartbeatItem.get(PK, heartbeat_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list_all(self) -> list[Heartbeat]:
        return [self._to_domain(i) for i in HeartbeatItem.query(PK, consistent_read=True)]

    def due(self, cutoff: datetime, limit: int) -> list[Heartbeat]:
        """Heartbeats whose timer was due by ``cutoff``, earliest first: each shard's read stops at
        the cutoff, so this is O(due), never a scan of every heartbeat."""
        connection = HeartbeatItem._get_connection()
        keys = sorted(
            (entry["due_key"]["S"], entry["sk"]["S"])
            for shard in range(SHARDS)
            for entry in connection.query(
                f"{DUE_PREFIX}#{shard}",
                range_key_condition=HeartbeatItem.due_key <= to_key(cutoff),
                index_name="DueIndex",
                limit=limit,
            ).get("Items", [])
        )[:limit]
        found = (self.get(heartbeat_id) for _, heartbeat_id in keys)
        return [hb for hb in found if hb is not None and hb.due_at is not None and hb.due_at <= cutoff]

    @staticmethod
    def _to_item(hb: Heartbeat) -> HeartbeatItem:
        state = {
            "status": hb.status.value,
            "deadline": _opt(hb.deadline),
            "token": hb.token,
            "due_at": _opt(hb.due_at),
            "last_ping_at": _opt(hb.last_ping_at),
            "missed_at": _opt(hb.missed_at),
            "outage_since": _opt(hb.outage_since),
            "synced": hb.synced,
            "recovered_at": _opt(hb.recovered_at),
            "incident_id": hb.incident_id,
        }
        return HeartbeatItem(
            PK,
            hb.id,
            heartbeat_id=hb.id,
            name=hb.name,
            service_id=hb.service_id,
            interval_minutes=hb.interval_minutes,
            enabled=hb.enabled,
            created_at=to_key(hb.created_at),
            updated_at=to_key(hb.updated_at),
            version=hb.version,
            state=state,
            due_pk=f"{DUE_PREFIX}#{shard_of(hb.id)}" if hb.due_at else None,
            due_key=f"{to_key(hb.due_at)}#{hb.id}" if hb.due_at else None,
        )

    @staticmethod
    def _to_domain(item: HeartbeatItem) -> Heartbeat:
        state: dict[str, Any] = item.state or {}
        return Heartbeat(
            id=item.heartbeat_id,
            name=item.name,
            service_id=item.service_id,
            interval_minutes=int(item.interval_minutes),
            enabled=bool(item.enabled),
            created_at=parse_iso(item.created_at),
            updated_at=parse_iso(item.updated_at),
            version=int(item.version),
            status=HeartbeatStatus(state.get("status", "up")),
            deadline=_time(state.get("deadline")),
            token=state.get("token"),
            due_at=_time(state.get("due_at")),
            last_ping_at=_time(state.get("last_ping_at")),
            missed_at=_time(state.get("missed_at")),
            outage_since=_time(state.get("outage_since")),
            synced=bool(state.get("synced", True)),
            recovered_at=_time(state.get("recovered_at")),
            incident_id=state.get("incident_id"),
        )
