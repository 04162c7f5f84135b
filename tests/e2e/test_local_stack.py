"""The README's promise, over real HTTP: `make run`'s stack, a two-level policy, a P1 incident.

The local stack runs as its own process (python -m local.stack, what `make run` starts); this
test talks to it only through the HTTP API and the emulated AWS endpoint, as a user would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from incident_engine.domain.timefmt import parse_iso
from local.process import LocalStackProcess, TopicTap, wait_for

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-local-stack.log"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    running = LocalStackProcess("e2e-token", LOG, {"RECONCILE_SECONDS": "5"})
    with running:
        yield running
    # Ctrl-C (SIGINT) stops everything cleanly
    assert running.exit_code == 0, LOG.read_text()
    assert "Stopped." in LOG.read_text()


def pages(tap: TopicTap) -> list[tuple[str, str]]:
    return [(a["level"], a["recipient"]) for _, _, a in tap.poll() if a["kind"] == "page"]


def test_health_is_public_and_everything_else_needs_the_token(stack: LocalStackProcess) -> None:
    assert stack.call("GET", "/health", token=None) == (200, {"status": "ok"})
    status, body = stack.call("GET", "/incidents", token=None)
    assert status == 401 and body["error"] == "unauthorized"
    assert stack.call("GET", "/incidents", token="wrong")[0] == 401
    assert stack.call("GET", "/incidents")[0] == 200
    status, body = stack.call("POST", "/incidents", {"severity": "P1"})
    assert status == 422 and body["field"] == "title"


def test_two_levels_ack_and_resolve_over_http(stack: LocalStackProcess) -> None:
    tap = TopicTap(stack, f"e2e-tap-{os.getpid()}")
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
                        {"type": "user", "email": "third@example.com"},
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
    assert [i["id"] for i in stack.call("GET", "/incidents")[1]["items"]] == [incident["id"]]
    # Then level 0 is on the topic within 2 seconds
    wait_for(lambda: pages(tap) == [("0", "first@example.com")], 2, "level 0 on the topic")
    level0_at = tap.seen[0][0] - started
    # And level 1 follows about 3 seconds later, one message per recipient
    wait_for(lambda: len(pages(tap)) == 3, 8, "level 1 on the topic")
    level1_at = tap.seen[-1][0] - started
    assert sorted(pages(tap)[1:]) == [("1", "second@example.com"), ("1", "third@example.com")]
    assert 2.5 <= level1_at - level0_at <= 5.0, (level0_at, level1_at)
    steps = stack.call("GET", f"{path}/escalations")[1]["items"]
    assert [(s["level"], s["status"]) for s in steps[:2]] == [(0, "executed"), (1, "executed")]
    fired = parse_iso(steps[1]["executed_at"]) - parse_iso(steps[0]["executed_at"])
    assert 2.9 <= fired.total_seconds() <= 4.5
    outbox = stack.call("GET", f"{path}/notifications")[1]["items"]
    assert sorted((n["level"], n["recipient"], n["status"]) for n in outbox) == [
        (0, "first@example.com", "sent"),
        (1, "third@example.com", "sent"),
        (1, "second@example.com", "sent"),
    ]
    # When it is acknowledged
    status, acked = stack.call("POST", f"{path}/acknowledge", {"by": "second@example.com"})
    assert status == 200 and acked["status"] == "acknowledged"
    # Then the repeat that was due 3 s later never fires
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        assert len(pages(tap)) == 3
        time.sleep(0.2)  # watching for a page that must not come, until the deadline
    types = [e["type"] for e in stack.call("GET", f"{path}/timeline")[1]["items"]]
    assert types == ["created", "escalation_started", "level_fired", "level_fired", "acknowledged"]
    # When it is resolved, everyone who was paged is told, once each
    status, resolved = stack.call("POST", f"{path}/resolve", {"resolution_note": "rolled back"})
    assert status == 200 and resolved["status"] == "resolved"

    def closures() -> list[str]:
        return sorted(a["recipient"] for _, _, a in tap.poll() if a["kind"] == "resolution")

    wait_for(lambda: len(closures()) == 3, 5, "resolution notices")
    assert closures() == ["first@example.com", "second@example.com", "third@example.com"]
    print(f"\nlevel 0 on the topic after {level0_at:.2f} s; level 1 after {level1_at:.2f} s")
