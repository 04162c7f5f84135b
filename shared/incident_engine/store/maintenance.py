"""MaintenanceWindowRepository: a service's maintenance windows in the config table."""

from __future__ import annotations

from datetime import datetime

from incident_engine.domain.maintenance import MaintenanceWindow
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import MaintenanceWindowItem


def _pk(service_id: str) -> str:
    return f"MAINT#{service_id}"


class MaintenanceWindowRepository:
    def create(self, window: MaintenanceWindow) -> None:
        MaintenanceWindowItem(
            _pk(window.service_id),
            f"{to_key(window.start)}#{window.id}",
            window_id=window.id,
            service_id=window.service_id,
            start=to_key(window.start),
            end=to_key(window.end),
            reason=window.reason,
            created_at=to_key(window.created_at),
        ).save(condition=MaintenanceWindowItem.pk.does_not_exist())

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
