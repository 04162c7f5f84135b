"""A published PagerDuty client, with only its base URL changed, against `make run`'s stack."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.process import LocalStackProcess

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pdpyras warns that it is deprecated; it is still what tools use
    import pdpyras

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-pagerduty.log"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    with LocalStackProcess("e2e-token", LOG) as running:
        yield running


def only_incident(stack: LocalStackProcess) -> dict[str, Any]:
    status, page = stack.call("GET", "/incidents")
    assert status == 200, page
    [item] = page["items"]
    status, incident = stack.call("GET", f"/incidents/{item['id']}")
    assert status == 200, incident
    return incident  # type: ignore[no-any-return]


def test_pdpyras_triggers_acknowledges_and_resolves(stack: LocalStackProcess) -> None:
    # Given a service and its integration key, used as PagerDuty's routing key
    status, service = stack.call("POST", "/services", {"name": "checkout"})
    assert status == 201, service
    session = pdpyras.EventsAPISession(service["integration_key"])
    session.url = stack.url  # the only change a PagerDuty user makes
    # When the client triggers, twice, with its own dedup key
    dedup_key = session.trigger("Checkout 5xx above 20%", "prod-checkout-01", severity="error")
    assert session.trigger("Checkout 5xx above 20%", "prod-checkout-01", dedup_key=dedup_key) == dedup_key
    # Then one incident opened, on the service, with both alerts counted
    incident = only_incident(stack)
    assert incident["service_id"] == service["id"] and incident["dedup_key"] == dedup_key
    assert incident["severity"] == "P1" and incident["alert_count"] == 2
    # When it acknowledges, then resolves
    session.acknowledge(dedup_key)
    assert only_incident(stack)["status"] == "acknowledged"
    session.resolve(dedup_key)
    assert only_incident(stack)["status"] == "resolved"
    # And a bad routing key is refused as PagerDuty refuses it
    bad = pdpyras.EventsAPISession("0" * 32)
    bad.url = stack.url
    with pytest.raises(pdpyras.PDClientError) as refused:
        bad.trigger("nobody's", "nowhere")
    response = refused.value.response
    assert response is not None and response.status_code == 400
    assert response.json()["status"] == "invalid event"
