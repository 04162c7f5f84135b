"""A soak on the local stack: incidents, alerts and acknowledges at a steady rate while the
escalation worker process is killed (SIGKILL) and restarted by the stack, then every level checked.

    python -m tests.soak [--seconds 180] [--rate 2] [--kill-every 15]

It reports, and fails (exit 1) unless: no level lost (every due step executed, every page row
sent, and SNS delivered each one), none doubled (one dedup id per recipient per step, whatever the
redeliveries), none fired after its incident was acknowledged, and every level within the
reconciler's bound of its due time: executed before PASSES_ALLOWED reconciler passes had begun after its
due time plus the grace and ended (the first such pass re-arms a lost timer; the count is in passes,
not seconds, so a loaded machine, which slows the reconciler and the worker alike, cannot break it).
`make soak` runs it; tests/e2e/test_soak.py runs a short one.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from local.process import LocalStackProcess, TopicTap, wait_for

TOKEN = "soak-admin-token"
RECONCILE_SECONDS = 5
GRACE_SECONDS = 5
PASSES_ALLOWED = 3  # the pass that re-arms a lost timer, then two more for the worker to take it
LEVELS = (0, 0.05, 0.05)  # minutes: level 0 at once, then 3 s and 3 s more


@dataclass
class Figures:
    incidents: int = 0
    alerts: int = 0
    acks: int = 0
    kills: int = 0
    steps_executed: int = 0
    pages_sent: int = 0
    deliveries: int = 0
    redeliveries: int = 0  # the same dedup id delivered again (at least once, by design)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    after_ack: list[str] = field(default_factory=list)
    late: list[str] = field(default_factory=list)
    max_lateness: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.doubled or self.after_ack or self.late or self.errors) and self.kills > 0
        )

    def verdict(self) -> str:
        """The one line a reader looks for last: PASS, or FAIL and why."""
        if self.ok:
            return "soak: PASS (0 lost, 0 doubled, 0 fired after an ack, 0 beyond the bound)"
        why = [
            f"{len(getattr(self, name))} {label}"
            for name, label in (
                ("lost", "lost"),
                ("doubled", "doubled"),
                ("after_ack", "fired after an ack"),
                ("late", "beyond the bound"),
                ("errors", "errors"),
            )
            if getattr(self, name)
        ]
        if self.kills == 0:
            why.append("the worker was never killed")
        return f"soak: FAIL ({', '.join(why)})"

    def report(self) -> str:
        bound = f"{PASSES_ALLOWED} reconciler passes after due + {GRACE_SECONDS} s"
        lines = [
            f"soak: {self.incidents} incidents opened, {self.alerts} alerts sent, {self.acks} acknowledged, "
            f"worker killed {self.kills} times",
            f"  steps executed {self.steps_executed}, pages sent {self.pages_sent}, SNS deliveries "
            f"{self.deliveries} ({self.redeliveries} repeats of a dedup id)",
            f"  lost {len(self.lost)}, doubled {len(self.doubled)}, fired after ack {len(self.after_ack)}, "
            f"beyond the bound ({bound}) {len(self.late)}; "
            f"latest level {self.max_lateness:.1f} s after due",
        ]
        for name in ("lost", "doubled", "after_ack", "late", "errors"):
            lines += [f"  {name}: {item}" for item in getattr(self, name)[:10]]
        return "\n".join(lines)


def _iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _children(pid: int, marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and marker in cmdline and state != "Z" and b"EscalationWorkerFunction" in environ:
            found.append(int(entry))
    return found


def _all(stack: LocalStackProcess, path: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        status, page = stack.call("GET", path + (f"?cursor={cursor}" if cursor else ""))
        assert status == 200, (path, status, page)
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def soak(
    seconds: float,
    rate: float,
    kill_every: float,
    log: Path,
    progress: Callable[[str], None] = lambda line: None,
    progress_every: float = 15.0,
) -> Figures:
    """``progress`` gets a line as each phase starts and every ``progress_every`` s of load."""
    figures = Figures()
    progress(f"soak: starting the local stack (its log: {log}) ...")
    env = {
        "RECONCILE_SECONDS": str(RECONCILE_SECONDS),
        "RECONCILE_GRACE_SECONDS": str(GRACE_SECONDS),
        "LOCAL_SNS_TAP": "0",
        "LOCAL_SCHEDULER_TRACE": "1",  # each reconciler pass's start and end, for the bound
    }
    with LocalStackProcess(TOKEN, log, env) as stack:
        assert stack.process is not None
        tap = TopicTap(stack, "soak-tap")
        levels = [
            {"delay_minutes": d, "targets": [{"type": "user", "email": f"level{n}@example.com"}]}
            for n, d in enumerate(LEVELS)
        ]
        status, _ = stack.call("POST", "/policies", {"name": "soak", "is_default": True, "levels": levels})
        assert status == 201
        status, service = stack.call("POST", "/services", {"name": "soak", "default_severity": "P2"})
        assert status == 201
        key = service["integration_key"]

        stop = threading.Event()

        def killer() -> None:
            while not stop.wait(kill_every):
                for pid in _children(stack.process.pid, "local.worker"):  # type: ignore[union-attr]
                    os.kill(pid, signal.SIGKILL)
                    figures.kills += 1

        killing = threading.Thread(target=killer, daemon=True)
        killing.start()
        opened: list[str] = []
        acked: dict[str, str] = {}
        progress(
            f"soak: {seconds:g} s of load at {rate:g} requests/s, the worker killed every {kill_every:g} s"
        )
        started, n = time.monotonic(), 0
        next_report = progress_every
        try:
            while time.monotonic() - started < seconds:
                elapsed = time.monotonic() - started
                if elapsed >= next_report:
                    next_report += progress_every
                    progress(
                        f"soak: {elapsed:.0f}/{seconds:g} s: {len(opened)} incidents, "
                        f"{figures.alerts} alerts, {sum(1 for v in acked.values() if v)} acknowledged, "
                        f"worker killed {figures.kills} times, {len(figures.errors)} errors"
                    )
                n += 1
                if n % 3 == 1:
                    status, body = stack.call("POST", "/incidents", {"title": f"soak {n}", "severity": "P2"})
                    if status == 201:
                        opened.append(body["id"])
                    else:
                        figures.errors.append(f"POST /incidents -> {status} {body}")
                elif n % 3 == 2:
                    event = {
                        "routing_key": key,
                        "event_action": "trigger",
                        "dedup_key": f"soak-{n % 30}",  # repeats join the active incident
                        "payload": {"summary": f"soak alert {n}", "source": "soak", "severity": "error"},
                    }
                    status, body = stack.call("POST", "/v2/enqueue", event, token=None)
                    if status != 202:
                        figures.errors.append(f"POST /v2/enqueue -> {status} {body}")
                    else:
                        figures.alerts += 1
                        if body.get("outcome") == "opened" and body.get("incident_id"):
                            opened.append(body["incident_id"])
                elif n % 6 == 0 and opened and opened[-1] not in acked:
                    # Acknowledge the newest incident, while its later levels are still to come.
                    target = opened[-1]
                    status, body = stack.call("POST", f"/incidents/{target}/acknowledge", {})
                    if status == 200:
                        acked[target] = body["acknowledged_at"]
                    elif status != 409:  # 409: exhausted or changed meanwhile is fine
                        figures.errors.append(f"acknowledge -> {status} {body}")
                    else:
                        acked[target] = ""
                time.sleep(max(0.0, n / rate - (time.monotonic() - started)))
        finally:
            stop.set()
            killing.join()
        figures.incidents = len(opened)
        figures.acks = sum(1 for v in acked.values() if v)
        progress(f"soak: load done; waiting for the {len(opened)} incidents' levels to settle, then checking")

        # Settle: the worker is up again; every incident ends with no step pending.
        def settled() -> bool:
            for incident_id in opened:
                steps = _all(stack, f"/incidents/{incident_id}/escalations")
                if any(s["status"] == "pending" for s in steps):
                    return False
                rows = _all(stack, f"/incidents/{incident_id}/notifications")
                if any(r["status"] == "pending" for r in rows):
                    return False
            return True

        try:
            wait_for(settled, 180, "every step to execute and every page to be sent")
        except TimeoutError as exc:
            figures.errors.append(str(exc))
        expected = _sent_pages(stack, opened)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len({a.get("dedup_id") for _, _, a in tap.poll(1)}) < expected:
            pass  # SNS's last deliveries reach the tap (long polls: this waits, it does not spin)
        delivered = Counter(attrs.get("dedup_id") for _, _, attrs in tap.seen if attrs.get("kind") == "page")
        figures.deliveries = sum(delivered.values())
        figures.redeliveries = sum(c - 1 for c in delivered.values())
        passes = reconciler_passes(log)
        if not passes:
            figures.errors.append("no reconciler pass was traced in the stack's log")
        for incident_id in opened:
            steps = _all(stack, f"/incidents/{incident_id}/escalations")
            rows = [r for r in _all(stack, f"/incidents/{incident_id}/notifications") if r["kind"] == "page"]
            ack_at = acked.get(incident_id)
            ids_per_step: dict[tuple[int, int, str], set[str]] = {}
            for row in rows:
                ids_per_step.setdefault((row["level"], row.get("loop") or 0, row["recipient"]), set()).add(
                    row["dedup_id"]
                )
                if row["status"] == "sent":
                    figures.pages_sent += 1
                    if delivered[row["dedup_id"]] == 0:
                        figures.lost.append(f"{incident_id} {row['dedup_id']} sent but never delivered")
                elif row["status"] != "superseded":
                    figures.lost.append(f"{incident_id} {row['dedup_id']} {row['status']}")
            for step_key, ids in ids_per_step.items():
                if len(ids) > 1:
                    figures.doubled.append(f"{incident_id} level {step_key}: {sorted(ids)}")
            for step in steps:
                if step["status"] == "pending":
                    figures.lost.append(f"{incident_id} level {step['level']} still pending")
                if step["status"] != "executed" or not step.get("executed_at"):
                    continue
                figures.steps_executed += 1
                due, executed = _iso(step["scheduled_at"]), _iso(step["executed_at"])
                lateness = (executed - due).total_seconds()
                figures.max_lateness = max(figures.max_lateness, lateness)
                missed = passes_missed(passes, due.timestamp() + GRACE_SECONDS, executed.timestamp())
                if missed >= PASSES_ALLOWED:
                    figures.late.append(
                        f"{incident_id} level {step['level']} {lateness:.1f} s after due, "
                        f"{missed} reconciler passes after its grace"
                    )
                if ack_at and _iso(step["executed_at"]) > _iso(ack_at):
                    figures.after_ack.append(f"{incident_id} level {step['level']} fired after the ack")
    return figures


def reconciler_passes(log: Path) -> list[tuple[float, float]]:
    """(start, end) of every reconciler pass, from the lines LOCAL_SCHEDULER_TRACE makes it log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("[reconciler] pass "):
            start, end = line.split()[2:4]
            out.append((float(start), float(end)))
    return out


def passes_missed(passes: list[tuple[float, float]], repairable_at: float, executed_at: float) -> int:
    """How many whole reconciler passes began once the level could be repaired and ended before it
    executed: each was a chance to re-arm it that did not make it fire."""
    return sum(1 for start, end in passes if start >= repairable_at and end <= executed_at)


def _sent_pages(stack: LocalStackProcess, opened: list[str]) -> int:
    total = 0
    for incident_id in opened:
        rows = _all(stack, f"/incidents/{incident_id}/notifications")
        total += sum(1 for r in rows if r["kind"] == "page" and r["status"] == "sent")
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--rate", type=float, default=2.0, help="requests per second")
    parser.add_argument("--kill-every", type=float, default=15.0, help="seconds between worker kills")
    args = parser.parse_args(argv)
    log = Path(tempfile.mkdtemp(prefix="soak-")) / "stack.log"
    figures = soak(args.seconds, args.rate, args.kill_every, log, lambda line: print(line, flush=True))
    print(figures.report())
    print(f"stack log: {log}")
    print(figures.verdict(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
