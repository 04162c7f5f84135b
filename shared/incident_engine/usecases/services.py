"""Service use cases: the catalogue, integration keys, and resolving a presented key."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.services import CATCH_ALL_ID, CATCH_ALL_NAME, IntegrationKey, Principal, Service
from incident_engine.usecases.ports import Clock, PolicyStore, StoredCredential, VersionConflict

KEY_BYTES = 16  # 32 hex characters, the shape of a PagerDuty integration key


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ServiceStore(Protocol):
    def create(self, service: Service, key: IntegrationKey | None, key_hash: str | None) -> None: ...
    def create_if_absent(self, service: Service) -> None: ...
    def replace(self, service: Service, expected_version: int) -> None: ...
    def get(self, service_id: str) -> Service | None: ...
    def catalog(self) -> tuple[list[Service], list[IntegrationKey]]: ...
    def add_key(self, key: IntegrationKey, key_hash: str) -> None: ...
    def revoke_key(self, key: IntegrationKey, revoked_at: datetime) -> None: ...
    def credential(self, secret_hash: str) -> StoredCredential | None: ...


@dataclass(frozen=True)
class NewKey:
    key: IntegrationKey
    secret: str  # shown once, never stored


class ServiceCatalog:
    def __init__(self, store: ServiceStore, policies: PolicyStore, clock: Clock) -> None:
        self._store = store
        self._policies = policies
        self._clock = clock

    def create_service(self, draft: Service) -> tuple[Service, NewKey]:
        self._check_policy(draft.policy_id)
        now = self._clock.now()
        service = replace(draft, id=f"svc_{secrets.token_hex(6)}", created_at=now, updated_at=now, version=1)
        new_key = self._new_key(service.id)
        self._store.create(service, new_key.key, secret_hash(new_key.secret))
        return service, new_key

    def get_service(self, service_id: str) -> Service:
        service = self._store.get(service_id)
        if service is None:
            raise NotFound(f"service {service_id} not found", id=service_id)
        return service

    def service_or_none(self, service_id: str) -> Service | None:
        return self._store.get(service_id)

    def list_services(self, include_disabled: bool) -> list[Service]:
        services, _ = self._store.catalog()
        kept = [s for s in services if include_disabled or s.enabled]
        return sorted(kept, key=lambda s: (s.created_at or self._clock.now(), s.id))

    def list_services_with_keys(self, include_disabled: bool) -> list[tuple[Service, list[IntegrationKey]]]:
        """Every service with its keys, from one read of the catalogue (not one per service)."""
        services, keys = self._store.catalog()
        by_service: dict[str, list[IntegrationKey]] = {}
        for k in sorted(keys, key=lambda k: (k.created_at, k.id)):
            by_service.setdefault(k.service_id, []).append(k)
        kept = [s for s in services if include_disabled or s.enabled]
        ordered = sorted(kept, key=lambda s: (s.created_at or self._clock.now(), s.id))
        return [(s, by_service.get(s.id, [])) for s in ordered]

    def keys_of(self, service_id: str) -> list[IntegrationKey]:
        _, keys = self._store.catalog()
        return sorted((k for k in keys if k.service_id == service_id), key=lambda k: (k.created_at, k.id))

    def replace_service(self, service_id: str, draft: Service) -> Service:
        current = self.get_service(service_id)
        if not current.enabled:
            raise Conflict(f"service {service_id} is disabled; create a new one", id=service_id)
        self._check_policy(draft.policy_id)
        service = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
        )
        self._replace(service, current.version)
        return service

    def disable_service(self, service_id: str) -> Service:
        current = self.get_service(service_id)
        if not current.enabled:
            return current
        service = replace(current, enabled=False, updated_at=self._clock.now(), version=current.version + 1)
        self._replace(service, current.version)
        return service

    def add_key(self, service_id: str) -> NewKey:
        service = self.get_service(service_id)
        if not service.enabled:
            raise Conflict(f"service {service_id} is disabled", id=service_id)
        new_key = self._new_key(service.id)
        self._store.add_key(new_key.key, secret_hash(new_key.secret))
        return new_key

    def revoke_key(self, service_id: str, key_id: str) -> IntegrationKey:
        for key in self.keys_of(self.get_service(service_id).id):
            if key.id == key_id:
                if key.revoked_at is not None:
                    return key  # revoking twice is not an error
                now = self._clock.now()
                self._store.revoke_key(key, now)
                return replace(key, revoked_at=now)
        raise NotFound(f"service {service_id} has no integration key {key_id}", id=key_id)

    def catch_all(self) -> Service:
        """Where an alert that maps to no service goes: created on first use, never lost."""
        existing = self._store.get(CATCH_ALL_ID)
        if existing is not None:
            return existing
        now = self._clock.now()
        self._store.create_if_absent(
            Service(id=CATCH_ALL_ID, name=CATCH_ALL_NAME, created_at=now, updated_at=now)
        )
        return self.get_service(CATCH_ALL_ID)

    def principal_for(self, secret: str) -> Principal | None:
        """The integration a presented key speaks for, or None (unknown or revoked)."""
        stored = self._store.credential(secret_hash(secret))
        if stored is None or stored.revoked or stored.kind != "integration":
            return None
        return Principal(kind="integration", name=stored.name, service_id=stored.service_id, id=stored.key_id)

    # --- internals ------------------------------------------------------------------------------

    def _replace(self, service: Service, expected_version: int) -> None:
        try:
            self._store.replace(service, expected_version)
        except VersionConflict:
            raise Conflict(
                f"service {service.id} changed while this request ran; try again", id=service.id
            ) from None

    def _check_policy(self, policy_id: str | None) -> None:
        if policy_id is None:
            return
        policy = self._policies.get(policy_id)
        if policy is None or not policy.enabled:
            raise InvalidInput("policy_id", f"no enabled escalation policy has id {policy_id}")

    def _new_key(self, service_id: str) -> NewKey:
        secret = secrets.token_hex(KEY_BYTES)
        key = IntegrationKey(
            id=f"key_{secrets.token_hex(4)}",
            service_id=service_id,
            prefix=secret[:6],
            created_at=self._clock.now(),
        )
        return NewKey(key, secret)
