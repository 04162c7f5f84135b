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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from incident_engine.domain.alerts import MAX_DEPTH, Alert, AlertAction, Integration
from incident_engine.domain.policy import Target
from incident_engine.domain.severity import Severity

MAX_CONDITIONS = 20
MAX_ACTIONS = 20
MAX_IN_VALUES = 100
MAX_PATTERN_LENGTH = 512
MAX_PROGRAM_SIZE = 1000  # RE2's measure of a compiled pattern; keeps the worst match ~0.1 s
MAX_MATCH_INPUT = 16 * 1024  # characters of a field a condition looks at
MAX_DETAIL_PATH = 10
MAX_SAMPLE_NODES = 10_000  # values in a tester's sample custom_details

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

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]
HttpUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$")]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00-\x1f\x7f]*$")]
# Strict scalars: "5" stays a string and true stays a boolean; nothing is coerced into a match.
Scalar = Annotated[StrictStr, StringConstraints(max_length=1024)] | StrictInt | StrictFloat | StrictBool


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- conditions -------------------------------------------------------------------------------------


class Condition(_Doc):
    field: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    operator: Operator
    value: Scalar | Annotated[list[Scalar], Field(max_length=MAX_IN_VALUES)]

    @field_validator("field")
    @classmethod
    def _known_field(cls, name: str) -> str:
        if name in TEXT_FIELDS:
            return name
        head, _, rest = name.partition(".")
        if head == "labels" and rest:
            return name
        if head == "custom_details" and rest:
            steps = rest.split(".")
            if len(steps) <= MAX_DETAIL_PATH and all(steps):
                return name
        raise ValueError(
            "must be one of " + ", ".join(TEXT_FIELDS) + ", labels.<key> or custom_details.<path>"
        )

    @field_validator("value")
    @classmethod
    def _value_fits_operator(cls, value: Any, info: ValidationInfo) -> Any:
        operator = info.data.get("operator")
        if operator is None:  # the operator itself was invalid, and is reported as such
            return value
        listed = isinstance(value, list)
        if operator in ("in", "not_in"):
            if not listed:
                raise ValueError(f"{operator} needs a list of values")
        elif listed:
            raise ValueError(f"{operator} needs a single value, not a list")
        if operator in ("greater_than", "less_than") and not _is_number(value):
            raise ValueError(f"{operator} needs a number")
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if listed else [value])):
            raise ValueError("numbers must be finite")
        if operator == "matches":
            if not isinstance(value, str):
                raise ValueError("matches needs a pattern (a string)")
            compile_pattern(value)  # raises ValueError with RE2's reason
        return value

    def holds(self, alert: Alert) -> bool:
        actual = field_value(alert, self.field)
        if self.operator in NEGATIONS:
            return not _holds(NEGATIONS[self.operator], actual, self.value)
        return _holds(self.operator, actual, self.value)


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
        number = _number(actual)
        if number is None:
            return False
        return number > float(expected) if operator == "greater_than" else number < float(expected)
    if operator == "matches":
        if isinstance(actual, dict):
            return False
        return compile_pattern(expected).search(_text(actual)[:MAX_MATCH_INPUT]) is not None
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


# --- actions ----------------------------------------------------------------------------------------


class SetPolicy(_Doc):
    type: Literal["set_policy"]
    policy_id: Name


class Assign(_Doc):
    type: Literal["assign"]
    users: Annotated[list[Email], Field(min_length=1, max_length=20)]


class AddLabels(_Doc):
    type: Literal["add_labels"]
    labels: Annotated[dict[LabelKey, LabelValue], Field(min_length=1, max_length=50)]


class SetSeverity(_Doc):
    type: Literal["set_severity"]
    severity: Severity


class UserTarget(_Doc):
    type: Literal["user"]
    email: Email


class WebhookTarget(_Doc):
    type: Literal["webhook"]
    url: HttpUrl


NotifyTarget = Annotated[UserTarget | WebhookTarget, Field(discriminator="type")]


