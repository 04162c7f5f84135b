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


def open_window(windows: Iterable[MaintenanceWindow], at: datetime) -> MaintenanceWindow | None:
    """The window covering ``at`` that ends last, if any."""
    covering = [w for w in windows if w.covers(at)]
    return max(covering, key=lambda w: w.end) if covering else None
