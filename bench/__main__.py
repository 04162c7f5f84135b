"""`make bench` / `make bench-quick`: every benchmark in one run, one summary table, docs rewritten.

python -m bench            # full: about 12 minutes on 2 cores; rewrites docs/benchmarks.md
python -m bench --quick    # under a minute, smaller sizes; prints only (CI smoke)
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# Before the engine is imported: its metrics and logger read these once.
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")

from bench import alerts, calls, cold_start, cost, lateness, lists, polling, scale, schedules, warm
from local.build import find_python313

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"


def _machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    mem_kb = next(
        (
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} cores ({cpu}), {mem_kb / 1024 / 1024:.0f} GiB, {system}"


def _python_version(python: str) -> str:
    return subprocess.run(
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _pct(values: list[float], q: float) -> float:
    return lateness.percentile(values, q)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def main() -> int:
    parser = argparse.ArgumentParser(description="Incident Engine benchmarks")
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute, prints only")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    quick = args.quick
    sizes = {
        # quick: every section's code at the smallest sizes that still run it (CI's smoke, under a minute)
        "runs": 1 if quick else 7,
        "samples": 2 if quick else 200,
        "incidents": 6 if quick else 1000,
        "flat_runs": 1 if quick else 3,  # consecutive flat-out runs, each reported
        "paced_rate": 10,  # incidents a second, for paced_seconds
        "paced_seconds": 1 if quick else 120,
        "stored": 100 if quick else 100_000,
        "heartbeats": 20 if quick else 10_000,
        "listed": 60 if quick else 20_000,
        "lookups": 10 if quick else 5_000,
        "alerts": 2 if quick else 200,  # per ingest path, at 10 a second
    }
    lambda_python = os.environ.get("BENCH_PYTHON") or find_python313()
    if lambda_python is None:
        print(
            "cold starts are measured on the built artifact under Python 3.13 (Lambda's runtime), which was"
        )
        print("not found on PATH or in pyenv: install it (e.g. `pyenv install 3.13`) or set BENCH_PYTHON")
        if not quick:
            return 2
    began = time.monotonic()
    exits = contextlib.ExitStack()
    atexit.register(exits.close)  # the shared stack stops even if a section fails

    def step(n: int, text: str) -> None:
        print(f"[{n}/10] {text} ({time.monotonic() - began:.0f} s)", flush=True)

    # quick: the local stack's steps (4 and 10) run in a process of their own from the start, beside the
    # in-process steps: they mostly wait (for the stack to boot, for level 1 to fall due, for pages)
    # while the in-process steps keep a core busy. A process, not a thread: the in-process steps move
    # time-machine's clock, which is the whole process's. One local stack serves both steps, with fewer
    # processes than `make run`'s (each one's start is CPU the smoke does not need). A full run keeps
    # every step in turn, so that nothing else shares the machine while it measures.
    stack_steps = _StackSteps(sizes) if quick else None
    if stack_steps is not None:
        exits.callback(stack_steps.stop)

    step(1, "AWS calls per operation, counted on moto")
    ops = calls.measure()
    cold: tuple[cold_start.ColdStart, list[cold_start.ColdStart]] | None = None
    if lambda_python:
        step(2, f"cold start from the built artifact, median of {sizes['runs']} fresh interpreters")
        cold = cold_start.measure(lambda_python, runs=sizes["runs"], without_bytecode=not quick)
        heavy = cold_start.heaviest_imports(lambda_python)
    else:
        step(2, "cold start skipped: no Python 3.13")
    step(3, f"warm request cost, {sizes['samples']} requests per route")
    routes = warm.measure(sizes["samples"])
    paced_n = sizes["paced_rate"] * sizes["paced_seconds"]
    step(
        4,
        f"escalation lateness on the local stack: {sizes['flat_runs']} x {sizes['incidents']} incidents "
        f"flat out, {paced_n} at {sizes['paced_rate']}/s",
    )
    if stack_steps is not None:
        print("      (in a process of its own since the start)", flush=True)
        flat_runs, paced, _, _ = stack_steps.results()
    else:
        flat_runs, paced = _lateness_runs(sizes, None)
    run = flat_runs[0]  # the polling comparison replays the first
    step(5, "the polling alternative on the same workload")
    delay_s = lateness.LEVEL1_DELAY_MINUTES * 60
    polls = [polling.simulate(run.workload, delay_s, interval) for interval in (300.0, 5.0)]
    step(6, "cost per 1,000 incidents")
    our_ms = {
        "create incident (policy; level 0 pages 1)": _route_ms(routes, "POST /incidents"),
        "acknowledge": _route_ms(routes, "POST /incidents/{id}/acknowledge"),
        "resolve (2 paged, 2 notices)": _route_ms(routes, "POST /incidents/{id}/resolve"),
    }
    lines = cost.per_thousand(ops, our_ms)
    total_cost = sum(line.usd_per_1000 for line in lines)
    fixed = cost.reconciler_per_month(next(o for o in ops if o.name.startswith("reconciler")))
    step(
        7,
        f"reconciler with {sizes['stored']:,} escalating incidents and {sizes['heartbeats']:,} heartbeats "
        "stored, 10 of each overdue",
    )
    safety = scale.measure(sizes["stored"], heartbeats=sizes["heartbeats"])
    step(8, f"list pages with {sizes['listed']:,} incidents stored; index writes per lifecycle")
    listed = lists.measure(sizes["listed"])
    step(9, f"schedules at fire time; {sizes['lookups']:,} on-call lookups of a 4-layer schedule")
    on_call = schedules.measure(sizes["lookups"], planned_overrides=10 if quick else 50)
    step(10, f"the alert path: {sizes['alerts']} alerts per ingest path at 10/s; AWS calls per alert")
    if stack_steps is not None:
        _, _, latency, load = stack_steps.results()
        alert_path = alerts.AlertBench(sizes["alerts"], latency, alerts.from_ops(ops), load)
    else:
        alert_path = alerts.run(sizes["alerts"], ops=ops)
    exits.close()

    ours = run.all_lateness()
    fire1 = next(o for o in ops if o.name == "fire one level, 1 recipient")
    fire5 = next(o for o in ops if o.name == "fire one level, 5 recipients")
    worst_warm = max(routes, key=lambda r: r.ours_p50_ms)
    our_reads = (
        fire1.items_read
    )  # per incident: the one token check of the level-1 timer (level 0 fires in the create)
    summary_rows = [
        [
            "level fire, AWS calls (1 / 5 recipients)",
            f"{fire1.total} / {fire5.total}",
            f"floor {fire1.floor} / {fire5.floor}",
            f"{fire1.ratio:.2f}x / {fire5.ratio:.2f}x",
            "<= 1.5x floor",
        ],
        *_cold_rows(cold, lambda_python),
        [
            f"warm overhead p50, worst route ({worst_warm.route})",
            f"{worst_warm.ours_p50_ms:.1f} ms",
            "-",
            "-",
            "<= 5 ms",
        ],
        *(
            [
                f"lateness p50 / p99 / max ({r.label}, run {n} of {len(flat_runs)})",
                f"{statistics.median(lat):.0f} / {_pct(lat, 0.99):.0f} / {max(lat):.0f} ms",
                f"load {r.load[0]:.1f} / {r.load[1]:.1f}",
                "-",
                "p99 <= 1500 ms",
            ]
            for n, r in enumerate(flat_runs, 1)
            for lat in [r.all_lateness()]
        ),
    ]
    if paced:
        pl = paced.all_lateness()
        summary_rows.append(
            [
                f"lateness p50 / p99 / max ({paced.label}, {sizes['paced_seconds']} s)",
                f"{statistics.median(pl):.0f} / {_pct(pl, 0.99):.0f} / {max(pl):.0f} ms",
                f"load {paced.load[0]:.1f} / {paced.load[1]:.1f}",
                "-",
                "p99 <= 1000 ms",
            ]
        )
    for p in polls:
        summary_rows.append(
            [
                f"vs polling every {p.interval_s:g} s: lateness p99, items read",
                f"{_pct(ours, 0.99):.0f} ms, {our_reads * run.incidents:,}",
                f"{_pct(p.lateness_ms, 0.99):.0f} ms, {p.items_read:,}",
                f"{_pct(p.lateness_ms, 0.99) / max(_pct(ours, 0.99), 1):.1f}x later, "
                f"{p.items_read / max(our_reads * run.incidents, 1):.1f}x reads",
                "beat it",
            ]
        )
    summary_rows += [
        ["cost per 1,000 incidents (3 levels, ack after 2nd)", f"${total_cost:.4f}", "-", "-", "<= $0.03"],
        _alert_cost_row(ops),
        [
            f"reconciler pass, {safety.stored:,} incidents + {safety.heartbeats:,} heartbeats stored",
            f"{safety.items_read} items, {safety.read_units:g} RRU",
            f"{safety.due} due (index entry + item each)",
            f"{safety.items_read / safety.due:.1f}x",
            "<= 2x due",
        ],
        [
            f"filtered list page, {listed.stored:,} stored (worst filter)",
            f"{max(p.items_read for p in listed.pages[1:])} items read",
            "25 a page",
            "-",
            "O(page)",
        ],
        [
            "secondary-index writes per lifecycle (no / 4 KB description)",
            f"{sum(w.index_units for w in listed.lifecycle):g} / "
            f"{sum(w.index_units for w in listed.lifecycle_long):g} WRU",
            "-",
            "-",
            "-",
        ],
        [
            "lost / doubled pages (from the topic)",
            f"{sum(r.lost for r in flat_runs)} / {sum(r.doubled for r in flat_runs)}",
            f"of {sum(r.pages_expected for r in flat_runs)}",
            "-",
            "0 / 0",
        ],
        _schedule_row(on_call),
    ]
    summary_rows += alerts.summary_rows(alert_path)
    summary = _table(["measure", "ours", "baseline / alternative", "ratio", "target"], summary_rows)
    print()
    print(lists.report(listed))
    print()
    print(schedules.report(on_call))
    print()
    print(summary)
    print(f"\n(total {time.monotonic() - began:.0f} s)")
    if cold is not None and lambda_python is not None:  # (a full run has them: checked above)
        text = _document(
            summary,
            ops,
            cold[0],
            cold[1],
            heavy,
            routes,
            run,
            paced,
            polls,
            lines,
            total_cost,
            fixed,
            safety,
            lambda_python,
            sizes,
            on_call,
            alert_path,
            flat_runs=flat_runs,
        )
        # The report names things relative to the repository, never a path of this machine.
        paths = {str(ROOT), sys.prefix, sys.executable, lambda_python, str(Path.home())}
        leaked = sorted(p for p in paths if os.path.isabs(p) and len(p) > 5 and p in text)
        if leaked:
            print(f"the report names paths of this machine: {leaked}")
            return 1
        if quick:  # every section's code ran; the file is a full run's
            print(f"(docs/benchmarks.md rendered, {len(text.splitlines())} lines, not written)")
        else:
            DOC.parent.mkdir(exist_ok=True)
            DOC.write_text(text)
            print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


_StackResults = tuple[
    list[lateness.LatenessRun], lateness.LatenessRun | None, list[alerts.PathLatency], tuple[float, float]
]


class _StackSteps:
    """bench-quick's steps 4 and 10 on one local stack, in a forked process started at once."""

    def __init__(self, sizes: dict[str, int]) -> None:
        context = multiprocessing.get_context("fork")  # the parent has no thread yet, nor a clock moved
        self._receive, send = context.Pipe(duplex=False)
        self._process = context.Process(target=self._run, args=(sizes, send), name="bench-local-stack")
        self._process.start()
        send.close()
        self._results: _StackResults | None = None

    @staticmethod
    def _run(sizes: dict[str, int], send: Any) -> None:
        try:
            small = {"LOCAL_WORKERS": "1", "LOCAL_API_CONTAINERS": "2", "LOCAL_ASYNC_CONTAINERS": "1"}
            with lateness.local_stack(env=small, level1_minutes=0.05) as on:
                flat_runs, paced = _lateness_runs(sizes, on)
                before = os.getloadavg()[0]
                latency = alerts.measure_latency(sizes["alerts"], True, on[0])
                send.send(("ok", (flat_runs, paced, latency, (before, os.getloadavg()[0]))))
        except BaseException:  # whatever it was, the parent reports it
            import traceback

            send.send(("error", traceback.format_exc()))
        finally:
            send.close()

    def results(self) -> _StackResults:
        if self._results is None:
            try:
                kind, value = self._receive.recv()
            except EOFError:
                raise RuntimeError("the local stack's steps ended without a result") from None
            if kind != "ok":
                raise RuntimeError(f"the local stack's steps failed:\n{value}")
            self._results = value
        return self._results

    def stop(self) -> None:
        self._process.join(timeout=120)
        if self._process.is_alive():
            self._process.terminate()


