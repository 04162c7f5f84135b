"""Webhook use cases: registering receivers, and delivering one notification to one of them."""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlsplit

from incident_engine.domain.errors import Conflict, InvalidInput, NotFound
from incident_engine.domain.urls import UrlRefused, check_resolved, check_url
from incident_engine.domain.webhooks import (
    SIGNATURE_HEADER,
    Delivery,
    Webhook,
    delivery_from_envelope,
    is_contact_url,
    render,
    signature,
)
from incident_engine.observability import count, logger
from incident_engine.usecases.ports import Clock, VersionConflict

# Growing waits between attempts (SQS visibility), about 17 minutes in all before the DLQ.
RETRY_DELAYS = (10, 30, 60, 120, 240, 300, 300)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


class WebhookStore(Protocol):
    def create(self, webhook: Webhook, secret: str) -> None: ...
    def replace(self, webhook: Webhook, expected_version: int) -> None: ...
    def get(self, webhook_id: str) -> Webhook | None: ...
    def get_with_secret(self, webhook_id: str) -> tuple[Webhook, str] | None: ...
    def list_all(self) -> list[Webhook]: ...


class DeliveryLog(Protocol):
    def record_delivery(
        self,
        incident_id: str,
        dedup_id: str,
        status: str,
        attempts: int,
        http_status: int | None,
        error: str | None,
    ) -> None: ...


class HttpPoster(Protocol):
    def resolve(self, host: str) -> list[str]: ...
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> int: ...


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retrying"  # SQS brings it back after the returned delay
    FAILED = "failed"  # given up: the message goes to the DLQ
    DROPPED = "dropped"  # nothing to deliver to (webhook unknown or disabled)


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    retry_after: int = 0


class WebhookRegistry:
    def __init__(self, store: WebhookStore, clock: Clock, allow_private: bool) -> None:
        self._store = store
        self._clock = clock
        self._allow_private = allow_private

    def register(self, draft: Webhook) -> tuple[Webhook, str]:
        self._check(draft.url)
        now = self._clock.now()
        webhook = replace(draft, id=f"wh_{secrets.token_hex(6)}", created_at=now, updated_at=now, version=1)
        secret = "whsec_" + secrets.token_urlsafe(32)
        self._store.create(webhook, secret)
        return webhook, secret

    def get(self, webhook_id: str) -> Webhook:
        webhook = self._store.get(webhook_id)
        if webhook is None:
            raise NotFound(f"webhook {webhook_id} not found", id=webhook_id)
        return webhook

    def list(self, include_disabled: bool) -> list[Webhook]:
        kept = [w for w in self._store.list_all() if include_disabled or w.enabled]
        return sorted(kept, key=lambda w: (w.created_at or self._clock.now(), w.id))

    def replace(self, webhook_id: str, draft: Webhook) -> Webhook:
        current = self.get(webhook_id)
        if not current.enabled:
            raise Conflict(f"webhook {webhook_id} is disabled; register a new one", id=webhook_id)
        self._check(draft.url)
        webhook = replace(
            draft,
            id=current.id,
            created_at=current.created_at,
            updated_at=self._clock.now(),
            version=current.version + 1,
        )
        self._save(webhook, current.version)
        return webhook

    def disable(self, webhook_id: str) -> Webhook:
        current = self.get(webhook_id)
        if not current.enabled:
            return current
        webhook = replace(current, enabled=False, updated_at=self._clock.now(), version=current.version + 1)
        self._save(webhook, current.version)
        return webhook

    def _save(self, webhook: Webhook, expected: int) -> None:
        try:
            self._store.replace(webhook, expected)
        except VersionConflict:
            raise Conflict(
                f"webhook {webhook.id} changed while this request ran; try again", id=webhook.id
            ) from None

    def _check(self, url: str) -> None:
        try:
            check_url(url, self._allow_private)
        except UrlRefused as exc:
            raise InvalidInput("url", str(exc)) from None


