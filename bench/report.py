"""docs/benchmarks.md: every figure of a full run, the machine, the date, and how to reproduce."""

from __future__ import annotations

import os
import statistics
from datetime import UTC, datetime
from typing import Any

from bench import alerts, cost, schedules
from bench.calls import OpCalls
from bench.cold_start import API_FIRST_REQUEST, HANDLERS, ColdStart
from bench.lateness import LEVEL1_DELAY_MINUTES, LatenessRun, percentile
from bench.polling import PollingResult
from bench.scale import ScaleResult
from bench.schedules import ScheduleBench
from bench.warm import RouteCost


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def _cold_target(baseline: ColdStart, starts: list[ColdStart]) -> str:
    """The target's verdict, from the figures of this run."""
    by_name = {s.name: s for s in starts}
    measured = [by_name[n] for n in HANDLERS if n in by_name]  # every handler has the 1.5x target
    missed = [s for s in measured if s.ratio(baseline) > 1.5]
    met = [s.name for s in measured if s not in missed]
    text = "Target: each handler at most 1.5x the baseline. "
    if met:
        text += f"Met by {', '.join(met)}. "
    for s in missed:
        text += f"**Missed by {s.name} ({s.ratio(baseline):.2f}x).** "
    if {"escalation_worker", "reconciler"} & {s.name for s in missed}:
        text += (
            "What the worker's and reconciler's imports still load beyond boto3's botocore (which PynamoDB "
            "imports) is the engine's own modules (their dataclasses, each built when its module is "
            "imported), the PynamoDB item classes, and the Powertools logger and metrics. "
        )
    if "authorizer" in [s.name for s in missed]:
        text += (
            "What the authorizer's import loads is the config table's store and the token use case "
            "(incident_engine/auth_wiring.py), PynamoDB with botocore, and the Powertools logger. "
        )
    if "api" in [s.name for s in missed]:
        text += (
            "What the api's import still builds is the Powertools resolver with request validation (which "
            "imports pydantic) and the logger and metrics every handler has."
        )
    return text.rstrip()


def _cold_first_request(baseline: ColdStart, starts: list[ColdStart]) -> str:
    first = next((s for s in starts if s.name == API_FIRST_REQUEST), None)
    if first is None:
        return ""
    return (
        f"The row `{API_FIRST_REQUEST}` is not a target: it is the api's import followed by what its first "
        "request to /incidents then loads, the incidents router and with it the engine, PynamoDB and botocore "
        f"({first.process_ms:.0f} ms, {first.ratio(baseline):.2f}x). A cold request pays both; the other "
        "twelve routers and their models are never loaded by a container that does not serve them."
    )


# The deploy-time option (template.yaml's ApiColdStart), with the list prices (us-east-1, arm64)
# as last published to us; re-check them before relying on them.
COLD_START_OPTIONS = (
    "Deploy-time option for the api function only, template.yaml's `ApiColdStart` (default `on-demand`: no "
    "extra cost, the figures above). `snapstart`: Lambda SnapStart for Python (python3.12 and later): every "
    "deploy publishes a version behind the alias `live`; its init runs once, at publish time, and builds "
    "every router and model (functions/api/app.py does that when the init is a snapshot's or a provisioned "
    "environment's), and a new environment resumes from the snapshot instead of importing. It is billed for "
    "caching the snapshot, $0.0000015046 per GB-second while the version is active (about $1.95 a month at "
    "512 MB, per published version kept), and for each restore, $0.0001397998 per GB (about $0.00007 per "
    "cold start at 512 MB). `provisioned`: `ApiProvisionedConcurrency` environments (default 1) kept "
    "initialised, routers built: $0.0000033334 per GB-second on arm64 whether used or not (about $4.32 a "
    "month per environment at 512 MB), and their requests' duration at $0.0000077778 per GB-second instead "
    "of $0.0000133334; requests beyond them start on demand. Both take effect on the alias the API calls. "
    "Prices are us-east-1 list prices as last published to us (this machine cannot reach AWS's pricing "
    "pages): re-check them before relying on them."
)


def _warm_target(routes: list[RouteCost]) -> str:
    """The target's verdict and, where missed, the measured reason."""
    missed = [r for r in routes if r.ours_p50_ms > 5]
    text = "Target: our overhead at most 5 ms p50 per request. "
    if not missed:
        return text + "Met on every route."
    text += "Missed on " + ", ".join(f"{r.route} ({r.ours_p50_ms:.1f} ms)" for r in missed) + ". "
    calls = sum(r.calls for r in routes)
    per_call = sum(r.botocore_p50_ms for r in routes) / calls if calls else 0.0
    share = sum(r.botocore_p50_ms for r in missed) / sum(r.ours_p50_ms for r in missed)
    text += (
        f"Botocore's own work is {share:.0%} of ours on those routes, about {per_call:.2f} ms per AWS call "
        "across all routes, so a route's overhead follows its number of calls: "
        + ", ".join(f"{r.route} makes {r.calls:g}" for r in missed)
        + ". The rest of ours (PynamoDB's item (de)serialisation, Powertools' validation, our code) is "
        + ", ".join(f"{r.ours_p50_ms - r.botocore_p50_ms:.1f} ms on {r.route}" for r in missed[:3])
        + (", ..." if len(missed) > 3 else "")
        + ". What would meet it is fewer calls on those paths first (the configuration reads an alert "
        "and a create make before their transaction: the service, policy, routing rules and maintenance "
        "windows, which a container could cache for seconds at the price of a rule change not applying "
        "at once), then less item conversion around them. The per-credential rate-limit write every "
        "request made is now claimed in blocks (one write per ten requests of a busy credential)."
    )
    return text


