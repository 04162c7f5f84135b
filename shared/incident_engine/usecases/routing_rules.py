"""Routing rules: the stored, versioned rule documents, and the tester that stores nothing."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from incident_engine.domain.alerts import Alert, AlertAction, Integration
from incident_engine.domain.engine import NewIncident
from incident_engine.domain.errors import Conflict, NotFound
from incident_engine.domain.routing import RoutingResult, Rule, evaluate_rules
from incident_engine.usecases.ports import Clock, VersionConflict


@dataclass(frozen=True)
class StoredRule:
    rule: Rule  # its id is the store's
    version: int
    created_at: datetime
    updated_at: datetime


class RoutingRuleStore(Protocol):
    def create(self, stored: StoredRule) -> None: ...
    def replace(self, stored: StoredRule, expected_version: int) -> None: ...
    def get(self, rule_id: str) -> StoredRule | None: ...
    def list_all(self) -> list[StoredRule]: ...
    def enabled_rules(self) -> list[Rule]: ...


class RoutingRules:
    def __init__(self, store: RoutingRuleStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(self, rule: Rule) -> StoredRule:
        now = self._clock.now()
        stored = StoredRule(replace(rule, id=f"rule_{secrets.token_hex(6)}"), 1, now, now)
        self._store.create(stored)
        return stored

    def get(self, rule_id: str) -> StoredRule:
        stored = self._store.get(rule_id)
        if stored is None:
            raise NotFound(f"routing rule {rule_id} not found", id=rule_id)
        return stored

    def list_rules(self, include_disabled: bool) -> list[StoredRule]:
        rules = [s for s in self._store.list_all() if include_disabled or s.rule.enabled]
        return sorted(rules, key=lambda s: (-s.rule.priority, s.rule.name, s.rule.id or ""))

    def replace_rule(self, rule_id: str, rule: Rule, expected_version: int | None = None) -> StoredRule:
        current = self.get(rule_id)
        if expected_version is not None and expected_version != current.version:
            raise Conflict(
                f"routing rule {rule_id} is at version {current.version}", id=rule_id, version=current.version
            )
        stored = StoredRule(
            replace(rule, id=rule_id), current.version + 1, current.created_at, self._clock.now()
        )
        self._write(stored, current.version)
        return stored

    def disable(self, rule_id: str) -> StoredRule:
        """DELETE keeps the rule, disabled, so past timelines still name a rule that exists."""
        current = self.get(rule_id)
        if not current.rule.enabled:
            return current
        stored = replace(
            current,
            rule=replace(current.rule, enabled=False),
            version=current.version + 1,
            updated_at=self._clock.now(),
        )
        self._write(stored, current.version)
        return stored

    def test(self, alert: Alert) -> RoutingResult:
        """What the stored rules would do to ``alert``; nothing is written."""
        return evaluate_rules(self._store.enabled_rules(), alert)

    def route_api_create(self, new: NewIncident, policy_id: str | None) -> tuple[NewIncident, str | None]:
        """An incident a person opens runs through the same rules as an alert: a rule's severity,
        labels, assignees, runbooks and suppression apply; its policy unless the request names one."""
        alert = Alert(
            integration=Integration.API,
            action=AlertAction.TRIGGER,
            dedup_key=new.dedup_key or "",
            summary=new.title,
            source=new.source or "",
            severity=new.severity,
            service=new.service,
            team=new.team,
            description=new.description,
            labels=dict(new.labels),
        )
        result = self.test(alert)
        if not result.matches:
            return new, policy_id
        routed = replace(
            new,
            severity=result.severity or new.severity,
            labels=dict(result.labels),
            suppressed=result.suppressed,
            suppress_reasons=result.suppress_reasons,
            assignees=result.assignees,
            runbooks=tuple(
                {"url": r.url, "title": r.title, "checklist": list(r.checklist)} for r in result.runbooks
            ),
            routing_matches=tuple(m.timeline_data() for m in result.matches),
            notify=tuple(t.to_dict() for t in result.notify),
        )
        return routed, policy_id or result.policy_id

    def _write(self, stored: StoredRule, expected_version: int) -> None:
        try:
            self._store.replace(stored, expected_version)
        except VersionConflict:
            raise Conflict(
                f"routing rule {stored.rule.id} changed while this request ran; try again", id=stored.rule.id
            ) from None
