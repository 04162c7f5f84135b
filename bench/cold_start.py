"""Cold start: a fresh interpreter importing each handler from the built artifact.

What is measured is what is deployed: the artifact `sam build` makes (built the same way by
local/build.py, for this machine's architecture), each function's folder first on the path, then its
layers merged as /opt/python, then the standard library and nothing else, under Python 3.13 with
-I -S -B (isolated, no site-packages, nothing written back: Lambda's /opt is read-only). The
baseline is the same interpreter importing only boto3, from the same layer. Each handler is also
measured with the layers' bytecode removed, which is what every cold start paid before the
dependencies layer shipped it.
"""

from __future__ import annotations

import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from local.build import Artifact, BuiltFunction, build
from local.invoke import lambda_environment

HANDLERS = {
    "api": "ApiFunction",
    "authorizer": "AuthorizerFunction",
    "escalation_worker": "EscalationWorkerFunction",
    "reconciler": "ReconcilerFunction",
}
PROBE = (
    "import sys, time; sys.path[:0] = {paths!r}; "
    "t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
)
# Module-level code reads these (service name, namespace); the resources are never called.
VARIABLES = {
    "POWERTOOLS_SERVICE_NAME": "incident-engine",
    "POWERTOOLS_METRICS_NAMESPACE": "IncidentEngine",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "INCIDENTS_TABLE": "t",
    "CONFIG_TABLE": "c",
    "TIMER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
    "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:us-east-1:1:n",
}


API_FIRST_REQUEST = "api + the routers of POST /incidents"
FIRST_REQUEST = "from incident_engine.api.app import ROUTERS; ROUTERS.include_for('/incidents')"


@dataclass(frozen=True)
class ColdStart:
    name: str
    process_ms: float  # median wall time of the whole fresh interpreter
    import_ms: float  # median time inside the interpreter for the import alone
    no_bytecode_ms: float | None = None  # process median with the layers' bytecode removed

    def ratio(self, baseline: ColdStart) -> float:
        return self.process_ms / baseline.process_ms


def _paths(fn: BuiltFunction, opt: Path) -> list[str]:
    version = "python3.13"
    return [str(fn.task), str(opt / "lib" / version / "site-packages"), str(opt)]


def _one(artifact: Artifact, fn: BuiltFunction, opt: Path, module: str) -> tuple[float, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [artifact.python, "-I", "-S", "-B", "-c", PROBE.format(paths=_paths(fn, opt), module=module)],
        env=lambda_environment(fn, VARIABLES, "us-east-1"),
        cwd=fn.task,
        capture_output=True,
        text=True,
        check=True,
    )
    return (time.perf_counter() - started) * 1000, float(out.stdout.strip()) * 1000


def _without_bytecode(opt: Path, into: Path) -> Path:
    """A copy of /opt with every __pycache__ left out (hard links: instant)."""
    target = into / "python"

    def link(src: str, dst: str) -> None:
        try:
            Path(dst).hardlink_to(src)
        except OSError:  # another filesystem
            shutil.copy2(src, dst)

    shutil.copytree(opt, target, ignore=shutil.ignore_patterns("__pycache__"), copy_function=link)
    return target


def _artifact(python: str) -> Artifact:
    """The built artifact, found (or built) once per run: finding it hashes every input file."""
    if python not in _ARTIFACTS:
        _ARTIFACTS[python] = build(python)
    return _ARTIFACTS[python]


_ARTIFACTS: dict[str, Artifact] = {}


def measure(python: str, runs: int = 7, without_bytecode: bool = True) -> tuple[ColdStart, list[ColdStart]]:
    artifact = _artifact(python)
    api = artifact.functions[HANDLERS["api"]]
    _one(artifact, api, api.opt, "boto3, pydantic, pynamodb, aws_lambda_powertools")  # warm the OS cache
    # Every probe as (function, its /opt, the module imported); rounds take one sample of each in
    # turn, so that the machine's state drifting over the minute this takes (another process
    # starting, the CPU's clock) shifts the baseline and the handlers alike, not a ratio.
    probes: dict[str, tuple[BuiltFunction, Path, str]] = {"boto3": (api, api.opt, "boto3")}
    with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
        for name, logical_id in HANDLERS.items():
            fn = artifact.functions[logical_id]
            module = fn.handler.rpartition(".")[0]
            probes[name] = (fn, fn.opt, module)
            if without_bytecode:
                probes[f"{name} without bytecode"] = (fn, _without_bytecode(fn.opt, Path(tmp) / name), module)
        # Not a target, shown beside it: the api's import plus what its first request then loads (the
        # routers its path needs, with them the engine, PynamoDB and botocore); a cold request pays both.
        probes[API_FIRST_REQUEST] = (api, api.opt, f"{api.handler.rpartition('.')[0]}; {FIRST_REQUEST}")
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in probes}
        for _ in range(runs):
            for name, (fn, opt, module) in probes.items():
                samples[name].append(_one(artifact, fn, opt, module))

    def median(name: str) -> tuple[float, float]:
        return statistics.median(s[0] for s in samples[name]), statistics.median(s[1] for s in samples[name])

    baseline = ColdStart("boto3", *median("boto3"))
    starts = []
    for name in HANDLERS:
        no_bytecode = median(f"{name} without bytecode")[0] if without_bytecode else None
        starts.append(ColdStart(name, *median(name), no_bytecode))
    starts.append(ColdStart(API_FIRST_REQUEST, *median(API_FIRST_REQUEST)))
    return baseline, starts


def heaviest_imports(python: str, name: str = "api", top: int = 6) -> list[tuple[str, float]]:
    """Packages by the import time spent in their own modules (-X importtime self time), heaviest first."""
    artifact = _artifact(python)
    fn = artifact.functions[HANDLERS[name]]
    module = fn.handler.rpartition(".")[0]
    code = f"import sys; sys.path[:0] = {_paths(fn, fn.opt)!r}; import {module}"
    out = subprocess.run(
        [artifact.python, "-I", "-S", "-B", "-X", "importtime", "-c", code],
        env=lambda_environment(fn, VARIABLES, "us-east-1"),
        cwd=fn.task,
        capture_output=True,
        text=True,
        check=True,
    )
    totals: dict[str, float] = {}
    for line in out.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if found:
            package = found.group(2).split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(found.group(1)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]
