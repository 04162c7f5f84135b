"""Issue 8's "done when", over real HTTP against `make run`'s stack, tried as a new user would.

The local stack runs as its own process (python -m local.stack) and is driven only through its
HTTP API and the emulated AWS endpoint: the README's worked example run as written (its curl
commands and its webhook receiver), who is on call across a DST change, a schedule level resolved
when it fires (an override added after the incident opened wins), a level that reaches nobody,
signed webhooks and their retries, the one-click acknowledge link, and bad input on every new
route. Deadlines only guard against a hang; nothing here bounds how fast anything must be.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from incident_engine.domain.timefmt import parse_iso
from incident_engine.domain.webhooks import SIGNATURE_HEADER, verify
from local.process import LocalStackProcess, TopicTap, free_port, wait_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
LOG = ROOT / ".pytest_cache" / "e2e-oncall-local-stack.log"
README = ROOT / "README.md"
EXAMPLE_HEADING = "## Worked example:"
HANG = 120  # seconds: a guard against a hang, never a bound on how fast anything must be


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    # WEBHOOK_RETRY_SCALE: a failing receiver's 8 attempts take seconds instead of 17 minutes
    running = LocalStackProcess(
        "e2e-oncall-token", LOG, {"RECONCILE_SECONDS": "5", "WEBHOOK_RETRY_SCALE": "0.01"}
    )
    with running:
        yield running
    assert running.exit_code == 0, LOG.read_text()


@pytest.fixture(scope="module")
def tap(stack: LocalStackProcess) -> TopicTap:
    return TopicTap(stack, f"e2e-oncall-tap-{os.getpid()}")


def ok(stack: LocalStackProcess, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
    status, answer = stack.call(method, path, body)
    assert status == expect, (method, path, status, answer)
    return answer


def page(url: str, method: str = "GET") -> tuple[int, str]:
    """A browser's request: no bearer token, an HTML answer."""
    request = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local stack
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def user(stack: LocalStackProcess, name: str, *contacts: dict[str, str]) -> str:
    body = {"name": name, "email": f"{name.lower()}@example.com", "contact_methods": list(contacts)}
    return str(ok(stack, "POST", "/users", body, expect=201)["id"])


def steps(stack: LocalStackProcess, incident_id: str) -> list[dict[str, Any]]:
    return list(ok(stack, "GET", f"/incidents/{incident_id}/escalations")["items"])


def timeline(stack: LocalStackProcess, incident_id: str) -> list[dict[str, Any]]:
    return list(ok(stack, "GET", f"/incidents/{incident_id}/timeline")["items"])


def pages_for(tap: TopicTap, incident_id: str, level: int) -> list[dict[str, Any]]:
    tap.poll()
    return [
        m
        for m in tap.messages
        if m["attributes"].get("incident_id") == incident_id
        and m["attributes"]["kind"] == "page"
        and m["attributes"].get("level") == str(level)
    ]


# --- the README's worked example, run as written ------------------------------------------------


def example_blocks() -> tuple[str, str, str]:
    """The worked example's receiver.py, its setup commands, and what follows the pages."""
    text = README.read_text()
    section = text[text.index(EXAMPLE_HEADING) :]
    section = section[: section.index("\n## ", 1)]
    [receiver] = re.findall(r"```python\n(.*?)```", section, re.S)
    setup, after = re.findall(r"```bash\n(.*?)```", section, re.S)
    return receiver, setup, after


def readme_oncall_claims(setup: str) -> list[tuple[str, str, str]]:
    """(instant, name, layer) for each `oncall?at=...  # -> Name (layer)` line of the example."""
    claims = re.findall(r'oncall\?at=([0-9TZ:-]+)"\s+# -> (\w+) \((\w+)\)', setup)
    assert len(claims) >= 2, setup
    return claims


