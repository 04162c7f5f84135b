"""WebhookRepository: registered webhooks and their signing secrets, in the config table.

The secret must be usable to sign, so it is stored (the table is encrypted at rest with its KMS
key); it is returned once, at registration, and never by a read, a list or a log line.
"""

from __future__ import annotations

from pynamodb.exceptions import DoesNotExist, PutError

from incident_engine.domain.timefmt import parse_iso, to_key
from incident_engine.domain.webhooks import Webhook
from incident_engine.store.models import ConfigItem, WebhookItem
from incident_engine.usecases.ports import VersionConflict

WEBHOOK = "WEBHOOK"


class WebhookRepository:
    def create(self, webhook: Webhook, secret: str) -> None:
        self._save(webhook, secret, WebhookItem.pk.does_not_exist())

    def replace(self, webhook: Webhook, expected_version: int) -> None:
        current = WebhookItem.get(WEBHOOK, webhook.id, consistent_read=True)
        self._save(webhook, current.secret, WebhookItem.version == expected_version)

    def _save(self, webhook: Webhook, secret: str, condition: object) -> None:
        try:
            self._to_item(webhook, secret).save(condition=condition)  # type: ignore[arg-type]
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise VersionConflict(webhook.id) from exc
            raise

    def get(self, webhook_id: str) -> Webhook | None:
        found = self.get_with_secret(webhook_id)
        return found[0] if found else None

    def get_with_secret(self, webhook_id: str) -> tuple[Webhook, str] | None:
        try:
            item = WebhookItem.get(WEBHOOK, webhook_id, consistent_read=True)
        except DoesNotExist:
            return None
        return self._to_webhook(item), item.secret

    def list_all(self) -> list[Webhook]:
        return [self._to_webhook(i) for i in ConfigItem.query(WEBHOOK) if isinstance(i, WebhookItem)]

    @staticmethod
    def _to_item(w: Webhook, secret: str) -> WebhookItem:
        assert w.created_at is not None and w.updated_at is not None
        return WebhookItem(
            WEBHOOK,
            w.id,
            name=w.name,
            url=w.url,
            webhook_kind=w.kind,
            secret=secret,
            enabled=w.enabled,
            created_at=to_key(w.created_at),
            updated_at=to_key(w.updated_at),
            version=w.version,
        )

    @staticmethod
    def _to_webhook(i: WebhookItem) -> Webhook:
        return Webhook(
            id=i.sk,
            name=i.name,
            url=i.url,
            kind=i.webhook_kind,
            enabled=bool(i.enabled),
            created_at=parse_iso(i.created_at),
            updated_at=parse_iso(i.updated_at),
            version=int(i.version),
        )
