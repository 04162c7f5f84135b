"""The engine watching itself on `make run`'s stack, over real HTTP and the emulated AWS endpoint.

50 acknowledges of one incident at once make one state change; killing the reconciler stops its
heartbeat metric in the emulator's CloudWatch and turns ReconcilerHeartbeatAlarm to ALARM, which
EngineHealthTopic carries and the stack's log shows.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.process import LocalStackProcess, wait_for

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-engine-health.log"
HANG = 180  # seconds: a guard against a hang, never a bound on how fast anything must be
HEARTBEAT = "incident-engine-local-ReconcilerHeartbeatAlarm"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    # Alarm periods scale with the reconciler's rate: 3 s here for the template's minute.
    running = LocalStackProcess("health-token", LOG, {"RECONCILE_SECONDS": "3", "LOCAL_API_CONTAINERS": "6"})
    with running:
        yield running
    assert running.exit_code == 0, LOG.read_text()


def children(pid: int, marker: str) -> list[int]:
    """Live child processes of `pid` whose command line contains `marker` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state, ppid = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue  # gone meanwhile
        if int(ppid) == pid and marker in cmdline and state != "Z":
            found.append(int(entry))
    return found


def test_fifty_concurrent_acknowledges_make_one_state_change(stack: LocalStackProcess) -> None:
    # Given an open incident
    status, incident = stack.call("POST", "/incidents", {"title": "Checkout 5xx", "severity": "P2"})
    assert status == 201, incident
    path = f"/incidents/{incident['id']}"
    # When 50 clients acknowledge it at once, each as someone else
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(
            pool.map(
                lambda n: stack.call("POST", f"{path}/acknowledge", {"by": f"u{n}@example.com"}), range(50)
            )
        )
    # Then exactly one succeeded, and every other one was told it is acknowledged already (409)
    winners = [body for status, body in answers if status == 200]
    assert len(winners) == 1, answers
    losers = [(status, body) for status, body in answers if status != 200]
    assert {status for status, _ in losers} == {409}, losers
    assert {body["error"] for _, body in losers} == {"invalid_transition"}
    assert {body["status"] for _, body in losers} == {"acknowledged"}
    # And the incident and its timeline show one acknowledge, by the winner
    stored = stack.call("GET", path)[1]
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"] == winners[0]["acknowledged_by"]
    events = stack.call("GET", f"{path}/timeline")[1]["items"]
    assert [e["type"] for e in events] == ["created", "acknowledged"]
    assert events[1]["actor"] == winners[0]["acknowledged_by"]


def alarm(stack: LocalStackProcess, name: str) -> dict[str, Any]:
    [found] = stack.aws_client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(found)


def heartbeats(stack: LocalStackProcess, since: datetime) -> float:
    points = stack.aws_client("cloudwatch").get_metric_statistics(
        Namespace="IncidentEngine",
        MetricName="ReconcilerRuns",
        Dimensions=[{"Name": "service", "Value": "incident-engine"}],
        StartTime=since,
        EndTime=datetime.now(UTC) + timedelta(minutes=1),
        Period=60,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def test_killing_the_reconciler_raises_the_engine_health_alarm(stack: LocalStackProcess) -> None:
    # Given a tap on EngineHealthTopic (an operator's subscription)
    sqs, sns = stack.aws_client("sqs"), stack.aws_client("sns")
    topic = next(
        t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("EngineHealthTopic")
    )
    tap = sqs.create_queue(QueueName="engine-health-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=tap_arn)
    # And a reconciler whose heartbeat reaches the emulator's CloudWatch, its alarm OK
    wait_for(lambda: heartbeats(stack, datetime.now(UTC) - timedelta(minutes=5)) > 0, HANG, "a heartbeat")
    wait_for(lambda: alarm(stack, HEARTBEAT)["StateValue"] == "OK", HANG, "the heartbeat alarm to be OK")
    status, health = stack.call("GET", "/health?deep=1")
    assert status == 200 and health["reconciler"] is not None, health
    # When the reconciler's process is killed
    [pid] = children(stack.process.pid, "local.scheduler")  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    killed_at = datetime.now(UTC)
    # Then its alarm goes to ALARM, judged on periods after the kill, all without a heartbeat
    wait_for(lambda: alarm(stack, HEARTBEAT)["StateValue"] == "ALARM", HANG, "the heartbeat alarm")
    raised = alarm(stack, HEARTBEAT)
    assert raised["StateUpdatedTimestamp"] >= killed_at
    assert raised["StateReason"].startswith("5 of the last 5 periods")
    assert "no data, no data, no data, no data, no data" in raised["StateReason"]
    # And the heartbeat metric stopped: nothing was recorded after the kill
    assert heartbeats(stack, killed_at + timedelta(seconds=1)) == 0
    # And EngineHealthTopic carried CloudWatch's notice of it

    def alarm_notices() -> list[dict[str, Any]]:
        got = sqs.receive_message(QueueUrl=tap, MaxNumberOfMessages=10).get("Messages", [])
        notices = [json.loads(json.loads(m["Body"])["Message"]) for m in got]
        return [n for n in notices if n["AlarmName"] == HEARTBEAT and n["NewStateValue"] == "ALARM"]

    [notice] = wait_for(alarm_notices, HANG, "the ALARM notice on EngineHealthTopic")
    assert notice["OldStateValue"] == "OK" and "has not run for 5 minutes" in notice["AlarmDescription"]
    # And `make run`'s log said both
    log = LOG.read_text()
    assert f"[reconciler] pid {pid} exited with code -9; not restarted" in log
    assert "ReconcilerHeartbeatAlarm goes to ALARM once 5 periods of 3 s pass without a run" in log
    assert f"[alarm] {HEARTBEAT}: OK -> ALARM" in log
    # And deep health shows the last run from before the kill
    health = stack.call("GET", "/health?deep=1")[1]
    assert datetime.fromisoformat(health["reconciler"]["last_run_at"].replace("Z", "+00:00")) <= killed_at


def test_the_banners_aws_cli_line_reads_the_alarms_with_no_aws_configuration(
    stack: LocalStackProcess, tmp_path: Path
) -> None:
    # Given the AWS CLI line make run printed, for a user who has never configured AWS
    [line] = wait_for(
        lambda: [x for x in LOG.read_text().splitlines() if x.startswith("  AWS CLI ")], HANG, "the banner"
    )
    words = line.split()[2:]
    settings = dict(w.split("=", 1) for w in words if "=" in w)
    assert words[len(settings) :] == ["aws", "cloudwatch", "describe-alarms"], line
    # When botocore (what the CLI runs on) is given exactly that environment and nothing else
    script = (
        "import boto3; "
        "print(sorted(a['AlarmName'] for a in boto3.client('cloudwatch').describe_alarms()['MetricAlarms']))"
    )
    env = {**settings, "HOME": str(tmp_path), "PATH": os.environ.get("PATH", "")}
    found = subprocess.run(  # noqa: S603 - this venv's python
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False, timeout=HANG
    )
    # Then it reads the engine-health alarms of the stack, the reconciler's among them
    assert found.returncode == 0, found.stderr
    assert HEARTBEAT in found.stdout, found.stdout
