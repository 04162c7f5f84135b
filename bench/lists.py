"""Lists and indexes: what one list page reads with a long history stored, and what one incident's
lifecycle writes to the table and to its secondary indexes.

moto keeps secondary indexes but does not bill them, and the request alone does not say what an
index write costs (that depends on the item before and after). So `IndexWrites` reads each item
touched by a write from moto's backend before and after the call and applies DynamoDB's rules: an
entry put when the item enters an index or a projected attribute changes, deleted when it leaves,
both when its index key changes; each write is ceil(entry size / 1 KB) units.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import time_machine

from bench.harness import CallLog, _item_bytes, counting, in_process_aws, on_new_clients
from incident_engine.domain import engine
from incident_engine.domain.lifecycle import Status
from incident_engine.domain.severity import Severity
from incident_engine.store.incidents import IncidentRepository
from local.template import ACCOUNT
from tests.support import Api, Timers

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"}
QUERIES: tuple[dict[str, str], ...] = (
    {},
    {"status": "open"},
    {"status": "active"},
    {"service": "payments"},
    {"team": "pay", "severity": "P0"},
    {"status": "open", "service": "payments"},
)


@dataclass
class IndexWrites:
    region: str
    units: float = 0.0
    _before: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(default_factory=list)

    def _backend(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[ACCOUNT][self.region]

    def _touched(self, operation: str, params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
        backend = self._backend()

        def key_of(table_name: str, item: dict[str, Any]) -> dict[str, Any]:
            table = backend.get_table(table_name)
            attrs = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            return {a: item[a] for a in attrs}

        if operation == "PutItem":
            return [(params["TableName"], key_of(params["TableName"], params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if operation == "BatchWriteItem":
            return [
                (
                    name,
                    key_of(name, r["PutRequest"]["Item"]) if "PutRequest" in r else r["DeleteRequest"]["Key"],
                )
                for name, rows in params["RequestItems"].items()
                for r in rows
            ]
        touched = []
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            if kind == "Put":
                touched.append((body["TableName"], key_of(body["TableName"], body["Item"])))
            elif kind in ("Update", "Delete"):
                touched.append((body["TableName"], body["Key"]))
        return touched

    def _image(self, table_name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item = self._backend().get_item(table_name, key)
        return None if item is None else dict(item.to_json()["Attributes"])

    def before_parameter_build(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self._before = []
        if model.service_model.service_name == "dynamodb" and model.name in _WRITES:
            self._before = [(t, k, self._image(t, k)) for t, k in self._touched(model.name, params)]

    def after_call(self, model: Any, **_: Any) -> None:
        backend = self._backend()
        for table_name, key, old in self._before:
            table = backend.get_table(table_name)
            new = self._image(table_name, key)
            for index in table.global_indexes or []:
                self.units += _entry_units(index, table, old, new)
        self._before = []


def _entry(index: Any, table: Any, image: dict[str, Any] | None) -> dict[str, Any] | None:
    keys = [k["AttributeName"] for k in index.schema]
    if image is None or not all(k in image for k in keys):
        return None  # sparse: not in this index
    projection = index.projection.get("ProjectionType", "ALL")
    if projection == "ALL":
        return image
    wanted = {*keys, table.hash_key_attr, table.range_key_attr}
    if projection == "INCLUDE":
        wanted |= set(index.projection.get("NonKeyAttributes", []))
    return {k: v for k, v in image.items() if k in wanted}


def _entry_units(index: Any, table: Any, old_image: dict[str, Any] | None, new_image: Any) -> float:
    old, new = _entry(index, table, old_image), _entry(index, table, new_image)
    if old == new:
        return 0.0

    def size(entry: dict[str, Any]) -> int:
        return max(1, math.ceil(_item_bytes(entry) / 1024))

    keys = [k["AttributeName"] for k in index.schema]
    if old is None:
        return float(size(new))  # type: ignore[arg-type]
    if new is None:
        return float(size(old))
    if any(old.get(k) != new.get(k) for k in keys):
        return float(size(old) + size(new))  # moved: a delete and a put
    return float(size(new))


@contextmanager
def index_writes(meter: IndexWrites) -> Iterator[IndexWrites]:
    def instrument(client: Any) -> None:
        client.meta.events.register("before-parameter-build", meter.before_parameter_build)
        client.meta.events.register("after-call", meter.after_call)

    with on_new_clients(instrument):
        yield meter


@dataclass(frozen=True)
class PageRead:
    query: str
    returned: int | None  # None: the API refused the query
    items_read: int
    read_units: float


@dataclass(frozen=True)
class LifecycleWrites:
    op: str
    table_units: float
    index_units: float


@dataclass(frozen=True)
class ListsResult:
    stored: int
    pages: list[PageRead]
    lifecycle: list[LifecycleWrites]  # an incident with no description
    lifecycle_long: list[LifecycleWrites]  # the same with a 4 KB description


def measure(stored: int) -> ListsResult:
    log = CallLog()
    with counting(log), in_process_aws() as stack, time_machine.travel(NOW, tick=False) as clock:
        meter = IndexWrites(stack.region)
        with index_writes(meter):
            lifecycle = _lifecycle(stack, log, meter, clock, "")
            lifecycle_long = _lifecycle(stack, log, meter, clock, "x" * 4096)
        _seed(stack, stored)
        api = Api(stack)
        pages = []
        for query in QUERIES:
            log.reset()
            status, body = api.call("GET", "/incidents", query={**query, "limit": "25"})
            dynamo = [c for c in log.calls if c.operation in ("Query", "BatchGetItem")]
            pages.append(
                PageRead(
                    "&".join(f"{k}={v}" for k, v in query.items()) or "(no filter)",
                    len(body["items"]) if status == 200 else None,
                    sum(c.items_read for c in dynamo),
                    sum(c.read_units for c in dynamo),
                )
            )
    return ListsResult(stored, pages, lifecycle, lifecycle_long)


def _lifecycle(
    stack: Any, log: CallLog, meter: IndexWrites, clock: Any, description: str
) -> list[LifecycleWrites]:
    """The priced lifecycle: create (level 0 pages 1), level 1 fires, acknowledge, resolve."""
    api, timers = Api(stack), Timers(stack)
    levels = [
        {"delay_minutes": d, "targets": [{"type": "user", "email": f"l{n}@example.com"}]}
        for n, d in enumerate((0, 1, 1))
    ]
    policy = api.ok("POST", "/policies", {"name": f"three{len(description)}", "levels": levels}, expect=201)[
        "id"
    ]
    out = []

    def step(name: str, action: Any) -> None:
        log.reset()
        meter.units = 0.0
        action()
        out.append(LifecycleWrites(name, log.units()[1], meter.units))

    made: list[str] = []
    step(
        "create",
        lambda: made.append(
            api.ok(
                "POST",
                "/incidents",
                {
                    "title": "t",
                    "severity": "P1",
                    "service": "api",
                    "team": "core",
                    "policy_id": policy,
                    **({"description": description} if description else {}),
                },
                expect=201,
            )["id"]
        ),
    )
    clock.shift(60)
    step("fire level 1", timers.deliver)
    step("acknowledge", lambda: api.ok("POST", f"/incidents/{made[0]}/acknowledge", {}))
    step("resolve", lambda: api.ok("POST", f"/incidents/{made[0]}/resolve", {}))
    return out


def _seed(stack: Any, stored: int) -> None:
    """`stored` incidents: the 10 oldest open P0 payments/pay, every later one resolved P3 web."""
    client = boto3.client("dynamodb", region_name=stack.region)
    table = stack.physical["IncidentsTable"]
    batch: list[Any] = []
    for n in range(stored):
        rare = n < 10
        new = engine.NewIncident(
            title=f"incident {n}",
            severity=Severity.P0 if rare else Severity.P3,
            service="payments" if rare else "web",
            team="pay" if rare else "web",
        )
        made = engine.open_incident(
            f"INC-20261121-{n + 1:06d}", new, None, NOW - timedelta(days=1, seconds=-n), "b", None
        )
        incident = made.incident if rare else replace(made.incident, status=Status.RESOLVED)
        batch.append({"PutRequest": {"Item": IncidentRepository._to_item(incident).serialize()}})
        if len(batch) == 25:
            client.batch_write_item(RequestItems={table: batch})
            batch = []
    if batch:
        client.batch_write_item(RequestItems={table: batch})


def report(result: ListsResult) -> str:
    lines = [f"list page (limit 25), {result.stored:,} stored, 10 matching the filters:"]
    for p in result.pages:
        got = "refused (422)" if p.returned is None else f"{p.returned} returned"
        lines.append(f"  {p.query:<32} {got:<14} {p.items_read:>6} items read  {p.read_units:>7.1f} RRU")
    for title, steps in (("no description", result.lifecycle), ("4 KB description", result.lifecycle_long)):
        lines.append(f"lifecycle writes, {title} (WRU: table incl. transactions / secondary indexes):")
        for w in steps:
            lines.append(f"  {w.op:<16} {w.table_units:>5.1f} / {w.index_units:>5.1f}")
        table = sum(w.table_units for w in steps)
        index = sum(w.index_units for w in steps)
        lines.append(f"  {'total':<16} {table:>5.1f} / {index:>5.1f}  = {table + index:.1f} WRU")
    return "\n".join(lines)


if __name__ == "__main__":
    import os
    import sys

    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    print(report(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2000)))