class WebhookDelivery:
    """Delivers one notification to one webhook; SQS carries the retries."""

    def __init__(
        self,
        store: WebhookStore,
        log: DeliveryLog,
        http: HttpPoster,
        clock: Clock,
        allow_private: bool,
        retry_scale: float = 1.0,
    ) -> None:
        self._store = store
        self._log = log
        self._http = http
        self._clock = clock
        self._allow_private = allow_private
        self._retry_scale = retry_scale  # < 1 only on the local stack: the same retries, sooner

    def deliver(self, delivery: Delivery, webhook_id: str, attempt: int) -> DeliveryResult:
        found: tuple[Webhook, str | None] | None
        if is_contact_url(webhook_id):
            # A person's own contact method: no registered secret, so the request is not signed
            # (Slack's incoming webhooks take none); the URL is checked like any other.
            kind = "slack" if delivery.channel == "slack" else "generic"
            found = (Webhook(id=webhook_id, name="contact method", url=webhook_id, kind=kind), None)
        else:
            found = self._store.get_with_secret(webhook_id)
        if found is None or not found[0].enabled:
            logger.warning(
                "webhook unknown or disabled; notification dropped", extra={"webhook_id": webhook_id}
            )
            self._record(delivery, "failed", attempt, None, "webhook unknown or disabled")
            count("WebhookDropped")
            return DeliveryResult(Outcome.DROPPED)
        webhook, secret = found
        body = render(delivery, webhook)
        status: int | None = None
        error: str | None = None
        try:
            host = urlsplit(webhook.url).hostname or ""
            # Checked again now, by address: a name may have been pointed inside since registration.
            check_url(webhook.url, self._allow_private)
            check_resolved(self._http.resolve(host), self._allow_private)
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "incident-engine-webhooks/1",
                "X-Incident-Dedup-Id": delivery.dedup_id,
            }
            if secret is not None:
                headers[SIGNATURE_HEADER] = signature(secret, int(self._clock.now().timestamp()), body)
            status = self._http.post(webhook.url, body, headers, timeout=10.0)
        except UrlRefused as exc:
            error = f"refused: {exc}"
            self._record(delivery, "failed", attempt, None, error)
            count("WebhookRefused")
            return DeliveryResult(Outcome.FAILED)
        except OSError as exc:
            error = type(exc).__name__
        if status is not None and 200 <= status < 300:
            self._record(delivery, "delivered", attempt, status, None)
            count("WebhookDelivered")
            return DeliveryResult(Outcome.DELIVERED)
        error = error or f"HTTP {status}"
        if attempt >= MAX_ATTEMPTS:
            self._record(delivery, "failed", attempt, status, error)
            count("WebhookFailed")
            return DeliveryResult(Outcome.FAILED)
        self._record(delivery, "retrying", attempt, status, error)
        count("WebhookRetried")
        wait = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS)) - 1]
        # SQS takes whole seconds; at least one, so a scaled retry still comes back after the attempt.
        return DeliveryResult(Outcome.RETRY, max(1, math.ceil(wait * self._retry_scale)))

    def _record(
        self, d: Delivery, status: str, attempts: int, http_status: int | None, error: str | None
    ) -> None:
        try:
            self._log.record_delivery(d.incident_id, d.dedup_id, status, attempts, http_status, error)
        except Exception:
            # The delivery itself is what matters; its record is best effort.
            logger.exception("could not record a webhook attempt", extra={"incident_id": d.incident_id})


class Visibility(Protocol):
    def delay(self, receipt_handle: str, seconds: int) -> None: ...


class WebhookSender:
    """One SQS record of the webhook queue: decode, deliver, and schedule the retry."""

    def __init__(self, delivery: WebhookDelivery, visibility: Visibility, base_url: str | None) -> None:
        self._delivery = delivery
        self._visibility = visibility
        self._base_url = base_url

    def handle_message(self, body: str, attempt: int, receipt_handle: str) -> bool:
        """True when the record is done with (delivered or dropped); False to have SQS retry it."""
        try:
            delivery, webhook_id = delivery_from_envelope(body, self._base_url)
        except (ValueError, TypeError, AttributeError) as exc:
            # Not ours, or mangled: fail it so that after the retries it rests in the DLQ to be read.
            logger.error("webhook queue record rejected", extra={"reason": str(exc)[:200]})
            count("WebhookRecordRejected")
            return False
        result = self._delivery.deliver(delivery, webhook_id, attempt)
        if result.outcome is Outcome.RETRY:
            try:
                self._visibility.delay(receipt_handle, result.retry_after)
            except Exception:
                logger.exception("could not delay the retry; SQS's own visibility timeout applies")
            return False
        return result.outcome in (Outcome.DELIVERED, Outcome.DROPPED)
