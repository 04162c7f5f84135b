"""Routing rules: conditions on an ``Alert``, actions that shape the incident it opens.

A rule is ``{name, priority, enabled, conditions: [{field, operator, value}], actions: [...], stop}``
(the user guide's routing section). All conditions of a rule must hold; a rule without conditions
matches everything. Enabled rules run highest priority first (ties by name, then id); a matching
rule with ``stop`` ends the evaluation. Conditions always read the alert as it arrived, never what
an earlier rule changed, so a rule's match does not depend on the rules around it.

How actions combine:
- single values (``set_policy``, ``set_severity``): the highest-priority rule that sets one wins;
- ``add_labels``: merged onto the alert's labels, the higher-priority rule winning a key;
- ``assign``, ``notify``, ``attach_runbook``: accumulated in rule order, duplicates dropped
  (``notify`` targets are paged once, outside the escalation policy);
- ``suppress``: any matching rule suppresses (the incident is recorded, nobody is paged).

Operators and missing fields: ``equals``, ``contains``, ``in``, ``greater_than``, ``less_than`` and
``matches`` never hold on a field the alert lacks; their negations always do. Comparisons are
case-sensitive (``matches`` takes ``(?i)``); numbers compare as numbers when both sides are numeric.
``matches`` uses RE2, whose matching time is linear in the input, so a user's pattern cannot hang
the function; patterns are further bounded in length and compiled program size.

This module is plain dataclasses, so evaluating rules costs no pydantic import in a handler that
only ingests alarms; ``routing_documents`` validates the documents users send and turns them
into these rules.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from incident_engine.domain.alerts import Alert
from incident_engine.domain.policy import Target
from incident_engine.domain.severity import Severity

MAX_CONDITIONS = 20
MAX_ACTIONS = 20
MAX_IN_VALUES = 100
MAX_PATTERN_LENGTH = 512
MAX_PROGRAM_SIZE = 1000  # RE2's measure of a compiled pattern; keeps the worst match ~0.1 s
MAX_MATCH_INPUT = 16 * 1024  # characters of a field a condition looks at
MAX_DETAIL_PATH = 10

TEXT_FIELDS = ("summary", "title", "description", "source", "severity", "service", "team")
Operator = Literal[
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
NEGATIONS: dict[str, str] = {"not_equals": "equals", "not_contains": "contains", "not_in": "in"}


@dataclass(frozen=True)
class Condition:
    field: str
    operator: Operator
    value: Any  # a scalar, or a list for in / not_in

    def holds(self, alert: Alert) -> bool:
        actual = field_value(alert, self.field)
        if self.operator in NEGATIONS:
            return not _holds(NEGATIONS[self.operator], actual, self.value)
        return _holds(self.operator, actual, self.value)


@dataclass(frozen=True)
class SetPolicy:
    policy_id: str
    type: Literal["set_policy"] = "set_policy"


@dataclass(frozen=True)
class Assign:
    users: tuple[str, ...]
    type: Literal["assign"] = "assign"


@dataclass(frozen=True)
class AddLabels:
    labels: Mapping[str, str]
    type: Literal["add_labels"] = "add_labels"


@dataclass(frozen=True)
class SetSeverity:
    severity: Severity
    type: Literal["set_severity"] = "set_severity"


@dataclass(frozen=True)
class Notify:
    targets: tuple[Target, ...]
    type: Literal["notify"] = "notify"


@dataclass(frozen=True)
class Suppress:
    reason: str | None = None
    type: Literal["suppress"] = "suppress"


@dataclass(frozen=True)
class AttachRunbook:
    url: str
    title: str | None = None
    checklist: tuple[str, ...] = ()
    type: Literal["attach_runbook"] = "attach_runbook"


RuleAction = SetPolicy | Assign | AddLabels | SetSeverity | Notify | Suppress | AttachRunbook


@dataclass(frozen=True)
class Rule:
    """A validated routing rule (``routing_documents.parse_rule`` makes one from a document)."""

    name: str
    actions: tuple[RuleAction, ...]
    conditions: tuple[Condition, ...] = ()
    priority: int = 0
    enabled: bool = True
    stop: bool = False
    id: str | None = None

    def matches(self, alert: Alert) -> bool:
        return all(condition.holds(alert) for condition in self.conditions)


_MISSING = object()


def field_value(alert: Alert, name: str) -> Any:
    """What a condition's field reads on an alert; ``_MISSING`` when the alert has no such value."""
    simple: dict[str, Any] = {
        "summary": alert.summary or None,
        "title": alert.summary or None,
        "description": alert.description,
        "source": alert.source or None,
        "severity": alert.severity.value if alert.severity else None,
        "service": alert.service,
        "team": alert.team,
    }
    if name in simple:
        return _MISSING if simple[name] is None else simple[name]
    head, _, rest = name.partition(".")
    if head == "labels":
        return alert.labels.get(rest, _MISSING)
    node: Any = alert.custom_details
    for step in rest.split("."):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return _MISSING
    return _MISSING if node is None else node


