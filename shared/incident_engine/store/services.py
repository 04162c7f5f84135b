"""ServiceRepository: services, their integration keys, and credential look-ups (config table)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from incident_engine.domain.services import IntegrationKey, Service
from incident_engine.domain.severity import Severity
from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.store.models import ConfigItem, CredentialItem, IntegrationKeyItem, ServiceItem
from incident_engine.usecases.ports import StoredCredential, VersionConflict

SERVICE = "SERVICE"


def credential_pk(secret_hash: str) -> str:
    return f"CRED#{secret_hash}"


class ServiceRepository:
    def __init__(self, region: str, host: str | None) -> None:
        self._connection = Connection(region=region, host=host)

    # --- services ---------------------------------------------------------------------------------

    def create(self, service: Service, key: IntegrationKey | None, key_hash: str | None) -> None:
        """The service and its first key in one transaction (a service never exists keyless by
        accident). Raises VersionConflict when the id is taken."""
        try:
            with TransactWrite(connection=self._connection) as tx:
                tx.save(self._to_item(service), condition=ServiceItem.pk.does_not_exist())
                if key is not None and key_hash is not None:
                    self._add_key(tx, key, key_hash)
        except TransactWriteError as exc:
            raise VersionConflict(service.id) from exc

    def create_if_absent(self, service: Service) -> None:
        try:
            self._to_item(service).save(condition=ServiceItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def replace(self, service: Service, expected_version: int) -> None:
        try:
            self._to_item(service).save(condition=ServiceItem.version == expected_version)
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise VersionConflict(service.id) from exc
            raise

    def get(self, service_id: str) -> Service | None:
        try:
            item = ServiceItem.get(SERVICE, service_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_service(item)

    def catalog(self) -> tuple[list[Service], list[IntegrationKey]]:
        """Every service and every key, in one Query of the SERVICE partition."""
        services: list[Service] = []
        keys: list[IntegrationKey] = []
        for item in ConfigItem.query(SERVICE, consistent_read=True):
            if isinstance(item, ServiceItem):
                services.append(self._to_service(item))
            elif isinstance(item, IntegrationKeyItem):
                keys.append(self._to_key(item))
        return services, keys

    # --- keys and credentials ---------------------------------------------------------------------

    def add_key(self, key: IntegrationKey, key_hash: str) -> None:
        with TransactWrite(connection=self._connection) as tx:
            self._add_key(tx, key, key_hash)

    def _add_key(self, tx: TransactWrite, key: IntegrationKey, key_hash: str) -> None:
        created = to_key(key.created_at)
        tx.save(
            IntegrationKeyItem(
                SERVICE,
                f"{key.service_id}#KEY#{key.id}",
                service_id=key.service_id,
                key_id=key.id,
                prefix=key.prefix,
                secret_hash=key_hash,
                created_at=created,
            ),
            condition=IntegrationKeyItem.pk.does_not_exist(),
        )
        tx.save(
            CredentialItem(
                credential_pk(key_hash),
                "CRED",
                principal_kind="integration",
                name=f"integration:{key.service_id}:{key.id}",
                service_id=key.service_id,
                key_id=key.id,
                revoked=False,
                created_at=created,
            ),
            condition=CredentialItem.pk.does_not_exist(),
        )

    def revoke_key(self, key: IntegrationKey, revoked_at: datetime) -> None:
        """The list entry and the credential together: a revoked key stops working at once
        (the authorizer's cache aside)."""
        at = to_key(revoked_at)
        item = IntegrationKeyItem.get(SERVICE, f"{key.service_id}#KEY#{key.id}", consistent_read=True)
        key_hash = item.secret_hash
        with TransactWrite(connection=self._connection) as tx:
            tx.update(
                IntegrationKeyItem(SERVICE, f"{key.service_id}#KEY#{key.id}"),
                actions=[IntegrationKeyItem.revoked_at.set(at)],
                condition=IntegrationKeyItem.revoked_at.does_not_exist(),
            )
            tx.update(
                CredentialItem(credential_pk(key_hash), "CRED"),
                actions=[CredentialItem.revoked.set(True)],
                condition=CredentialItem.key_id == key.id,
            )

    def credential(self, secret_hash: str) -> StoredCredential | None:
        try:
            item = CredentialItem.get(credential_pk(secret_hash), "CRED", consistent_read=True)
        except DoesNotExist:
            return None
        teams = item.team_ids
        return StoredCredential(
            kind=item.principal_kind,
            name=item.name,
            service_id=item.service_id,
            key_id=item.key_id,
            revoked=bool(item.revoked),
            scopes=tuple(item.scopes or ()),
            team_ids=tuple(teams) if teams is not None else None,
            expires_at=parse_iso(item.expires_at) if item.expires_at else None,
        )

    # --- mapping ----------------------------------------------------------------------------------

    @staticmethod
    def _to_item(s: Service) -> ServiceItem:
        assert s.created_at is not None and s.updated_at is not None
        return ServiceItem(
            SERVICE,
            s.id,
            name=s.name,
            body={
                "team_id": s.team_id,
                "policy_id": s.policy_id,
                "default_severity": s.default_severity.value,
                "alarm_name_prefixes": list(s.alarm_name_prefixes),
                "auto_resolve": s.auto_resolve,
                "insufficient_data": s.insufficient_data,
            },
            enabled=s.enabled,
            created_at=to_key(s.created_at),
            updated_at=to_key(s.updated_at),
            version=s.version,
        )

    @staticmethod
    def _to_service(i: ServiceItem) -> Service:
        body: dict[str, Any] = i.body or {}
        return Service(
            id=i.sk,
            name=i.name,
            team_id=body.get("team_id"),
            policy_id=body.get("policy_id"),
            default_severity=Severity(body.get("default_severity") or "P2"),
            alarm_name_prefixes=tuple(body.get("alarm_name_prefixes") or ()),
            auto_resolve=bool(body.get("auto_resolve", True)),
            insufficient_data=str(body.get("insufficient_data") or "ignore"),
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
            version=int(i.version),
        )

    @staticmethod
    def _to_key(i: IntegrationKeyItem) -> IntegrationKey:
        return IntegrationKey(
            id=i.key_id,
            service_id=i.service_id,
            prefix=i.prefix,
            created_at=parse_iso(i.created_at),
            revoked_at=parse_iso(i.revoked_at) if i.revoked_at else None,
        )
