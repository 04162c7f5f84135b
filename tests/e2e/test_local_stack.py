"""The README's promise, over real HTTP: `make run`'s stack, a two-level policy, a P1 incident.

The local stack runs as its own process (python -m local.stack, what `make run` starts); this
test talks to it only through the HTTP API and the emulated AWS endpoint, as a user would.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest

from incident_engine.domain.timefmt import parse_iso

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-token"
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # poll until the deadline


@dataclass
class Stack:
    url: str
    aws_url: str
    process: subprocess.Popen[str]

    def call(self, method: str, path: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback only
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    api_port, aws_port = free_port(), free_port()
    env = {
        **os.environ,
        "API_PORT": str(api_port),
        "AWS_PORT": str(aws_port),
        "API_TOKEN": TOKEN,
        "RECONCILE_SECONDS": "5",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    log = ROOT / ".pytest_cache" / "e2e-local-stack.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        running = Stack(f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{aws_port}", process)

        def healthy() -> bool:
            if process.poll() is not None:
                raise AssertionError(f"local stack exited early:\n{log.read_text()}")
            try:
                return running.call("GET", "/health", token=None) == (200, {"status": "ok"})
            except OSError:
                return False

        try:
            wait_for(healthy, 60, "the local stack to answer /health")
            yield running
        finally:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
    assert code == 0, log.read_text()
    assert "Stopped." in log.read_text()


class Tap:
    """An SQS queue of ours, subscribed to the stack's notifications topic over its AWS endpoint."""

    def __init__(self, aws_url: str) -> None:
        kwargs = {
            "endpoint_url": aws_url,
            "region_name": "us-east-1",
            "aws_access_key_id": "local",
            "aws_secret_access_key": "local",
        }
        self.sqs = boto3.client("sqs", **kwargs)
        sns = boto3.client("sns", **kwargs)
        topic = next(
            t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("NotificationsTopic")
        )
        self.url = self.sqs.create_queue(QueueName=f"e2e-tap-{os.getpid()}")["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        self.seen: list[tuple[float, dict[str, str]]] = []

    def poll(self) -> list[tuple[float, dict[str, str]]]:
        for message in self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            envelope = json.loads(message["Body"])
            attrs = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
            self.seen.append((time.monotonic(), attrs))
            self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return self.seen

    def pages(self) -> list[tuple[str, str]]:
        return [(a["level"], a["recipient"]) for _, a in self.poll() if a["kind"] == "page"]


def test_health_is_public_and_everything_else_needs_the_token(stack: Stack) -> None:
    assert stack.call("GET", "/health", token=None) == (200, {"status": "ok"})
    status, body = stack.call("GET", "/incidents", token=None)
    assert status == 401 and body["error"] == "unauthorized"
    assert stack.call("GET", "/incidents", token="wrong")[0] == 401
    assert stack.call("GET", "/incidents")[0] == 200
    status, body = stack.call("POST", "/incidents", {"severity": "P1"})
    assert status == 422 and body["field"] == "title"


def test_two_levels_ack_and_resolve_over_http(stack: Stack) -> None:
    tap = Tap(stack.aws_url)
    # Given a policy with level 0 now and level 1 three seconds later, repeating if nobody acks
    status, policy = stack.call(
        "POST",
        "/policies",
        {
            "name": "e2e",
            "is_default": True,
            "repeat": {"max_repeats": 2, "interval_minutes": 0.05},
            "levels": [
                {"delay_minutes": 0, "targets": [{"type": "user", "email": "first@example.com"}]},
                {
                    "delay_minutes": 0.05,
                    "targets": [
                        {"type": "user", "email": "second@example.com"},
                        {"type": "webhook", "url": "https://hooks.example.com/e2e"},
                    ],
                },
            ],
        },
    )
    assert status == 201, policy
    # When a P1 incident opens
    started = time.monotonic()
    status, incident = stack.call("POST", "/incidents", {"title": "Checkout 5xx above 20%", "severity": "P1"})
    assert status == 201 and incident["status"] == "escalating"
    path = f"/incidents/{incident['id']}"
    # Then level 0 is on the topic within 2 seconds
    wait_for(lambda: tap.pages() == [("0", "first@example.com")], 2, "level 0 on the topic")
    level0_at = tap.seen[0][0] - started
    # And level 1 follows about 3 seconds later, one message per recipient
    wait_for(lambda: len(tap.pages()) == 3, 8, "level 1 on the topic")
    level1_at = tap.seen[-1][0] - started
    assert sorted(tap.pages()[1:]) == [("1", "https://hooks.example.com/e2e"), ("1", "second@example.com")]
    assert 2.5 <= level1_at - level0_at <= 5.0, (level0_at, level1_at)
    steps = stack.call("GET", f"{path}/escalations")[1]["items"]
    assert [(s["level"], s["status"]) for s in steps[:2]] == [(0, "executed"), (1, "executed")]
    fired = parse_iso(steps[1]["executed_at"]) - parse_iso(steps[0]["executed_at"])
    assert 2.9 <= fired.total_seconds() <= 4.5
    outbox = stack.call("GET", f"{path}/notifications")[1]["items"]
    assert sorted((n["level"], n["recipient"], n["status"]) for n in outbox) == [
        (0, "first@example.com", "sent"),
        (1, "https://hooks.example.com/e2e", "sent"),
        (1, "second@example.com", "sent"),
    ]
    # When it is acknowledged
    status, acked = stack.call("POST", f"{path}/acknowledge", {"by": "second@example.com"})
    assert status == 200 and acked["status"] == "acknowledged"
    # Then the repeat that was due 3 s later never fires
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert len(tap.pages()) == 3
        time.sleep(0.2)  # watching for a page that must not come, until the deadline
    types = [e["type"] for e in stack.call("GET", f"{path}/timeline")[1]["items"]]
    assert types == ["created", "escalation_started", "level_fired", "level_fired", "acknowledged"]
    # When it is resolved, everyone who was paged is told, once each
    status, resolved = stack.call("POST", f"{path}/resolve", {"resolution_note": "rolled back"})
    assert status == 200 and resolved["status"] == "resolved"

    def closures() -> list[str]:
        return sorted(a["recipient"] for _, a in tap.poll() if a["kind"] == "resolution")

    wait_for(lambda: len(closures()) == 3, 5, "resolution notices")
    assert closures() == ["first@example.com", "https://hooks.example.com/e2e", "second@example.com"]
    print(f"\nlevel 0 on the topic after {level0_at:.2f} s; level 1 after {level1_at:.2f} s")