def _lat(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {percentile(values, 0.99):.0f} / {max(values):.0f}"


def document(
    summary: str,
    ops: list[OpCalls],
    baseline: ColdStart,
    starts: list[ColdStart],
    heavy: list[tuple[str, float]],
    routes: list[RouteCost],
    run: LatenessRun,
    paced: LatenessRun | None,
    polls: list[PollingResult],
    lines: list[cost.CostLine],
    total_cost: float,
    fixed_monthly: float,
    safety: ScaleResult,
    lambda_python: str,
    sizes: dict[str, int],
    schedule_bench: ScheduleBench | None = None,
    alert_path: alerts.AlertBench | None = None,
    flat_runs: list[LatenessRun] | None = None,
) -> str:
    from bench.__main__ import _machine, _python_version

    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    fire1 = next(o for o in ops if o.name == "fire one level, 1 recipient")
    ours = run.all_lateness()
    parts = [
        "# Benchmarks",
        "",
        f"Measured {now} on {_machine()}; engine code under Python {_python_version(lambda_python)} for cold "
        "starts (the Lambda runtime's version), the rest under the project's virtualenv. Rewritten by every "
        "`make bench`; `make bench-quick` runs the same code at small sizes and prints only.",
        "",
        "```",
        "make bench        # about 12 minutes on 2 cores; rewrites this file",
        "make bench-quick  # under a minute; prints the table",
        "```",
        "",
        "## Summary",
        "",
        summary,
        "",
        "## 1. AWS calls per operation",
        "",
        "The real handlers run in-process on moto; every botocore call (boto3's and PynamoDB's) is counted "
        "through botocore's `before-parameter-build` and `after-call` event hooks. The event source mapping's "
        "own receive/delete are not counted here (they are in the cost). Write units follow DynamoDB's "
        "billing: a put by the item sent, an update by the larger of the item before and after (read from "
        "the emulator around the call), each item of a transaction twice; index WRU are the secondary-index "
        "entries those writes put or delete (moto bills none; `bench/lists.py`'s meter). Read units from the "
        "items returned. The `alert in` rows are one alert through each ingest path's real handler on a warm "
        "container, new (opens an incident; a default policy pages one person at level 0) and repeated (same "
        "dedup key while the incident is open); the Alertmanager bearer key's authorizer call is left out "
        "(API Gateway caches it per key for 60 s) and priced in section 6.",
        "",
        _table(
            ["operation", "calls", "floor", "ratio", "the floor is", "WRU", "index WRU", "RRU", "by API"],
            [
                [
                    o.name,
                    o.total,
                    o.floor,
                    f"{o.ratio:.2f}x",
                    o.floor_reason,
                    f"{o.write_units:g}",
                    f"{o.index_units:g}",
                    f"{o.read_units:g}",
                    ", ".join(f"{k} {v}" for k, v in sorted(o.calls.items())),
                ]
                for o in ops
            ],
        ),
        "",
        _alert_calls_text(ops),
        "",
        f"Target: a level fire at most 1.5x its floor. With five recipients the fire takes {next(o for o in ops if o.name == 'fire one level, 5 recipients').total} calls, "
        "under the floor, because the five messages go out as one `PublishBatch` and are marked sent in one "
        f"conditional transaction. With one recipient it takes {fire1.total} against a floor of {fire1.floor} "
        f"(**{fire1.ratio:.2f}x, missed by {fire1.ratio - 1.5:.2f}x**). The two calls above the floor are the "
        "ones the guarantees rest on: the `GetItem` that compares the timer's fencing token with the incident's "
        "(the floor, as the issue defines it, leaves the read out), and the conditional `UpdateItem` that marks "
        "the outbox row sent, without which a crash between publish and mark could not be told from a publish "
        "that never happened, and the reconciler would have to page twice.",
        "",
        _idle_pass_text(_by(ops, "reconciler pass, nothing to do")),
        "",
        "## 2. Cold start",
        "",
        f"Measured on the built artifact: the layout `sam build` makes, built the same way from the same "
        "inputs (local/build.py runs each layer's Makefile, which `sam build` runs for `BuildMethod: makefile`), "
        f"for this machine's architecture. A fresh Python {_python_version(lambda_python)} per sample, started "
        "`-I -S -B` with the path exactly Lambda's (the function's folder, its layers merged as /opt/python, "
        "the standard library; no site-packages; nothing written back, as /opt is read-only), imports the "
        "handler (building its module-level objects: the resolver, the batch processor); "
        f"median of {sizes['runs']} runs, taken in rounds of one sample of each (so that the machine "
        "drifting during the minute this takes moves the baseline and the handlers alike). The baseline is "
        "the same interpreter importing only boto3 from the same layer. The last column is the same "
        "import with the layers' bytecode removed: what every cold "
        "start paid while the dependencies layer shipped none (SAM's python builder compiles nothing, and "
        "Lambda cannot write the bytecode back). On this shared 2-core machine the medians move by up to a "
        "fifth from one run to the next; compare ratios, which move less.",
        "",
        _table(
            [
                "handler",
                "process (ms)",
                "import alone (ms)",
                "ratio to import boto3",
                "without layer bytecode (ms)",
            ],
            [
                [
                    "`import boto3` (baseline)",
                    f"{baseline.process_ms:.0f}",
                    f"{baseline.import_ms:.0f}",
                    "1.00x",
                    "-",
                ]
            ]
            + [
                [
                    s.name,
                    f"{s.process_ms:.0f}",
                    f"{s.import_ms:.0f}",
                    f"{s.ratio(baseline):.2f}x",
                    f"{s.no_bytecode_ms:.0f}" if s.no_bytecode_ms is not None else "-",
                ]
                for s in starts
            ],
        ),
        "",
        "Heaviest imports of the api handler (`-X importtime`, time spent in each package's own modules): "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in heavy)
        + ".",
        "",
        "What was made lazy or cheaper: the api's thirteen routers are included by the first request whose "
        "path needs them (api/routes.py: a path's first segment names its routers; a unit test checks every "
        "route of template.yaml is reached that way), so importing the handler builds no router, no engine, "
        "no PynamoDB and no botocore, and a container builds only the routers it serves; the api's pydantic "
        "models and the routing rules' documents build their validators on first use (`defer_build`); "
        "settings as a dataclass and the routing rules' store imported only where rules are read, so the "
        "worker, reconciler and authorizer never import pydantic (a unit test checks it); Powertools' "
        "OpenAPI models imported only by `/docs` and `/openapi.json`; boto3 imported only when a handler "
        "first talks to SQS or SNS; the authorizer built by a composition root of its own "
        "(incident_engine/auth_wiring.py) that loads the config table's store and the token use case, "
        "not the engine, incident store, outbox and timers it never calls (a unit test checks it); and "
        "bytecode compiled for 3.13 at build time in both layers (the last "
        "column shows what that is worth). Figures in this file before the dependencies layer shipped "
        "bytecode were measured from a virtualenv where pip had compiled everything, which is not what was "
        "deployed; these are from the artifact.",
        "",
        _cold_target(baseline, [s for s in starts if s.name != API_FIRST_REQUEST]),
        "",
        _cold_first_request(baseline, starts),
        "",
        COLD_START_OPTIONS,
        "",
        "## 3. Warm request cost",
        "",
        f"The api handler in-process against moto in-process, {sizes['samples']} requests per route after 5 "
        "warm-ups, one representative request of every route family (the ingest routes with a new alert each "
        "time, so each opens an incident and pages). The emulator's share is the time between botocore's "
        "`before-send` and `response-received` for every call (moto answers inside that window); what is left "
        "is our code, Powertools, PynamoDB and botocore's own work on each call (validation, serialisation, "
        "endpoint rules, the user agent, SigV4 signing, its event hooks): the overhead a deployed request "
        "would have on top of DynamoDB's latency. The last column is that botocore share of ours, measured "
        "as the time inside botocore's client calls less the emulator's.",
        "",
        _table(
            [
                "route",
                "total p50 / p99 (ms)",
                "emulator p50 (ms)",
                "ours p50 / p99 (ms)",
                "AWS calls",
                "of ours, botocore p50 (ms)",
            ],
            [
                [
                    r.route,
                    f"{r.total_p50_ms:.1f} / {r.total_p99_ms:.1f}",
                    f"{r.emulator_p50_ms:.1f}",
                    f"{r.ours_p50_ms:.1f} / {r.ours_p99_ms:.1f}",
                    f"{r.calls:g}",
                    f"{r.botocore_p50_ms:.1f}",
                ]
                for r in routes
            ],
        ),
        "",
        _warm_target(routes),
        "",
        *_lateness_section(flat_runs or [run], paced),
        "## 5. The polling alternative, same workload",
        "",
        "A polling processor replayed on the creation instants of the flat-out run, on a simulated clock: "
        "every cycle it reads every open incident and fires what is due (seed 000's cron design at 5 minutes, "
        "an engine cycle at 5 seconds). Items read count the escalation path only: ours is the one `GetItem` "
        "with which the level-1 timer checks its token (level 0 fires inside the create); the poller's is every "
        "open incident on every cycle. The replay favours the poller: an incident leaves its poll set as soon "
        "as its last level fired, where a real one stays until acknowledged.",
        "",
        _table(
            ["design", "lateness p50 / p99 / max (ms)", "items read", "cycles"],
            [["Incident Engine (timers)", _lat(ours), "see summary", "-"]]
            + [
                [f"polling every {p.interval_s:g} s", _lat(p.lateness_ms), f"{p.items_read:,}", p.ticks]
                for p in polls
            ],
        ),
        "",
        "## 6. Cost per 1,000 incidents",
        "",
        "A lifecycle of three levels, acknowledged after the second, then resolved: create (level 0 pages at "
        "once), the level-1 fire, acknowledge, level 2's timer arriving stale, resolve (two notices). Calls and "
        "units from section 1; Lambda duration = our measured overhead (section 3) plus an assumed "
        f"{cost.AWS_CALL_MS:g} ms per AWS call, at 512 MB arm64; the authorizer is counted on every request "
        "(its 60 s cache makes that an upper bound); each timer delivered costs one receive and one delete.",
        "",
        _table(
            ["item", "per incident", "unit", "USD per 1,000 incidents"],
            [[x.item, f"{x.quantity:g}", x.unit, f"{x.usd_per_1000:.5f}"] for x in lines]
            + [["**total**", "", "", f"**{total_cost:.4f}**"]],
        ),
        "",
        f"Fixed: the reconciler's idle pass every minute costs about **${fixed_monthly:.3f} per month** "
        "(Scheduler, Lambda, its empty queries). Not included: delivery of the messages to their endpoints "
        "(email is $2.00 per 100,000 and SMS is priced per country; any engine pays those), and free tiers.",
        "",
        _cost_text(ops, lines, total_cost),
        "",
        _alert_cost_text(ops),
        "",
        "Prices (us-east-1, on-demand list prices, recorded "
        + cost.PRICES_DATE
        + " from AWS's public pricing "
        "pages as last published to us; this machine cannot reach them, so re-check before relying on them):",
        "",
        _table(["price", "USD"], [[k, f"{v:.10f}".rstrip("0")] for k, v in cost.PRICES.items()]),
        "",
        "## 7. Scale of the safety net",
        "",
        *_scale_section(safety),
        "",
        *([alerts.section(alert_path)] if alert_path else []),
    ]
    if schedule_bench is not None:
        parts.append(schedules.section(schedule_bench, _table))
    return "\n".join(parts)


