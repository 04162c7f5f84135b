"""/services routes: the catalogue of services and their integration keys."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator, BaseModel, Field, StrictBool, StringConstraints

from incident_engine.api.schemas import AS_LINE, Name, _In, _one_line
from incident_engine.domain.services import IntegrationKey, Service
from incident_engine.domain.severity import Severity
from incident_engine.domain.timefmt import to_iso
from incident_engine.usecases.services import NewKey, ServiceCatalog
from incident_engine.wiring import services

router = Router()

AlarmPrefix = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_one_line), AS_LINE
]


class ServiceIn(_In):
    name: Name
    team_id: Name | None = None
    policy_id: Name | None = None
    default_severity: Severity = Severity.P2
    alarm_name_prefixes: Annotated[list[AlarmPrefix], Field(max_length=20)] = Field(default_factory=list)
    auto_resolve: StrictBool = True
    insufficient_data: Annotated[str, StringConstraints(max_length=7, pattern="^(ignore|trigger)$")] = Field(
        default="ignore", description="What CloudWatch's INSUFFICIENT_DATA does: ignore (default) or trigger"
    )

    def to_domain(self) -> Service:
        return Service(
            id="",
            name=self.name,
            team_id=self.team_id,
            policy_id=self.policy_id,
            default_severity=self.default_severity,
            alarm_name_prefixes=tuple(dict.fromkeys(self.alarm_name_prefixes)),
            auto_resolve=self.auto_resolve,
            insufficient_data=self.insufficient_data,
        )


class IntegrationKeyOut(BaseModel):
    id: str
    prefix: str = Field(description="The key's first characters, to tell keys apart; never the key")
    created_at: str
    revoked_at: str | None
    active: bool

    @staticmethod
    def of(k: IntegrationKey) -> IntegrationKeyOut:
        return IntegrationKeyOut(
            id=k.id,
            prefix=k.prefix,
            created_at=to_iso(k.created_at),
            revoked_at=to_iso(k.revoked_at) if k.revoked_at else None,
            active=k.active,
        )


class NewIntegrationKeyOut(IntegrationKeyOut):
    integration_key: str = Field(description="The key itself: shown this once, stored only as a hash")

    @staticmethod
    def of_new(new: NewKey) -> NewIntegrationKeyOut:
        return NewIntegrationKeyOut(**IntegrationKeyOut.of(new.key).model_dump(), integration_key=new.secret)


class ServiceOut(BaseModel):
    id: str
    name: str
    team_id: str | None
    policy_id: str | None
    default_severity: Severity
    alarm_name_prefixes: list[str]
    auto_resolve: bool
    insufficient_data: str
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int
    integration_keys: list[IntegrationKeyOut]

    @staticmethod
    def of(s: Service, keys: list[IntegrationKey]) -> ServiceOut:
        return ServiceOut(
            id=s.id,
            name=s.name,
            team_id=s.team_id,
            policy_id=s.policy_id,
            default_severity=s.default_severity,
            alarm_name_prefixes=list(s.alarm_name_prefixes),
            auto_resolve=s.auto_resolve,
            insufficient_data=s.insufficient_data,
            enabled=s.enabled,
            created_at=to_iso(s.created_at) if s.created_at else None,
            updated_at=to_iso(s.updated_at) if s.updated_at else None,
            version=s.version,
            integration_keys=[IntegrationKeyOut.of(k) for k in keys],
        )


class ServiceCreatedOut(ServiceOut):
    integration_key: str = Field(description="The first integration key: shown this once")


class ServiceList(BaseModel):
    items: list[ServiceOut]


def _catalog() -> ServiceCatalog:
    return services().service_catalog()


@router.post(
    "/services",
    tags=["services"],
    summary="Create a service; its first integration key is in the answer, this once",
)
def create_service(body: ServiceIn) -> Response[ServiceCreatedOut]:
    service, new_key = _catalog().create_service(body.to_domain())
    out = ServiceOut.of(service, [new_key.key])
    return Response(
        status_code=201,
        content_type="application/json",
        body=ServiceCreatedOut(**out.model_dump(), integration_key=new_key.secret),
    )


@router.get("/services", tags=["services"], summary="List services")
def list_services(include_disabled: Annotated[bool, Query()] = False) -> ServiceList:
    catalog = _catalog()
    return ServiceList(
        items=[ServiceOut.of(s, keys) for s, keys in catalog.list_services_with_keys(include_disabled)]
    )


@router.get("/services/<service_id>", tags=["services"], summary="Get one service")
def get_service(service_id: str) -> ServiceOut:
    catalog = _catalog()
    service = catalog.get_service(unquote(service_id))
    return ServiceOut.of(service, catalog.keys_of(service.id))


@router.put("/services/<service_id>", tags=["services"], summary="Replace a service's settings")
def replace_service(service_id: str, body: ServiceIn) -> ServiceOut:
    catalog = _catalog()
    service = catalog.replace_service(unquote(service_id), body.to_domain())
    return ServiceOut.of(service, catalog.keys_of(service.id))


@router.delete("/services/<service_id>", tags=["services"], summary="Disable a service (never erased)")
def delete_service(service_id: str) -> ServiceOut:
    catalog = _catalog()
    service = catalog.disable_service(unquote(service_id))
    return ServiceOut.of(service, catalog.keys_of(service.id))


@router.post(
    "/services/<service_id>/integration-keys",
    tags=["services"],
    summary="Add an integration key; the key is in the answer, this once",
)
def add_integration_key(service_id: str) -> Response[NewIntegrationKeyOut]:
    new_key = _catalog().add_key(unquote(service_id))
    return Response(
        status_code=201, content_type="application/json", body=NewIntegrationKeyOut.of_new(new_key)
    )


@router.delete(
    "/services/<service_id>/integration-keys/<key_id>",
    tags=["services"],
    summary="Revoke an integration key (it stops working; the record stays)",
)
def revoke_integration_key(service_id: str, key_id: str) -> IntegrationKeyOut:
    return IntegrationKeyOut.of(_catalog().revoke_key(unquote(service_id), unquote(key_id)))
