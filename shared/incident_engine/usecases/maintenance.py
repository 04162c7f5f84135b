"""Maintenance windows of a service: declared ahead, consulted by every alert that opens an incident.

A window's start and end are noted on the timelines of its service's incidents open at that moment,
each edge through the timer protocol: the edge timer is sent after the window is committed; a
duplicate or late delivery finds the edge noted already (stale) or notes each timeline once (the
event's key is the window and edge); a lost one is re-sent by the reconciler from the due index.
"""

from __future__ import annotations

import math
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from incident_engine.domain.errors import InvalidInput, NotFound
from incident_engine.domain.maintenance import (
    EDGE_EVENT,
    MAX_WINDOW,
    START,
    MaintenanceWindow,
    WindowTimer,
    edge_time,
    next_edge,
    open_window,
    touches,
)
from incident_engine.domain.model import Incident, TimelineEvent
from incident_engine.observability import count, logger
from incident_engine.usecases.ports import ACTIVE, Clock, IncidentFilter, Page
from incident_engine.usecases.services import ServiceCatalog

# Open incidents of the service are read from the ActiveIndex page by page; this bounds one edge.
MAX_PAGES = 50


class WindowStore(Protocol):
    def create(self, window: MaintenanceWindow) -> None:
        """The window and its first edge to note (due at its start), in one transaction."""
        ...

    def list_for(self, service_id: str, started_by: datetime | None = None) -> list[MaintenanceWindow]: ...
    def pending_edge(self, window_id: str) -> tuple[MaintenanceWindow, str] | None: ...
    def advance(self, window: MaintenanceWindow, noted: str, following: str | None) -> bool: ...
    def due_edges(self, cutoff: datetime, limit: int) -> list[tuple[MaintenanceWindow, str]]: ...


class Timelines(Protocol):
    def list_page(self, flt: IncidentFilter, limit: int, cursor: str | None) -> Page[Incident]: ...
    def append_event_once(self, event: TimelineEvent, key: str) -> bool: ...


class WindowTimers(Protocol):
    def send(self, message: WindowTimer, delay_seconds: int) -> None: ...


class EdgeOutcome(StrEnum):
    NOTED = "noted"
    HOPPED = "hopped"
    STALE = "stale"


class MaintenanceWindows:
    def __init__(
        self,
        store: WindowStore,
        catalog: ServiceCatalog,
        clock: Clock,
        timers: WindowTimers | None = None,
        timelines: Timelines | None = None,
        grace_seconds: float = 20.0,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock
        self._timers = timers
        self._timelines = timelines
        self._grace = timedelta(seconds=grace_seconds)

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
        self._send(WindowTimer(window.id, START, start))
        return window

    def list_for(self, service_id: str) -> list[MaintenanceWindow]:
        if self._catalog.service_or_none(service_id) is None:
            raise NotFound(f"service {service_id} not found", id=service_id)
        return self._store.list_for(service_id)

    def open_now(self, service_id: str) -> MaintenanceWindow | None:
        now = self._clock.now()
        return open_window(self._store.list_for(service_id, started_by=now), now)

    # --- edges on timelines ----------------------------------------------------------------------

    def handle_timer(self, timer: WindowTimer) -> EdgeOutcome:
        edges = self._store
        pending = edges.pending_edge(timer.window_id)
        if pending is None or pending[1] != timer.edge:
            count("StaleTimers")
            return EdgeOutcome.STALE
        window, edge = pending
        if edge_time(window, edge) > self._clock.now():
            # SQS delays stop at 15 minutes: a window declared days ahead hops until its edge.
            if not self._send(WindowTimer(window.id, edge, edge_time(window, edge))):
                raise RuntimeError("could not re-send the maintenance window timer")
            count("TimerHops")
            return EdgeOutcome.HOPPED
        self._note(window, edge)
        following = next_edge(edge)
        if edges.advance(window, edge, following) and following is not None:
            self._send(WindowTimer(window.id, following, edge_time(window, following)))
        return EdgeOutcome.NOTED

    def rearm_due(self, limit: int) -> int:
        """The reconciler's part: re-send edges overdue by more than the grace, O(due)."""
        rearmed = 0
        for window, edge in self._store.due_edges(self._clock.now() - self._grace, limit):
            if self._send(WindowTimer(window.id, edge, edge_time(window, edge))):
                rearmed += 1
        return rearmed

    def _note(self, window: MaintenanceWindow, edge: str) -> int:
        """The edge on the timeline of every incident of the service open at it: O(active)."""
        assert self._timelines is not None
        service = self._catalog.service_or_none(window.service_id)
        if service is None:
            return 0
        at = edge_time(window, edge)
        data = {**window.timeline_data(), "edge": edge}
        noted, cursor = 0, None
        for _ in range(MAX_PAGES):
            page = self._timelines.list_page(IncidentFilter(status=ACTIVE, service=service.name), 100, cursor)
            for incident in page.items:
                if incident.service_id == window.service_id and touches(window, edge, incident.created_at):
                    event = TimelineEvent(incident.id, at, EDGE_EVENT[edge], "system", data)
                    if self._timelines.append_event_once(event, f"{window.id}#{edge}"):
                        noted += 1
            cursor = page.next_cursor
            if cursor is None:
                break
        else:
            logger.warning("maintenance edge: too many open incidents to note", extra={"window": window.id})
        count("MaintenanceEdgesNoted", noted)
        return noted

    def _send(self, timer: WindowTimer) -> bool:
        if self._timers is None:
            return False
        delay = max(0, math.ceil((timer.due_at - self._clock.now()).total_seconds()))
        try:
            self._timers.send(timer, delay)
        except Exception:
            logger.exception("maintenance timer send failed; the reconciler will re-arm")
            count("TimerSendFailed")
            return False
        return True
