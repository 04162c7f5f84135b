"""Runtime settings, read from the environment the first time they are needed.

Names match template.yaml's Environment blocks. Read lazily so importing a handler costs
nothing and tests can set the environment first. A plain dataclass rather than a pydantic
model: the worker, reconciler and authorizer then never import pydantic (a cold-start saving).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    incidents_table: str
    config_table: str
    timer_queue_url: str
    notifications_topic_arn: str
    region: str = "us-east-1"
    # Set only to talk to an emulated AWS (the local stack); boto3 honours it too.
    endpoint_url: str | None = None
    # DynamoDB's own, as botocore reads AWS_ENDPOINT_URL_DYNAMODB: the local stack answers DynamoDB
    # from an emulator process of its own. Falls back to endpoint_url.
    dynamodb_endpoint_url: str | None = None
    # Base of links in notifications. The api function derives it from the request when unset.
    public_api_url: str | None = None
    # How long past due a timer may be before the reconciler re-sends it.
    reconcile_grace_seconds: float = 20.0
    # Most items one reconciler pass handles of each kind; the rest wait for the next tick.
    reconcile_batch: int = 500
    # Webhooks to private, loopback or plain-http addresses: the local stack's receivers only.
    allow_private_targets: bool = False
    # The webhook sender's own queue (to delay a retry); set on that function only.
    webhook_queue_url: str = ""
    # Where the alarm ingest function parks payloads it cannot parse; set on that function only.
    alarm_dead_letter_url: str = ""
    # GET /health?deep=1 (the api function): the admin token's hash and the queues it reports on.
    api_token_sha256: str = ""
    timer_dead_letter_url: str = ""
    webhook_dead_letter_url: str = ""
    # Multiplies the webhook sender's retry waits. The template never sets it; the local stack
    # passes make run's WEBHOOK_RETRY_SCALE so a failing receiver's retries take seconds, not minutes.
    webhook_retry_scale: float = 1.0
    # Requests one credential (API token, integration key, the admin token) may make a minute; 0: no
    # limit. Counted in the config table by the api function (api/app.py).
    token_rate_per_minute: int = 0


def _number(name: str, default: str, minimum: float) -> float:
    raw = os.environ.get(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum:g}, not {raw!r}")
    return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        incidents_table=env.get("INCIDENTS_TABLE", ""),
        config_table=env.get("CONFIG_TABLE", ""),
        timer_queue_url=env.get("TIMER_QUEUE_URL", ""),
        notifications_topic_arn=env.get("NOTIFICATIONS_TOPIC_ARN", ""),
        region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
        dynamodb_endpoint_url=env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL") or None,
        public_api_url=env.get("PUBLIC_API_URL") or None,
        reconcile_grace_seconds=_number("RECONCILE_GRACE_SECONDS", "20", 0),
        reconcile_batch=int(_number("RECONCILE_BATCH", "500", 1)),
        allow_private_targets=env.get("ALLOW_PRIVATE_TARGETS", "false").lower() == "true",
        webhook_queue_url=env.get("WEBHOOK_QUEUE_URL", ""),
        alarm_dead_letter_url=env.get("ALARM_DEAD_LETTER_URL", ""),
        api_token_sha256=env.get("API_TOKEN_SHA256", "").strip().lower(),
        timer_dead_letter_url=env.get("TIMER_DEAD_LETTER_URL", ""),
        webhook_dead_letter_url=env.get("WEBHOOK_DEAD_LETTER_URL", ""),
        webhook_retry_scale=_number("WEBHOOK_RETRY_SCALE", "1", 0),
        token_rate_per_minute=int(_number("TOKEN_RATE_PER_MINUTE", "0", 0)),
    )


def reset_settings() -> None:
    """Forget cached settings (tests and the local stack change the environment)."""
    get_settings.cache_clear()
