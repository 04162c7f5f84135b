"""Scale of the safety net: many escalating incidents stored, a few overdue; what one pass reads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import time_machine

from bench.harness import CallLog, counting, in_process_aws
from incident_engine.domain import engine
from incident_engine.domain.policy import Level, Policy, Target
from incident_engine.domain.severity import Severity
from incident_engine.store.incidents import IncidentRepository
from local.runtime import invoke, scheduled_event

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class ScaleResult:
    stored: int
    overdue: int
    rearmed: int
    items_read: int
    read_units: float
    seed_seconds: float


def measure(stored: int, overdue: int = 10, progress: bool = True) -> ScaleResult:
    import time

    policy = Policy(
        id="pol_scale",
        name="scale",
        created_at=NOW,
        levels=(
            Level(0, (Target("user", "first@example.com"),)),
            Level(30, (Target("user", "second@example.com"),)),
        ),
    )
    log = CallLog()
    with counting(log), in_process_aws() as stack, time_machine.travel(NOW, tick=False):
        client = boto3.client("dynamodb", region_name=stack.region)
        table = stack.physical["IncidentsTable"]
        started = time.monotonic()
        batch: list[Any] = []
        for n in range(stored):
            # Incidents escalating on level 1; all but `overdue` of them due in the future.
            opened_at = NOW - timedelta(minutes=31 if n < overdue else 1)
            change = engine.open_incident(
                f"INC-20261122-{n + 1:06d}",
                engine.NewIncident(title=f"incident {n}", severity=Severity.P2),
                policy,
                opened_at,
                "bench",
                None,
            )
            batch.append({"PutRequest": {"Item": IncidentRepository._to_item(change.incident).serialize()}})
            if len(batch) == 25:
                client.batch_write_item(RequestItems={table: batch})
                batch = []
            if progress and n and n % 20000 == 0:
                print(f"      stored {n} incidents ...", flush=True)
        if batch:
            client.batch_write_item(RequestItems={table: batch})
        seeded = time.monotonic() - started
        reconciler = stack.function("ReconcilerFunction")
        log.reset()
        report = invoke(reconciler, scheduled_event(reconciler))
        # The DueIndex holds keys only: count the index entries and the overdue items read after.
        queries = [c for c in log.calls if c.operation in ("Query", "GetItem", "BatchGetItem")]
        return ScaleResult(
            stored,
            overdue,
            int(report["timers_rearmed"]),
            sum(c.items_read for c in queries),
            sum(c.read_units for c in queries),
            seeded,
        )