def _lateness_runs(
    sizes: dict[str, int], on: tuple[Any, Any] | None
) -> tuple[list[lateness.LatenessRun], lateness.LatenessRun | None]:
    """The flat-out runs, one after the other, then the paced one: each on a fresh stack, or all on
    `on` (bench-quick's one stack)."""
    paced_n = sizes["paced_rate"] * sizes["paced_seconds"]
    linger = 1.0 if on else 3.0  # bench-quick: a second to catch a doubled page is enough for a smoke
    flat = [lateness.run(sizes["incidents"], on=on, linger_seconds=linger) for _ in range(sizes["flat_runs"])]
    if not paced_n:
        return flat, None
    return flat, lateness.run(paced_n, rate_per_second=sizes["paced_rate"], on=on, linger_seconds=linger)


def _cold_rows(
    cold: tuple[cold_start.ColdStart, list[cold_start.ColdStart]] | None, python: str | None
) -> list[list[str]]:
    if cold is None or python is None:
        return [["handler cold import", "skipped: no Python 3.13", "-", "-", "<= 1.5x"]]
    baseline, starts = cold
    api = next(s for s in starts if s.name == "api")
    others = [s for s in starts if s.name in cold_start.HANDLERS and s.name != "api"]
    return [
        [
            "api cold import, built artifact (python " + _python_version(python) + ")",
            f"{api.process_ms:.0f} ms",
            f"import boto3 {baseline.process_ms:.0f} ms",
            f"{api.ratio(baseline):.2f}x",
            "<= 1.5x",
        ],
        [
            " / ".join(s.name for s in others) + " cold import",
            " / ".join(f"{s.process_ms:.0f} ms" for s in others),
            f"import boto3 {baseline.process_ms:.0f} ms",
            " / ".join(f"{s.ratio(baseline):.2f}x" for s in others),
            "<= 1.5x",
        ],
    ]


