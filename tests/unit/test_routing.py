"""Routing rules: every operator and action, priority and stop, and the rule documents' bounds."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from incident_engine.adapters.sources import alertmanager
from incident_engine.domain.alerts import Alert, AlertAction, Integration
from incident_engine.domain.policy import Target
from incident_engine.domain.routing import (
    MAX_MATCH_INPUT,
    Condition,
    Rule,
    SetPolicy,
    Suppress,
    evaluate_rules,
    field_value,
)
from incident_engine.domain.routing_documents import SampleAlert, parse_rule, rule_document
from incident_engine.domain.severity import Severity
from tests.support import load_event
from tests.unit.hostile import json_values, mutated

ALERT = Alert(
    integration=Integration.ALERTMANAGER,
    action=AlertAction.TRIGGER,
    dedup_key="fp-1",
    summary="Disk full on db-1",
    source="db-1:9100",
    severity=Severity.P2,
    service="orders",
    team="storage",
    description="Only 2% left on /var/lib/postgresql",
    labels={"env": "prod", "cpu": "93.5", "region": "eu-west-1"},
    custom_details={"disk": {"free_pct": 2, "mounts": ["/", "/var"]}, "owner": "dba", "flag": True},
)


def rule(*conditions: dict[str, Any], name: str = "r", priority: int = 0, **extra: Any) -> Rule:
    actions = extra.pop("actions", [{"type": "add_labels", "labels": {"matched": name}}])
    return parse_rule(
        {"name": name, "priority": priority, "conditions": list(conditions), "actions": actions, **extra}
    )


def cond(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value}


def holds(field: str, operator: str, value: Any, alert: Alert = ALERT) -> bool:
    return bool(evaluate_rules([rule(cond(field, operator, value))], alert).matches)


# --- operators ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator", "value", "expected"),
    [
        ("severity", "equals", "P2", True),
        ("severity", "equals", "P1", False),
        ("title", "equals", "Disk full on db-1", True),
        ("summary", "equals", "disk full on db-1", False),  # case matters
        ("labels.cpu", "equals", 93.5, True),  # numbers compare as numbers
        ("custom_details.disk.free_pct", "equals", 2, True),
        ("custom_details.disk.free_pct", "equals", "2", True),
        ("custom_details.flag", "equals", True, True),
        ("service", "not_equals", "orders", False),
        ("service", "not_equals", "billing", True),
        ("labels.missing", "not_equals", "x", True),  # a missing field equals nothing
        ("labels.missing", "equals", "x", False),
        ("description", "contains", "postgresql", True),
        ("description", "contains", "mysql", False),
        ("custom_details.disk.mounts", "contains", "/var", True),
        ("custom_details.disk", "contains", "free_pct", True),
        ("source", "not_contains", "db-2", True),
        ("source", "not_contains", "db-1", False),
        ("labels.missing", "contains", "x", False),
        ("labels.missing", "not_contains", "x", True),
        ("labels.cpu", "greater_than", 90, True),
        ("labels.cpu", "greater_than", 95, False),
        ("custom_details.disk.free_pct", "less_than", 5, True),
        ("custom_details.disk.free_pct", "less_than", 1.5, False),
        ("labels.env", "greater_than", 1, False),  # not a number: never greater
        ("labels.missing", "less_than", 1, False),
        ("team", "in", ["storage", "network"], True),
        ("team", "in", ["network"], False),
        ("severity", "not_in", ["P0", "P1"], True),
        ("severity", "not_in", ["P2"], False),
        ("labels.missing", "not_in", ["x"], True),
        ("custom_details.disk.mounts", "in", ["/var", "/srv"], True),  # any item of a list
        ("summary", "matches", r"^Disk full on db-\d+$", True),
        ("summary", "matches", "(?i)DISK FULL", True),
        ("summary", "matches", "^full", False),
        ("custom_details.owner", "matches", "^db", True),
        ("labels.missing", "matches", ".*", False),
    ],
)
def test_operator(field: str, operator: str, value: Any, expected: bool) -> None:
    assert holds(field, operator, value) is expected


def test_every_field_reads_the_alert() -> None:
    assert field_value(ALERT, "summary") == field_value(ALERT, "title") == ALERT.summary
    for name in ("description", "source", "service", "team"):
        assert field_value(ALERT, name) == getattr(ALERT, name)
    assert field_value(ALERT, "severity") == "P2"
    assert field_value(ALERT, "labels.region") == "eu-west-1"
    assert field_value(ALERT, "custom_details.disk.mounts.1") == "/var"


def test_all_conditions_of_a_rule_must_hold() -> None:
    both = rule(cond("team", "equals", "storage"), cond("severity", "equals", "P2"))
    one_fails = rule(cond("team", "equals", "storage"), cond("severity", "equals", "P0"))
    assert evaluate_rules([both], ALERT).matches
    assert not evaluate_rules([one_fails], ALERT).matches


def test_a_rule_without_conditions_matches_everything() -> None:
    assert evaluate_rules([rule()], ALERT).matches


def test_a_hostile_pattern_cannot_hang_matching() -> None:
    # Given a pattern that takes a backtracking engine 2^n steps to fail on n characters
    evil = rule(cond("description", "matches", "^(a+)+$"))
    alert = replace(ALERT, description="a" * 10_000 + "!")
    # When it runs (with Python's re this would not return in our lifetime; pytest-timeout would fail it)
    result = evaluate_rules([evil], alert)
    # Then RE2 answers, correctly
    assert not result.matches


def test_a_rule_that_bypassed_validation_cannot_break_evaluation() -> None:
    # Given rules built directly (as a store might), one with a pattern RE2 refuses
    broken = Rule("broken", (Suppress(),), (Condition("summary", "matches", "(a)\\1"),), priority=2)
    odd = Rule("odd", (Suppress(),), (Condition("labels.cpu", "greater_than", "ninety"),), priority=1)
    fine = Rule("fine", (SetPolicy("pol_1"),))
    # When they run, the bad ones simply do not match, and the rest still do
    result = evaluate_rules([broken, odd, fine], ALERT)
    assert [m.rule_name for m in result.matches] == ["fine"] and not result.suppressed


def test_matches_reads_only_the_head_of_a_huge_field() -> None:
    alert = replace(ALERT, description="x" * MAX_MATCH_INPUT + "needle")
    assert not holds("description", "matches", "needle", alert)
    assert holds("description", "contains", "needle", alert)


# --- actions ----------------------------------------------------------------------------------------


def test_every_action_shapes_the_incident() -> None:
    # Given one matching rule with every kind of action
    everything = rule(
        actions=[
            {"type": "set_policy", "policy_id": "pol_db"},
            {"type": "assign", "users": ["dba@example.com"]},
            {"type": "add_labels", "labels": {"routed": "true", "env": "production"}},
            {"type": "set_severity", "severity": "P1"},
            {"type": "notify", "targets": [{"type": "webhook", "webhook_id": "wh_db_team"}]},
            {
                "type": "attach_runbook",
                "url": "https://runbooks.example.com/disk",
                "checklist": ["Free space"],
            },
        ]
    )
    # When it is evaluated
    result = evaluate_rules([everything], ALERT)
    # Then each action shows in the resulting incident fields
    assert result.policy_id == "pol_db"
    assert result.assignees == ("dba@example.com",)
    assert result.labels == {**ALERT.labels, "routed": "true", "env": "production"}
    assert result.severity is Severity.P1
    assert result.notify == (Target("webhook", "wh_db_team"),)
    assert [(r.url, r.checklist) for r in result.runbooks] == [
        ("https://runbooks.example.com/disk", ("Free space",))
    ]
    assert not result.suppressed
    assert result.matches[0].actions == tuple(a.type for a in everything.actions)


def test_suppress_is_recorded_with_its_reason() -> None:
    quiet = rule(actions=[{"type": "suppress", "reason": "maintenance of db-1"}])
    result = evaluate_rules([quiet], ALERT)
    assert result.suppressed and result.suppress_reasons == ("maintenance of db-1",)


def test_without_a_match_the_alert_passes_unchanged() -> None:
    result = evaluate_rules([rule(cond("team", "equals", "nobody"))], ALERT)
    assert result.matches == () and result.severity is ALERT.severity
    assert result.labels == dict(ALERT.labels) and result.policy_id is None and not result.suppressed


def test_notify_targets_and_assignees_are_paged_once() -> None:
    page = {"type": "notify", "targets": [{"type": "user", "email": "oncall@example.com"}]}
    assign = {"type": "assign", "users": ["a@example.com", "a@example.com"]}
    rules = [rule(name="a", actions=[page, assign]), rule(name="b", actions=[page, assign])]
    result = evaluate_rules(rules, ALERT)
    assert result.notify == (Target("user", "oncall@example.com"),)
    assert result.assignees == ("a@example.com",)


# --- order and stop ---------------------------------------------------------------------------------


def test_rules_run_highest_priority_first_and_it_wins_single_values() -> None:
    low = rule(name="low", priority=10, actions=[{"type": "set_severity", "severity": "P3"}])
    high = rule(name="high", priority=100, actions=[{"type": "set_severity", "severity": "P0"}])
    result = evaluate_rules([low, high], ALERT)
    assert [m.rule_name for m in result.matches] == ["high", "low"]
    assert result.severity is Severity.P0


def test_the_higher_priority_rule_wins_a_label() -> None:
    low = rule(name="low", priority=1, actions=[{"type": "add_labels", "labels": {"owner": "low"}}])
    high = rule(name="high", priority=2, actions=[{"type": "add_labels", "labels": {"owner": "high"}}])
    assert evaluate_rules([low, high], ALERT).labels["owner"] == "high"


def test_stop_ends_evaluation_after_its_rule() -> None:
    first = rule(name="first", priority=3, stop=True)
    second = rule(name="second", priority=2)
    result = evaluate_rules([second, first], ALERT)
    assert [m.rule_name for m in result.matches] == ["first"]
    assert result.matches[0].stopped


def test_a_stop_rule_that_does_not_match_stops_nothing() -> None:
    first = rule(cond("team", "equals", "nobody"), name="first", priority=3, stop=True)
    second = rule(name="second", priority=2)
    assert [m.rule_name for m in evaluate_rules([first, second], ALERT).matches] == ["second"]


def test_disabled_rules_do_not_run() -> None:
    assert evaluate_rules([rule(enabled=False)], ALERT).matches == ()


def test_conditions_read_the_alert_as_it_arrived() -> None:
    # A rule raising severity does not make a later rule on severity match.
    raise_it = rule(name="raise", priority=2, actions=[{"type": "set_severity", "severity": "P0"}])
    on_p0 = rule(cond("severity", "equals", "P0"), name="on_p0", priority=1)
    assert [m.rule_name for m in evaluate_rules([raise_it, on_p0], ALERT).matches] == ["raise"]


def test_ties_in_priority_run_in_name_order_whatever_the_input_order() -> None:
    rules = [rule(name=n, priority=5) for n in ("c", "a", "b")]
    assert [m.rule_name for m in evaluate_rules(rules, ALERT).matches] == ["a", "b", "c"]


def test_the_tester_explains_a_match() -> None:
    sample = SampleAlert.model_validate({"summary": "Disk full", "severity": "P1", "labels": {"env": "prod"}})
    result = evaluate_rules([rule(cond("labels.env", "equals", "prod"), name="prod")], sample.to_alert())
    answer = result.as_dict()
    assert answer["matches"][0]["rule_name"] == "prod"
    assert answer["incident"]["labels"] == {"env": "prod", "matched": "prod"}
    assert answer["incident"]["severity"] == "P1"


def test_rules_run_on_parsed_alerts_too() -> None:
    alerts = alertmanager.parse_webhook_payload(load_event("alertmanager_webhook_firing.json"))
    assert isinstance(alerts, tuple)
    on_instance = rule(cond("labels.instance", "matches", "7d9f"))
    assert [bool(evaluate_rules([on_instance], a).matches) for a in alerts] == [
        "7d9f" in a.labels["instance"] for a in alerts
    ]


# --- rule documents ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "where"),
    [
        ({"actions": []}, ("actions",)),
        ({"name": ""}, ("name",)),
        ({"priority": "5"}, ("priority",)),
        ({"priority": -1}, ("priority",)),
        ({"enabled": "yes"}, ("enabled",)),
        ({"surprise": 1}, ("surprise",)),
        ({"conditions": [cond("incident_type", "equals", "x")]}, ("conditions", 0, "field")),
        ({"conditions": [cond("labels.", "equals", "x")]}, ("conditions", 0, "field")),
        ({"conditions": [cond("custom_details.a..b", "equals", "x")]}, ("conditions", 0, "field")),
        ({"conditions": [cond("summary", "like", "x")]}, ("conditions", 0, "operator")),
        ({"conditions": [cond("summary", "in", "x")]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "equals", ["x"])]}, ("conditions", 0, "value")),
        ({"conditions": [cond("labels.cpu", "greater_than", "90")]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "matches", "(a)\\1")]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "matches", "(?=lookahead)")]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "matches", "x" * 600)]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "matches", "(a|b|c|d){400}")]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "equals", {"a": 1})]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "in", list(range(101)))]}, ("conditions", 0, "value")),
        ({"conditions": [cond("summary", "equals", "x")] * 21}, ("conditions",)),
        ({"actions": [{"type": "page_everyone"}]}, ("actions", 0)),
        (
            {"actions": [{"type": "set_severity", "severity": "P9"}]},
            ("actions", 0, "set_severity", "severity"),
        ),
        ({"actions": [{"type": "assign", "users": ["not an email"]}]}, ("actions", 0, "assign", "users", 0)),
        (
            {"actions": [{"type": "add_labels", "labels": {"k": "line\nbreak"}}]},
            ("actions", 0, "add_labels", "labels", "k"),
        ),
        (
            {"actions": [{"type": "attach_runbook", "url": "file:///etc/passwd"}]},
            ("actions", 0, "attach_runbook", "url"),
        ),
        (
            {"actions": [{"type": "notify", "targets": [{"type": "sms", "to": "1"}]}]},
            ("actions", 0, "notify", "targets", 0),
        ),
    ],
)
def test_invalid_rule_documents_name_the_field(document: dict[str, Any], where: tuple[Any, ...]) -> None:
    base = {"name": "r", "actions": [{"type": "suppress"}]}
    with pytest.raises(ValidationError) as caught:
        parse_rule(base | document)
    locations = [tuple(e["loc"]) for e in caught.value.errors()]
    assert any(loc[: len(where)] == where for loc in locations), locations


def test_a_rule_document_round_trips() -> None:
    document = {
        "id": "rule_1",
        "name": "Security incidents",
        "priority": 100,
        "enabled": True,
        "conditions": [cond("labels.team", "equals", "security"), cond("severity", "in", ["P0", "P1"])],
        "actions": [{"type": "notify", "targets": [{"type": "user", "email": "sec@example.com"}]}],
        "stop": True,
    }
    parsed = parse_rule(document)
    assert rule_document(parsed) == document
    assert parse_rule(rule_document(parsed)) == parsed


def test_every_action_round_trips() -> None:
    document = rule_document(parse_rule(FULL_RULE))
    assert parse_rule(document) == parse_rule(FULL_RULE)
    assert [a["type"] for a in document["actions"]] == [a["type"] for a in FULL_RULE["actions"]]


scalars = st.one_of(st.text(max_size=20), st.integers(), st.floats(allow_nan=False), st.booleans())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "summary",
            "severity",
            "labels.env",
            "labels.cpu",
            "custom_details.disk.free_pct",
            "custom_details.disk.mounts",
        ]
    ),
    st.sampled_from(
        [
            "equals",
            "not_equals",
            "contains",
            "not_contains",
            "greater_than",
            "less_than",
            "in",
            "not_in",
            "matches",
        ]
    ),
    st.one_of(scalars, st.lists(scalars, max_size=5)),
)
def test_any_valid_condition_evaluates_and_negations_are_exact(field: str, operator: str, value: Any) -> None:
    try:
        positive = rule(cond(field, operator, value))
    except ValidationError:
        return  # refused documents never reach evaluation
    negated = {"equals": "not_equals", "contains": "not_contains", "in": "not_in"}.get(operator)
    matched = bool(evaluate_rules([positive], ALERT).matches)
    if negated:
        assert bool(evaluate_rules([rule(cond(field, negated, value))], ALERT).matches) is not matched


FULL_RULE = {
    "id": "rule_1",
    "name": "everything",
    "priority": 50,
    "enabled": True,
    "conditions": [
        cond("summary", "matches", "(?i)disk"),
        cond("severity", "in", ["P0", "P1"]),
        cond("custom_details.disk.free_pct", "less_than", 5),
    ],
    "actions": [
        {"type": "set_policy", "policy_id": "pol_db"},
        {"type": "assign", "users": ["dba@example.com"]},
        {"type": "add_labels", "labels": {"routed": "true"}},
        {"type": "set_severity", "severity": "P1"},
        {"type": "notify", "targets": [{"type": "webhook", "webhook_id": "wh_db_team"}]},
        {"type": "suppress", "reason": "maintenance"},
        {"type": "attach_runbook", "url": "https://runbooks.example.com/disk", "checklist": ["Free space"]},
    ],
    "stop": True,
}


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_any_change_to_a_rule_document_is_a_rule_or_a_validation_error(data: st.DataObject) -> None:
    # POST /routing-rules must answer 422 for whatever it is sent, never fail inside validation.
    document = data.draw(mutated(FULL_RULE))
    try:
        parsed = parse_rule(document)
    except ValidationError as invalid:
        assert invalid.errors()
        return
    evaluate_rules([parsed], ALERT)  # and whatever validates, evaluates


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_is_a_sample_alert_or_a_validation_error(document: Any) -> None:
    try:
        sample = SampleAlert.model_validate(document)
    except ValidationError:
        return
    evaluate_rules([parse_rule(FULL_RULE)], sample.to_alert())


def test_a_sample_alert_nested_too_deeply_is_refused() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValidationError) as caught:
        SampleAlert.model_validate({"summary": "s", "custom_details": deep})
    assert caught.value.errors()[0]["loc"] == ("custom_details",)
