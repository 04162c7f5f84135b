"""Builders for domain objects in unit tests."""

from __future__ import annotations

from datetime import UTC, datetime

from incident_engine.domain.engine import NewIncident, open_incident
from incident_engine.domain.model import Change
from incident_engine.domain.policy import Level, Policy, Repeat, Target
from incident_engine.domain.severity import Severity

T0 = datetime(2026, 11, 22, 7, 0, 0, tzinfo=UTC)
BASE = "https://api.example.com/v1"


def policy(*delays: float, repeat: Repeat | None = None, per_level: int = 1, **filters: object) -> Policy:
    levels = tuple(
        Level(d, tuple(Target("user", f"l{n}-{k}@example.com") for k in range(per_level)))
        for n, d in enumerate(delays)
    )
    return Policy(id="pol_1", name="Primary", levels=levels, repeat=repeat, created_at=T0, **filters)  # type: ignore[arg-type]


def opened(p: Policy | None, severity: Severity = Severity.P1, at: datetime = T0) -> Change:
    new = NewIncident(
        title="Checkout errors",
        severity=severity,
        description="5xx at 23%",
        service="checkout",
        team="payments",
    )
    return open_incident("INC-20261122-001", new, p, at, "alice", BASE)
