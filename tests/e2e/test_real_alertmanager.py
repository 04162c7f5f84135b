"""A real Alertmanager (the `prometheus-alertmanager` binary) against `make run`'s stack.

Alertmanager is configured as the README says (a webhook receiver with the service's integration
key as `http_config.authorization` credentials) and alerts are pushed to its own API, as
Prometheus does: what reaches the stack is exactly what Alertmanager sends (its headers, its
User-Agent, its body), through the local gateway and the token authorizer.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.process import LocalStackProcess, free_port, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / ".pytest_cache" / "e2e-alertmanager-stack.log"
HANG = 120  # seconds: a guard against a hang, never a bound on how fast anything must be
BINARIES = ("prometheus-alertmanager", "alertmanager")  # Debian's name, upstream's name


@dataclass
class Alertmanager:
    url: str
    service: dict[str, Any]

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            text = response.read()
            return json.loads(text) if text else None

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a counter's samples whose labels include `labels`, from /metrics."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=30) as response:  # noqa: S310
            text = response.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            series, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in series for k, v in labels.items()):
                total += float(value)
        return total


def alertmanager_binary() -> str:
    found = next((path for name in BINARIES if (path := shutil.which(name))), None)
    if found is None:
        pytest.fail(
            "the Alertmanager binary was not found on PATH (prometheus-alertmanager or alertmanager). "
            "Install it: `apt-get install -y prometheus-alertmanager` (Debian/Ubuntu; `.ci/run` does "
            "this when it is missing), or put upstream's `alertmanager` binary on PATH."
        )
    return found


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    with LocalStackProcess("e2e-token", LOG) as running:
        yield running


@pytest.fixture
def alertmanager(stack: LocalStackProcess, tmp_path: Path) -> Iterator[Alertmanager]:
    binary = alertmanager_binary()
    # Given a service, and its integration key as the receiver's credentials (the README's config)
    status, service = stack.call("POST", "/services", {"name": "databases", "default_severity": "P3"})
    assert status == 201, service
    config = {
        "global": {"resolve_timeout": "1m"},
        "route": {
            "receiver": "incident-engine",
            "group_by": ["alertname"],  # both alerts in one group: still one incident each
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "incident-engine",
                "webhook_configs": [
                    {
                        "url": f"{stack.url}/v1/integrations/alertmanager",  # the README's, stage and all
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": service["integration_key"]}},
                    }
                ],
            }
        ],
    }
    (tmp_path / "alertmanager.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (ROOT / ".pytest_cache" / "e2e-alertmanager.log").open("w")
    process = subprocess.Popen(  # noqa: S603 - the binary found on PATH, our own arguments
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip: one instance, no cluster port
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    running = Alertmanager(f"http://127.0.0.1:{port}", service)

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"alertmanager exited with code {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(running.url + "/-/ready", timeout=5) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(ready, HANG, "alertmanager to be ready")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


ALERTS = [
    {
        "labels": {"alertname": "DiskFull", "instance": "db-1:9100", "job": "node", "severity": "critical"},
        "annotations": {
            "summary": "Disk almost full on db-1",
            "description": "/var is 97% full.\nGrows 2% an hour.",
            "runbook_url": "https://runbooks.example.com/disk-full",
        },
    },
    {
        "labels": {"alertname": "DiskFull", "instance": "db-2:9100", "job": "node", "severity": "warning"},
        "annotations": {"summary": "Disk filling on db-2", "description": "/var is 85% full."},
    },
]


def webhook_answers() -> list[str]:
    """The status of every webhook request the stack answered, from its log (`make run`'s lines)."""
    return re.findall(r"\[api\] POST /v1/integrations/alertmanager -> (\d+)", LOG.read_text())


def incidents(stack: LocalStackProcess) -> list[dict[str, Any]]:
    status, page = stack.call("GET", "/incidents")
    assert status == 200, page
    out = []
    for item in page["items"]:
        status, incident = stack.call("GET", f"/incidents/{item['id']}")
        assert status == 200, incident
        out.append(incident)
    return out


def test_one_incident_per_firing_alert_resolved_when_it_clears(
    stack: LocalStackProcess, alertmanager: Alertmanager
) -> None:
    # When two firing alerts with different labels are pushed to Alertmanager's own API
    assert alertmanager.request("POST", "/api/v2/alerts", ALERTS) is None
    held = alertmanager.request("GET", "/api/v2/alerts")
    fingerprints = {a["labels"]["instance"]: a["fingerprint"] for a in held}
    assert len(set(fingerprints.values())) == 2, held
    # Then Alertmanager's webhook opens exactly two incidents, one per fingerprint
    wait_for(lambda: len(incidents(stack)) >= 2, HANG, "two incidents from Alertmanager's webhook")
    opened = {i["dedup_key"]: i for i in incidents(stack)}
    assert set(opened) == set(fingerprints.values()), opened
    for alert in ALERTS:
        incident = opened[fingerprints[alert["labels"]["instance"]]]
        # on the key's service, with the labels kept and the severity label mapped
        assert incident["service_id"] == alertmanager.service["id"], incident
        assert incident["labels"] == alert["labels"], incident
        assert incident["severity"] == {"critical": "P0", "warning": "P2"}[alert["labels"]["severity"]]
        assert incident["title"] == alert["annotations"]["summary"]
        assert incident["description"] == alert["annotations"]["description"]
        assert incident["source"] == alert["labels"]["instance"]
        assert incident["status"] in ("open", "escalating") and incident["alert_count"] >= 1
        # and the annotations kept as Alertmanager sent them
        kept = incident["latest_alert"]
        assert kept["integration"] == "alertmanager" and kept["raw"]["version"] == "4", kept
        assert kept["raw"]["alert"]["annotations"] == alert["annotations"], kept
        assert kept["raw"]["receiver"] == "incident-engine"
    # And every delivery Alertmanager made was answered 200: none refused for its headers, User-Agent
    # or body (on a busy machine Alertmanager may give up waiting on one and send it again: a timeout
    # of its own, which it counts as failed, so its failure counter is not the measure here)
    assert alertmanager.metric("alertmanager_notifications_total", integration="webhook") >= 1
    # (the stack logs a request once it has answered it, a moment after its incidents are stored)
    wait_for(webhook_answers, HANG, "the stack's log line for the webhook's request")
    assert set(webhook_answers()) == {"200"}, webhook_answers()

    # When both alerts are posted again with an end in the past (they cleared)
    ended = [
        {**alert, "startsAt": a["startsAt"], "endsAt": a["startsAt"]}
        for alert in ALERTS
        for a in held
        if a["labels"] == alert["labels"]
    ]
    assert len(ended) == 2
    assert alertmanager.request("POST", "/api/v2/alerts", ended) is None

    # Then Alertmanager sends them resolved, and both incidents resolve
    def both_resolved() -> bool:
        return sorted(i["status"] for i in incidents(stack)) == ["resolved", "resolved"]

    wait_for(both_resolved, HANG, "Alertmanager's resolved notification to resolve both incidents")
    closed = {i["dedup_key"]: i for i in incidents(stack)}
    assert set(closed) == set(fingerprints.values())  # still exactly two: nothing opened anew
    assert {i["resolved_by"] for i in closed.values()} == {"alertmanager"}
    for incident in closed.values():
        status, timeline = stack.call("GET", f"/incidents/{incident['id']}/timeline")
        assert status == 200 and timeline["items"][-1]["type"] == "resolved", timeline
    assert set(webhook_answers()) == {"200"}, webhook_answers()