def _lateness_section(runs: list[LatenessRun], paced: LatenessRun | None) -> list[str]:
    """Section 4: every run, flat out and paced, each with the machine's load; never only the best."""
    first = runs[0]
    flat_p99 = [percentile(r.all_lateness(), 0.99) for r in runs]
    paced_p99 = percentile(paced.all_lateness(), 0.99) if paced else None
    flat_met = all(p <= 1500 for p in flat_p99)
    verdict = [
        f"Targets: p99 at most 1.5 s in each of {len(runs)} consecutive flat-out runs, "
        + ("**met** " if flat_met else "**missed** ")
        + "(p99 "
        + ", ".join(f"{p:.0f}" for p in flat_p99)
        + " ms)"
        + (
            f"; p99 at most 1 s paced, {'**met**' if paced_p99 <= 1000 else '**missed**'} "
            f"(p99 {paced_p99:.0f} ms)."
            if paced_p99 is not None
            else "."
        )
    ]
    if not flat_met or (paced_p99 is not None and paced_p99 > 1000):
        before = runs[0].load[0]  # the machine before any benchmark stack ran: its other work
        cores = os.cpu_count() or 1
        if before > cores:
            verdict.append(
                "Where a target is missed, compare the load column: this machine was busy with other work "
                "before the first run, and the stack's processes (emulators, containers, workers) share its "
                "cores; the timers wait for them, not for the engine."
            )
        rates = [r.throughput for r in runs]
        slower = _same_work_slower(runs)
        if slower:
            verdict.append(slower)
        elif len(runs) > 1 and rates[-1] < 0.9 * rates[0]:
            verdict.append(
                "The flat-out runs, each on a fresh stack, created fewer incidents a second one after another ("
                + ", ".join(f"{r:.1f}" for r in rates)
                + "/s) and their p99 rose with it: the same code on the same machine; the CPU table below shows "
                "whether each incident cost more CPU or the processes got less of the machine."
            )
        if paced is not None and paced.rate_per_second and paced.throughput < 0.95 * paced.rate_per_second:
            verdict.append(
                f"The paced run could create only {paced.throughput:.1f} incidents/s of the "
                f"{paced.rate_per_second:g}/s it was sent (flat out: "
                + ", ".join(f"{r.throughput:.1f}" for r in runs)
                + "/s): the local stack's capacity on this machine was below the paced rate, so its requests "
                "queued as in a flat-out run. See the CPU table: the stack's processes share this machine's "
                f"{os.cpu_count()} cores, where on AWS each service and each Lambda container has its own."
            )
        for label, r in [(f"run {n}", r) for n, r in enumerate(runs, 1)] + [("the paced run", paced)]:
            if r is not None and percentile(r.all_lateness(), 0.99) > (1000 if r is paced else 1500):
                reason = _timer_path_reason(r)
                if reason:
                    verdict.append(f"In {label}, {reason}")
    return [
        "## 4. Escalation lateness on the local stack",
        "",
        "`make run`'s stack in its own processes (two emulators, one answering DynamoDB and one the rest; "
        "API containers; LOCAL_WORKERS escalation workers long-polling the timer queue). Incidents with a two-level policy (level 0 at "
        f"once, level 1 after {LEVEL1_DELAY_MINUTES} min) are created over HTTP: flat out by 4 client threads "
        f"({len(runs)} consecutive runs, each on a fresh stack; the first took {first.create_seconds:.1f} s, "
        f"**{first.throughput:.1f} incidents/s**), then paced. Every page is taken from an SQS queue subscribed "
        "to the notifications topic; lateness = the time SNS delivered it (the message's `SentTimestamp`) minus "
        "the level's due time (`scheduled_at`). Every run is shown, with the machine's 1-minute load average "
        "before and after it.",
        "",
        _table(
            [
                "run",
                "created/s",
                "level 0 p50 / p99 / max (ms)",
                "level 1 p50 / p99 / max (ms)",
                "all p99 (ms)",
                "pages expected",
                "delivered",
                "lost",
                "doubled",
                "load before / after",
            ],
            [
                [
                    r.label,
                    f"{r.throughput:.1f}",
                    _lat(r.lateness_ms.get(0, [])),
                    _lat(r.lateness_ms.get(1, [])),
                    f"{percentile(r.all_lateness(), 0.99):.0f}",
                    r.pages_expected,
                    r.pages_delivered,
                    r.lost,
                    r.doubled,
                    f"{r.load[0]:.1f} / {r.load[1]:.1f}",
                ]
                for r in [*runs, *([paced] if paced else [])]
            ],
        ),
        "",
        *verdict,
        "",
        *_cpu_table([*runs, *([paced] if paced else [])]),
        *_timer_path_table([*runs, *([paced] if paced else [])]),
        "What was done about level 1's lateness (a level-1 timer is an SQS message delayed to its due "
        "time), each step found with the workers' trace and the CPU table: a worker's init runs when the "
        "stack starts (the worker's provisioned-environment path, functions/escalation_worker/app.py), "
        "not in its first batch while the load runs; each of the LOCAL_WORKERS takes LOCAL_WORKER_BATCH "
        "(1) timer per receive, because a worker that received ten fired them one after another while "
        "the others sat idle (Lambda adds concurrent invocations for such a backlog; the local stack has "
        "a fixed set), and there are 8 of them, not 6: the first seconds of a flat-out run create "
        "incidents fastest (no fire competes yet), and their timers, due together six seconds later, "
        "came faster than six workers took them (the backlog grew for eight seconds; when this was "
        "changed, p99 1.2 and 1.6 s in two runs with six, 0.5 to 0.7 s in three with eight); the emulator "
        "wakes a long poll when a delayed message becomes visible "
        "(`prompt_long_polls`), reads the clock once per receive (`one_clock_read_per_scan`), writes "
        "DynamoDB results without moto's shape walk (`plain_dynamodb_results`), lists a handler's methods "
        "once (`cached_action_names`) and signs SNS deliveries with one certificate "
        "(`one_signing_certificate`); a container claims a busy credential's rate-limit requests in "
        "blocks; and DynamoDB is answered by an emulator process of its own (`AWS_PORT` + 1; "
        "`AWS_ENDPOINT_URL_DYNAMODB` for the functions, as botocore names it), so the two halves of the "
        "emulated AWS run on two cores; and an index query no longer sorts the whole table first "
        "(`fast_queries`): the reconciler's pass, a few index queries, took 1.4 to 2.8 s with a thousand "
        "incidents stored and held every other DynamoDB call for that long once a minute (the paced "
        "run's late pages), and 0.1 to 0.25 s after (LOCAL_SCHEDULER_TRACE=1, when this was changed).",
        "",
    ]


