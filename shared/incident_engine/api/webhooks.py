"""/webhooks routes: receivers registered once, then targeted by id from policies."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import AfterValidator, AnyHttpUrl, BaseModel, Field

from incident_engine.api.schemas import Name, _bounded_url, _In
from incident_engine.domain.timefmt import to_iso
from incident_engine.domain.webhooks import Webhook
from incident_engine.usecases.webhooks import WebhookRegistry
from incident_engine.wiring import services

router = Router()


class WebhookIn(_In):
    name: Name
    url: Annotated[AnyHttpUrl, AfterValidator(_bounded_url)] = Field(
        description="https; no credentials; no private, loopback or metadata address (unless the deployment "
        "allows private targets)"
    )
    kind: Literal["generic", "slack"] = "generic"

    def to_domain(self) -> Webhook:
        return Webhook(id="", name=self.name, url=str(self.url), kind=self.kind)


class WebhookOut(BaseModel):
    id: str
    name: str
    url: str
    kind: str
    enabled: bool
    created_at: str | None
    updated_at: str | None
    version: int

    @staticmethod
    def of(w: Webhook) -> WebhookOut:
        return WebhookOut(
            id=w.id,
            name=w.name,
            url=w.url,
            kind=w.kind,
            enabled=w.enabled,
            created_at=to_iso(w.created_at) if w.created_at else None,
            updated_at=to_iso(w.updated_at) if w.updated_at else None,
            version=w.version,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="Signs every request (X-Incident-Signature): shown this once")


class WebhookList(BaseModel):
    items: list[WebhookOut]


def _registry() -> WebhookRegistry:
    return services().webhook_registry()


@router.post("/webhooks", tags=["webhooks"], summary="Register a webhook; its signing secret is shown once")
def create_webhook(body: WebhookIn) -> Response[WebhookCreatedOut]:
    webhook, secret = _registry().register(body.to_domain())
    out = WebhookCreatedOut(**WebhookOut.of(webhook).model_dump(), secret=secret)
    return Response(status_code=201, content_type="application/json", body=out)


@router.get("/webhooks", tags=["webhooks"], summary="List webhooks")
def list_webhooks(include_disabled: Annotated[bool, Query()] = False) -> WebhookList:
    return WebhookList(items=[WebhookOut.of(w) for w in _registry().list(include_disabled)])


@router.get("/webhooks/<webhook_id>", tags=["webhooks"], summary="Get one webhook (never its secret)")
def get_webhook(webhook_id: str) -> WebhookOut:
    return WebhookOut.of(_registry().get(unquote(webhook_id)))


@router.put("/webhooks/<webhook_id>", tags=["webhooks"], summary="Replace a webhook's name, URL or kind")
def replace_webhook(webhook_id: str, body: WebhookIn) -> WebhookOut:
    return WebhookOut.of(_registry().replace(unquote(webhook_id), body.to_domain()))


@router.delete("/webhooks/<webhook_id>", tags=["webhooks"], summary="Disable a webhook (never erased)")
def delete_webhook(webhook_id: str) -> WebhookOut:
    return WebhookOut.of(_registry().disable(unquote(webhook_id)))
