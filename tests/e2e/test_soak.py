"""A short soak (tests/soak.py; `make soak` is the long one): load at a steady rate while the
escalation worker is killed and restarted; nothing lost, nothing doubled, every level in bound."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.soak import soak

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-soak.log"


@pytest.mark.timeout(600)
def test_a_short_soak_with_the_worker_killed_loses_and_doubles_nothing() -> None:
    figures = soak(seconds=40, rate=2, kill_every=10, log=LOG)
    print(figures.report())
    assert figures.kills >= 3 and figures.incidents >= 20, figures.report()
    assert figures.ok, figures.report()