def _timer_path_table(runs: list[LatenessRun]) -> list[str]:
    """Where each run's level-1 timers spent their lateness, from the workers' trace."""
    traced = [(r, r.timer_path) for r in runs if r.timer_path and r.timer_path.fire]
    if not traced:
        return []
    return [
        "Where level 1's lateness went, per timer, from the workers' trace (LOCAL_WORKER_TRACE=1, which "
        "the benchmark turns on): *rounding*, how late SQS delivers a timer by design (delays are whole "
        "seconds counted from when the create sent it, so one sent 5.9 s before its due time arrives 0.1 s "
        "after it); *waiting*, how much later still a worker received it (every worker busy firing "
        "others, or the emulator slow to answer); *fire*, how long the worker then took to handle it (its "
        "five AWS calls, the page's publish among them). p50 / p99 in ms:",
        "",
        _table(
            ["run", "timers traced", "rounding", "waiting for a worker", "fire"],
            [
                [
                    r.label,
                    len(path.fire),
                    _p50_p99(path.rounding),
                    _p50_p99(path.waiting),
                    _p50_p99(path.fire),
                ]
                for r, path in traced
            ],
        ),
        "",
    ]


def _p50_p99(values: list[float]) -> str:
    return f"{percentile(values, 0.5):.0f} / {percentile(values, 0.99):.0f}"


