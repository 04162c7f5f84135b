"""Routing-rule documents as users send them (``POST /routing-rules``, ``/routing-rules/test``).

Pydantic validates every field with bounded sizes and strict scalars ("5" stays a string, true
stays a boolean) and names the culprit (``conditions.0.value``); ``parse_rule`` then returns the
plain ``routing.Rule`` that evaluation uses. ``rule_document`` is the way back, for storing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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

from incident_engine.domain import routing
from incident_engine.domain.alerts import MAX_DEPTH, Alert, AlertAction, Integration
from incident_engine.domain.policy import Target
from incident_engine.domain.routing import (
    MAX_ACTIONS,
    MAX_CONDITIONS,
    MAX_DETAIL_PATH,
    MAX_IN_VALUES,
    TEXT_FIELDS,
    Operator,
    Rule,
    compile_pattern,
)
from incident_engine.domain.severity import Severity
from incident_engine.domain.text import EMAIL_PATTERN

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN)]
HttpUrl = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2048, pattern=r"^https?://\S+$")]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
LabelValue = Annotated[str, StringConstraints(max_length=1024, pattern=r"^[^\x00-\x1f\x7f]*$")]
MAX_SAMPLE_NODES = 10_000  # values in a tester's sample custom_details

Scalar = Annotated[StrictStr, StringConstraints(max_length=1024)] | StrictInt | StrictFloat | StrictBool


class _Doc(BaseModel):
    # Built on first use: only the routing rules' routes and an alert with rules to run need them.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- conditions -------------------------------------------------------------------------------------


class ConditionDoc(_Doc):
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
        if operator in ("greater_than", "less_than") and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ValueError(f"{operator} needs a number")
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if listed else [value])):
            raise ValueError("numbers must be finite")
        if operator == "matches":
            if not isinstance(value, str):
                raise ValueError("matches needs a pattern (a string)")
            compile_pattern(value)  # raises ValueError with RE2's reason
        return value

    def to_condition(self) -> routing.Condition:
        value = tuple(self.value) if isinstance(self.value, list) else self.value
        return routing.Condition(self.field, self.operator, value)


# --- actions ----------------------------------------------------------------------------------------


class SetPolicyDoc(_Doc):
    type: Literal["set_policy"]
    policy_id: Name

    def to_action(self) -> routing.RuleAction:
        return routing.SetPolicy(self.policy_id)


class AssignDoc(_Doc):
    type: Literal["assign"]
    users: Annotated[list[Email], Field(min_length=1, max_length=20)]

    def to_action(self) -> routing.RuleAction:
        return routing.Assign(tuple(self.users))


class AddLabelsDoc(_Doc):
    type: Literal["add_labels"]
    labels: Annotated[dict[LabelKey, LabelValue], Field(min_length=1, max_length=50)]

    def to_action(self) -> routing.RuleAction:
        return routing.AddLabels(dict(self.labels))


class SetSeverityDoc(_Doc):
    type: Literal["set_severity"]
    severity: Severity

    def to_action(self) -> routing.RuleAction:
        return routing.SetSeverity(self.severity)


class UserTarget(_Doc):
    type: Literal["user"]
    email: Email


class WebhookTarget(_Doc):
    """A webhook registered with POST /webhooks (it carries its own URL and signing secret)."""

    type: Literal["webhook"]
    webhook_id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]


NotifyTarget = Annotated[UserTarget | WebhookTarget, Field(discriminator="type")]


class NotifyDoc(_Doc):
    type: Literal["notify"]
    targets: Annotated[list[NotifyTarget], Field(min_length=1, max_length=10)]

    def to_action(self) -> routing.RuleAction:
        return routing.Notify(
            tuple(
                Target("user", t.email) if isinstance(t, UserTarget) else Target("webhook", t.webhook_id)
                for t in self.targets
            )
        )


class SuppressDoc(_Doc):
    type: Literal["suppress"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None

    def to_action(self) -> routing.RuleAction:
        return routing.Suppress(self.reason)


class AttachRunbookDoc(_Doc):
    type: Literal["attach_runbook"]
    url: HttpUrl
    title: Annotated[str, StringConstraints(max_length=200)] | None = None
    checklist: Annotated[
        list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]],
        Field(max_length=50),
    ] = Field(default_factory=list)

    def to_action(self) -> routing.RuleAction:
        return routing.AttachRunbook(self.url, self.title, tuple(self.checklist))


ActionDoc = Annotated[
    SetPolicyDoc | AssignDoc | AddLabelsDoc | SetSeverityDoc | NotifyDoc | SuppressDoc | AttachRunbookDoc,
    Field(discriminator="type"),
]


class RuleDocument(_Doc):
    """A rule as ``POST /routing-rules`` takes it and the store keeps it (``id`` is the store's)."""

    id: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    name: Name
    priority: StrictInt = Field(default=0, ge=0, le=10_000, description="Higher runs first")
    enabled: StrictBool = True
    conditions: Annotated[list[ConditionDoc], Field(max_length=MAX_CONDITIONS)] = Field(default_factory=list)
    actions: Annotated[list[ActionDoc], Field(min_length=1, max_length=MAX_ACTIONS)]
    stop: StrictBool = False

    def to_rule(self) -> Rule:
        return Rule(
            name=self.name,
            actions=tuple(a.to_action() for a in self.actions),
            conditions=tuple(c.to_condition() for c in self.conditions),
            priority=self.priority,
            enabled=self.enabled,
            stop=self.stop,
            id=self.id,
        )


def parse_rule(document: object) -> Rule:
    """A rule from JSON-shaped data; pydantic's ValidationError names the field when invalid."""
    return RuleDocument.model_validate(document).to_rule()


def rule_document(rule: Rule) -> dict[str, Any]:
    """The JSON document of a rule, as stored and as the API shows it; ``parse_rule`` reads it back."""
    return {
        "id": rule.id,
        "name": rule.name,
        "priority": rule.priority,
        "enabled": rule.enabled,
        "conditions": [
            {
                "field": c.field,
                "operator": c.operator,
                "value": list(c.value) if isinstance(c.value, tuple) else c.value,
            }
            for c in rule.conditions
        ],
        "actions": [_action_document(a) for a in rule.actions],
        "stop": rule.stop,
    }


def _action_document(action: routing.RuleAction) -> dict[str, Any]:
    if isinstance(action, routing.SetPolicy):
        return {"type": action.type, "policy_id": action.policy_id}
    if isinstance(action, routing.Assign):
        return {"type": action.type, "users": list(action.users)}
    if isinstance(action, routing.AddLabels):
        return {"type": action.type, "labels": dict(action.labels)}
    if isinstance(action, routing.SetSeverity):
        return {"type": action.type, "severity": action.severity.value}
    if isinstance(action, routing.Notify):
        return {"type": action.type, "targets": [t.to_dict() for t in action.targets]}
    if isinstance(action, routing.Suppress):
        return {"type": action.type, "reason": action.reason}
    return {
        "type": action.type,
        "url": action.url,
        "title": action.title,
        "checklist": list(action.checklist),
    }


# --- the tester's sample ------------------------------------------------------------------------------


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
            if isinstance(node, Mapping):
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
