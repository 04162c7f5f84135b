"""What a route needs from the request besides its body: the caller and the public base URL."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

from incident_engine.wiring import services


def actor(app: ApiGatewayResolver, given: str | None) -> str:
    """The body's ``by`` when given, else the principal the authorizer vouched for."""
    return given or principal(app)


def principal(app: ApiGatewayResolver) -> str:
    """Who the authorizer vouched for, whatever the body says."""
    authorizer = (app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}
    return str(authorizer.get("principalId") or "api")


def base_url(app: ApiGatewayResolver) -> str | None:
    configured = services().settings.public_api_url
    if configured:
        return configured
    ctx = app.current_event.raw_event.get("requestContext") or {}
    domain, stage = ctx.get("domainName"), ctx.get("stage")
    if not domain:
        return None
    return f"https://{domain}/{stage}" if stage else f"https://{domain}"
