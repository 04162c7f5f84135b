"""Schemathesis against the served OpenAPI document, through the local gateway, every check on.

Bounded for CI (a few examples per operation; the coverage phase's boundary cases are all sent):
no 5xx, and `--checks all` with the custom check in tests/fuzz/hooks.py reports no failure.
`make fuzz` is the long run of the same (tests/fuzz/run.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.fuzz.run import Figures, ReportProgress, fuzz, run_streaming

pytestmark = pytest.mark.e2e
REPORTS = Path(__file__).resolve().parents[2] / ".pytest_cache" / "schemathesis"
EXAMPLES = 3  # per operation and phase: CI's budget; `make fuzz` runs 200


@pytest.mark.timeout(1500)
def test_schemathesis_finds_no_server_error_and_no_failure() -> None:
    figures = fuzz(examples=EXAMPLES, seed=20261122, workers=2, report_dir=REPORTS)
    print(figures.report())
    assert figures.requests > 1000, figures.report()  # it really ran, every phase
    assert figures.server_errors == [], figures.report()
    assert figures.errors == [], figures.report()  # every operation could be tested
    assert figures.failures == {}, figures.report()


def test_make_fuzz_shows_its_progress_as_it_goes_and_ends_with_a_verdict(tmp_path: Path) -> None:
    # Given a command that prints a line, then goes on only once that line has been shown: it
    # waits on a pipe the echo writes to (select's 60 s is a hang guard, not a wait for time)
    pipe = tmp_path / "seen"
    os.mkfifo(pipe)
    script = (
        "import os, select\n"
        f"fd = os.open({str(pipe)!r}, os.O_RDWR)\n"
        "print('phase one', flush=True)\n"
        "shown, _, _ = select.select([fd], [], [], 60)\n"
        "print('phase two' if shown else 'never shown')\n"
    )
    seen: list[str] = []

    def echo(line: str) -> None:
        seen.append(line)
        if line == "phase one":
            with open(pipe, "w") as fh:
                fh.write("x")

    # When it runs, its lines reach the echo while it runs (not all at its end), and are kept
    code, output = run_streaming([sys.executable, "-c", script], {}, echo)
    assert (code, seen, output) == (0, ["phase one", "phase two"], "phase one\nphase two\n")
    # And the closing line says PASS or FAIL with the figures
    assert Figures(requests=10).verdict() == (
        "fuzz: PASS (10 requests, 0 5xx, 0 distinct failures, 0 operations not tested)"
    )
    failed = Figures(requests=10, server_errors=["GET /x -> 500"])
    assert failed.verdict() == "fuzz: FAIL (10 requests, 1 5xx, 0 distinct failures, 0 operations not tested)"
    assert Figures().verdict().startswith("fuzz: FAIL (0 requests")


def test_make_fuzz_counts_the_answers_of_its_report_as_it_grows(tmp_path: Path) -> None:
    # Given schemathesis's report with two answers written and a third being written
    report = tmp_path / "schemathesis.ndjson"
    progress = ReportProgress(report)
    assert progress.line() == "fuzz: 0 answers so far (none yet)"  # no report yet
    answer = '{"ScenarioFinished": {"response": {"status_code": %d}}}\n'
    report.write_text(answer % 200 + answer % 422 + '{"ScenarioFinished": {"response": {"status_code": 404')
    # When the progress is read, then again once that line is whole and a 503 follows
    first = progress.line()
    with report.open("a") as fh:
        fh.write("}}}\n" + answer % 503)
    second = progress.line()
    # Then only whole lines are counted, each once
    assert first == "fuzz: 2 answers so far (2xx: 1, 4xx: 1)"
    assert second == "fuzz: 4 answers so far (2xx: 1, 4xx: 2, 5xx: 1)"
