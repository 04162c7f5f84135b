"""Maintenance windows of a service: declared ahead, consulted by every alert that opens an incident."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Protocol

from incident_engine.domain.errors import InvalidInput, NotFound
from incident_engine.domain.maintenance import MAX_WINDOW, MaintenanceWindow, open_window
from incident_engine.usecases.ports import Clock
from incident_engine.usecases.services import ServiceCatalog


class WindowStore(Protocol):
    def create(self, window: MaintenanceWindow) -> None: ...
    def list_for(self, service_id: str, started_by: datetime | None = None) -> list[MaintenanceWindow]: ...


class MaintenanceWindows:
    def __init__(self, store: WindowStore, catalog: ServiceCatalog, clock: Clock) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock

    def create(self, service_id: str, start: datetime, end: datetime, reason: str) -> MaintenanceWindow:
        service = self._catalog.service_or_none(service_id)
        if service is None:
            raise NotFound(f"service {service_id} not found", id=service_id)
        if end <= start:
            raise InvalidInput("end", "must be after start")
        if end - start > MAX_WINDOW:
            raise InvalidInput("end", f"a window lasts at most {MAX_WINDOW.days} days")
        if end <= self._clock.now():
            raise InvalidInput("end", "is in the past")
        window = MaintenanceWindow(
            f"mw_{secrets.token_hex(6)}", service.id, start, end, reason, self._clock.now()
        )
        self._store.create(window)
        return window

    def list_for(self, service_id: str) -> list[MaintenanceWindow]:
        if self._catalog.service_or_none(service_id) is None:
            raise NotFound(f"service {service_id} not found", id=service_id)
        return self._store.list_for(service_id)

    def open_now(self, service_id: str) -> MaintenanceWindow | None:
        now = self._clock.now()
        return open_window(self._store.list_for(service_id, started_by=now), now)
