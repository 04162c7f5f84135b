"""Scale of the safety net: many escalating incidents and heartbeats stored, a few of each overdue;
what one reconciler pass reads, per kind of repair it makes.

The pass reads, from the sparse DueIndex and PendingIndex, one query per shard per kind: incident
timers (DUE#), heartbeat timers (HBDUE#), maintenance-window edges (MWDUE#), pending outbox rows
(PENDING#), then the overdue items themselves. It has no separate SLA or acknowledgement-timeout
scan: an unacknowledged level's timeout is its escalation timer (DUE#), and the SLA deadlines are
computed from the incident when it is read."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import time_machine

from bench.harness import CallLog, counting, in_process_aws, on_new_clients
from incident_engine.domain import engine
from incident_engine.domain.heartbeats import Heartbeat
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
    heartbeats: int = 0
    heartbeats_overdue: int = 0
    # items read by what they were read for: "DUE", "HBDUE", "MWDUE", "PENDING" (index queries),
    # "items" (the overdue items and their configuration, read one by one after)
    items_by_kind: dict[str, int] = field(default_factory=dict)
    calls: int = 0

    @property
    def due(self) -> int:
        return self.overdue + self.heartbeats_overdue


class _QueryKinds:
    """Which index partition each Query read (DUE#, HBDUE#, ...), in call order."""

    def __init__(self) -> None:
        self.kinds: list[str] = []

    def before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name != "Query":
            return
        values = [v.get("S", "") for v in (params.get("ExpressionAttributeValues") or {}).values()]
        prefix = next((v.split("#")[0] for v in values if "#" in v and v.split("#")[0].isupper()), "other")
        self.kinds.append(prefix)


def _heartbeat(n: int, overdue: bool) -> Heartbeat:
    # A heartbeat pinged a minute ago, its deadline (and timer) ahead; or one whose timer was lost.
    due = NOW - timedelta(minutes=10) if overdue else NOW + timedelta(minutes=4 + n % 50)
    return Heartbeat(
        id=f"hb_{n:06d}",
        name=f"job {n}",
        service_id="svc_scale",
        interval_minutes=5,
        enabled=True,
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(minutes=1),
        version=1,
        deadline=due,
        token=f"tok{n}",
        due_at=due,
        last_ping_at=NOW - timedelta(minutes=1),
    )


def measure(stored: int, overdue: int = 10, progress: bool = True, heartbeats: int = 0) -> ScaleResult:
    import time

    from incident_engine.store.heartbeats import HeartbeatRepository

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
        hb_overdue = min(overdue, heartbeats)
        for n in range(heartbeats):
            item = HeartbeatRepository._to_item(_heartbeat(n, n < hb_overdue))
            batch.append({"PutRequest": {"Item": item.serialize()}})
            if len(batch) == 25:
                client.batch_write_item(RequestItems={table: batch})
                batch = []
        if batch:
            client.batch_write_item(RequestItems={table: batch})
        seeded = time.monotonic() - started
        reconciler = stack.function("ReconcilerFunction")
        kinds = _QueryKinds()
        hook = kinds.before_parameter_build
        with on_new_clients(lambda c: c.meta.events.register("before-parameter-build", hook)):
            from incident_engine.store.models import CONFIG_MODELS, INCIDENT_MODELS

            for model in (*INCIDENT_MODELS, *CONFIG_MODELS):
                model._connection = None  # new clients, so that the hook sees the pass's queries
            log.reset()
            report = invoke(reconciler, scheduled_event(reconciler))
        # The indexes hold keys only: count the index entries and the overdue items read after.
        queries = [c for c in log.calls if c.operation in ("Query", "GetItem", "BatchGetItem")]
        by_kind: Counter[str] = Counter()
        query_kinds = iter(kinds.kinds)
        for c in queries:
            by_kind[next(query_kinds, "other") if c.operation == "Query" else "items"] += c.items_read
        return ScaleResult(
            stored,
            overdue,
            int(report["timers_rearmed"]),
            sum(c.items_read for c in queries),
            sum(c.read_units for c in queries),
            seeded,
            heartbeats,
            hb_overdue,
            dict(by_kind),
            len(log.calls),
        )
