"""RoutingRuleRepository: routing rules in the config table (RULE / <rule id>)."""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from incident_engine.domain.routing import Rule
from incident_engine.domain.routing_documents import parse_rule, rule_document
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import RoutingRuleItem
from incident_engine.usecases.ports import VersionConflict
from incident_engine.usecases.routing_rules import StoredRule

RULE = "RULE"


class RoutingRuleRepository:
    def create(self, stored: StoredRule) -> None:
        self._save(stored, RoutingRuleItem.pk.does_not_exist())

    def replace(self, stored: StoredRule, expected_version: int) -> None:
        self._save(stored, RoutingRuleItem.version == expected_version)

    def get(self, rule_id: str) -> StoredRule | None:
        try:
            return self._to_stored(RoutingRuleItem.get(RULE, rule_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list_all(self) -> list[StoredRule]:
        return [self._to_stored(i) for i in RoutingRuleItem.query(RULE, consistent_read=True)]

    def enabled_rules(self) -> list[Rule]:
        return [s.rule for s in self.list_all() if s.rule.enabled]

    def _save(self, stored: StoredRule, condition: object) -> None:
        rule = stored.rule
        assert rule.id is not None
        item = RoutingRuleItem(
            RULE,
            rule.id,
            name=rule.name,
            body=rule_document(rule),
            enabled=rule.enabled,
            created_at=to_key(stored.created_at),
            updated_at=to_key(stored.updated_at),
            version=stored.version,
        )
        try:
            item.save(condition=condition)  # type: ignore[arg-type]
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise VersionConflict(rule.id) from exc
            raise

    @staticmethod
    def _to_stored(item: RoutingRuleItem) -> StoredRule:
        return StoredRule(
            rule=parse_rule(item.body),
            version=int(item.version),
            created_at=parse_iso(item.created_at),
            updated_at=parse_iso(item.updated_at),
        )