def _timer_path_reason(run: LatenessRun) -> str | None:
    """Why a run's level-1 timers were late: the part of their path whose p99 was largest."""
    path = run.timer_path
    if path is None or not path.fire:
        return None
    parts = {"rounding": path.rounding, "waiting": path.waiting, "fire": path.fire}
    p99 = {k: percentile(v, 0.99) for k, v in parts.items()}
    busy = f"the machine {run.machine_busy:.0%} busy" if run.machine_busy else "the machine's load unmeasured"
    worst = max(p99, key=lambda k: p99[k])
    if worst == "waiting":
        fire_p50 = percentile(path.fire, 0.5)
        workers = len(path.workers)
        capacity = workers * 1000 / fire_p50 if fire_p50 else float("inf")
        peak = path.peak_due_per_second()
        why = (
            f"up to {peak} timers came due in one second while its {workers} workers, at the fire's p50, "
            f"could fire {capacity:.0f} a second: the timers queued for a free worker"
            if peak > capacity
            else f"no more than {peak} timers came due in a second, under what its {workers} workers could "
            f"fire at the fire's p50 ({capacity:.0f} a second): the wait was the receive's own, a call to the "
            "emulator that queued for a core among the stack's processes (the CPU table shows which held them)"
        )
        return (
            f"level 1's timers waited up to {p99['waiting']:.0f} ms (p99) to be received after SQS made "
            f"them visible, each fire taking {fire_p50:.0f} ms (p50; p99 {p99['fire']:.0f} ms) with {busy}: "
            f"{why}. On AWS, Lambda adds concurrent invocations for such a backlog and DynamoDB, SQS and "
            "SNS do not share a machine with them; on this machine the stack's CPU per incident (the CPU "
            "table) is what would have to fall."
        )
    if worst == "fire":
        return (
            f"level 1's fires themselves took up to {p99['fire']:.0f} ms (p99) with {busy}: their AWS calls, "
            "answered by the emulators that the creates kept busy too (the CPU table)."
        )
    return (
        f"SQS's whole-second delays made level 1's timers up to {p99['rounding']:.0f} ms late (p99): a delay "
        "is counted from the timer's send, which the create makes after its own calls, and rounded up."
    )


