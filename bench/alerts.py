"""The alert path (issue 11, item 5): alert-to-first-page latency per ingest path on the local stack,
and AWS calls and DynamoDB units per alert, new and repeated, against a stated floor.

Latency: `make run`'s stack as its own process; alerts go in at a steady rate through each path in
turn: PagerDuty's `POST /v2/enqueue`, Alertmanager's webhook (`POST /integrations/alertmanager`,
the body Alertmanager sends, posted directly so Alertmanager's own group_wait is not counted),
CloudWatch's alarm message published to the AlarmTopic, and the alarm state change put on the
default EventBridge bus. A share of the alerts repeat a dedup key still live (its incident open):
they page nobody, but they load the same path. An alert's latency runs from just before it was
sent to SNS's timestamp on its level-0 page (one clock: this machine's).

Calls: bench/calls.py's `alert in` rows, measured once for both sections: the same payloads through
the real handlers on moto in this process, every botocore call counted (bench/harness.py), after one
warm-up alert per path so a warm container is measured.

python -m bench.alerts            # the full run; rewrites only its section of docs/benchmarks.md
python -m bench.alerts --quick    # tiny sizes, prints only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## 8. The alert path"
PATHS = ("PagerDuty /v2/enqueue", "Alertmanager webhook", "CloudWatch via SNS", "CloudWatch via EventBridge")
RATE = 10.0  # alerts per second, per path
REPEAT_SHARE = 0.3  # of the alerts, repeats of a live dedup key
ALARM_PREFIX = "bench-alarm-"
ASYNC_CONTAINERS = 4  # the local stack's LOCAL_ASYNC_CONTAINERS default: alarm deliveries at once
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:"

# The fewest AWS calls a correct design needs, per path and alert, with why (stated, then compared).
_KEY_NEW = (
    4,
    "the key's record naming its service (1 read), the escalation policy (1 read), one transaction that "
    "claims the dedup key and writes the incident with its history, the level-0 page (1 publish)",
)
_KEY_REPEAT = (
    3,
    "the key's record (1 read), the incident the dedup key holds (1 read), one transaction counting the "
    "alert with its timeline event",
)
FLOORS: dict[tuple[str, str], tuple[int, str]] = {
    ("PagerDuty /v2/enqueue", "new"): _KEY_NEW,
    ("PagerDuty /v2/enqueue", "repeat"): _KEY_REPEAT,
    ("Alertmanager webhook", "new"): _KEY_NEW,
    ("Alertmanager webhook", "repeat"): _KEY_REPEAT,
    ("CloudWatch via SNS", "new"): (
        5,
        "the alarm's tags (1 call: an SNS alarm message carries none), the service by tag or name prefix "
        "(1 read), the policy (1 read), 1 transaction, 1 publish",
    ),
    ("CloudWatch via SNS", "repeat"): (
        4,
        "tags (1 call), service (1 read), the key's incident (1 read), 1 transaction",
    ),
    ("CloudWatch via EventBridge", "new"): (
        4,
        "the event carries the alarm's tags; the service (1 read), the policy (1 read), "
        "1 transaction, 1 publish",
    ),
    ("CloudWatch via EventBridge", "repeat"): (
        3,
        "service (1 read), the key's incident (1 read), 1 transaction",
    ),
}


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "events" / name).read_text())
    return data


# --- payloads, one per path --------------------------------------------------------------------


def pd_body(routing_key: str, dedup_key: str) -> str:
    event = _load("pagerduty_enqueue_trigger.json")
    return json.dumps(event | {"routing_key": routing_key, "dedup_key": dedup_key})


def am_body(fingerprint: str) -> str:
    batch = _load("alertmanager_webhook_firing.json")
    alert = batch["alerts"][0]
    labels = alert["labels"] | {"instance": fingerprint}
    return json.dumps(batch | {"alerts": [alert | {"labels": labels, "fingerprint": fingerprint}]})


def alarm_message(name: str) -> str:
    record = _load("cloudwatch_sns_alarm.json")["Records"][0]["Sns"]
    return json.dumps(json.loads(record["Message"]) | {"AlarmName": name, "AlarmArn": ARN + name})


def alarm_event(name: str) -> dict[str, Any]:
    event = _load("cloudwatch_eventbridge_alarm.json")
    return event | {"resources": [ARN + name], "detail": event["detail"] | {"alarmName": name}}


def dedup_key(path: str, name: str) -> str:
    return ARN + name if path.startswith("CloudWatch") else name


# --- AWS calls per alert -------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertCalls:
    path: str
    kind: str  # "new" | "repeat"
    calls: dict[str, int]
    total: int
    floor: int
    floor_reason: str
    read_units: float
    write_units: float
    authorizer_calls: int = 0  # Alertmanager's bearer key, when API Gateway's 60 s cache misses

    @property
    def ratio(self) -> float:
        return self.total / self.floor


def from_ops(ops: list[Any]) -> list[AlertCalls]:
    """The `alert in` rows bench/calls.py measured (section 1), as this section's rows: the same
    alerts through the same handlers on moto, measured once for both sections."""
    results: list[AlertCalls] = []
    for op in ops:
        if op.group != "alert":
            continue
        path, kind = op.name.removeprefix("alert in, ").rsplit(", ", 1)
        floor, reason = FLOORS[(path, kind)]
        if op.floor != floor:  # the two sections state one floor per path
            raise ValueError(f"{op.name}: floor {op.floor} in bench/calls.py, {floor} here")
        results.append(
            AlertCalls(
                path,
                kind,
                dict(op.calls),
                op.total,
                floor,
                reason,
                op.read_units,
                op.write_units,
                op.authorizer_calls,
            )
        )
    return results


# --- alert-to-first-page latency on the local stack ------------------------------------------------


@dataclass
class PathLatency:
    path: str
    sent: int = 0
    new: int = 0
    repeats: int = 0
    latency_ms: list[float] = field(default_factory=list)  # new alerts only: repeats page nobody
    lost: int = 0  # a new alert with no page by the deadline (a backlog, or truly lost)
    repeat_pages: int = 0  # a page for a repeat: there must be none
    send_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    from bench.lateness import percentile as pct

    return pct(values, q)


def plan(alerts: int, seed: int) -> list[tuple[str, bool]]:
    """(name, is_repeat) per alert: exactly REPEAT_SHARE repeats, each of a key already sent."""
    rng = random.Random(seed)  # a workload, not a secret
    repeats = set(rng.sample(range(1, alerts), round(alerts * REPEAT_SHARE))) if alerts > 1 else set()
    names: list[str] = []
    out = []
    for n in range(alerts):
        if n in repeats and names:
            out.append((rng.choice(names), True))
        else:
            names.append(f"{ALARM_PREFIX}{seed}-{n}")
            out.append((names[-1], False))
    return out


def measure_latency(alerts_per_path: int, progress: bool = True, on: Any = None) -> list[PathLatency]:
    """On a fresh local stack, or on `on`, one already running (bench-quick shares one)."""
    from local.process import LocalStackProcess, TopicTap, wait_for

    log = ROOT / ".pytest_cache" / "bench-alerts-stack.log"
    log.parent.mkdir(exist_ok=True)
    with (
        contextlib.nullcontext(on)
        if on is not None
        else LocalStackProcess("bench-token", log, {"LOCAL_SNS_TAP": "0"})
    ) as stack:
        tap = TopicTap(stack, f"bench-alerts-tap-{os.getpid()}")
        async_containers = int(stack.env.get("LOCAL_ASYNC_CONTAINERS", ASYNC_CONTAINERS))
        level = {"delay_minutes": 0, "targets": [{"type": "user", "email": "oncall@example.com"}]}
        status, policy = stack.call(
            "POST", "/policies", {"name": "pager", "is_default": True, "levels": [level]}
        )
        assert status == 201, policy
        status, service = stack.call(
            "POST", "/services", {"name": "bench", "alarm_name_prefixes": [ALARM_PREFIX]}
        )
        assert status == 201, service
        key = service["integration_key"]
        sns, events = stack.aws_client("sns"), stack.aws_client("events")
        topic = next(
            t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("-AlarmTopic")
        )
        lock = threading.Lock()

        def http(path: str, body: str, bearer: str | None) -> None:
            import http.client

            connection = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=120)
            headers = {
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {bearer}"} if bearer else {}),
            }
            try:
                connection.request("POST", path, body=body.encode(), headers=headers)
                response = connection.getresponse()
                answer = response.read()
            finally:
                connection.close()
            if response.status >= 300:
                raise RuntimeError(f"{path} answered {response.status}: {answer[:200]!r}")

        senders: dict[str, Callable[[str], None]] = {
            PATHS[0]: lambda name: http("/v2/enqueue", pd_body(key, name), None),
            PATHS[1]: lambda name: http("/integrations/alertmanager", am_body(name), key),
            PATHS[2]: lambda name: sns.publish(TopicArn=topic, Message=alarm_message(name)) and None,
            PATHS[3]: lambda name: (
                events.put_events(
                    Entries=[
                        {
                            "Source": "aws.cloudwatch",
                            "DetailType": "CloudWatch Alarm State Change",
                            "Detail": json.dumps(alarm_event(name)["detail"]),
                            "Resources": [ARN + name],
                        }
                    ]
                )
                and None
            ),
        }
        # Warm every container first (the api pool's, and the alarm deliveries' pool: as many alarms
        # at once as it has containers), as a running deployment is: a cold start is the cold-start
        # bench's subject, not this one's.
        warm = [
            (path, f"{ALARM_PREFIX}warm-{n}-{k}")
            for n, path in enumerate(PATHS)
            for k in range(async_containers if path.startswith("CloudWatch") else 1)
        ]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: stack.call("GET", "/incidents"), range(8)))
            list(pool.map(lambda pair: senders[pair[0]](pair[1]), warm))
        wait_for(lambda: len(_incident_keys(stack)) >= len(warm), 120, "the warm-up alerts' incidents")
        ignored = set(_incident_keys(stack))  # their pages are not this run's
        results: list[PathLatency] = []
        sent_at: dict[str, float] = {}  # dedup key of a new alert -> epoch ms just before it was sent
        paths_of: dict[str, PathLatency] = {}
        for n, path in enumerate(PATHS):
            result = PathLatency(path)
            results.append(result)
            workload = plan(alerts_per_path, seed=n)

            def send(
                item: tuple[str, bool], at: float, result: PathLatency = result, path: str = path
            ) -> None:
                name, repeat = item
                key_ = dedup_key(path, name)
                if not repeat:
                    with lock:
                        sent_at[key_] = at
                        paths_of[key_] = result
                try:
                    senders[path](name)
                except Exception as exc:  # counted, shown; the run goes on
                    result.errors.append(repr(exc)[:200])

            started, epoch_ms = time.monotonic(), time.time() * 1000
            with ThreadPoolExecutor(16) as pool:
                for i, item in enumerate(workload):
                    pause = started + i / RATE - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)  # pacing the load generator, not waiting for the system
                    # The clock starts at the alert's planned instant, not when a sender thread got
                    # to it: an HTTP path that answers slowly holds the senders back, and timing from
                    # the send would leave its queue out (a publish to SNS or the bus returns at once).
                    pool.submit(send, item, epoch_ms + i / RATE * 1000)
            result.send_seconds = time.monotonic() - started
            result.sent = len(workload)
            result.repeats = sum(1 for _, r in workload if r)
            result.new = result.sent - result.repeats
            if progress:
                print(f"      {path}: {result.sent} alerts ({result.repeats} repeats) sent", flush=True)

        expected = sum(r.new for r in results)

        def pages() -> int:
            tap.poll(wait_seconds=1)
            return sum(1 for _, _, a in tap.seen if a["kind"] == "page" and a["incident_id"] not in ignored)

        with contextlib.suppress(TimeoutError):  # what never arrives is counted as lost below
            wait_for(lambda: pages() >= expected, 60 + expected * 0.2, "a page for every new alert")
        # a little longer, to catch a page a repeat should not have sent (bench-quick's smoke: a second)
        settle = time.monotonic() + (1 if on is not None else 2)
        while time.monotonic() < settle:
            pages()

        incident_key = _incident_keys(stack)
        first_page: dict[str, int] = {}
        counts: Counter[str] = Counter()
        for _, sent_ms, attrs in tap.seen:
            if attrs["kind"] != "page" or attrs["incident_id"] not in incident_key:
                continue
            k = incident_key[attrs["incident_id"]]
            counts[k] += 1
            first_page[k] = min(first_page.get(k, sent_ms), sent_ms)
        for k, at in sent_at.items():
            owner = paths_of[k]
            if k in first_page:
                owner.latency_ms.append(max(0.0, first_page[k] - at))
                owner.repeat_pages += counts[k] - 1
            else:
                owner.lost += 1
    return results


def _incident_keys(stack: Any) -> dict[str, str]:
    """incident id -> dedup key, every incident the stack holds."""
    out: dict[str, str] = {}
    cursor: str | None = None
    while True:
        query = "?limit=100" + (f"&cursor={cursor}" if cursor else "")
        status, page = stack.call("GET", "/incidents" + query)
        assert status == 200, page
        out.update({i["id"]: i["dedup_key"] for i in page["items"] if i["dedup_key"]})
        cursor = page.get("next_cursor")
        if not cursor:
            return out


# --- report ---------------------------------------------------------------------------------------


@dataclass
class AlertBench:
    alerts_per_path: int
    latency: list[PathLatency]
    calls: list[AlertCalls]
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average before and after


def run(
    alerts_per_path: int, progress: bool = True, on: Any = None, ops: list[Any] | None = None
) -> AlertBench:
    """`ops`: bench/calls.py's rows when they were just measured (make bench's step 1), else measured here."""
    if ops is None:
        from bench.calls import measure_alerts

        ops = measure_alerts()
    calls = from_ops(ops)
    before = os.getloadavg()[0]
    latency = measure_latency(alerts_per_path, progress, on)
    return AlertBench(alerts_per_path, latency, calls, (before, os.getloadavg()[0]))


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def summary_rows(bench: AlertBench) -> list[list[str]]:
    rows = []
    for r in bench.latency:
        rows.append(
            [
                f"alert to first page p50 / p99, {r.path} ({r.sent} at {RATE:g}/s, {r.repeats} repeats)",
                f"{percentile(r.latency_ms, 0.5):.0f} / {percentile(r.latency_ms, 0.99):.0f} ms",
                f"no page by the deadline {r.lost}, repeat pages {r.repeat_pages}",
                "-",
                "-",
            ]
        )
    for c in bench.calls:
        rows.append(
            [
                f"AWS calls per alert, {c.path}, {c.kind}",
                f"{c.total} ({c.read_units:g} RRU, {c.write_units:g} WRU)",
                f"floor {c.floor}",
                f"{c.ratio:.2f}x",
                "-",
            ]
        )
    return rows


def section(bench: AlertBench) -> str:
    """docs/benchmarks.md's section on the alert path, from the figures of one run."""
    latency_rows = [
        [
            r.path,
            r.sent,
            r.new,
            r.repeats,
            f"{percentile(r.latency_ms, 0.5):.0f}",
            f"{percentile(r.latency_ms, 0.99):.0f}",
            f"{max(r.latency_ms):.0f}" if r.latency_ms else "-",
            r.lost,
            r.repeat_pages,
            len(r.errors),
        ]
        for r in bench.latency
    ]
    call_rows = [
        [
            c.path,
            c.kind,
            c.total,
            ", ".join(f"{op} {n}" for op, n in sorted(c.calls.items())),
            f"{c.read_units:g}",
            f"{c.write_units:g}",
            c.floor,
            f"{c.ratio:.2f}x",
        ]
        for c in bench.calls
    ]
    authorizer = next((c.authorizer_calls for c in bench.calls if c.authorizer_calls), 0)
    floors = [f"- {path}, {kind} alert: **{n}**: {why}." for (path, kind), (n, why) in FLOORS.items()]
    worst = max(bench.calls, key=lambda c: c.ratio)
    parts = [
        SECTION,
        "",
        f"`python -m bench.alerts` (and `make bench`). Alerts go into the local stack at {RATE:g} per "
        f"second through each ingest path in turn, {bench.alerts_per_path} per path, {REPEAT_SHARE:.0%} of "
        "them repeats of a dedup key whose incident is still open (they page nobody). A default policy "
        "pages one person at level 0. Latency runs from the alert's planned instant (every 0.1 s; a slow "
        "HTTP answer that holds the sender back counts, as a real client's wait would) to SNS's timestamp "
        "on its level-0 page (one clock). The Alertmanager row posts the body Alertmanager sends "
        "straight to the webhook, so "
        "Alertmanager's own `group_wait` (30 s by default) is not in it; the CloudWatch rows include the "
        "local stack's feed queues and their pollers (below), where AWS pushes to Lambda. "
        f"The machine's load average was {bench.load[0]:.1f} before and {bench.load[1]:.1f} after "
        f"({os.cpu_count()} cores): these latencies are the local stack's on this machine, not Lambda's.",
        "",
        "How the CloudWatch rows reach the function locally: SNS delivers the alarm to an SQS queue "
        "subscribed to the AlarmTopic, EventBridge to an SQS target of the template's rule; one thread "
        "per queue long-polls it (moto wakes it when a message arrives) for as many messages as there "
        f"are free containers (LOCAL_ASYNC_CONTAINERS, {ASYNC_CONTAINERS}) and hands each to one at once. "
        "The first version of this poller short-polled both queues, delivered what it got and waited "
        "for the whole batch (its slowest delivery, a container's cold start: 5 s under load) before it "
        "looked again, sleeping 0.2 s when idle: measured at 10 alarms/s it delivered about 4 a second, "
        "and the backlog put those rows at 15 to 86 s p50 where the HTTP paths took 2 to 6 s. Part of that "
        "gap was the measurement's: it timed each HTTP alert from when a sender thread reached it, so a "
        "gateway that fell behind held the senders back and its queue went uncounted; in process, on moto, "
        "an alarm delivery and a /v2/enqueue request cost the same (13 calls, about 320 ms each under load "
        "13), and on the local stack under that load both paths deliver 2 to 3 alerts/s, every container "
        "busy.",
        "",
        _table(
            [
                "path",
                "sent",
                "new",
                "repeats",
                "p50 ms",
                "p99 ms",
                "max ms",
                "no page by the deadline",
                "pages for repeats",
                "errors",
            ],
            latency_rows,
        ),
        "",
        "AWS calls and DynamoDB units per alert, through the real handlers on moto (a warm container: "
        "one alert of each path went first), against the fewest calls a correct design needs:",
        "",
        *floors,
        "",
        _table(["path", "alert", "calls", "by operation", "RRU", "WRU", "floor", "ratio"], call_rows),
        "",
        f"The Alertmanager webhook's bearer key also costs the authorizer {authorizer} call(s) when API "
        "Gateway's 60 s authorizer cache misses (once per key per minute), not counted above. "
        f"Worst ratio: {worst.path}, {worst.kind} ({worst.ratio:.2f}x its floor).",
        "",
    ]
    return "\n".join(parts)


def splice(document: str, text: str) -> str:
    """The document with its alert-path section replaced by `text`, or `text` appended."""
    start = document.find(SECTION)
    if start < 0:
        return document.rstrip("\n") + "\n\n" + text
    end = document.find("\n## ", start + len(SECTION))
    return document[:start] + text.rstrip("\n") + "\n" + (document[end:] if end >= 0 else "")


def main() -> int:
    parser = argparse.ArgumentParser(description="the alert path's benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, prints only")
    parser.add_argument("--alerts", type=int, default=None, help="alerts per path (default 200; quick 5)")
    args = parser.parse_args()
    alerts = args.alerts or (5 if args.quick else 200)
    bench = run(alerts)
    text = section(bench)
    print(text)
    if not args.quick:
        DOC.write_text(splice(DOC.read_text(), text))
        print(f"wrote {DOC.relative_to(ROOT)} ({SECTION[3:]})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    sys.exit(main())
