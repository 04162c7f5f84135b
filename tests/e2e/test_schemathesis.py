"""Schemathesis against the served OpenAPI document, through the local gateway, every check on.

Bounded for CI (a few examples per operation; the coverage phase's boundary cases are all sent):
no 5xx, and `--checks all` with the custom check in tests/fuzz/hooks.py reports no failure.
`make fuzz` is the long run of the same (tests/fuzz/run.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.run import fuzz

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