def _same_work_slower(runs: list[LatenessRun]) -> str | None:
    """A flat-out run whose every process spent at least a fifth more CPU per incident than the
    fastest run's did on the same work: the machine ran the same code slower, not the engine."""
    kinds = ("emulator: DynamoDB", "emulator: the rest", "api and alarm containers", "escalation workers")
    if len(runs) < 2 or not all(k in r.cpu_seconds for r in runs for k in kinds):
        return None
    best = max(runs, key=lambda r: r.throughput)
    found = []
    for n, r in enumerate(runs, 1):
        ratios = [r.cpu_seconds[k] / r.incidents / (best.cpu_seconds[k] / best.incidents) for k in kinds]
        if min(ratios) >= 1.2:
            found.append(f"run {n} ({min(ratios):.2f}x to {max(ratios):.2f}x, {r.throughput:.1f}/s)")
    if not found:
        return None
    return (
        "Each incident of "
        + ", ".join(found)
        + f" cost more CPU than in the fastest run ({best.throughput:.1f}/s) in every process alike, the "
        "emulators' and the engine's code: the same work on the same code, so the machine ran it slower "
        "(a shared virtual machine; its host's load is not visible from here), and that run's capacity "
        "and lateness went with it. The other runs show what the stack does on this machine."
    )


def _cpu_table(runs: list[LatenessRun]) -> list[str]:
    """Where each run's CPU went, per 1,000 incidents: which process was the limit."""
    kinds = sorted(
        {kind for r in runs for kind in r.cpu_seconds},
        key=lambda k: -sum(r.cpu_seconds.get(k, 0) for r in runs),
    )
    if not kinds:
        return []
    return [
        "CPU used during each run (from creating the first incident to the last page delivered), in "
        "core-seconds per 1,000 incidents by process, and the share of the machine's "
        f"{os.cpu_count()} cores busy (everything on it):",
        "",
        _table(
            ["run", *kinds, "machine busy"],
            [
                [
                    r.label,
                    *(f"{r.cpu_seconds.get(k, 0.0) * 1000 / r.incidents:.0f}" for k in kinds),
                    f"{r.machine_busy:.0%}",
                ]
                for r in runs
            ],
        ),
        "",
    ]


