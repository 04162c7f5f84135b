"""Builds the services from settings, once per process (Lambda reuses it across invocations)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from incident_engine.adapters.aws import cloudwatch_client, sns_client, sqs_client
from incident_engine.adapters.clock import SystemClock
from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.adapters.timers import EscalationTimerQueue, SqsVisibility
from incident_engine.auth_wiring import token_store
from incident_engine.domain import links
from incident_engine.domain.links import LinkMaker
from incident_engine.settings import Settings, get_settings
from incident_engine.store.incidents import IncidentRepository
from incident_engine.store.maintenance import MaintenanceWindowRepository
from incident_engine.store.models import bind_tables
from incident_engine.store.policies import PolicyRepository
from incident_engine.store.services import ServiceRepository
from incident_engine.store.signing import ConfigTableSigner
from incident_engine.store.webhooks import WebhookRepository
from incident_engine.usecases.dispatch import Dispatcher
from incident_engine.usecases.escalation import EscalationTimerService
from incident_engine.usecases.incidents import IncidentService
from incident_engine.usecases.maintenance import MaintenanceWindows
from incident_engine.usecases.paging import PagingConfig
from incident_engine.usecases.services import ServiceCatalog

if TYPE_CHECKING:
    from incident_engine.store.people import TeamRepository, UserRepository
    from incident_engine.store.schedules import ScheduleRepository
    from incident_engine.store.tokens import TokenRepository
    from incident_engine.usecases.alarms import AlarmReceiver
    from incident_engine.usecases.config import ConfigService
    from incident_engine.usecases.health import EngineHealth
    from incident_engine.usecases.heartbeats import HeartbeatService
    from incident_engine.usecases.ingest import AlarmTags, AlertIngest
    from incident_engine.usecases.links import ActionLinkService
    from incident_engine.usecases.policies import PolicyService
    from incident_engine.usecases.routing_rules import RoutingRules
    from incident_engine.usecases.tokens import Tokens
    from incident_engine.usecases.webhooks import WebhookRegistry, WebhookSender


class ConfigStores(NamedTuple):
    users: UserRepository
    teams: TeamRepository
    schedules: ScheduleRepository


@lru_cache(maxsize=1)
def _config_stores(region: str, host: str | None) -> ConfigStores:
    # Imported on first use: the worker, reconciler and authorizer never pay for these modules.
    from incident_engine.store.people import TeamRepository, UserRepository
    from incident_engine.store.schedules import ScheduleRepository

    return ConfigStores(
        UserRepository(region, host), TeamRepository(region, host), ScheduleRepository(region, host)
    )


@dataclass(frozen=True)
class Services:
    settings: Settings
    incidents: IncidentRepository
    policies_store: PolicyRepository
    services_store: ServiceRepository
    dispatcher: Dispatcher
    clock: SystemClock
    signer: ConfigTableSigner  # one key per deployment; reuse it with another purpose label
    alarm_tags: AlarmTags | None = None  # CloudWatch tag look-ups, for the alarm ingest function

    def action_links(self, base_url: str | None) -> LinkMaker | None:
        """Links in pages that acknowledge or resolve as their recipient (none without a base URL)."""
        if not base_url:
            return None
        return LinkMaker(base_url, lambda payload: self.signer.sign(links.PURPOSE, payload))

    def incident_service(self, base_url: str | None = None) -> IncidentService:
        url = self.settings.public_api_url or base_url
        return IncidentService(
            self.incidents,
            self.policies_store,
            self.dispatcher,
            self.clock,
            url,
            self.services_store,
            self.action_links(url),
            self.paging_config(),
        )

    def paging_config(self) -> PagingConfig:
        return PagingConfig(self.config_service(), WebhookRepository())

    def action_link_service(self, base_url: str | None = None) -> ActionLinkService:
        # The api's routes (links, config, webhooks) import their use cases here, on use: the
        # worker and reconciler, which import this module, never call them.
        from incident_engine.usecases.links import ActionLinkService

        return ActionLinkService(self.signer, self.incident_service(base_url), self.clock)

    def policy_service(self) -> PolicyService:
        from incident_engine.usecases.policies import PolicyService

        return PolicyService(self.policies_store, self.clock, WebhookRepository(), self.config_service())

    def service_catalog(self) -> ServiceCatalog:
        return ServiceCatalog(self.services_store, self.policies_store, self.clock)

    def webhook_registry(self) -> WebhookRegistry:
        from incident_engine.usecases.webhooks import WebhookRegistry

        return WebhookRegistry(WebhookRepository(), self.clock, self.settings.allow_private_targets)

    def webhook_sender(self) -> WebhookSender:
        from incident_engine.adapters.http import UrllibPoster
        from incident_engine.usecases.webhooks import WebhookDelivery, WebhookSender

        delivery = WebhookDelivery(
            WebhookRepository(),
            self.incidents,
            UrllibPoster(),
            self.clock,
            self.settings.allow_private_targets,
            self.settings.webhook_retry_scale,
        )
        visibility = SqsVisibility(
            sqs_client(self.settings.region, self.settings.endpoint_url), self.settings.webhook_queue_url
        )
        return WebhookSender(delivery, visibility, self.settings.public_api_url)

    @property
    def config_stores(self) -> ConfigStores:
        return _config_stores(self.settings.region, self.settings.dynamodb_endpoint_url)

    @property
    def users(self) -> UserRepository:
        return self.config_stores.users

    def config_service(self) -> ConfigService:
        from incident_engine.adapters.subscriptions import SnsContactSubscriptions
        from incident_engine.usecases.config import ConfigService

        stores = self.config_stores
        subscriptions = SnsContactSubscriptions(
            sns_client(self.settings.region, self.settings.endpoint_url),
            self.settings.notifications_topic_arn,
        )
        return ConfigService(
            stores.users, stores.teams, stores.schedules, self.policies_store, self.clock, subscriptions
        )

    def tokens(self) -> Tokens:
        from incident_engine.usecases.tokens import Tokens

        return Tokens(self.token_store, self.clock)

    @property
    def token_store(self) -> TokenRepository:
        return token_store(self.settings.region, self.settings.dynamodb_endpoint_url)

    def maintenance_windows(self) -> MaintenanceWindows:
        settings = self.settings
        return MaintenanceWindows(
            MaintenanceWindowRepository(),
            self.service_catalog(),
            self.clock,
            EscalationTimerQueue(
                sqs_client(settings.region, settings.endpoint_url), settings.timer_queue_url
            ),
            self.incidents,
            settings.reconcile_grace_seconds,
        )

    def routing_rules(self) -> RoutingRules:
        # Imported on use: the rules' documents are pydantic models, and their matching (the
        # domain's routing module) is the api's and the ingest's, which no timer or token needs.
        from incident_engine.store.routing_rules import RoutingRuleRepository
        from incident_engine.usecases.routing_rules import RoutingRules

        return RoutingRules(RoutingRuleRepository(), self.clock)

    def alert_ingest(self, base_url: str | None = None, alarm_tags: AlarmTags | None = None) -> AlertIngest:
        """Alerts in: every source's parsed ``Alert`` goes through this one use case."""
        # Imported on use, as the alarm receiver below: no timer or token path ingests alerts.
        from incident_engine.store.routing_rules import RoutingRuleRepository
        from incident_engine.usecases.alert_incidents import (
            CatalogDirectory,
            StoreAlertIncidents,
            StoredRules,
        )
        from incident_engine.usecases.ingest import AlertIngest

        return AlertIngest(
            StoreAlertIncidents(self.incident_service(base_url), self.incidents, self.maintenance_windows()),
            CatalogDirectory(self.service_catalog()),
            StoredRules(RoutingRuleRepository()),
            alarm_tags or self.alarm_tags,
        )

    def alarm_receiver(self) -> AlarmReceiver:
        from incident_engine.adapters.alarms import CloudWatchAlarmTags, SqsDeadLetter
        from incident_engine.observability import logger
        from incident_engine.usecases.alarms import AlarmReceiver

        region, endpoint = self.settings.region, self.settings.endpoint_url
        tags = self.alarm_tags or CloudWatchAlarmTags(cloudwatch_client(region, endpoint))
        ingest = self.alert_ingest(alarm_tags=tags)
        dead_letter = SqsDeadLetter(sqs_client(region, endpoint), self.settings.alarm_dead_letter_url)
        return AlarmReceiver(ingest, dead_letter, logger)

    def engine_health(self) -> EngineHealth:
        from incident_engine.adapters.queue_depths import SqsQueueDepths
        from incident_engine.usecases.health import EngineHealth

        s = self.settings
        queues = {
            "timer": s.timer_queue_url,
            "timer_dead_letter": s.timer_dead_letter_url,
            "webhook": s.webhook_queue_url,
            "webhook_dead_letter": s.webhook_dead_letter_url,
            "alarm_dead_letter": s.alarm_dead_letter_url,
        }
        depths = SqsQueueDepths(sqs_client(s.region, s.endpoint_url), queues)
        return EngineHealth(self.incidents, depths, self.clock, s.reconcile_grace_seconds)

    def heartbeat_service(self, base_url: str | None = None) -> HeartbeatService:
        from incident_engine.adapters.timers import EscalationTimerQueue
        from incident_engine.store.heartbeats import HeartbeatRepository
        from incident_engine.usecases.alert_incidents import CatalogDirectory
        from incident_engine.usecases.heartbeats import HeartbeatService, StoreOutages

        settings = self.settings
        sqs = sqs_client(settings.region, settings.endpoint_url)
        return HeartbeatService(
            HeartbeatRepository(),
            EscalationTimerQueue(sqs, settings.timer_queue_url),
            self.clock,
            CatalogDirectory(self.service_catalog()),
            StoreOutages(self.incidents),
            lambda: self.alert_ingest(base_url),
            settings.reconcile_grace_seconds,
        )

    def _other_timers(self, limit: int) -> int:
        """Heartbeats and maintenance windows whose timers were lost, re-armed by the reconciler."""
        return self.heartbeat_service().rearm_due(limit) + self.maintenance_windows().rearm_due(limit)

    def open_clients(self) -> None:
        """Build the timer path's services and every AWS client they use (each item class's
        DynamoDB connection included), so that no request pays for building them."""
        from incident_engine.store.models import open_connections

        self.timer_service()
        self.heartbeat_service()
        self.maintenance_windows()
        open_connections()
        self.incidents.open_client()

    def timer_service(self) -> EscalationTimerService:
        return EscalationTimerService(
            self.incidents,
            self.dispatcher,
            self.clock,
            self.settings.public_api_url,
            self.settings.reconcile_grace_seconds,
            self.settings.reconcile_batch,
            self.action_links(self.settings.public_api_url),
            self.paging_config(),
            extra_timers=self._other_timers,
        )


