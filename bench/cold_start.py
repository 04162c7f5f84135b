"""Cold start: a fresh interpreter importing each handler and building its module-level objects.

Measured under the Lambda runtime's Python (3.13) with only the runtime's libraries (the
dependencies layer) installed, our code copied fresh so it compiles as it does on Lambda's
read-only filesystem. The baseline is a fresh interpreter that only imports boto3.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = {
    "api": "functions.api.app",
    "authorizer": "functions.authorizer.app",
    "escalation_worker": "functions.escalation_worker.app",
    "reconciler": "functions.reconciler.app",
}
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


@dataclass(frozen=True)
class ColdStart:
    name: str
    process_ms: float  # median wall time of the whole fresh interpreter
    import_ms: float  # median time inside the interpreter for the import alone

    def ratio(self, baseline: ColdStart) -> float:
        return self.process_ms / baseline.process_ms


def _code_copy(python: str) -> Path:
    """Our code as Lambda gets it: the layer built by shared/Makefile (source plus bytecode checked
    by hash), the handler folders as plain source on a read-only filesystem (never cached)."""
    target = Path(tempfile.mkdtemp(prefix="coldstart-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "functions", target / "functions", ignore=ignore)
    subprocess.run(
        [
            "make",
            "-s",
            "-C",
            str(ROOT / "shared"),
            "build-EngineLayer",
            f"PYTHON={python}",
            f"ARTIFACTS_DIR={target / 'layer'}",
        ],
        check=True,
        capture_output=True,
    )
    return target


def _env(code: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update(
        {
            "PYTHONPATH": f"{code / 'layer' / 'python'}:{code}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "x",
            "POWERTOOLS_SERVICE_NAME": "incident-engine",
            "POWERTOOLS_METRICS_NAMESPACE": "IncidentEngine",
            "INCIDENTS_TABLE": "t",
            "CONFIG_TABLE": "c",
            "TIMER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/1/q",
            "NOTIFICATIONS_TOPIC_ARN": "arn:aws:sns:x",
        }
    )
    return env


def _one(python: str, module: str, env: dict[str, str], cwd: Path) -> tuple[float, float]:
    started = time.perf_counter()
    out = subprocess.run(
        [python, "-c", PROBE.format(module=module)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return (time.perf_counter() - started) * 1000, float(out.stdout.strip()) * 1000


def measure(python: str, runs: int = 7) -> tuple[ColdStart, list[ColdStart]]:
    code = _code_copy(python)
    try:
        env = _env(code)
        subprocess.run(
            [python, "-c", "import boto3, pydantic, pynamodb, aws_lambda_powertools"],
            env=env,
            cwd=code,
            check=True,
            capture_output=True,
        )  # page the libraries into the OS cache first

        def median_of(module: str) -> ColdStart:
            samples = [_one(python, module, env, code) for _ in range(runs)]
            return ColdStart(
                module, statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)
            )

        baseline = median_of("boto3")
        return baseline, [
            ColdStart(name, *(lambda c: (c.process_ms, c.import_ms))(median_of(module)))
            for name, module in HANDLERS.items()
        ]
    finally:
        shutil.rmtree(code, ignore_errors=True)


def heaviest_imports(python: str, module: str = HANDLERS["api"], top: int = 6) -> list[tuple[str, float]]:
    """Packages by the import time spent in their own modules (-X importtime self time), heaviest first."""
    code = _code_copy(python)
    try:
        out = subprocess.run(
            [python, "-X", "importtime", "-c", f"import {module}"],
            env=_env(code),
            cwd=code,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        shutil.rmtree(code, ignore_errors=True)
    totals: dict[str, float] = {}
    for line in out.stderr.splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if found:
            package = found.group(2).split(".")[0]
            totals[package] = totals.get(package, 0.0) + int(found.group(1)) / 1000
    return sorted(totals.items(), key=lambda kv: -kv[1])[:top]
