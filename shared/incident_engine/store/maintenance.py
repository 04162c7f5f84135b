"""MaintenanceWindowRepository: a service's maintenance windows in the config table, and beside the
incidents the edge of each still to be noted on timelines (its timer's due time, in the DueIndex)."""

from __future__ import annotations

from datetime import datetime

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from incident_engine.domain.maintenance import START, MaintenanceWindow, edge_time
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import SHARDS, MaintenanceWindowItem, WindowEdgesItem, shard_of

EDGES_SK = "EDGES"
DUE_PREFIX = "MWDUE"


def _pk(service_id: str) -> str:
    return f"MAINT#{service_id}"


def _edges_pk(window_id: str) -> str:
    return f"MWIN#{window_id}"


def _due(window: MaintenanceWindow, edge: str) -> tuple[str, str]:
    return f"{DUE_PREFIX}#{shard_of(window.id)}", f"{to_key(edge_time(window, edge))}#{window.id}"


class MaintenanceWindowRepository:
    def create(self, window: MaintenanceWindow) -> None:
        """The window and its first edge to note, in one transaction (the two tables)."""
        due_pk, due_key = _due(window, START)
        meta = MaintenanceWindowItem.Meta
        connection = Connection(region=getattr(meta, "region", None), host=getattr(meta, "host", None))
        with TransactWrite(connection=connection) as tx:
            tx.save(
                MaintenanceWindowItem(
                    _pk(window.service_id),
                    f"{to_key(window.start)}#{window.id}",
                    window_id=window.id,
                    service_id=window.service_id,
                    start=to_key(window.start),
                    end=to_key(window.end),
                    reason=window.reason,
                    created_at=to_key(window.created_at),
                ),
                condition=MaintenanceWindowItem.pk.does_not_exist(),
            )
            tx.save(
                WindowEdgesItem(
                    _edges_pk(window.id),
                    EDGES_SK,
                    window_id=window.id,
                    service_id=window.service_id,
                    start=to_key(window.start),
                    end=to_key(window.end),
                    reason=window.reason,
                    created_at=to_key(window.created_at),
                    next_edge=START,
                    due_pk=due_pk,
                    due_key=due_key,
                ),
                condition=WindowEdgesItem.pk.does_not_exist(),
            )

    def list_for(self, service_id: str, started_by: datetime | None = None) -> list[MaintenanceWindow]:
        """Oldest first; with ``started_by``, only windows that had started by then."""
        condition = MaintenanceWindowItem.sk <= f"{to_key(started_by)}#~" if started_by else None
        items = MaintenanceWindowItem.query(_pk(service_id), condition, consistent_read=True)
        return [
            MaintenanceWindow(
                id=i.window_id,
                service_id=i.service_id,
                start=parse_iso(i.start),
                end=parse_iso(i.end),
                reason=i.reason,
                created_at=parse_iso(i.created_at),
            )
            for i in items
        ]

    # --- edges to note on timelines ----------------------------------------------------------------

    def pending_edge(self, window_id: str) -> tuple[MaintenanceWindow, str] | None:
        """The window and its edge still to be noted; None when both are (or no such window)."""
        try:
            item = WindowEdgesItem.get(_edges_pk(window_id), EDGES_SK, consistent_read=True)
        except DoesNotExist:
            return None
        if item.next_edge is None:
            return None
        window = MaintenanceWindow(
            item.window_id,
            item.service_id,
            parse_iso(item.start),
            parse_iso(item.end),
            item.reason,
            parse_iso(item.created_at),
        )
        return window, item.next_edge

    def advance(self, window: MaintenanceWindow, noted: str, following: str | None) -> bool:
        """``noted`` is done: move to ``following`` (out of the due index when None). Conditional on
        ``noted`` still being next, so two deliveries of one timer advance it once."""
        actions: list[Action] = []
        if following:
            due_pk, due_key = _due(window, following)
            actions += [
                WindowEdgesItem.next_edge.set(following),
                WindowEdgesItem.due_pk.set(due_pk),
                WindowEdgesItem.due_key.set(due_key),
            ]
        else:
            actions += [
                WindowEdgesItem.next_edge.remove(),
                WindowEdgesItem.due_pk.remove(),
                WindowEdgesItem.due_key.remove(),
            ]
        try:
            WindowEdgesItem(_edges_pk(window.id), EDGES_SK).update(
                actions=actions, condition=WindowEdgesItem.next_edge == noted
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def due_edges(self, cutoff: datetime, limit: int) -> list[tuple[MaintenanceWindow, str]]:
        """Edges due by ``cutoff``, earliest first; each shard's read stops at the cutoff: O(due)."""
        connection = WindowEdgesItem._get_connection()
        keys = sorted(
            (entry["due_key"]["S"], entry["pk"]["S"].removeprefix("MWIN#"))
            for shard in range(SHARDS)
            for entry in connection.query(
                f"{DUE_PREFIX}#{shard}",
                range_key_condition=WindowEdgesItem.due_key <= to_key(cutoff),
                index_name="DueIndex",
                limit=limit,
            ).get("Items", [])
        )[:limit]
        found = (self.pending_edge(window_id) for _, window_id in keys)
        return [f for f in found if f is not None and edge_time(f[0], f[1]) <= cutoff]
