"""The README's promise, over real HTTP: `make run`'s stack, a two-level policy, a P1 incident.

The local stack runs as its own process (python -m local.stack, what `make run` starts); this
test talks to it only through the HTTP API and the emulated AWS endpoint, as a user would.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from incident_engine.domain.timefmt import parse_iso
from local.process import LocalStackProcess, TopicTap, wait_for

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-local-stack.log"
HANG = 120  # seconds: a guard against a hang, never a bound on how fast anything must be
RECIPIENTS = {0: ["first@example.com"], 1: ["second@example.com", "third@example.com"]}
LEVEL0 = ("0", "first@example.com")
LEVEL1 = [("1", r) for r in RECIPIENTS[1]]


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


def timer_queue_empty(stack: LocalStackProcess) -> bool:
    """No timer waiting, delayed or in a worker's hands: whatever was armed has been consumed."""
    sqs = stack.aws_client("sqs")
    url = next(u for u in sqs.list_queues()["QueueUrls"] if u.endswith("-TimerQueue"))
    counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    return all(counts[n] == "0" for n in (*names, "ApproximateNumberOfMessagesDelayed"))


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
    status, incident = stack.call("POST", "/incidents", {"title": "Checkout 5xx above 20%", "severity": "P1"})
    assert status == 201 and incident["status"] == "escalating"
    path = f"/incidents/{incident['id']}"
    assert [i["id"] for i in stack.call("GET", "/incidents")[1]["items"]] == [incident["id"]]
    # Then level 0 reaches the topic, and level 1 follows, one message per recipient. The
    # deadlines only guard against a hang: how long it takes is read from stored timestamps.
    wait_for(lambda: {LEVEL0, *LEVEL1} <= set(pages(tap)), HANG, "levels 0 and 1 on the topic")
    steps = stack.call("GET", f"{path}/escalations")[1]["items"]
    assert [(s["level"], s["loop"], s["status"]) for s in steps[:2]] == [
        (0, 0, "executed"),
        (1, 0, "executed"),
    ]
    level0, level1 = (parse_iso(s["executed_at"]) for s in steps[:2])
    # And level 1 was due exactly its delay after level 0 fired, and fired no earlier than due
    due1 = parse_iso(steps[1]["scheduled_at"])
    assert (due1 - level0).total_seconds() == 3.0, steps
    assert level1 >= due1, steps
    # And SNS sent level 1's messages no earlier than it was due (SNS's own clock, in ms)
    sent1 = [sent for _, sent, a in tap.seen if a["kind"] == "page" and a["level"] == "1"]
    assert len(sent1) >= 2 and min(sent1) >= int(due1.timestamp() * 1000), (sent1, steps)
    # When it is acknowledged (on a slow enough machine, after the 3-second repeat has fired:
    # what follows holds either way)
    status, acked = stack.call("POST", f"{path}/acknowledge", {"by": "second@example.com"})
    assert status == 200 and acked["status"] == "acknowledged"
    # Then the step that was armed is cancelled; every earlier one had fired
    steps = stack.call("GET", f"{path}/escalations")[1]["items"]
    assert [s["status"] for s in steps] == ["executed"] * (len(steps) - 1) + ["cancelled"], steps
    fired = steps[:-1]
    expected = sorted((str(s["level"]), r) for s in fired for r in RECIPIENTS[s["level"]])
    # And once the cancelled step's due time has passed and its timer has been consumed, no
    # page has come for it: the pages are those of the fired steps, once each, all marked sent
    cancelled_due = parse_iso(steps[-1]["scheduled_at"])
    wait_for(
        lambda: datetime.now(UTC) > cancelled_due and timer_queue_empty(stack),
        HANG,
        "the cancelled step's due time to pass and its timer to be consumed",
    )

    def outbox() -> list[tuple[str, str, str]]:
        rows = stack.call("GET", f"{path}/notifications")[1]["items"]
        return sorted((str(n["level"]), n["recipient"], n["status"]) for n in rows)

    # (a row is marked sent just after its publish, so possibly a moment after the tap saw it)
    wait_for(lambda: all(status == "sent" for *_, status in outbox()), HANG, "the outbox rows marked sent")
    assert outbox() == [(level, recipient, "sent") for level, recipient in expected]
    assert sorted(pages(tap)) == expected
    types = [e["type"] for e in stack.call("GET", f"{path}/timeline")[1]["items"]]
    assert types == ["created", "escalation_started", *["level_fired"] * len(fired), "acknowledged"]
    # When it is resolved, everyone who was paged is told, once each
    status, resolved = stack.call("POST", f"{path}/resolve", {"resolution_note": "rolled back"})
    assert status == 200 and resolved["status"] == "resolved"

    def closures() -> list[str]:
        return sorted(a["recipient"] for _, _, a in tap.poll() if a["kind"] == "resolution")

    wait_for(lambda: len(closures()) >= 3, HANG, "resolution notices")
    assert closures() == ["first@example.com", "second@example.com", "third@example.com"]
    assert sorted(pages(tap)) == expected
    print(f"\nlevel 1 fired {(level1 - level0).total_seconds():.3f} s after level 0 (due after 3.000 s)")
