"""Schemathesis against the served OpenAPI document, through the local gateway, every check on.

    python -m tests.fuzz.run [--examples N] [--seed S] [--url http://127.0.0.1:3000 --token T]

Without --url it starts the local stack (local/process.py) on free ports and stops it after. It
creates one service first (its integration key is the credential of /v2/enqueue and
/integrations/alertmanager), runs `st run --checks all` with tests/fuzz/schemathesis.toml and
tests/fuzz/hooks.py, and prints the figures: requests, answers by status class, 5xx, and every
distinct failure. Exit status 0 only with no failure and no 5xx. `make fuzz` is the long run;
tests/e2e/test_schemathesis.py the bounded one.
"""

from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TOKEN = "fuzz-admin-token"
PROGRESS_SECONDS = 30.0  # how often make fuzz says how far it is


@dataclass
class Figures:
    requests: int = 0
    by_class: collections.Counter[str] = field(default_factory=collections.Counter)
    server_errors: list[str] = field(default_factory=list)
    failures: dict[tuple[str, str, str], str] = field(
        default_factory=dict
    )  # (operation, code, title) -> example
    errors: list[str] = field(default_factory=list)  # operations schemathesis could not test
    elapsed: float = 0.0
    exit_code: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures and not self.server_errors and not self.errors and self.requests > 0

    def verdict(self) -> str:
        """The one line a reader looks for last: PASS, or FAIL and why."""
        figures = (
            f"{self.requests} requests, {len(self.server_errors)} 5xx, {len(self.failures)} distinct "
            f"failures, {len(self.errors)} operations not tested"
        )
        return f"fuzz: {'PASS' if self.ok else 'FAIL'} ({figures})"

    def report(self) -> str:
        classes = ", ".join(f"{k}: {v}" for k, v in sorted(self.by_class.items()))
        lines = [
            f"schemathesis: {self.requests} requests in {self.elapsed:.0f} s ({classes}); "
            f"5xx: {len(self.server_errors)}; distinct failures: {len(self.failures)}; "
            f"errors: {len(self.errors)}",
        ]
        lines += [f"  error: {line}" for line in self.errors[:20]]
        lines += [f"  5xx: {line}" for line in self.server_errors[:20]]
        for (operation, code, title), example in self.failures.items():
            lines.append(f"  {code} {operation}: {title}\n      {example}")
        return "\n".join(lines)


def read_report(path: Path) -> Figures:
    """The figures of one run from its NDJSON event stream."""
    figures = Figures()
    for line in path.read_text().splitlines():
        event = json.loads(line)
        error = event.get("NonFatalError") or event.get("FatalError")
        if error:
            value = error.get("value") or {}
            message = str(value.get("message", value)).replace("\n", " | ")[:300]
            figures.errors.append(f"{error.get('label', '-')} ({error.get('phase', '-')}): {message}")
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        interactions = recorder.get("interactions") or {}
        for interaction in interactions.values():
            response = interaction.get("response")
            if not response:
                continue
            figures.requests += 1
            status = int(response["status_code"])
            figures.by_class[f"{status // 100}xx"] += 1
            if status >= 500:
                request = interaction["request"]
                figures.server_errors.append(f"{request['method']} {request['uri'][:200]} -> {status}")
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if check["status"] != "failure":
                    continue
                failure = check["failure_info"]["failure"]
                key = (failure["operation"], failure["code"], failure["title"])
                if key in figures.failures:
                    continue
                interaction = interactions.get(case_id) or {}
                request, response = interaction.get("request") or {}, interaction.get("response") or {}
                content = (response.get("content") or {}).get("$base64")
                body = base64.b64decode(content)[:300].decode("utf-8", "replace") if content else ""
                message = failure["message"].replace("\n", " | ")[:300]
                figures.failures[key] = (
                    f"{message}\n      {request.get('method')} {str(request.get('uri'))[:300]} -> "
                    f"{response.get('status_code')} {body}"
                )
    return figures


def prepare(call: Any) -> dict[str, str]:
    """What the run needs from the API: a service and its integration key."""
    status, service = call("POST", "/services", {"name": "fuzz target", "default_severity": "P4"})
    assert status == 201, service
    key = service["integration_key"]
    return {"FUZZ_ROUTING_KEY": key, "FUZZ_INTEGRATION_KEY": key}