def test_the_readme_worked_example_runs_as_written(
    stack: LocalStackProcess, tap: TopicTap, tmp_path: Path
) -> None:
    receiver, setup, after = example_blocks()
    (tmp_path / "receiver.py").write_text(receiver)
    # The example's first line is where the reader fills in their own stack: this test's stack
    lines = setup.splitlines()
    assert lines[0].startswith("export API=")
    script = "\n".join(
        ["set -euo pipefail", *lines[1:], "read -r _  # the test looks, then says go on", after]
    )
    env = {
        **os.environ,
        "API": stack.url,
        "TOKEN": stack.token,
        "HOOK_PORT": str(free_port()),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    output = tmp_path / "example.out"
    with output.open("w") as out:
        shell = subprocess.Popen(  # noqa: S603 - bash running the README's own commands
            ["bash", "-c", script],  # noqa: S607
            cwd=tmp_path,
            env=env,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # the receiver it starts in the background is in its group
        )
        try:
            _check_the_example(stack, tap, shell, output)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
            shell.wait(timeout=HANG)


def _check_the_example(
    stack: LocalStackProcess, tap: TopicTap, shell: subprocess.Popen[str], output: Path
) -> None:
    def said() -> str:
        if shell.poll() not in (None, 0):
            raise AssertionError(f"the example failed ({shell.returncode}):\n{output.read_text()}")
        return output.read_text()

    # When the example has run: the receiver says it got a POST whose signature verified
    verified = wait_for(
        lambda: re.search(r"verified (\{.*\})$", said(), re.M), HANG, "the receiver to print verified"
    )
    assert "REJECTED" not in said()
    body = json.loads(verified.group(1))
    [incident] = [
        i for i in ok(stack, "GET", "/incidents")["items"] if i["title"] == "Payments API 5xx above 5%"
    ]
    inc = incident["id"]
    assert (body["event"], body["incident"]["id"], body["level"]) == ("incident.page", inc, 2)
    assert body["actions"]["acknowledge"].startswith(f"{stack.url}/a/")
    # Then the schedule answers as the README says on both sides of Berlin's spring-forward
    [schedule] = [
        s for s in ok(stack, "GET", "/schedules")["items"] if s["name"] == "Payments follow-the-sun"
    ]
    for at, name, layer in readme_oncall_claims(example_blocks()[1]):
        answer = ok(stack, "GET", f"/schedules/{schedule['id']}/oncall?at={at}")
        assert [(o["name"], o["source"]) for o in answer["oncall"]] == [(name, layer)], (at, answer)
    # And level 0 paged whoever was on call at the instant it fired, saying which layer put them there
    fired = steps(stack, inc)
    assert [(s["level"], s["status"]) for s in fired] == [(0, "executed"), (1, "executed"), (2, "executed")]
    at = fired[0]["executed_at"]
    [on_call] = ok(stack, "GET", f"/schedules/{schedule['id']}/oncall?at={at}")["oncall"]
    assert {(r["user_id"], r["why"]["source"]) for r in fired[0]["recipients"]} == {
        (on_call["user_id"], on_call["source"])
    }
    # level 1 the whole team (Ann on her SMS and e-mail), level 2 the webhook
    team = {r["address"] for r in fired[1]["recipients"]}
    assert team == {
        "+4915100000001",
        "ann@example.com",
        "bob@example.com",
        "carl@example.com",
        "dana@example.com",
    }
    assert [r["channel"] for r in fired[2]["recipients"]] == ["webhook"]
    wait_for(lambda: len(pages_for(tap, inc, 1)) == 5, HANG, "level 1's five pages on the topic")
    wait_for(
        lambda: (
            next(
                r
                for r in ok(stack, "GET", f"/incidents/{inc}/notifications")["items"]
                if r["channel"] == "webhook"
            )["status"]
            == "delivered"
        ),
        HANG,
        "the webhook row marked delivered",
    )
    # When the reader goes on: the second block resolves the incident and stops the receiver
    assert shell.stdin is not None
    shell.stdin.write("\n")
    shell.stdin.close()
    assert shell.wait(timeout=HANG) == 0, output.read_text()
    assert ok(stack, "GET", f"/incidents/{inc}")["status"] == "resolved"


# --- a schedule level is resolved when it fires; the page's acknowledge link ---------------------


def test_a_schedule_level_pages_whoever_is_on_call_when_it_fires_and_the_page_acknowledges(
    stack: LocalStackProcess, tap: TopicTap
) -> None:
    # Given Erin on call around the clock, Finn who is not, and a policy whose level 1 targets
    # the schedule a moment after level 0
    erin = user(stack, "Erin", {"type": "email", "address": "erin@example.com"})
    finn = user(stack, "Finn", {"type": "email", "address": "finn@example.com"})
    layer = {
        "name": "primary",
        "users": [erin],
        "rotation": {"type": "daily", "start": "2026-01-01T00:00", "handoff_time": "00:00"},
    }
    body = {"name": "Erin's", "time_zone": "UTC", "layers": [layer]}
    schedule = ok(stack, "POST", "/schedules", body, expect=201)["id"]
    # The override must be in place before level 1 fires. Whether it was is read from the stored
    # times afterwards; on a machine too slow for the first delay, the next, longer one is tried
    # (a precondition checked, never a bound on speed).
    for delay in (0.05, 0.25, 1.0, 4.0):
        levels = [
            {"delay_minutes": 0, "targets": [{"type": "user", "email": "desk@example.com"}]},
            {"delay_minutes": delay, "targets": [{"type": "schedule", "schedule_id": schedule}]},
            {"delay_minutes": 60, "targets": [{"type": "user", "email": "lead@example.com"}]},
        ]
        policy = ok(stack, "POST", "/policies", {"name": f"schedule {delay}", "levels": levels}, expect=201)
        # When an incident opens, and only then Finn takes over with an override
        incident = {"title": "Card auth timeouts", "severity": "P1", "policy_id": policy["id"]}
        inc = ok(stack, "POST", "/incidents", incident, expect=201)["id"]
        now = datetime.now(UTC)
        override = {
            "user_id": finn,
            "start": (now - timedelta(minutes=1)).isoformat(),
            "end": (now + timedelta(hours=1)).isoformat(),
        }
        created = ok(stack, "POST", f"/schedules/{schedule}/overrides", override, expect=201)
        in_place = datetime.now(UTC)
        fired = wait_for(
            lambda: (s := steps(stack, inc)) and len(s) > 1 and s[1]["status"] == "executed" and s,  # noqa: B023
            HANG + delay * 60,
            "level 1 to fire",
        )
        if parse_iso(fired[1]["executed_at"]) > in_place:
            break
        ok(stack, "DELETE", f"/schedules/{schedule}/overrides/{created['id']}")
        ok(stack, "POST", f"/incidents/{inc}/cancel", {"reason": "override came too late on this machine"})
    else:
        pytest.fail("level 1 fired before the override was in place at every delay tried")
    # Then level 1 paged Finn, on call by override at the instant it fired, and not Erin
    assert [(r["user_id"], r["address"], r["why"]["source"]) for r in fired[1]["recipients"]] == [
        (finn, "finn@example.com", "override")
    ]
    [finn_page] = wait_for(lambda: pages_for(tap, inc, 1), HANG, "level 1's page on the topic")
    assert finn_page["attributes"]["recipient"] == "finn@example.com"
    # When Finn follows the acknowledge link in his page: a confirmation page that does not act
    ack = re.search(r"^Acknowledge \(stops escalation\): (\S+)$", finn_page["message"], re.M)
    assert ack, finn_page["message"]
    link = ack.group(1)
    assert link.startswith(f"{stack.url}/a/") and link == finn_page["attributes"]["ack_url"]
    status, html = page(link)
    assert status == 200 and "finn@example.com" in html and "<form method=post>" in html
    assert ok(stack, "GET", f"/incidents/{inc}")["status"] == "escalating"
    # and a tampered copy of it does nothing, whether followed or confirmed
    token = link.rsplit("/a/", 1)[1]
    payload, mac = token.split(".")
    tampered = f"{stack.url}/a/{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}"
    for method in ("GET", "POST"):
        status, html = page(tampered, method)
        assert status == 400 and "Nothing was changed" in html, (method, status, html)
    assert ok(stack, "GET", f"/incidents/{inc}")["status"] == "escalating"
    # When he confirms
    status, html = page(link, "POST")
    # Then the incident is acknowledged as Finn, on the timeline too, and level 2 is cancelled
    assert status == 200 and "acknowledged by finn@example.com" in html
    acked = ok(stack, "GET", f"/incidents/{inc}")
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "finn@example.com")
    last = timeline(stack, inc)[-1]
    assert (last["type"], last["actor"]) == ("acknowledged", "finn@example.com")
    assert [s["status"] for s in steps(stack, inc)] == ["executed", "executed", "cancelled"]


