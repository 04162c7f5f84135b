"""GET /health?deep=1: what an operator asks first when pages seem late.

Queue and dead-letter depths, the oldest timer past its due time and the reconciler's last run,
each read cheaply (one GetQueueAttributes per queue, a few keys-only index reads, one GetItem).
The same conditions raise the engine-health alarms in template.yaml; this answers "why" on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from incident_engine.domain.model import TimerMessage
from incident_engine.usecases.ports import Clock, ReconcilerRun

# The reconciler runs every minute; ReconcilerHeartbeatAlarm fires after five without a run.
RECONCILER_SILENT_AFTER = timedelta(minutes=5)
# Queues whose messages are given up on: any message there needs a human.
DEAD_LETTER_QUEUES = ("timer_dead_letter", "webhook_dead_letter", "alarm_dead_letter")


class QueueDepths(Protocol):
    def depths(self) -> dict[str, dict[str, int] | None]:
        """Per queue name: visible, in_flight and delayed counts (None: could not be read)."""
        ...


class HealthStore(Protocol):
    def overdue(self, cutoff: datetime, limit: int) -> list[TimerMessage]: ...
    def last_reconciler_run(self) -> ReconcilerRun | None: ...


@dataclass(frozen=True)
class DeepHealth:
    status: str  # ok | degraded
    problems: list[str]
    queues: dict[str, dict[str, int] | None]
    oldest_overdue_timer: dict[str, Any] | None
    reconciler: dict[str, Any] | None


class EngineHealth:
    def __init__(self, store: HealthStore, queues: QueueDepths, clock: Clock, grace_seconds: float) -> None:
        self._store = store
        self._queues = queues
        self._clock = clock
        self._grace = timedelta(seconds=grace_seconds)

    def deep(self) -> DeepHealth:
        now = self._clock.now()
        problems: list[str] = []
        queues = self._queues.depths()
        for name, depth in queues.items():
            if depth is None:
                problems.append(f"{name} queue could not be read")
            elif name in DEAD_LETTER_QUEUES and depth["visible"] + depth["in_flight"] > 0:
                problems.append(f"{name} queue holds messages")
        # The earliest armed timer already due (a few, in case the first moved on meanwhile).
        overdue = self._store.overdue(now, 5)
        oldest: dict[str, Any] | None = None
        if overdue:  # escalation timers and delayed pages alike, oldest first
            late = (now - overdue[0].due_at).total_seconds()
            oldest = {
                "incident_id": overdue[0].incident_id,
                "due_at": overdue[0].due_at,
                "overdue_seconds": late,
            }
            # Within the grace the worker is just about to take it; past it the reconciler re-arms.
            if late > self._grace.total_seconds():
                problems.append(f"a timer is {late:.0f} s overdue")
        run = self._store.last_reconciler_run()
        reconciler: dict[str, Any] | None = None
        if run is None:
            problems.append("the reconciler has never run")
        else:
            ago = (now - run.at).total_seconds()
            reconciler = {
                "last_run_at": run.at,
                "seconds_ago": ago,
                "timers_rearmed": run.timers_rearmed,
                "notifications_republished": run.notifications_republished,
            }
            if now - run.at > RECONCILER_SILENT_AFTER:
                problems.append(f"the reconciler last ran {ago:.0f} s ago")
        return DeepHealth("degraded" if problems else "ok", problems, queues, oldest, reconciler)


__all__ = ["DEAD_LETTER_QUEUES", "DeepHealth", "EngineHealth", "QueueDepths"]
