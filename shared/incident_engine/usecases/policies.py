"""Escalation policy use cases. Policies are never erased: delete disables."""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Protocol

from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.policy import Policy
from incident_engine.domain.webhooks import Webhook
from incident_engine.usecases.ports import Clock, PolicyStore, VersionConflict


class WebhookLookup(Protocol):
    def get(self, webhook_id: str) -> Webhook | None: ...


class ConfigLookup(Protocol):
    """Whether a user, team or schedule id names one that exists and is enabled."""

    def is_enabled(self, kind: str, item_id: str) -> bool: ...


class PolicyService:
    def __init__(
        self,
        store: PolicyStore,
        clock: Clock,
        webhooks: WebhookLookup | None = None,
        config: ConfigLookup | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._webhooks = webhooks
        self._config = config

    def _check_targets(self, draft: Policy) -> None:
        """Every target must name a registered, enabled webhook, user, team or schedule."""
        places = [
            (f"levels.{n}.targets.{m}", t)
            for n, lv in enumerate(draft.levels)
            for m, t in enumerate(lv.targets)
        ]
        places += [(f"fallback.{m}", t) for m, t in enumerate(draft.fallback)]
        for where, target in places:
            if target.type == "webhook" and self._webhooks is not None:
                webhook = self._webhooks.get(target.address)
                if webhook is None or not webhook.enabled:
                    raise InvalidInput(f"{where}.webhook_id", f"no enabled webhook has id {target.address}")
            elif target.field in ("user_id", "team_id", "schedule_id") and self._config is not None:
                kind = target.field.removesuffix("_id")
                if not self._config.is_enabled(kind, target.address):
                    raise InvalidInput(
                        f"{where}.{target.field}", f"no enabled {kind} has id {target.address}"
                    )

    def create_policy(self, draft: Policy, is_default: bool) -> Policy:
        self._check_targets(draft)
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
        self._check_targets(draft)
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
