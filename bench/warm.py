"""Warm request cost: the api handler in-process on moto in-process, emulator time taken out."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import time_machine
from botocore.client import BaseClient

from bench.harness import EmulatorClock, in_process_aws, timing_emulator
from local.runtime import LambdaContext, load_handler
from tests.support import Api, Tap, load_event

START = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


@dataclass(frozen=True)
class RouteCost:
    route: str
    samples: int
    total_p50_ms: float
    total_p99_ms: float
    ours_p50_ms: float
    ours_p99_ms: float
    emulator_p50_ms: float
    calls: float = 0.0  # AWS calls per request (median)
    botocore_p50_ms: float = 0.0  # of ours: botocore's own work on those calls, outside the emulator


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class _CountingClock(EmulatorClock):
    """The emulator's time, and how many calls went to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def before_send(self, **kwargs: Any) -> None:
        self.calls += 1
        super().before_send(**kwargs)


@contextmanager
def _timing_botocore(into: list[float]) -> Iterator[None]:
    """Adds to into[0] the time spent inside botocore's client calls (the emulator's included)."""
    original = BaseClient._make_api_call  # type: ignore[attr-defined]
    depth = [0]

    def timed(self: BaseClient, *args: Any, **kwargs: Any) -> Any:
        depth[0] += 1
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                into[0] += time.perf_counter() - started

    BaseClient._make_api_call = timed  # type: ignore[attr-defined]
    try:
        yield
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]


def measure(samples: int = 200) -> list[RouteCost]:
    # The first few requests of a route warm up caches and connections; bench-quick's 3 samples get
    # as many (a full run's 200 get 5): the smoke's figures are printed, never compared.
    warmup = min(5, samples)
    emulator = _CountingClock()
    in_botocore = [0.0]
    results: list[RouteCost] = []
    with (
        timing_emulator(emulator),
        _timing_botocore(in_botocore),
        in_process_aws() as stack,
        time_machine.travel(START, tick=True),
    ):
        api = Api(stack)
        handler = load_handler(api.spec)
        api.ok(
            "POST",
            "/policies",
            {
                "name": "default",
                "is_default": True,
                "levels": [
                    {"delay_minutes": 0, "targets": [{"type": "user", "email": "oncall@example.com"}]},
                    {"delay_minutes": 5, "targets": [{"type": "user", "email": "lead@example.com"}]},
                ],
            },
            expect=201,
        )
        ids: list[str] = []

        def run(route: str, make_event: Callable[[int], dict]) -> None:
            totals, emulated, calls, sdk = [], [], [], []
            for n in range(samples + warmup):
                event = make_event(n)
                emulator.spent, emulator.calls, in_botocore[0] = 0.0, 0, 0.0
                started = time.perf_counter()
                response = handler(event, LambdaContext("ApiFunction"))
                elapsed = time.perf_counter() - started
                assert response["statusCode"] < 300, (route, response)
                if n >= warmup:
                    totals.append(elapsed * 1000)
                    emulated.append(emulator.spent * 1000)
                    calls.append(emulator.calls)
                    sdk.append((in_botocore[0] - emulator.spent) * 1000)
            ours = [t - e for t, e in zip(totals, emulated, strict=True)]
            results.append(
                RouteCost(
                    route,
                    samples,
                    statistics.median(totals),
                    _p(totals, 0.99),
                    statistics.median(ours),
                    _p(ours, 0.99),
                    statistics.median(emulated),
                    statistics.median(calls),
                    statistics.median(sdk),
                )
            )

        def create(n: int) -> dict:
            return api.event(
                "POST", "/incidents", {"title": f"load {n}", "severity": "P2", "service": "checkout"}
            )

        run("GET /health", lambda n: api.event("GET", "/health"))
        run("POST /incidents", create)
        ids = [i["id"] for i in api.ok("GET", "/incidents", query={"limit": "100"})["items"]]
        while len(ids) < samples + warmup:
            ids.append(api.ok("POST", "/incidents", {"title": "more", "severity": "P2"}, expect=201)["id"])
        run("GET /incidents/{id}", lambda n: api.event("GET", f"/incidents/{ids[n]}"))
        run("GET /incidents?limit=25", lambda n: api.event("GET", "/incidents", query={"limit": "25"}))
        run(
            "POST /incidents/{id}/acknowledge",
            lambda n: api.event("POST", f"/incidents/{ids[n]}/acknowledge", {}),
        )
        run("POST /incidents/{id}/resolve", lambda n: api.event("POST", f"/incidents/{ids[n]}/resolve", {}))
        run("GET /incidents/{id}/timeline", lambda n: api.event("GET", f"/incidents/{ids[n]}/timeline"))
        _other_families(api, run, samples)
    return results


