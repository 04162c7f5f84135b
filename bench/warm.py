"""Warm request cost: the api handler in-process on moto in-process, emulator time taken out."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import time_machine

from bench.harness import EmulatorClock, in_process_aws, timing_emulator
from local.runtime import LambdaContext, load_handler
from tests.support import Api

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


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(samples: int = 200) -> list[RouteCost]:
    emulator = EmulatorClock()
    results: list[RouteCost] = []
    with timing_emulator(emulator), in_process_aws() as stack, time_machine.travel(START, tick=True):
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
            totals, emulated = [], []
            for n in range(samples + 5):
                event = make_event(n)
                emulator.spent = 0.0
                started = time.perf_counter()
                response = handler(event, LambdaContext("ApiFunction"))
                elapsed = time.perf_counter() - started
                assert response["statusCode"] < 300, (route, response)
                if n >= 5:  # the first few warm up caches and connections
                    totals.append(elapsed * 1000)
                    emulated.append(emulator.spent * 1000)
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
                )
            )

        def create(n: int) -> dict:
            return api.event(
                "POST", "/incidents", {"title": f"load {n}", "severity": "P2", "service": "checkout"}
            )

        run("GET /health", lambda n: api.event("GET", "/health"))
        run("POST /incidents", create)
        ids = [i["id"] for i in api.ok("GET", "/incidents", query={"limit": "100"})["items"]]
        while len(ids) < samples + 5:
            ids.append(api.ok("POST", "/incidents", {"title": "more", "severity": "P2"}, expect=201)["id"])
        run("GET /incidents/{id}", lambda n: api.event("GET", f"/incidents/{ids[n]}"))
        run("GET /incidents?limit=25", lambda n: api.event("GET", "/incidents", query={"limit": "25"}))
        run(
            "POST /incidents/{id}/acknowledge",
            lambda n: api.event("POST", f"/incidents/{ids[n]}/acknowledge", {}),
        )
        run("POST /incidents/{id}/resolve", lambda n: api.event("POST", f"/incidents/{ids[n]}/resolve", {}))
        run("GET /incidents/{id}/timeline", lambda n: api.event("GET", f"/incidents/{ids[n]}/timeline"))
    return results