@lru_cache(maxsize=1)
def services() -> Services:
    settings = get_settings()
    bind_tables(
        settings.incidents_table, settings.config_table, settings.region, settings.dynamodb_endpoint_url
    )
    clock = SystemClock()
    signer = ConfigTableSigner()
    incidents = IncidentRepository(settings.region, settings.dynamodb_endpoint_url, signer)
    timers = EscalationTimerQueue(
        sqs_client(settings.region, settings.endpoint_url), settings.timer_queue_url
    )
    publisher = SnsNotificationPublisher(
        sns_client(settings.region, settings.endpoint_url), settings.notifications_topic_arn
    )
    return Services(
        settings=settings,
        incidents=incidents,
        policies_store=PolicyRepository(settings.region, settings.dynamodb_endpoint_url),
        services_store=ServiceRepository(settings.region, settings.dynamodb_endpoint_url),
        dispatcher=Dispatcher(incidents, timers, publisher, clock),
        clock=clock,
        signer=signer,
    )


def reset_services() -> None:
    """Forget built services and clients (tests rebuild them against a fresh emulated AWS)."""
    from incident_engine.adapters.aws import forget_clients
    from incident_engine.auth_wiring import forget_authenticator
    from incident_engine.settings import reset_settings

    services.cache_clear()
    _config_stores.cache_clear()
    forget_authenticator()
    forget_clients()
    reset_settings()
