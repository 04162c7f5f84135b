"""The alarm ingest function's work: each alarm in an SNS or EventBridge event into ``AlertIngest``;
what cannot parse is logged and parked, never raised (an async retry would fail the same way)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from incident_engine.adapters.sources.cloudwatch import parse_event
from incident_engine.domain.alerts import Rejected
from incident_engine.usecases.ingest import AlertIngest


class DeadLetter(Protocol):
    def park(self, payload: Any, errors: list[dict[str, str]]) -> None: ...


@dataclass(frozen=True)
class AlarmReport:
    outcomes: list[dict[str, Any]]
    rejected: int


class AlarmReceiver:
    def __init__(self, ingest: AlertIngest, dead_letter: DeadLetter, log: Any) -> None:
        self._ingest = ingest
        self._dead_letter = dead_letter
        self._log = log

    def receive(self, event: Any) -> AlarmReport:
        outcomes: list[dict[str, Any]] = []
        rejected: list[Rejected] = []
        for parsed in parse_event(event):
            if isinstance(parsed, Rejected):
                rejected.append(parsed)
                continue
            # A store failure raises: Lambda retries the event, then sends it to the DLQ.
            result = self._ingest.ingest_alert(parsed)
            outcomes.append(
                {
                    "dedup_key": result.dedup_key,
                    "service_id": result.service_id,
                    "outcome": result.outcome.value,
                    "incident_id": result.incident.id if result.incident else None,
                    "reason": result.reason,
                }
            )
        if rejected:
            errors = [{"field": e.field, "message": e.message} for r in rejected for e in r.errors]
            self._log.warning("rejected an alarm payload", extra={"errors": errors})
            self._dead_letter.park(event, errors)
        return AlarmReport(outcomes, len(rejected))
