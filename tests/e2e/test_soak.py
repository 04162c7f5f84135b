"""A short soak (tests/soak.py; `make soak` is the long one): load at a steady rate while the
escalation worker is killed and restarted; nothing lost, nothing doubled, every level in bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import PASSES_ALLOWED, Figures, passes_missed, reconciler_passes, soak

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-soak.log"


@pytest.mark.timeout(600)
def test_a_short_soak_with_the_worker_killed_loses_and_doubles_nothing() -> None:
    lines: list[str] = []
    figures = soak(seconds=40, rate=2, kill_every=10, log=LOG, progress=lines.append, progress_every=10)
    print(figures.report())
    assert figures.kills >= 3 and figures.incidents >= 20, figures.report()
    assert figures.ok, figures.report()
    # make soak is minutes long: it said what it was doing as it went, not only at the end
    assert lines[0].startswith("soak: starting the local stack")
    assert sum(1 for line in lines if "/40 s:" in line) >= 3, lines
    assert lines[-1].startswith("soak: load done; waiting for the")
    assert figures.verdict() == "soak: PASS (0 lost, 0 doubled, 0 fired after an ack, 0 beyond the bound)"


def test_the_verdict_names_every_kind_of_failure() -> None:
    figures = Figures(kills=2, lost=["a", "b"], late=["c"])
    assert figures.verdict() == "soak: FAIL (2 lost, 1 beyond the bound)"
    assert Figures().verdict() == "soak: FAIL (the worker was never killed)"


def test_lateness_is_counted_in_reconciler_passes_not_seconds(tmp_path: Path) -> None:
    # Given a stack log with three traced passes, one of them starting before the level's grace ended
    log = tmp_path / "stack.log"
    log.write_text(
        "[api] GET /health -> 200\n"
        "[reconciler] pass 100.000 101.500\n"
        "[reconciler] pass 105.000 107.000\n"
        "[reconciler] pass 110.000 130.000\n"
    )
    passes = reconciler_passes(log)
    assert passes == [(100.0, 101.5), (105.0, 107.0), (110.0, 130.0)]
    # When a level became repairable at 104 s: a pass still running when it fired does not count
    assert passes_missed(passes, repairable_at=104.0, executed_at=120.0) == 1
    # and a level that outlived every pass after its grace missed them all
    assert passes_missed(passes, repairable_at=104.0, executed_at=131.0) == 2 < PASSES_ALLOWED
    assert passes_missed(passes, repairable_at=99.0, executed_at=131.0) == PASSES_ALLOWED
