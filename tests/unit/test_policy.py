from dataclasses import replace

from incident_engine.domain.policy import Policy, Repeat, select_policy
from incident_engine.domain.severity import Severity
from tests.unit.builders import T0, policy


def test_snapshot_round_trips() -> None:
    p = policy(0, 2.5, repeat=Repeat(2, 10), per_level=2)
    assert Policy.from_snapshot(p.snapshot()).snapshot() == p.snapshot()


def test_most_specific_matching_policy_wins_then_oldest() -> None:
    broad = replace(policy(0), id="broad", severities=(Severity.P0, Severity.P1))
    narrow = replace(policy(0), id="narrow", severities=(Severity.P1,), service="checkout")
    newer = replace(
        policy(0), id="newer", severities=(Severity.P1,), service="checkout", created_at=T0.replace(year=2027)
    )
    chosen = select_policy([newer, broad, narrow], Severity.P1, "checkout", None, None)
    assert chosen is not None and chosen.id == "narrow"


def test_default_applies_only_when_no_filtered_policy_matches() -> None:
    default = replace(policy(0), id="default")
    p0_only = replace(policy(0), id="p0", severities=(Severity.P0,))
    assert select_policy([default, p0_only], Severity.P0, None, None, "default").id == "p0"  # type: ignore[union-attr]
    assert select_policy([default, p0_only], Severity.P3, None, None, "default").id == "default"  # type: ignore[union-attr]


def test_disabled_policies_and_no_default_mean_no_policy() -> None:
    off = replace(policy(0), id="off", enabled=False, severities=(Severity.P1,))
    assert select_policy([off], Severity.P1, None, None, "off") is None
    assert select_policy([replace(policy(0), id="x")], Severity.P1, None, None, None) is None