class Notify(_Doc):
    type: Literal["notify"]
    targets: Annotated[list[NotifyTarget], Field(min_length=1, max_length=10)]


class Suppress(_Doc):
    type: Literal["suppress"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class AttachRunbook(_Doc):
    type: Literal["attach_runbook"]
    url: HttpUrl
    title: Annotated[str, StringConstraints(max_length=200)] | None = None
    checklist: Annotated[
        list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]],
        Field(max_length=50),
    ] = Field(default_factory=list)


RuleAction = Annotated[
    SetPolicy | Assign | AddLabels | SetSeverity | Notify | Suppress | AttachRunbook,
    Field(discriminator="type"),
]


class RoutingRule(_Doc):
    """A rule document as stored and as ``POST /routing-rules`` takes it (``id`` is the store's)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    name: Name
    priority: StrictInt = Field(default=0, ge=0, le=10_000, description="Higher runs first")
    enabled: StrictBool = True
    conditions: Annotated[list[Condition], Field(max_length=MAX_CONDITIONS)] = Field(default_factory=list)
    actions: Annotated[list[RuleAction], Field(min_length=1, max_length=MAX_ACTIONS)]
    stop: StrictBool = False

    def matches(self, alert: Alert) -> bool:
        return all(condition.holds(alert) for condition in self.conditions)


def parse_rule(document: object) -> RoutingRule:
    """A rule from JSON-shaped data; pydantic's ValidationError names the field when invalid."""
    return RoutingRule.model_validate(document)


class SampleAlert(_Doc):
    """An alert as ``POST /routing-rules/test`` takes it: the fields rules can read."""

    summary: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
    description: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    source: Annotated[str, StringConstraints(max_length=1024)] = ""
    severity: Severity | None = None
    service: Name | None = None
    team: Name | None = None
    labels: Annotated[dict[LabelKey, LabelValue], Field(max_length=64)] = Field(default_factory=dict)
    custom_details: dict[str, Any] = Field(default_factory=dict)

    @field_validator("custom_details")
    @classmethod
    def _bounded(cls, details: dict[str, Any]) -> dict[str, Any]:
        # Walked without recursion, so a hostile depth cannot exhaust the stack of the check.
        stack: list[tuple[Any, int]] = [(details, 0)]
        seen = 0
        while stack:
            node, depth = stack.pop()
            seen += 1
            if depth > MAX_DEPTH or seen > MAX_SAMPLE_NODES:
                raise ValueError(
                    f"is too large or nested too deeply (depth {MAX_DEPTH}, {MAX_SAMPLE_NODES} values)"
                )
            if isinstance(node, dict):
                stack.extend((child, depth + 1) for child in node.values())
            elif isinstance(node, list):
                stack.extend((child, depth + 1) for child in node)
        return details

    def to_alert(self) -> Alert:
        return Alert(
            integration=Integration.API,
            action=AlertAction.TRIGGER,
            dedup_key="routing-test",
            summary=self.summary,
            source=self.source,
            severity=self.severity,
            service=self.service,
            team=self.team,
            description=self.description,
            labels=dict(self.labels),
            custom_details=dict(self.custom_details),
        )


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


def ordered(rules: Sequence[RoutingRule]) -> list[RoutingRule]:
    """Enabled rules in the order they run: highest priority first, then by name and id."""
    enabled = [r for r in rules if r.enabled]
    return sorted(enabled, key=lambda r: (-r.priority, r.name, r.id or ""))


def evaluate_rules(rules: Sequence[RoutingRule], alert: Alert) -> RoutingResult:
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
                notify.update(dict.fromkeys(_target(t) for t in action.targets))
            elif isinstance(action, AttachRunbook):
                runbooks[Runbook(action.url, action.title, tuple(action.checklist))] = None
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


def _target(target: UserTarget | WebhookTarget) -> Target:
    return Target("user", target.email) if isinstance(target, UserTarget) else Target("webhook", target.url)
