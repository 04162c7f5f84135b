"""The local stack's gateway and supervision under what an outside probe sends, over real HTTP.

Malformed or stalled requests answer JSON errors instead of dropping the connection or holding a
thread; requests run concurrently; a killed worker or API container is replaced, and says so.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local.endpoints import dynamodb_port
from local.process import LocalStackProcess, wait_for

pytestmark = pytest.mark.e2e
LOG = Path(__file__).resolve().parents[2] / ".pytest_cache" / "e2e-local-gateway.log"
HANG = 120  # seconds: a guard against a hang, never a bound on how fast anything must be
READ_TIMEOUT = 2  # seconds the gateway gives a client to send its request (LOCAL_READ_TIMEOUT)
# These find the stack's processes and sockets in /proc.


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStackProcess]:
    running = LocalStackProcess(
        "gateway-token", LOG, {"RECONCILE_SECONDS": "5", "LOCAL_READ_TIMEOUT": str(READ_TIMEOUT)}
    )
    with running:
        yield running
    assert running.exit_code == 0, LOG.read_text()


def raw(stack: LocalStackProcess, head: str, body: bytes = b"") -> tuple[int, dict[str, Any], str]:
    """Send bytes as written (no client fixes them up) and read one answer; the socket stays open."""
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=HANG) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, dict(response.getheaders()), response.read().decode()


def children(pid: int, marker: str) -> list[int]:
    """Live child processes of `pid` whose command line contains `marker` (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # it exited while we looked
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and marker in cmdline and state != "Z":
            found.append(int(entry))
    return found


def environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def no_traceback(stack: LocalStackProcess) -> None:
    assert "Traceback" not in LOG.read_text(), LOG.read_text()
    assert stack.call("GET", "/health", token=None) == (200, {"status": "ok"})


def test_a_content_length_that_is_not_a_number_answers_400_json(stack: LocalStackProcess) -> None:
    # When a request says Content-Length: abc
    status, headers, body = raw(stack, "POST /incidents HTTP/1.1\nHost: x\nContent-Length: abc\n")
    # Then it is a 400 in the API's JSON error shape, the connection is closed cleanly, and the
    # gateway logged no traceback and still answers
    assert status == 400 and json.loads(body)["error"] == "bad_request", body
    assert headers["Connection"] == "close"
    no_traceback(stack)


def test_a_negative_length_answers_400(stack: LocalStackProcess) -> None:
    status, _, body = raw(stack, "POST /incidents HTTP/1.1\nHost: x\nContent-Length: -5\n")
    assert status == 400 and json.loads(body)["error"] == "bad_request", body
    no_traceback(stack)


def test_a_length_above_the_limit_answers_413_without_waiting_for_the_body(stack: LocalStackProcess) -> None:
    # When a request announces 100 GB and sends nothing: a 413 comes (not the 408 of a client
    # that stalls, which the gateway would answer after its read timeout)
    status, _, body = raw(stack, "POST /incidents HTTP/1.1\nHost: x\nContent-Length: 100000000000\n")
    assert status == 413 and json.loads(body)["error"] == "payload_too_large", body
    no_traceback(stack)


def test_a_client_that_stops_sending_its_body_gets_408_and_holds_no_thread(stack: LocalStackProcess) -> None:
    # When a client announces 100 bytes, sends 10 and waits
    head = "POST /incidents HTTP/1.1\nHost: x\nContent-Type: application/json\nContent-Length: 100\n"
    status, _, body = raw(stack, head, b'{"title": ')
    # Then the gateway gives up after its read timeout: a 408, and the connection is closed
    assert status == 408 and json.loads(body)["error"] == "request_timeout", body
    no_traceback(stack)


def test_trace_answers_405_and_malformed_requests_answer_json(stack: LocalStackProcess) -> None:
    # When a TRACE comes, Then it is a 405 naming the methods allowed, in the JSON error shape
    status, headers, body = raw(stack, "TRACE /incidents HTTP/1.1\nHost: x\n")
    assert status == 405 and json.loads(body)["error"] == "method_not_allowed", body
    assert headers["Allow"] == "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
    # And an unknown method (no route declares it, as API Gateway says), an over-long URI and a
    # garbled request line answer JSON, not HTML
    for head, code in (
        ("BREW /incidents HTTP/1.1\nHost: x\n", 403),
        (f"GET /{'a' * 70_000} HTTP/1.1\nHost: x\n", 414),
        ("GET /inc idents HTTP/1.1\nHost: x\n", 400),
    ):
        status, headers, body = raw(stack, head)
        assert status == code and headers["Content-Type"] == "application/json", (head[:20], status, body)
        assert set(json.loads(body)) == {"error", "message"}
    no_traceback(stack)


def pending_requests_from(pids: list[int], port: int) -> bool:
    """Does one of `pids` have a request sitting unread on a connection to `port`? (/proc/net/tcp)"""
    inodes = set()
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
    # columns: sl local rem state tx_queue:rx_queue ... inode (the 10th)
    ours = {
        int(r[1].split(":")[1], 16) for r in rows if r[9] in inodes and int(r[2].split(":")[1], 16) == port
    }
    return any(
        int(r[1].split(":")[1], 16) == port
        and int(r[2].split(":")[1], 16) in ours
        and int(r[4].split(":")[1], 16) > 0
        for r in rows
    )


def test_requests_are_served_concurrently(stack: LocalStackProcess) -> None:
    assert stack.process is not None
    pid = stack.process.pid
    assert len(children(pid, "local.emulator")) == 2  # DynamoDB's on its own port, the rest's on AWS_PORT
    dynamodb = dynamodb_port(stack.aws_port)
    emulator = children(pid, f"local.emulator --host 127.0.0.1 --port {dynamodb}")
    assert len(emulator) == 1
    answers: list[tuple[int, Any]] = []
    slow = threading.Thread(target=lambda: answers.append(stack.call("GET", "/incidents")))
    # Given a request stuck in the API handler: the emulated DynamoDB it reads from is paused
    os.kill(emulator[0], signal.SIGSTOP)
    try:
        slow.start()
        wait_for(
            lambda: pending_requests_from(children(pid, "local.container"), dynamodb),
            HANG,
            "the API handler's request to wait at the paused emulator",
        )
        # When another request comes, Then it is answered while the first is still in the handler
        assert stack.call("GET", "/health", token=None) == (200, {"status": "ok"})
        assert slow.is_alive() and answers == []
    finally:
        os.kill(emulator[0], signal.SIGCONT)
    slow.join(timeout=HANG)
    assert [status for status, _ in answers] == [200]


def test_a_killed_api_container_is_replaced(stack: LocalStackProcess) -> None:
    assert stack.process is not None
    containers = children(stack.process.pid, "local.container")
    assert containers  # earlier requests started some
    # Given every container is killed (SIGKILL: none runs another instruction once os.kill returns)
    for pid in containers:
        os.kill(pid, signal.SIGKILL)
    # When requests come at once, while the dead may still hold their pipes open,
    # Then they are answered by new containers: a request no container read is given to another
    assert stack.call("GET", "/health", token=None) == (200, {"status": "ok"})
    assert stack.call("GET", "/incidents")[0] == 200
    assert "died (exit code -9); starting another" in LOG.read_text()


def test_a_killed_worker_is_restarted_and_levels_fire_again(stack: LocalStackProcess) -> None:
    assert stack.process is not None
    pid = stack.process.pid

    def escalation_workers() -> list[int]:  # the pollers differ only by the function they run
        return [w for w in children(pid, "local.worker") if b"EscalationWorkerFunction" in environ(w)]

    workers = escalation_workers()
    assert len(workers) == 8  # LOCAL_WORKERS' default
    worker, others = workers[0], workers[1:]
    # Given one escalation worker is killed
    os.kill(worker, signal.SIGKILL)
    # Then the stack says so and starts another, and the dead one leaves no zombie
    line = f"[worker] EscalationWorkerFunction pid {worker} exited with code -9; restarted as pid "
    wait_for(lambda: line in LOG.read_text(), HANG, "the worker's restart to be reported")
    restarted = int(LOG.read_text().split(line, 1)[1].split()[0])
    wait_for(lambda: restarted in escalation_workers(), HANG, "the new worker to run")
    assert sorted(escalation_workers()) == sorted([*others, restarted])
    assert not Path(f"/proc/{worker}").exists()
    # And a level due later still fires: only the worker fires it
    status, policy = stack.call(
        "POST",
        "/policies",
        {
            "name": "after-restart",
            "is_default": True,
            "levels": [
                {"delay_minutes": 0, "targets": [{"type": "user", "email": "first@example.com"}]},
                {"delay_minutes": 0.05, "targets": [{"type": "user", "email": "second@example.com"}]},
            ],
        },
    )
    assert status == 201, policy
    status, incident = stack.call("POST", "/incidents", {"title": "Worker restarted", "severity": "P2"})
    assert status == 201, incident

    def fired() -> list[tuple[int, str]]:
        items = stack.call("GET", f"/incidents/{incident['id']}/escalations")[1]["items"]
        return [(s["level"], s["status"]) for s in items]

    wait_for(lambda: (1, "executed") in fired(), HANG, "level 1 to fire after the restart")