def _scale_section(safety: ScaleResult) -> list[str]:
    kinds = safety.items_by_kind
    read = ", ".join(
        f"{what} {kinds.get(key, 0)}"
        for key, what in (
            ("DUE", "incident timers (DUE#)"),
            ("HBDUE", "heartbeat timers (HBDUE#)"),
            ("MWDUE", "maintenance edges (MWDUE#)"),
            ("PENDING", "pending outbox rows (PENDING#)"),
            ("items", "the due items themselves"),
        )
    )
    return [
        f"{safety.stored:,} escalating incidents and {safety.heartbeats:,} heartbeats written to moto (in "
        f"{safety.seed_seconds:.0f} s), {safety.overdue} incidents and {safety.heartbeats_overdue} heartbeats "
        f"with their timers overdue (lost); then one reconciler pass. It re-armed {safety.rearmed} in "
        f"{safety.calls} AWS calls, and its reads came to **{safety.items_read} items for "
        f"{safety.read_units:g} read units** for {safety.due} due: {read}. O(due), not O(stored): only "
        "items with an armed timer (or a pending outbox row) carry the sparse index keys, sorted by due time, "
        "and each kind is one query per shard that stops at the cutoff. The pass has no SLA or "
        "acknowledgement-timeout scan of its own: an unacknowledged level's timeout is its escalation timer "
        "(the DUE# entries above), and the SLA deadlines are computed from the incident when it is read. "
        f"Target: at most 2x the due count (an index entry and the item, each). "
        + ("Met." if safety.items_read <= 2 * safety.due else "**Missed.**"),
    ]


def _idle_pass_text(idle: OpCalls) -> str:
    """Why the reconciler's idle pass makes more calls than one per kind."""
    from incident_engine.store.models import SHARDS

    monthly = idle.read_units * 60 * 24 * 30
    return (
        f"The reconciler's pass with nothing to repair makes {idle.total} calls against a floor of "
        f"{idle.floor} ({idle.ratio:.2f}x): each kind's due index is split into {SHARDS} shards (the shard "
        "is part of the index key), so that no index partition takes every timer write of a busy account, "
        f"and a pass reads each shard with a query of its own: {idle.read_units:g} read units a pass, once "
        f"a minute, {monthly / 1e6:.2f} million read units a month (${monthly * cost.PRICES['dynamodb_read_unit']:.2f}). "
        "One unsharded index per kind would meet the floor and put every armed timer's write on one partition."
    )


def _by(ops: list[OpCalls], name: str) -> OpCalls:
    return next(o for o in ops if o.name == name)


def _alert_calls_text(ops: list[OpCalls]) -> str:
    alert_ops = [o for o in ops if o.group == "alert"]
    if not alert_ops:
        return ""
    worst = max(alert_ops, key=lambda o: o.ratio)
    repeats = [o for o in alert_ops if o.name.endswith("repeat")]
    pd_new = alert_ops[0]
    return (
        "Alerts: a repeat is one conditional write to the incident (its count, last-seen time, latest "
        "payload and the open run of repeats, shown on the timeline as one folded event) instead of a "
        "transaction with a timeline item; the run's folded event is written once, by the next change, in "
        f"that change's transaction. Repeats cost {min(o.write_units for o in repeats):g} to "
        f"{max(o.write_units for o in repeats):g} WRU and no index write (a transaction of 6 to 10 WRU "
        "before). The calls above the floor of a new "
        f"alert ({pd_new.total} against {pd_new.floor} for PagerDuty's) are: the credential's record apart from its service's, the "
        "routing-rules and maintenance-window queries, the dedup claim (a conditional put made before an "
        "incident number is drawn, so two racing alerts never both draw one), the day's id counter, the "
        "page's mark as sent (the outbox guarantee), the per-credential rate-limit write on the api paths "
        "that use it (one per block of up to ten requests), and two reads made twice (the service, and the dedup record read again by the "
        "create): reads cost a fifth of a write and were left as they are. "
        f"Worst ratio: {worst.name} ({worst.ratio:.2f}x its floor)."
    )