def _holds(operator: str, actual: Any, expected: Any) -> bool:
    if actual is _MISSING:
        return False
    if isinstance(actual, list) and operator != "contains":
        # A list field (in custom details) holds when any of its items does.
        return any(_holds(operator, item, expected) for item in actual[:MAX_IN_VALUES])
    if operator == "equals":
        return _same(actual, expected)
    if operator == "in":
        return any(_same(actual, v) for v in expected)
    if operator == "contains":
        if isinstance(actual, list):
            return any(_same(item, expected) for item in actual)
        if isinstance(actual, dict):
            return _text(expected) in actual
        return _text(expected) in _text(actual)
    if operator in ("greater_than", "less_than"):
        number, limit = _number(actual), _number(expected)
        if number is None or limit is None:
            return False
        return number > limit if operator == "greater_than" else number < limit
    if operator == "matches":
        if isinstance(actual, dict) or not isinstance(expected, str):
            return False
        try:
            pattern = compile_pattern(expected)
        except ValueError:
            # A stored rule whose pattern no longer compiles matches nothing; it must not stop
            # every other rule, or the alert itself, from going through.
            return False
        return pattern.search(_text(actual)[:MAX_MATCH_INPUT]) is not None
    raise AssertionError(operator)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(value: object) -> float | None:
    """A number, or a string that spells one (labels are strings: "cpu": "93.5")."""
    if _is_number(value):
        number = float(value)  # type: ignore[arg-type]
    elif isinstance(value, str) and 0 < len(value) <= 64:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(actual, dict | list):
        return False
    if _is_number(expected) and (number := _number(actual)) is not None:
        return number == float(expected)
    return _text(actual) == _text(expected)


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """A user's pattern compiled by RE2, or ValueError saying why it is refused."""
    # Imported here so that only rules that use `matches` pay for loading the extension.
    import re2

    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(f"pattern is too long (maximum is {MAX_PATTERN_LENGTH} characters)")
    options = re2.Options()
    options.log_errors = False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as bad:
        reason = (
            bad.args[0].decode("utf-8", "replace") if bad.args and isinstance(bad.args[0], bytes) else bad
        )
        raise ValueError(f"pattern is not valid RE2 syntax: {reason}") from None
    if compiled.programsize > MAX_PROGRAM_SIZE:
        raise ValueError("pattern is too complex; simplify its repetitions")
    return compiled


# --- evaluation -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runbook:
    url: str
    title: str | None
    checklist: tuple[str, ...]


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched, as the incident's timeline records it."""

    rule_id: str | None
    rule_name: str
    priority: int
    actions: tuple[str, ...]
    stopped: bool  # this rule's ``stop`` ended the evaluation

    def timeline_data(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "priority": self.priority,
            "actions": list(self.actions),
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class RoutingResult:
    """Which rules matched, in order, and the incident fields they produce."""

    matches: tuple[RuleMatch, ...]
    severity: Severity | None  # the alert's unless a rule set one; None leaves it to the use case
    policy_id: str | None
    labels: dict[str, str]  # the alert's labels with the rules' added
    assignees: tuple[str, ...]
    notify: tuple[Target, ...]
    runbooks: tuple[Runbook, ...]
    suppressed: bool
    suppress_reasons: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        """The tester's answer (``POST /routing-rules/test``) and the API's view."""
        return {
            "matches": [m.timeline_data() for m in self.matches],
            "incident": {
                "severity": self.severity.value if self.severity else None,
                "policy_id": self.policy_id,
                "labels": dict(self.labels),
                "assignees": list(self.assignees),
                "notify": [t.to_dict() for t in self.notify],
                "runbooks": [
                    {"url": r.url, "title": r.title, "checklist": list(r.checklist)} for r in self.runbooks
                ],
                "suppressed": self.suppressed,
                "suppress_reasons": list(self.suppress_reasons),
            },
        }


def ordered(rules: Sequence[Rule]) -> list[Rule]:
    """Enabled rules in the order they run: highest priority first, then by name and id."""
    enabled = [r for r in rules if r.enabled]
    return sorted(enabled, key=lambda r: (-r.priority, r.name, r.id or ""))


def evaluate_rules(rules: Sequence[Rule], alert: Alert) -> RoutingResult:
    matches: list[RuleMatch] = []
    severity: Severity | None = None
    policy_id: str | None = None
    added: dict[str, str] = {}
    assignees: dict[str, None] = {}  # dicts keep first-seen order and drop repeats
    notify: dict[Target, None] = {}
    runbooks: dict[Runbook, None] = {}
    reasons: list[str] = []
    suppressed = False
    for rule in ordered(rules):
        if not rule.matches(alert):
            continue
        for action in rule.actions:
            if isinstance(action, SetPolicy):
                policy_id = policy_id or action.policy_id
            elif isinstance(action, SetSeverity):
                severity = severity or action.severity
            elif isinstance(action, AddLabels):
                for key, value in action.labels.items():
                    added.setdefault(key, value)
            elif isinstance(action, Assign):
                assignees.update(dict.fromkeys(action.users))
            elif isinstance(action, Notify):
                notify.update(dict.fromkeys(action.targets))
            elif isinstance(action, AttachRunbook):
                runbooks[Runbook(action.url, action.title, action.checklist)] = None
            else:
                suppressed = True
                reasons.append(action.reason or f"suppressed by rule {rule.name}")
        matches.append(
            RuleMatch(rule.id, rule.name, rule.priority, tuple(a.type for a in rule.actions), rule.stop)
        )
        if rule.stop:
            break
    return RoutingResult(
        matches=tuple(matches),
        severity=severity or alert.severity,
        policy_id=policy_id,
        labels={**alert.labels, **added},
        assignees=tuple(assignees),
        notify=tuple(notify),
        runbooks=tuple(runbooks),
        suppressed=suppressed,
        suppress_reasons=tuple(reasons),
    )
