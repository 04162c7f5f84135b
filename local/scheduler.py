"""The reconciler's "EventBridge Scheduler": invokes a scheduled function every few seconds, in its
own process.

The local stack starts one for each function with a schedule in template.yaml (the reconciler),
every RECONCILE_SECONDS instead of every minute. Being a process of its own, it can be killed like
a worker: the stack then says so and leaves it dead, since the engine-health alarm on the
reconciler's heartbeat (local/alarms.py) is how a silent reconciler is meant to be noticed.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

from local.runtime import invoke, scheduled_event
from local.template import ApiRoute, FunctionSpec

STOP = threading.Event()


def schedule_to_env(spec: FunctionSpec, every_seconds: float, region: str) -> dict[str, str]:
    data = {**spec.__dict__, "routes": [r.__dict__ for r in spec.routes]}
    return {"LOCAL_SCHEDULE_SPEC": json.dumps(data), "LOCAL_SCHEDULE": json.dumps([every_seconds, region])}


def _from_env() -> tuple[FunctionSpec, float, str]:
    data: dict[str, Any] = json.loads(os.environ["LOCAL_SCHEDULE_SPEC"])
    data["routes"] = tuple(ApiRoute(**r) for r in data["routes"])
    every, region = json.loads(os.environ["LOCAL_SCHEDULE"])
    return FunctionSpec(**data), float(every), str(region)


def main() -> int:
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from local.emulator import exit_with_parent
    from local.metrics import install

    exit_with_parent()
    spec, every, region = _from_env()
    install(region)  # its heartbeat and re-arm counts reach the emulator's CloudWatch
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    name = spec.logical_id.removesuffix("Function").lower()
    # LOCAL_SCHEDULER_TRACE=1: a line per pass with its start and end (UTC), so a soak can judge
    # lateness in passes of the reconciler rather than in seconds a loaded machine stretches.
    trace = os.environ.get("LOCAL_SCHEDULER_TRACE") == "1"
    next_tick = time.monotonic()
    while not STOP.is_set():
        # At a fixed rate, as a schedule is: a slow run does not push the next one later.
        next_tick += every
        started = time.time()
        try:
            report = invoke(spec, scheduled_event(spec))
            if isinstance(report, dict) and any(report.values()):
                print(f"[{name}] {json.dumps(report)}", flush=True)
        except Exception as exc:  # the emulator going away at shutdown, say; the next tick retries
            print(f"[{name}] error: {exc!r}", flush=True)
        if trace:
            print(f"[{name}] pass {started:.3f} {time.time():.3f}", flush=True)
        next_tick = max(next_tick, time.monotonic())  # a run longer than the rate: no catch-up burst
        STOP.wait(next_tick - time.monotonic())
    return 0


if __name__ == "__main__":
    sys.exit(main())
