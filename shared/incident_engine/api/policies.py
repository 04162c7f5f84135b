"""/policies routes."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from incident_engine.api.schemas import PolicyIn, PolicyList, PolicyOut
from incident_engine.usecases.policies import PolicyService
from incident_engine.wiring import services

router = Router()


def _service() -> PolicyService:
    return services().policy_service()


@router.post("/policies", tags=["policies"], summary="Create an escalation policy")
def create_policy(body: PolicyIn) -> Response[PolicyOut]:
    svc = _service()
    policy = svc.create_policy(body.to_domain(), body.is_default)
    return Response(
        status_code=201, content_type="application/json", body=PolicyOut.of(policy, svc.default_policy_id())
    )


@router.get("/policies", tags=["policies"], summary="List escalation policies")
def list_policies(include_disabled: Annotated[bool, Query()] = False) -> PolicyList:
    svc = _service()
    default_id = svc.default_policy_id()
    return PolicyList(items=[PolicyOut.of(p, default_id) for p in svc.list_policies(include_disabled)])


@router.get("/policies/<policy_id>", tags=["policies"], summary="Get one policy")
def get_policy(policy_id: str) -> PolicyOut:
    svc = _service()
    return PolicyOut.of(svc.get_policy(unquote(policy_id)), svc.default_policy_id())


@router.put(
    "/policies/<policy_id>",
    tags=["policies"],
    summary="Replace a policy (incidents already escalating keep their snapshot)",
)
def replace_policy(policy_id: str, body: PolicyIn) -> PolicyOut:
    svc = _service()
    policy = svc.replace_policy(unquote(policy_id), body.to_domain(), body.is_default)
    return PolicyOut.of(policy, svc.default_policy_id())


@router.delete("/policies/<policy_id>", tags=["policies"], summary="Disable a policy (it is never erased)")
def delete_policy(policy_id: str) -> PolicyOut:
    svc = _service()
    return PolicyOut.of(svc.disable_policy(unquote(policy_id)), svc.default_policy_id())