def _schedule_row(result: schedules.ScheduleBench) -> list[str]:
    email, schedule = result.fires[0], result.fires[2]
    return [
        "level fire with a schedule target: calls, RRU; on-call lookup p50",
        f"{schedule.total}, {schedule.read_units:g} RRU; {result.lookup.fresh_p50_us:.0f} µs",
        f"e-mail target {email.total}, {email.read_units:g} RRU",
        f"+{schedule.total - email.total} calls",
        "-",
    ]


def _alert_cost_row(ops: list[calls.OpCalls]) -> list[str]:
    rows = cost.alerts_per_thousand(ops)
    new = max((r for r in rows if r.kind == "new"), key=lambda r: r.total)
    repeat = max((r for r in rows if r.kind == "repeat"), key=lambda r: r.total)
    return [
        "cost per 1,000 alerts, new / repeat (dearest path)",
        f"${new.total:.4f} / ${repeat.total:.4f}",
        f"{new.path} / {repeat.path}",
        "-",
        "-",
    ]


def _route_ms(routes: list[warm.RouteCost], name: str) -> float:
    return next(r.ours_p50_ms for r in routes if r.route == name)


from bench.report import document as _document  # noqa: E402 - the long markdown lives in its own module

if __name__ == "__main__":
    sys.exit(main())
