"""Escalation policy use cases. Policies are never erased: delete disables."""

from __future__ import annotations

import secrets
from dataclasses import replace

from incident_engine.domain.errors import Conflict, NotFound
from incident_engine.domain.policy import Policy
from incident_engine.usecases.ports import Clock, PolicyStore, VersionConflict


class PolicyService:
    def __init__(self, store: PolicyStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create_policy(self, draft: Policy, is_default: bool) -> Policy:
        now = self._clock.now()
        policy = replace(
            draft, id=f"pol_{secrets.token_hex(6)}", created_at=now, updated_at=now, version=1, enabled=True
        )
        self._store.create(policy, make_default=is_default)
        return policy

    def get_policy(self, policy_id: str) -> Policy:
        policy = self._store.get(policy_id)
        if policy is None:
            raise NotFound(f"policy {policy_id} not found", id=policy_id)
        return policy

    def list_policies(self, include_disabled: bool) -> list[Policy]:
        return sorted(
            self._store.list_all(include_disabled), key=lambda p: (p.created_at or self._clock.now(), p.id)
        )

    def replace_policy(self, policy_id: str, draft: Policy, is_default: bool | None) -> Policy:
        current = self.get_policy(policy_id)
        if not current.enabled:
            raise Conflict(f"policy {policy_id} is disabled; create a new one", id=policy_id)
        policy = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
            enabled=True,
        )
        try:
            self._store.replace(policy, current.version, make_default=is_default)
        except VersionConflict:
            raise Conflict(
                f"policy {policy_id} changed while this request ran; try again", id=policy_id
            ) from None
        return policy

    def disable_policy(self, policy_id: str) -> Policy:
        current = self.get_policy(policy_id)
        if not current.enabled:
            return current  # deleting twice is not an error
        policy = replace(current, enabled=False, updated_at=self._clock.now(), version=current.version + 1)
        try:
            self._store.replace(policy, current.version, make_default=False)
        except VersionConflict:
            raise Conflict(
                f"policy {policy_id} changed while this request ran; try again", id=policy_id
            ) from None
        return policy

    def default_policy_id(self) -> str | None:
        return self._store.default_policy_id()