def _integration(event: dict, service_id: str) -> dict:
    """The context functions/authorizer gives a service's integration key."""
    event["requestContext"]["authorizer"] = {
        "role": "integration",
        "scopes": "ingest",
        "credential_id": "key_bench",
        "team_ids": "",
        "service_id": service_id,
        "principalId": f"integration:{service_id}:key_bench",
    }
    return event


def _other_families(api: Api, run: Callable[[str, Callable[[int], dict]], None], samples: int) -> None:
    """One representative request of every other route family: config reads and writes, the
    on-call lookup, the three ingest routes (each alert new, so each opens an incident), tokens
    and the one-click link page."""
    run("GET /policies", lambda n: api.event("GET", "/policies"))
    run(
        "POST /users",
        lambda n: api.event("POST", "/users", {"name": f"User {n}", "email": f"user{n}@example.com"}),
    )
    people = [u["id"] for u in api.ok("GET", "/users", query={"limit": "3"})["items"]]
    team = api.ok("POST", "/teams", {"name": "payments", "members": people[:2]}, expect=201)
    run("GET /teams/{id}", lambda n: api.event("GET", f"/teams/{team['id']}"))
    schedule = json.loads(load_event("api_create_schedule.json")["body"])
    schedule["layers"][0]["users"] = people[:2]
    schedule["layers"][1]["users"] = people[2:3]
    sid = api.ok("POST", "/schedules", schedule, expect=201)["id"]
    run("GET /schedules/{id}/oncall", lambda n: api.event("GET", f"/schedules/{sid}/oncall"))
    service = api.ok("POST", "/services", {"name": "checkout"}, expect=201)
    run("GET /services/{id}", lambda n: api.event("GET", f"/services/{service['id']}"))
    run(
        "GET /services/{id}/maintenance-windows",
        lambda n: api.event("GET", f"/services/{service['id']}/maintenance-windows"),
    )
    run("GET /webhooks", lambda n: api.event("GET", "/webhooks"))
    run("GET /routing-rules", lambda n: api.event("GET", "/routing-rules"))
    run("GET /tokens", lambda n: api.event("GET", "/tokens"))
    trigger = load_event("pagerduty_enqueue_trigger.json")
    run(
        "POST /v2/enqueue (new alert)",
        lambda n: api.event(
            "POST",
            "/v2/enqueue",
            {**trigger, "routing_key": service["integration_key"], "dedup_key": f"bench-pd-{n}"},
        ),
    )
    firing = load_event("alertmanager_webhook_firing.json")

    def alertmanager(n: int) -> dict:
        alert = {**firing["alerts"][0], "fingerprint": f"{n:016x}"}
        body = {**firing, "alerts": [alert], "groupKey": f"bench-am-{n}"}
        return _integration(api.event("POST", "/integrations/alertmanager", body), service["id"])

    run("POST /integrations/alertmanager (new alert)", alertmanager)
    beat = {"name": "nightly backup", "service_id": service["id"], "interval_minutes": 60}
    hb = api.ok("POST", "/heartbeats", beat, expect=201)["id"]
    run(
        "POST /heartbeats/{id}/ping",
        lambda n: _integration(api.event("POST", f"/heartbeats/{hb}/ping"), service["id"]),
    )
    tap = Tap(api.stack)  # only now: its deliveries would have slowed every publish above
    api.ok("POST", "/incidents", {"title": "a page with links", "severity": "P2"}, expect=201)
    link = next(m["attributes"]["ack_url"] for m in tap.messages() if "ack_url" in m["attributes"])
    token = link.rsplit("/a/", 1)[1]
    run("GET /a/{token} (confirmation page)", lambda n: api.event("GET", f"/a/{token}"))