def run_streaming(
    command: list[str], env: dict[str, str], echo: Callable[[str], None] | None
) -> tuple[int, str]:
    """Run ``command``, handing each line of its output to ``echo`` as it comes (a long run shows
    its progress); returns the exit status and the whole output."""
    lines: list[str] = []
    with subprocess.Popen(  # noqa: S603 - our own venv's programs
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if echo is not None:
                echo(line.rstrip("\n"))
    return process.returncode, "".join(lines)


ANSWER = re.compile(rb'"status_code":\s*(\d{3})')


class ReportProgress:
    """Answers counted in schemathesis's NDJSON report as it grows: its own output shows a phase
    only when the phase ends, and the coverage phase alone runs for many minutes."""

    def __init__(self, report: Path) -> None:
        self.report = report
        self.offset = 0
        self.answers: collections.Counter[str] = collections.Counter()

    def line(self) -> str:
        try:
            with self.report.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            chunk = b""
        complete = chunk[: chunk.rfind(b"\n") + 1]  # the line being written is read next time
        self.offset += len(complete)
        for status in ANSWER.findall(complete):
            self.answers[f"{status.decode()[0]}xx"] += 1
        by_class = ", ".join(f"{k}: {v}" for k, v in sorted(self.answers.items())) or "none yet"
        return f"fuzz: {sum(self.answers.values())} answers so far ({by_class})"


def run_schemathesis(
    url: str,
    token: str,
    env: dict[str, str],
    examples: int,
    seed: int,
    workers: int,
    report_dir: Path,
    echo: Callable[[str], None] | None = None,
) -> Figures:
    report = report_dir / "schemathesis.ndjson"
    command = [
        str(Path(sys.executable).parent / "st"),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--max-examples",
        str(examples),
        "--seed",
        str(seed),
        "--workers",
        str(workers),
        "--request-timeout",
        "60",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        "--no-color",
    ]
    started = time.monotonic()
    done = threading.Event()
    if echo is not None:
        progress = ReportProgress(report)

        def report_progress() -> None:
            while not done.wait(PROGRESS_SECONDS):
                echo(progress.line())

        threading.Thread(target=report_progress, daemon=True).start()
    try:
        returncode, output = run_streaming(
            command,
            {**os.environ, **env, "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks", "PYTHONPATH": str(ROOT)},
            echo,
        )
    finally:
        done.set()
    (report_dir / "schemathesis.txt").write_text(output)
    figures = read_report(report) if report.exists() else Figures()
    figures.elapsed = time.monotonic() - started
    figures.exit_code = returncode
    if returncode not in (0, 1) or not report.exists():
        raise RuntimeError(f"schemathesis did not run (exit {returncode}):\n{output[-5000:]}")
    return figures


@contextmanager
def local_stack(log: Path) -> Iterator[Any]:
    from local.process import LocalStackProcess

    with LocalStackProcess(TOKEN, log, {"RECONCILE_SECONDS": "5", "LOCAL_SNS_TAP": "0"}) as stack:
        yield stack


def fuzz(
    examples: int,
    seed: int,
    workers: int,
    report_dir: Path,
    url: str | None = None,
    token: str = "",
    echo: Callable[[str], None] | None = None,
) -> Figures:
    """``echo`` (make fuzz: print) gets what the run is doing, schemathesis's own output included."""
    report_dir.mkdir(parents=True, exist_ok=True)
    say = echo or (lambda line: None)
    started = f"fuzz: schemathesis --checks all, {examples} examples per operation, seed {seed}"
    if url:
        from local.process import LocalStackProcess

        client = LocalStackProcess.__new__(LocalStackProcess)  # only its HTTP client, against `url`
        client.url, client.token = url, token
        env = prepare(client.call)
        say(f"{started}, against {url} ...")
        return run_schemathesis(url, token, env, examples, seed, workers, report_dir, echo)
    log = report_dir / "stack.log"
    say(f"fuzz: starting the local stack (its log: {log}) ...")
    with local_stack(log) as stack:
        env = prepare(stack.call)
        say(f"{started} ...")
        figures = run_schemathesis(stack.url, stack.token, env, examples, seed, workers, report_dir, echo)
    for line in log.read_text().splitlines():
        if "Traceback" in line or "unhandled error" in line:
            figures.server_errors.append(f"stack log: {line[:200]}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and phase")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--url", help="an API already running (make run); default: start one")
    parser.add_argument("--token", default=os.environ.get("API_TOKEN", ""), help="its admin token")
    parser.add_argument("--report-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    report_dir = args.report_dir or Path(tempfile.mkdtemp(prefix="fuzz-"))
    figures = fuzz(
        args.examples,
        args.seed,
        args.workers,
        report_dir,
        args.url,
        args.token,
        echo=lambda line: print(line, flush=True),
    )
    print(figures.report())
    print(f"seed {args.seed}; reports in {report_dir}")
    print(figures.verdict(), flush=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
