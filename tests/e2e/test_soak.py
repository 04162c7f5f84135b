"""A short soak (tests/soak.py; `make soak` is the long one): load at a steady rate while the
escalation worker is killed and restarted; nothing lost, nothing doubled, every level in bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import Figures, soak

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
