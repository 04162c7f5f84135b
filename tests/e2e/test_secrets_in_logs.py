"""No secret in the log of a full run (issue 10): `make run`'s stack at DEBUG, driven over HTTP with
scoped tokens, integration keys, a webhook with its signing secret, and people with e-mail
addresses and phone numbers; then every line it wrote (gateway, api containers, worker and
sender processes) is searched for each of them. Only the banner may show the admin token."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from incident_engine.api.security import SECURITY_HEADERS
from local.process import LocalStackProcess, TopicTap, wait_for

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-secrets.log"
HANG = 120  # seconds: a guard against a hang, never a bound on how fast anything must be
ADMIN_TOKEN = "e2e-admin-" + secrets.token_urlsafe(16)


class Receiver:
    """A webhook receiver on loopback whose URL path is itself a secret (as Slack's are)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.path_secret = secrets.token_urlsafe(18)
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{self.path_secret}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_a_full_run_logs_none_of_the_secrets_it_used(receiver: Receiver) -> None:
    used: dict[str, str] = {}
    stack = LocalStackProcess(ADMIN_TOKEN, LOG, {"RECONCILE_SECONDS": "2", "LOG_LEVEL": "DEBUG"})
    with stack:
        tap = TopicTap(stack, "secrets-tap")
        # every answer over HTTP carries the security headers: the function's and the gateway's own
        for path, bearer in (
            ("/health", None),
            ("/incidents", None),
            ("/nowhere", None),
            ("/incidents", "x"),
        ):
            request = urllib.request.Request(stack.url + path)  # noqa: S310 - loopback
            if bearer:
                request.add_header("Authorization", f"Bearer {bearer}")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
                    headers = response.headers
            except urllib.error.HTTPError as err:
                headers = err.headers
            for name in SECURITY_HEADERS:
                assert headers.get(name), (path, name, dict(headers))
            assert headers["X-Content-Type-Options"] == "nosniff" and headers["Cache-Control"] == "no-store"

        def ok(method: str, path: str, body: Any = None, token: str | None = "", expect: int = 200) -> Any:
            status, answer = stack.call(method, path, body, token=token)
            assert status == expect, (method, path, status, answer)
            return answer

        # people with addresses and phone numbers
        used["email"] = "dana.secretary@example.org"
        used["phone"] = "+14155550199"
        used["target email"] = "oncall.lead@example.net"
        user = ok(
            "POST",
            "/users",
            {
                "name": "Dana",
                "email": used["email"],
                "contact_methods": [
                    {"type": "email", "address": used["email"]},
                    {"type": "sms", "address": used["phone"]},
                ],
            },
            expect=201,
        )
        # a webhook, and its signing secret
        hook = ok("POST", "/webhooks", {"name": "ops", "url": receiver.url}, expect=201)
        used["webhook secret"] = hook["secret"]
        used["webhook url secret"] = receiver.path_secret
        ok(
            "POST",
            "/policies",
            {
                "name": "all",
                "is_default": True,
                "levels": [
                    {
                        "delay_minutes": 0,
                        "targets": [
                            {"type": "user", "user_id": user["id"]},
                            {"type": "user", "email": used["target email"]},
                            {"type": "webhook", "webhook_id": hook["id"]},
                        ],
                    }
                ],
            },
            expect=201,
        )
        # tokens of each scope, one held to a team, one revoked, one wrong
        writer = ok("POST", "/tokens", {"name": "pager bot", "scopes": ["write"]}, expect=201)
        admin = ok("POST", "/tokens", {"name": "ops admin", "scopes": ["admin"]}, expect=201)
        team = ok(
            "POST", "/tokens", {"name": "pay", "scopes": ["read"], "team_ids": ["payments"]}, expect=201
        )
        gone = ok("POST", "/tokens", {"name": "gone", "scopes": ["read"]}, expect=201)
        ok("DELETE", f"/tokens/{gone['id']}")
        used |= {
            "write token": writer["token"],
            "admin token": admin["token"],
            "team token": team["token"],
            "revoked token": gone["token"],
        }
        used["wrong token"] = "iet_" + secrets.token_urlsafe(32)
        assert stack.call("GET", "/incidents", token=used["wrong token"])[0] == 401
        assert stack.call("GET", "/incidents", token=used["revoked token"])[0] == 401
        assert stack.call("GET", "/tokens", token=used["write token"])[0] == 403
        # a service and its integration keys, used by both alert sources
        service = ok(
            "POST", "/services", {"name": "checkout", "team_id": "payments"}, expect=201, token=admin["token"]
        )
        used["integration key"] = service["integration_key"]
        second = ok("POST", f"/services/{service['id']}/integration-keys", expect=201)
        used["second integration key"] = second["integration_key"]
        alert = {
            "version": "4",
            "status": "firing",
            "receiver": "incident-engine",
            "groupKey": "g",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "DiskFull", "severity": "critical"},
                    "annotations": {"summary": "disk full"},
                    "startsAt": "2026-01-01T00:00:00Z",
                    "fingerprint": "abc123",
                }
            ],
        }
        ok("POST", "/integrations/alertmanager", alert, token=used["integration key"])
        enqueue = {
            "routing_key": used["second integration key"],
            "event_action": "trigger",
            "payload": {"summary": "checkout latency", "source": "probe", "severity": "error"},
        }
        assert stack.call("POST", "/v2/enqueue", enqueue, token=None)[0] == 202
        bad_key = dict(enqueue, routing_key=secrets.token_hex(16))
        used["unknown routing key"] = bad_key["routing_key"]
        assert stack.call("POST", "/v2/enqueue", bad_key, token=None)[0] == 400
        # incidents acted on by a token, seen by the team's token
        incident = ok(
            "POST",
            "/incidents",
            {"title": "Checkout down", "severity": "P1"},
            token=writer["token"],
            expect=201,
        )
        path = f"/incidents/{incident['id']}"
        ok("POST", f"{path}/notes", {"text": "looking"}, token=writer["token"], expect=201)
        assert stack.call("GET", path, token=team["token"])[0] == 404
        ok("GET", "/incidents", token=team["token"])
        # every page reached SNS and the webhook receiver got its POST
        wait_for(
            lambda: {"page"} <= {a["kind"] for _, _, a in tap.poll()} and receiver.bodies,
            HANG,
            "pages on the topic and the webhook delivered",
        )
        ok("POST", f"{path}/acknowledge", {"by": used["email"]}, token=writer["token"])
        ok("POST", f"{path}/resolve", token=writer["token"])
        recipients = {a["recipient"] for _, _, a in tap.poll()}
        assert {used["email"], used["target email"], used["phone"]} <= recipients
        wait_for(lambda: len(receiver.bodies) >= 2, HANG, "the webhook's resolution notice")
    assert stack.exit_code == 0
    log = LOG.read_text()
    assert "[sns]" in log and "[api]" in log  # the run's own lines are there to search
    lines = log.splitlines()
    leaks = {name: value for name, value in used.items() if value in log}
    assert leaks == {}, [line for line in lines if any(v in line for v in leaks.values())][:5]
    # a phone number is not there without its + either, nor an address in any case
    assert used["phone"][1:] not in log
    assert used["email"].lower() not in log.lower()
    # the admin token: in the banner (its line and the curl), nowhere else
    showing = [line for line in lines if ADMIN_TOKEN in line]
    assert len(showing) == 2 and showing[0].strip().startswith("API token"), showing
    assert showing[1].strip().startswith("curl "), showing
