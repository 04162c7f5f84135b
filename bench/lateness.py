"""Escalation lateness on the local stack: many incidents over HTTP, every page timed from the topic."""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from incident_engine.domain.timefmt import parse_iso
from local.endpoints import dynamodb_port
from local.process import LocalStackProcess, TopicTap, wait_for
from local.runtime import TRACE_MARK

ROOT = Path(__file__).resolve().parent.parent
LEVEL1_DELAY_MINUTES = 0.1  # level 0 at once, level 1 six seconds later


@dataclass
class TimerPath:
    """A delayed timer's way to its page, per timer, in ms, from the workers' trace lines.

    rounding: how late SQS delivers it by design (delays are whole seconds, counted from when the
    create sent it, so one sent 5.9 s before its due time arrives 0.1 s after it); waiting: how
    much later still it was received (every worker busy, or the emulator slow to answer the
    receive); fire: how long the worker then took to handle it (its five AWS calls)."""

    rounding: list[float] = field(default_factory=list)
    waiting: list[float] = field(default_factory=list)
    fire: list[float] = field(default_factory=list)
    due_at: list[float] = field(default_factory=list)  # epoch seconds, per timer
    workers: set[str] = field(default_factory=set)  # the worker processes that fired them

    def peak_due_per_second(self) -> int:
        """The most timers due within one second: the load the workers had to keep up with."""
        return max(Counter(int(due) for due in self.due_at).values(), default=0)

    @classmethod
    def from_trace(cls, lines: Iterable[str], incidents: set[str]) -> TimerPath:
        """The timers of `incidents` in the lines a stack's workers print with LOCAL_WORKER_TRACE=1."""
        path = cls()
        for line in lines:
            worker, mark, data = line.partition(" " + TRACE_MARK + " ")
            if not mark:
                continue
            try:
                trace = json.loads(data)
                received_at = float(trace["received_at"])
                timers = [(str(i), float(late), float(ahead)) for i, late, ahead in trace["timers"]]
                handled = float(trace["handled_ms"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short at shutdown
            for incident, late, ahead in timers:
                if incident in incidents and ahead >= 1000:  # delayed timers only (level 0 fires at once)
                    rounding = math.ceil(ahead / 1000) * 1000 - ahead
                    path.rounding.append(rounding)
                    path.waiting.append(max(0.0, late - rounding))
                    path.fire.append(handled)
                    path.due_at.append(received_at - late / 1000)
                    path.workers.add(worker.strip())
        return path


@dataclass
class LatenessRun:
    incidents: int
    create_seconds: float
    lateness_ms: dict[int, list[float]] = field(default_factory=dict)  # by level
    pages_expected: int = 0
    pages_delivered: int = 0
    lost: int = 0
    doubled: int = 0
    # what the polling comparison replays: (created, level-0 due, level-1 delay) per incident
    workload: list[float] = field(default_factory=list)
    rate_per_second: float | None = None  # None: flat out
    load: tuple[float, float] = (0.0, 0.0)  # the machine's 1-minute load average before and after
    # CPU seconds each kind of the stack's processes (and this load generator) used during the run,
    # and the share of the machine's cores busy: where the run's capacity went
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    # Where each level-1 timer's time went, from the workers' trace (TimerPath), in ms
    timer_path: TimerPath | None = None

    @property
    def label(self) -> str:
        if self.rate_per_second:
            return f"{self.incidents} at {self.rate_per_second:g}/s"
        return f"{self.incidents} flat out"

    @property
    def throughput(self) -> float:
        return self.incidents / self.create_seconds

    def all_lateness(self) -> list[float]:
        return [v for values in self.lateness_ms.values() for v in values]


def _process_kind(command: str, aws_port: int) -> str | None:
    if "local.emulator" in command:
        dynamodb = f"--port {dynamodb_port(aws_port)}" in command
        return "emulator: DynamoDB" if dynamodb else "emulator: the rest"
    for module, kind in (
        ("local.container", "api and alarm containers"),
        ("local.worker", "escalation workers"),
        ("local.scheduler", "reconciler"),
        ("local.stack", "stack: gateway, tap, alarms"),
    ):
        if module in command:
            return kind
    return None


def process_cpu(stack: LocalStackProcess) -> tuple[dict[str, float], tuple[int, int]]:
    """CPU seconds so far of each kind of the stack's processes and of this one (Linux /proc), and
    the machine's busy and total clock ticks. Empty where /proc is not there."""
    ticks = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    spent: dict[int, float] = {}
    try:
        for entry in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                fields = stat[stat.rfind(")") + 2 :].split()
                parent[int(entry)] = int(fields[1])
                spent[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
        cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return {}, (0, 0)
    root = stack.process.pid if stack.process else -1

    def in_stack(pid: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parent.get(pid, 0)
        return False

    used: dict[str, float] = {"load generator and tap": spent.get(os.getpid(), 0.0)}
    for pid, seconds in spent.items():
        if not in_stack(pid):
            continue
        with contextlib.suppress(OSError):
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            kind = _process_kind(command, stack.aws_port) or "other"
            used[kind] = used.get(kind, 0.0) + seconds
    idle = cpu[3] + cpu[4]
    return used, (sum(cpu) - idle, sum(cpu))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


@contextlib.contextmanager
def local_stack(
    progress: bool = True,
    env: dict[str, str] | None = None,
    level1_minutes: float = LEVEL1_DELAY_MINUTES,
) -> Iterator[tuple[LocalStackProcess, TopicTap]]:
    """`make run`'s stack with the benchmark's two-level default policy, and a tap on its topic
    (bench-quick shortens level 1's delay: the smoke runs the same code without waiting)."""
    log = ROOT / ".pytest_cache" / "bench-local-stack.log"
    env = {
        "RECONCILE_SECONDS": "60",
        "LOCAL_SNS_TAP": "0",
        "TOKEN_RATE_PER_MINUTE": "1000000",
        "LOCAL_WORKER_TRACE": "1",  # a line per timer: where a late page's time went (TimerPath)
        **(env or {}),
    }
    with LocalStackProcess("bench-token", log, env) as stack:
        tap = TopicTap(stack, f"bench-tap-{os.getpid()}")
        status, _ = stack.call(
            "POST",
            "/policies",
            {
                "name": "bench",
                "is_default": True,
                "levels": [
                    {"delay_minutes": 0, "targets": [{"type": "user", "email": "first@example.com"}]},
                    {
                        "delay_minutes": level1_minutes,
                        "targets": [{"type": "user", "email": "second@example.com"}],
                    },
                ],
            },
        )
        assert status == 201
        yield stack, tap


def run(
    incidents: int,
    clients: int = 4,
    progress: bool = True,
    rate_per_second: float | None = None,
    on: tuple[LocalStackProcess, TopicTap] | None = None,
    linger_seconds: float = 3.0,
) -> LatenessRun:
    """Create `incidents` over HTTP, flat out from `clients` threads (or paced at a steady rate), on a
    fresh local stack (or on `on`, one that `local_stack()` made, shared by several runs)."""
    if on is None:
        with local_stack(progress) as fresh:
            return run(incidents, clients, progress, rate_per_second, fresh)
    stack, tap = on
    load_before = os.getloadavg()[0]
    cpu_before, machine_before = process_cpu(stack)

    def create(n: int) -> str:
        code, body = stack.call("POST", "/incidents", {"title": f"bench {n}", "severity": "P2"})
        if code != 201:
            raise RuntimeError(f"create answered {code}: {body}")
        return str(body["id"])

    # The tap is drained while incidents are created, as a subscriber would: pages left piling up on
    # its queue would tax the emulator (every send to a queue counts its messages), not the engine.
    creating = threading.Event()
    creating.set()

    def drain() -> None:
        while creating.is_set():
            tap.poll(wait_seconds=1)

    drainer = threading.Thread(target=drain, name="tap-drain", daemon=True)
    drainer.start()
    started = time.monotonic()
    if rate_per_second:
        # Open loop: incident n is sent at started + n / rate whether or not the ones before it
        # have been answered (a request in flight does not hold the next one back).
        with ThreadPoolExecutor(4 * clients) as pool:
            futures = []
            for n in range(incidents):
                pause = started + n / rate_per_second - time.monotonic()
                if pause > 0:
                    time.sleep(pause)  # pacing the load generator, not waiting for the system
                futures.append(pool.submit(create, n))
            ids = [f.result() for f in futures]
    else:
        with ThreadPoolExecutor(clients) as pool:
            ids = list(pool.map(create, range(incidents)))
    create_seconds = time.monotonic() - started
    creating.clear()
    drainer.join()
    result = LatenessRun(
        incidents, create_seconds, pages_expected=2 * incidents, rate_per_second=rate_per_second
    )
    mine = set(ids)
    if progress:
        print(
            f"      created {incidents} incidents in {create_seconds:.1f} s; waiting for every page ...",
            flush=True,
        )

    def pages() -> list[tuple[str, int, int]]:  # (incident, level, SNS's timestamp) of this run's pages
        return [
            (a["incident_id"], int(a["level"]), sent)
            for _, sent, a in tap.seen
            if a["kind"] == "page" and a["incident_id"] in mine
        ]

    def delivered() -> bool:
        tap.poll(wait_seconds=1)
        return len(pages()) >= result.pages_expected

    with contextlib.suppress(TimeoutError):  # what never arrives is counted as lost below
        wait_for(delivered, 60 + incidents * 0.1, "every page on the topic")
    # a little longer, to catch any doubled page
    wait_until = time.monotonic() + linger_seconds
    while time.monotonic() < wait_until:
        tap.poll(wait_seconds=1)

    cpu_after, machine_after = process_cpu(stack)
    result.cpu_seconds = {kind: spent - cpu_before.get(kind, 0.0) for kind, spent in cpu_after.items()}
    if machine_after[1] > machine_before[1]:
        result.machine_busy = (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1])
    sent_ms = {(i, level): sent for i, level, sent in pages()}
    counts = Counter((i, level) for i, level, _ in pages())
    result.pages_delivered = sum(counts.values())
    result.doubled = sum(n - 1 for n in counts.values() if n > 1)
    result.lost = sum(1 for i in ids for level in (0, 1) if counts[(i, level)] == 0)
    result.lateness_ms = {0: [], 1: []}
    with ThreadPoolExecutor(clients) as pool:
        steps = list(pool.map(lambda i: stack.call("GET", f"/incidents/{i}/escalations")[1]["items"], ids))
    for incident_id, items in zip(ids, steps, strict=True):
        for step in items:
            key = (incident_id, step["level"])
            if key in sent_ms:
                due_ms = parse_iso(step["scheduled_at"]).timestamp() * 1000
                result.lateness_ms[step["level"]].append(max(0.0, sent_ms[key] - due_ms))
        if items:
            result.workload.append(parse_iso(items[0]["scheduled_at"]).timestamp())
    result.load = (load_before, os.getloadavg()[0])
    with contextlib.suppress(OSError), stack.log_path.open(errors="replace") as log:
        result.timer_path = TimerPath.from_trace(log, mine)
    return result