def _cost_text(ops: list[OpCalls], lines: list[cost.CostLine], total_cost: float) -> str:
    by_item = {x.item: x for x in lines}
    rest = by_item["API Gateway REST requests"]
    http_total = cost.with_http_api(lines)
    writes = by_item["DynamoDB writes"]
    index = by_item["DynamoDB index writes"]
    verdict = (
        "Met."
        if total_cost <= 0.03
        else (
            f"**Missed: ${total_cost:.4f}** (${total_cost - index.usd_per_1000:.4f} without the index "
            "writes). What is left is set by the guarantees and the fixed stack: the table writes are "
            f"{writes.quantity:g} WRU (${writes.usd_per_1000:.4f}) for four state changes, each one "
            "transaction of at least the incident and its timeline item (a transaction bills every item "
            "twice), plus one outbox row per page and its mark (so that a crash between publish and mark is "
            "repaired by publishing again with the same dedup id), the executed or cancelled escalation "
            "step, the day's id counter and the per-credential rate limit (claimed in blocks). The secondary indexes add "
            f"{index.quantity:g} WRU (${index.usd_per_1000:.4f}): an incident enters the list, status, "
            "severity, active and due indexes when created and moves in them as its status and timer change; "
            "each outbox row enters the pending index and leaves it when marked. API Gateway REST is "
            f"${rest.usd_per_1000:.4f}. Even an HTTP API would leave ${http_total:.4f}. Meeting $0.03 would "
            "take all of: an HTTP API; no status index (lists by status read the list index and filter); "
            "and the history of each change in the incident item's own version, as a change log of one "
            "conditional put per change with no transaction, which is a redesign of the store and of the "
            "list indexes built on it."
        )
    )
    return (
        "Before issue 11's storage changes the same lifecycle, measured this way, wrote 54 WRU to the table "
        "(create 20, level-1 fire 14, acknowledge 7, resolve 13) and 21 to the indexes: about $0.0655 per 1,000 "
        "with the index writes, $0.0524 without them (the $0.0487 published before billed updates by their "
        "key and left both the index writes and the per-credential rate limit out). What was cut, each "
        "measured with bench/calls.py and keeping every guarantee (docs/storage.md): one timeline item per "
        "change instead of one per event (the create wrote three, now one: -4 WRU); the outbox row's "
        "subject, text and attributes compressed into one value and its ids read from its key (a page was "
        "2.0 KB, now under 1 KB: -2 WRU in each paging transaction and -1 on its mark); the armed "
        "escalation step kept as the incident's cursor instead of a `pending` item rewritten when it fires "
        "(-2 WRU per arm); up to four rows marked sent one conditional update each instead of a "
        "transaction (-2 WRU for the resolve's two notices); and a repeated alert written as one "
        "conditional put of the incident instead of a transaction with a timeline item (section 1, the "
        "alert rows). Kept: every change is one transaction conditional on the incident's version and "
        "token, or one conditional put when it writes the incident alone; nothing is deleted; every page "
        "has its outbox row and its mark; the reconciler's indexes. "
        + verdict
        + "\n\n"
        + f"API Gateway: REST bills ${cost.PRICES['api_gateway_rest_request'] * 1e6:.2f} per million requests, "
        f"HTTP API ${cost.PRICES['api_gateway_http_request'] * 1e6:.2f}: {rest.quantity:g} requests per "
        f"incident cost ${rest.usd_per_1000:.4f} per 1,000 on REST, "
        f"${rest.quantity * cost.PRICES['api_gateway_http_request'] * 1000:.4f} on HTTP API, and the lifecycle "
        f"would total ${http_total:.4f}. The stack stays on REST for what template.yaml uses that an HTTP API "
        "lacks: `GatewayResponses` (API Gateway's own 401/403/429 answers in our JSON error shape with the "
        "security headers; an HTTP API's cannot be changed), X-Ray tracing of the stage (`TracingEnabled`), "
        "and the REST proxy event the api handler's `APIGatewayRestResolver` reads. Stage throttling and a "
        "cached Lambda authorizer exist on both; usage plans, API keys, request validators and resource "
        "policies exist only on REST but the template uses none of them."
    )


def _alert_cost_text(ops: list[OpCalls]) -> str:
    rows = cost.alerts_per_thousand(ops)
    if not rows:
        return ""
    return "\n".join(
        [
            "### Cost per 1,000 alerts, by ingest path",
            "",
            "From the `alert in` rows of section 1, at the prices below. What carries an alert to our "
            "function: PagerDuty `/v2/enqueue` is one REST request to the api function (the routing key is "
            "in the body, no authorizer); Alertmanager one REST request, the api function and the "
            "authorizer (counted on every alert: an upper bound, as its answer is cached for 60 s); "
            "CloudWatch via SNS the alarm's publish (one SNS request; SNS delivers to Lambda free) and the "
            "alarm_ingest function; CloudWatch via EventBridge the alarm_ingest function only (AWS service "
            f"events on the default bus are free). Our own code is assumed {cost.OUR_ALERT_MS:g} ms per alert "
            f"plus {cost.AWS_CALL_MS:g} ms per AWS call. A new alert's cost includes its level-0 page.",
            "",
            _table(
                ["path", "alert", *cost.ALERT_ITEMS, "USD per 1,000 alerts"],
                [
                    [r.path, r.kind, *(f"{r.lines[i]:.5f}" for i in cost.ALERT_ITEMS), f"**{r.total:.4f}**"]
                    for r in rows
                ],
            ),
        ]
    )
