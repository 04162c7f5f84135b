"""Heartbeat pings into `make run`'s stack over HTTP: the gateway runs the template's authorizer, so
the service's integration key is what a job would really send. (Misses need the clock moved: the
integration tests do that with time-machine.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.process import LocalStackProcess

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-heartbeats.log"


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    with LocalStackProcess("e2e-token", LOG) as running:
        yield running


def test_a_job_pings_with_its_services_key_and_nothing_else_does(stack: LocalStackProcess) -> None:
    # Given a service, another one, and a heartbeat on the first
    status, service = stack.call("POST", "/services", {"name": "nightly"})
    assert status == 201, service
    other = stack.call("POST", "/services", {"name": "other"})[1]
    body = {"name": "backup", "service_id": service["id"], "interval_minutes": 60}
    status, hb = stack.call("POST", "/heartbeats", body)
    assert status == 201 and hb["ping_url"] == f"{stack.url}/heartbeats/{hb['id']}/ping", hb
    ping = f"/heartbeats/{hb['id']}/ping"
    # When the job pings with the service's integration key
    status, answer = stack.call("POST", ping, token=service["integration_key"])
    # Then it is recorded
    assert status == 200 and answer["heartbeat"]["last_ping_at"] is not None, answer
    # And another service's key, the admin token, or no token are refused; the key reaches nothing else
    assert stack.call("POST", ping, token=other["integration_key"])[0] == 403
    assert stack.call("POST", ping)[0] == 403
    assert stack.call("POST", ping, token=None)[0] == 401
    assert stack.call("GET", f"/heartbeats/{hb['id']}", token=service["integration_key"])[0] == 403
