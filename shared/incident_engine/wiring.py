"""Builds the services from settings, once per process (Lambda reuses it across invocations)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from incident_engine.adapters.aws import sns_client, sqs_client
from incident_engine.adapters.clock import SystemClock
from incident_engine.adapters.notifications import SnsNotificationPublisher
from incident_engine.adapters.timers import EscalationTimerQueue
from incident_engine.settings import Settings, get_settings
from incident_engine.store.incidents import IncidentRepository
from incident_engine.store.models import bind_tables
from incident_engine.store.people import TeamRepository, UserRepository
from incident_engine.store.policies import PolicyRepository
from incident_engine.store.schedules import ScheduleRepository
from incident_engine.usecases.config import ConfigService
from incident_engine.usecases.dispatch import Dispatcher
from incident_engine.usecases.escalation import EscalationTimerService
from incident_engine.usecases.incidents import IncidentService
from incident_engine.usecases.policies import PolicyService


@dataclass(frozen=True)
class Services:
    settings: Settings
    incidents: IncidentRepository
    policies_store: PolicyRepository
    dispatcher: Dispatcher
    clock: SystemClock
    users: UserRepository
    teams: TeamRepository
    schedules: ScheduleRepository

    def incident_service(self, base_url: str | None = None) -> IncidentService:
        return IncidentService(
            self.incidents,
            self.policies_store,
            self.dispatcher,
            self.clock,
            self.settings.public_api_url or base_url,
        )

    def policy_service(self) -> PolicyService:
        return PolicyService(self.policies_store, self.clock)

    def config_service(self) -> ConfigService:
        return ConfigService(self.users, self.teams, self.schedules, self.policies_store, self.clock)

    def timer_service(self) -> EscalationTimerService:
        return EscalationTimerService(
            self.incidents,
            self.dispatcher,
            self.clock,
            self.settings.public_api_url,
            self.settings.reconcile_grace_seconds,
            self.settings.reconcile_batch,
        )


@lru_cache(maxsize=1)
def services() -> Services:
    settings = get_settings()
    bind_tables(settings.incidents_table, settings.config_table, settings.region, settings.endpoint_url)
    clock = SystemClock()
    incidents = IncidentRepository(settings.region, settings.endpoint_url)
    timers = EscalationTimerQueue(
        sqs_client(settings.region, settings.endpoint_url), settings.timer_queue_url
    )
    publisher = SnsNotificationPublisher(
        sns_client(settings.region, settings.endpoint_url), settings.notifications_topic_arn
    )
    return Services(
        settings=settings,
        incidents=incidents,
        policies_store=PolicyRepository(settings.region, settings.endpoint_url),
        dispatcher=Dispatcher(incidents, timers, publisher, clock),
        clock=clock,
        users=UserRepository(settings.region, settings.endpoint_url),
        teams=TeamRepository(settings.region, settings.endpoint_url),
        schedules=ScheduleRepository(settings.region, settings.endpoint_url),
    )


def reset_services() -> None:
    """Forget built services and clients (tests rebuild them against a fresh emulated AWS)."""
    from incident_engine.adapters.aws import forget_clients
    from incident_engine.settings import reset_settings

    services.cache_clear()
    forget_clients()
    reset_settings()
