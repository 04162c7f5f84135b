"""One escalation-worker "container": polls the timer queue and invokes the handler, in its own process.

The local stack starts one (or LOCAL_WORKERS) of these, the way Lambda's SQS event source runs
worker containers beside the API's: the worker then never waits for the API's interpreter lock.
It reads its function spec and queue from the environment the stack hands it.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

from local.runtime import deliver_sqs_batch, load_handler
from local.template import ApiRoute, FunctionSpec

STOP = threading.Event()
LONG_POLL_SECONDS = 1  # short, so that a stopping worker is gone within a second or two
# Messages a worker takes per receive (LOCAL_WORKER_BATCH, default 1). Lambda's poller hands a
# batch to one invocation but adds concurrent invocations as a backlog grows; the local stack has
# a fixed number of workers, and one that took ten timers would make nine of them wait behind
# each other while the other workers sat idle (a trace showed batches of ten taking three
# seconds). Batches of several records are still what tests/ deliver.


def spec_to_env(spec: FunctionSpec, queue_url: str, queue_arn: str, region: str) -> dict[str, str]:
    data = {**spec.__dict__, "routes": [r.__dict__ for r in spec.routes]}
    return {
        "LOCAL_WORKER_SPEC": json.dumps(data),
        "LOCAL_WORKER_QUEUE": json.dumps([queue_url, queue_arn, region]),
    }


def _spec_from_env() -> tuple[FunctionSpec, str, str, str]:
    data: dict[str, Any] = json.loads(os.environ["LOCAL_WORKER_SPEC"])
    data["routes"] = tuple(ApiRoute(**r) for r in data["routes"])
    queue_url, queue_arn, region = json.loads(os.environ["LOCAL_WORKER_QUEUE"])
    return FunctionSpec(**data), queue_url, queue_arn, region


def main() -> int:
    import warnings

    import boto3

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    from local.emulator import exit_with_parent

    exit_with_parent()
    spec, queue_url, queue_arn, region = _spec_from_env()
    from local.metrics import install

    install(region)  # its metrics and failed invocations (Errors) reach the emulator's CloudWatch
    sqs = boto3.client("sqs", region_name=region)
    # The function's init runs now, while the stack starts, as a provisioned Lambda environment's
    # does before its first invoke (the worker builds its services and clients then: its app.py):
    # a stack that has just started does not make its first timers wait on several workers'
    # imports at once. Cold starts are measured on their own (bench/cold_start.py).
    os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"] = "provisioned-concurrency"
    load_handler(spec)
    most = max(1, int(os.environ.get("LOCAL_WORKER_BATCH", "1")))
    signal.signal(signal.SIGINT, lambda *_: STOP.set())
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    while not STOP.is_set():
        try:
            # A long poll, as Lambda's SQS poller makes: it returns as soon as a message is there
            # (the emulator wakes it when a delayed timer becomes visible: local/emulator.py
            # prompt_long_polls), so an idle worker neither sleeps past a due timer nor spins.
            deliver_sqs_batch(sqs, queue_url, queue_arn, region, spec, LONG_POLL_SECONDS, most)
        except Exception as exc:  # the emulator going away at shutdown, say; the next round retries
            from incident_engine.observability import redact

            print(redact(f"[worker] error: {exc!r}"), flush=True)
            STOP.wait(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
