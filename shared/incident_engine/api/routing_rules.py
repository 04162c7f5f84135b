"""/routing-rules routes: the rules every alert and API create runs through, and their tester."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.api_gateway import Response, Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from incident_engine.domain.alerts import DEFAULT_SEVERITY, choose_severity
from incident_engine.domain.errors import InvalidInput
from incident_engine.domain.routing_documents import RuleDocument, SampleAlert, rule_document
from incident_engine.domain.timefmt import to_iso
from incident_engine.usecases.routing_rules import RoutingRules, StoredRule
from incident_engine.wiring import services

router = Router()


def _rules() -> RoutingRules:
    return services().routing_rules()


def _out(stored: StoredRule) -> dict[str, Any]:
    return {
        **rule_document(stored.rule),
        "version": stored.version,
        "created_at": to_iso(stored.created_at),
        "updated_at": to_iso(stored.updated_at),
    }


def _rule(body: RuleDocument) -> Any:
    if body.id is not None:
        raise InvalidInput("id", "is assigned by the server")
    return body.to_rule()


@router.post("/routing-rules", tags=["routing"], summary="Create a routing rule")
def create_rule(body: RuleDocument) -> Response[dict[str, Any]]:
    stored = _rules().create(_rule(body))
    return Response(status_code=201, content_type="application/json", body=_out(stored))


@router.get("/routing-rules", tags=["routing"], summary="List routing rules in the order they run")
def list_rules(include_disabled: Annotated[bool, Query()] = False) -> dict[str, Any]:
    return {"items": [_out(s) for s in _rules().list_rules(include_disabled)]}


@router.post(
    "/routing-rules/test",
    tags=["routing"],
    summary="Which rules a sample alert matches, in order, and the incident they make; stores nothing",
)
def test_rules(body: SampleAlert) -> dict[str, Any]:
    alert = body.to_alert()
    result = _rules().test(alert).as_dict()
    incident = result["incident"]
    # What the incident would get with no rule saying otherwise, as ingest places an alert.
    incident["severity"] = incident["severity"] or choose_severity(alert, None).value
    incident["service"], incident["team"] = alert.service, alert.team
    result["default_severity"] = DEFAULT_SEVERITY[alert.integration].value
    return result


@router.get("/routing-rules/<rule_id>", tags=["routing"], summary="Get one routing rule")
def get_rule(rule_id: str) -> dict[str, Any]:
    return _out(_rules().get(unquote(rule_id)))


@router.put("/routing-rules/<rule_id>", tags=["routing"], summary="Replace a routing rule")
def replace_rule(rule_id: str, body: RuleDocument) -> dict[str, Any]:
    return _out(_rules().replace_rule(unquote(rule_id), _rule(body)))


@router.delete(
    "/routing-rules/<rule_id>", tags=["routing"], summary="Disable a routing rule (it is never erased)"
)
def delete_rule(rule_id: str) -> dict[str, Any]:
    return _out(_rules().disable(unquote(rule_id)))