# --- a level that reaches nobody ----------------------------------------------------------------


def test_a_level_that_resolves_to_nobody_moves_on_at_once(stack: LocalStackProcess, tap: TopicTap) -> None:
    # Given a schedule nobody is on call for yet (its rotation starts in 2030), and a policy whose
    # level 1 would wait an hour after it
    gail = user(stack, "Gail")
    layer = {"name": "future", "users": [gail], "rotation": {"type": "daily", "start": "2030-01-01T00:00"}}
    schedule = ok(
        stack, "POST", "/schedules", {"name": "Not yet", "time_zone": "UTC", "layers": [layer]}, 201
    )
    assert ok(stack, "GET", f"/schedules/{schedule['id']}/oncall")["oncall"] == []
    levels = [
        {"delay_minutes": 0, "targets": [{"type": "schedule", "schedule_id": schedule["id"]}]},
        {"delay_minutes": 60, "targets": [{"type": "user", "email": "second-line@example.com"}]},
    ]
    policy = ok(stack, "POST", "/policies", {"name": "nobody first", "levels": levels}, expect=201)
    # When an incident opens
    body = {"title": "Ledger lag", "severity": "P2", "policy_id": policy["id"]}
    inc = ok(stack, "POST", "/incidents", body, expect=201)["id"]
    # Then level 0 records nobody_on_call, and level 1 pages at once rather than an hour later
    [second] = wait_for(lambda: pages_for(tap, inc, 1), HANG, "level 1's page")
    assert second["attributes"]["recipient"] == "second-line@example.com"
    [nobody] = [e for e in timeline(stack, inc) if e["type"] == "nobody_on_call"]
    assert nobody["data"]["level"] == 0
    assert nobody["data"]["skipped"] == [
        {"target": 0, "type": "schedule", "id": schedule["id"], "reason": "nobody_on_call"}
    ]
    first, then = steps(stack, inc)[:2]
    assert first["recipients"] == [] and then["status"] == "executed"
    assert then["scheduled_at"] == first["executed_at"]  # due the instant level 0 fired
    assert pages_for(tap, inc, 0) == []


