"""Maintenance windows: while one is open on a service, its alerts are recorded, not paged."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MAX_WINDOW = timedelta(days=31)  # longer than a month is a disabled service, not maintenance


@dataclass(frozen=True)
class MaintenanceWindow:
    id: str
    service_id: str
    start: datetime
    end: datetime
    reason: str
    created_at: datetime

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end

    def timeline_data(self) -> dict[str, object]:
        return {"window_id": self.id, "start": self.start, "end": self.end, "reason": self.reason}


# A window's start and end go on the timelines of its service's incidents open at that moment,
# each edge through the timer protocol (one timer per edge; the edge noted is the fencing token).
START, END = "start", "end"
EDGE_EVENT = {START: "maintenance_window_started", END: "maintenance_window_ended"}


@dataclass(frozen=True)
class WindowTimer:
    window_id: str
    edge: str  # START | END: the edge this timer notes; stale once the window's next edge moved on
    due_at: datetime


def edge_time(window: MaintenanceWindow, edge: str) -> datetime:
    return window.start if edge == START else window.end


def next_edge(edge: str) -> str | None:
    return END if edge == START else None


def touches(window: MaintenanceWindow, edge: str, incident_created_at: datetime) -> bool:
    """An incident open at an edge is touched by it; one opened inside the window says so already
    (its own maintenance_window event), so only the end touches it."""
    return incident_created_at < edge_time(window, edge)


def open_window(windows: Iterable[MaintenanceWindow], at: datetime) -> MaintenanceWindow | None:
    """The window covering ``at`` that ends last, if any."""
    covering = [w for w in windows if w.covers(at)]
    return max(covering, key=lambda w: w.end) if covering else None
