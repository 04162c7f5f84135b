"""Builds what the authorizer needs to look a credential up, and nothing else.

The authorizer's own composition root: importing it loads the config table's store and the token
use case, not the engine, the incident store, the outbox or the timers (incident_engine.wiring,
which the api, worker and reconciler use), so the authorizer's cold start pays for none of them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from incident_engine.adapters.clock import SystemClock
from incident_engine.settings import get_settings
from incident_engine.store.models import bind_tables
from incident_engine.store.services import ServiceRepository

if TYPE_CHECKING:
    from incident_engine.store.tokens import TokenRepository
    from incident_engine.usecases.tokens import Authenticator


@lru_cache(maxsize=1)
def token_store(region: str, host: str | None) -> TokenRepository:
    from incident_engine.store.tokens import TokenRepository

    return TokenRepository(region, host)


@lru_cache(maxsize=1)
def authenticator() -> Authenticator:
    """Only what the authorizer needs to look a credential up: no SQS or SNS client is built."""
    from incident_engine.usecases.tokens import Authenticator

    settings = get_settings()
    bind_tables(
        settings.incidents_table, settings.config_table, settings.region, settings.dynamodb_endpoint_url
    )
    return Authenticator(
        ServiceRepository(settings.region, settings.dynamodb_endpoint_url),
        token_store(settings.region, settings.dynamodb_endpoint_url),
        SystemClock(),
    )


def forget_authenticator() -> None:
    """Tests rebuild it against a fresh emulated AWS (incident_engine.wiring.reset_services)."""
    authenticator.cache_clear()
    token_store.cache_clear()
