"""The one clock all code reads. Tests move it with time-machine instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)
