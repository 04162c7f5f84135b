"""PolicyRepository: escalation policies and the default-policy pointer, in the config table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.transactions import TransactWrite

from incident_engine.domain.policy import Policy
from incident_engine.domain.severity import Severity
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import ConfigItem, DefaultPolicyItem, PolicyItem
from incident_engine.usecases.ports import VersionConflict

POLICY = "POLICY"
DEFAULT = "#DEFAULT"  # sorts before every policy id


class PolicyRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    def create(self, policy: Policy, make_default: bool) -> None:
        self._write(policy, PolicyItem.pk.does_not_exist(), make_default, policy_was_default=False)

    def replace(self, policy: Policy, expected_version: int, make_default: bool | None) -> None:
        was_default = self.default_policy_id() == policy.id
        self._write(policy, PolicyItem.version == expected_version, make_default, was_default)

    def get(self, policy_id: str) -> Policy | None:
        try:
            return self._to_policy(PolicyItem.get(POLICY, policy_id, consistent_read=True))
        except DoesNotExist:
            return None

    def list_all(self, include_disabled: bool) -> list[Policy]:
        policies, _ = self.routing_view()
        return policies if include_disabled else [p for p in policies if p.enabled]

    def routing_view(self) -> tuple[list[Policy], str | None]:
        """Every policy and the default pointer, in one Query."""
        policies, default_id = [], None
        for item in ConfigItem.query(POLICY, consistent_read=True):
            if isinstance(item, DefaultPolicyItem):
                default_id = item.policy_id
            elif isinstance(item, PolicyItem):
                policies.append(self._to_policy(item))
        return policies, default_id

    def default_policy_id(self) -> str | None:
        try:
            return DefaultPolicyItem.get(POLICY, DEFAULT, consistent_read=True).policy_id
        except DoesNotExist:
            return None

    def _write(
        self, policy: Policy, condition: Any, make_default: bool | None, policy_was_default: bool
    ) -> None:
        assert policy.updated_at is not None and policy.created_at is not None
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(self._to_item(policy), condition=condition)
                # The pointer moves in the same transaction, so there is never more than one default.
                if make_default and policy.enabled:
                    tx.save(
                        DefaultPolicyItem(
                            POLICY, DEFAULT, policy_id=policy.id, updated_at=to_key(policy.updated_at)
                        )
                    )
                elif policy_was_default and (make_default is False or not policy.enabled):
                    tx.save(
                        DefaultPolicyItem(
                            POLICY, DEFAULT, policy_id=None, updated_at=to_key(policy.updated_at)
                        ),
                        condition=DefaultPolicyItem.policy_id == policy.id,
                    )
        except TransactWriteError as exc:
            reasons = [r.code if r else None for r in exc.cancellation_reasons]
            if "ConditionalCheckFailed" in reasons:
                raise VersionConflict(policy.id) from exc
            raise

    @staticmethod
    def _to_item(p: Policy) -> PolicyItem:
        assert p.created_at is not None and p.updated_at is not None
        body = p.snapshot()
        body.update(
            severities=[s.value for s in p.severities],
            service=p.service,
            team=p.team,
        )
        return PolicyItem(
            POLICY,
            p.id,
            name=p.name,
            body=body,
            enabled=p.enabled,
            created_at=to_key(p.created_at),
            updated_at=to_key(p.updated_at),
            version=p.version,
        )

    @staticmethod
    def _to_policy(i: PolicyItem) -> Policy:
        body = i.body
        base = Policy.from_snapshot({**body, "id": i.sk, "name": i.name, "version": int(i.version)})
        return replace(
            base,
            severities=tuple(Severity(s) for s in body.get("severities") or ()),
            service=body.get("service"),
            team=body.get("team"),
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
        )