# --- webhooks: signed, and retried --------------------------------------------------------------


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each POST and answers `status`."""

    def __init__(self, status: int) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_receiver_that_answers_500_gets_signed_retries_then_the_give_up(stack: LocalStackProcess) -> None:
    with Receiver(500) as receiver:
        # Given a webhook registered on 127.0.0.1 whose receiver answers 500, targeted by level 0
        hook = ok(stack, "POST", "/webhooks", {"name": "flaky", "url": receiver.url}, expect=201)
        levels = [{"delay_minutes": 0, "targets": [{"type": "webhook", "webhook_id": hook["id"]}]}]
        policy = ok(stack, "POST", "/policies", {"name": "to flaky", "levels": levels}, expect=201)
        # When an incident opens
        body = {"title": "Disk full on db-3", "severity": "P2", "policy_id": policy["id"]}
        inc = ok(stack, "POST", "/incidents", body, expect=201)["id"]

        def row() -> dict[str, Any]:
            rows = ok(stack, "GET", f"/incidents/{inc}/notifications")["items"]
            return next(r for r in rows if r["channel"] == "webhook")

        # Then it is retried (waits scaled down by WEBHOOK_RETRY_SCALE) until the sender gives up
        wait_for(lambda: row()["status"] == "failed", HANG, "the sender to give up")
        assert (row()["delivery_attempts"], row()["last_http_status"]) == (8, 500)
        assert len(receiver.requests) == 8
        # each attempt the same notification, signed with the secret the webhook was given
        assert {h["X-Incident-Dedup-Id"] for h, _ in receiver.requests} == {row()["dedup_id"]}
        for headers, raw in receiver.requests:
            assert verify(hook["secret"], headers[SIGNATURE_HEADER], raw, now=int(time.time()))
            assert not verify("whsec_another", headers[SIGNATURE_HEADER], raw, now=int(time.time()))
            assert json.loads(raw)["incident"]["id"] == inc


# --- bad input on every new route ---------------------------------------------------------------


def test_every_new_route_answers_bad_input_with_a_4xx_naming_the_field(stack: LocalStackProcess) -> None:
    uid = user(stack, "Hana")
    layer = {"name": "l", "users": [uid], "rotation": {"type": "daily", "start": "2026-01-01T09:00"}}
    sid = ok(stack, "POST", "/schedules", {"name": "s", "time_zone": "UTC", "layers": [layer]}, 201)["id"]
    hook = ok(stack, "POST", "/webhooks", {"name": "w", "url": "https://hooks.example.com/x"}, 201)["id"]
    cases: list[tuple[str, str, Any, str]] = [
        (
            "POST",
            "/users",
            {"name": "Ivy", "email": "ivy@example.com", "time_zone": "Mars/Base"},
            "time_zone",
        ),
        ("POST", "/users", {"name": "Ivy", "email": "ivy"}, "email"),
        ("PUT", f"/users/{uid}", {"name": "", "email": "hana@example.com", "version": 1}, "name"),
        ("POST", "/teams", {"name": "t", "members": ["usr_nobody"]}, "members.0"),
        ("POST", "/schedules", {"name": "s", "time_zone": "UTC", "layers": []}, "layers"),
        ("POST", "/schedules", {"name": "s", "time_zone": "Nowhere/City", "layers": [layer]}, "time_zone"),
        ("POST", f"/schedules/{sid}/overrides", {"user_id": uid, "start": "soon", "end": "later"}, "start"),
        ("GET", f"/schedules/{sid}/oncall?at=yesterday", None, "at"),
        ("GET", f"/schedules/{sid}/shifts?from=2026-01-01T00:00:00Z&to=2026-12-31T00:00:00Z", None, "to"),
        ("POST", "/webhooks", {"name": "w", "url": "https://hooks.example.com/x", "kind": "teams"}, "kind"),
        ("POST", "/webhooks", {"name": "w", "url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ("PUT", f"/webhooks/{hook}", {"name": "w", "url": "ftp://hooks.example.com/x"}, "url"),
    ]
    for method, path, body, field in cases:
        status, answer = stack.call(method, path, body)
        assert 400 <= status < 500 and answer["field"] in (field, f"query.{field}"), (method, path, answer)
    # A link that is not one of ours answers a page that says nothing changed, never an action
    for method in ("GET", "POST"):
        status, html = page(f"{stack.url}/a/not-a-link", method)
        assert status == 400 and "Nothing was changed" in html
