"""An HTTP gateway that does what API Gateway does for this API, on localhost.

It matches the request against the routes template.yaml declares, runs the token authorizer
for every route not marked `Authorizer: NONE`, turns the request into a REST proxy event, and
invokes the api handler. Requests are served concurrently: each invocation runs in one of a pool
of container processes (local/container.py), as Lambda runs concurrent invocations in separate
containers, so the races the engine guards against can happen locally too.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import select
import subprocess
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from incident_engine.api.security import GATEWAY_HEADERS
from local.runtime import api_event, authorize  # (puts the engine layer, shared/, on the path)
from local.template import ACCOUNT, ROOT, ApiRoute, FunctionSpec, gateway_responses

# API Gateway's own answers are the template's GatewayResponses, rendered as it renders them.
ANSWERS = gateway_responses()
MAX_BODY = 10 * 1024 * 1024  # API Gateway REST's payload limit
DIGITS = re.compile(r"[0-9]+")
ALLOWED = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
RECEIPT_TIMEOUT = 120  # seconds for a container to read a request: a guard against a hang, never a pace


class InvocationError(Exception):
    """The handler raised; str() is its message, as Lambda reports it."""


class NotDelivered(ConnectionError):
    """The container died before the request was written to it: nothing ran."""


class _Container:
    """One container process; one invocation at a time."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.container"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # replies are read from the pipe itself, so select() sees every byte not yet read
            start_new_session=True,  # the stack's Ctrl-C handling stops it, in order
        )
        self._pending = b""  # bytes read past the end of the last reply line

    def alive(self) -> bool:
        return self.process.poll() is None

    def call(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = {
            "module": spec.module,
            "handler": spec.handler,
            "name": spec.logical_id,
            "timeout": spec.timeout,
            "event": event,
        }
        try:
            data = memoryview(json.dumps(request).encode() + b"\n")
            while data:  # an unbuffered pipe may take a large request in parts
                data = data[self.process.stdin.write(data) or 0 :]
        except (BrokenPipeError, ValueError) as exc:
            raise NotDelivered(f"container {self.number} was gone before the request reached it") from exc
        # A process whose main thread is dead can still hold its stdin open while its other threads
        # exit, so a write that succeeds proves nothing: the container confirms it read the request
        # before the handler runs. No receipt means the handler never ran and the request may go on.
        if not self._read_line(spec, RECEIPT_TIMEOUT):
            raise NotDelivered(f"container {self.number} exited before it read the request")
        line = self._read_line(spec, spec.timeout + 30)  # the function's timeout, plus a cold start's imports
        if not line:
            raise ConnectionError(f"container {self.number} exited (code {self.process.wait()})")
        reply = json.loads(line)
        if "error" in reply:
            raise InvocationError(reply["error"])
        return reply["result"]

    def _read_line(self, spec: FunctionSpec, timeout: float) -> str:
        """The next line the container wrote, or "" if it exited first."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._pending:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                raise TimeoutError(f"{spec.logical_id} did not answer within its timeout")
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return ""
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        return line.decode("utf-8")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class ContainerPool:
    """Up to `size` containers, started when a request finds none idle, reused warm-first."""

    def __init__(self, size: int, log: Any = print) -> None:
        self.log = log
        self._idle: queue.LifoQueue[_Container | None] = queue.LifoQueue()
        for _ in range(size):
            self._idle.put(None)  # a slot with no container started yet
        self._started: list[_Container] = []
        self._lock = threading.Lock()
        self.size = size

    def _start(self) -> _Container:
        with self._lock:
            container = _Container(len(self._started) + 1)
            self._started.append(container)
            return container

    def invoke(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        # Every idle container may have died unnoticed (killed together), so the request may meet
        # each of them in turn before a fresh one takes it; one more try is the fresh one.
        for _ in range(self.size):
            try:
                return self._invoke_once(spec, event)
            except NotDelivered:
                continue  # the request never ran, so another container may take it
        return self._invoke_once(spec, event)

    def _invoke_once(self, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        container = self._idle.get()
        try:
            if container is not None and not container.alive():
                code = container.process.returncode
                self.log(f"api container {container.number} died (exit code {code}); starting another")
                container = None
            if container is None:
                container = self._start()
            return container.call(spec, event)
        except NotDelivered:
            if container is not None:
                container.stop()
                code = container.process.returncode
                self.log(f"api container {container.number} died (exit code {code}); starting another")
                container = None
            raise
        except (OSError, ValueError):  # died or hung mid-invocation: Lambda would drop it too
            if container is not None:
                self.log(f"api container {container.number} failed mid-invocation; it is replaced")
                container.stop()
                container = None
            raise
        finally:
            self._idle.put(container)

    def close(self) -> None:
        with self._lock:
            for container in self._started:
                container.stop()


class Gateway:
    def __init__(
        self,
        api: FunctionSpec,
        authorizer: FunctionSpec,
        host: str,
        port: int,
        stage: str,
        log: Any = print,
        containers: int = 4,
        read_timeout: float = 10.0,
    ) -> None:
        self.api = api
        self.authorizer = authorizer
        self.stage = stage
        self.log = log
        self.pool = ContainerPool(containers, log)
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = read_timeout  # a client that stops sending mid-request holds no thread for long

            def _serve(self) -> None:
                gateway.serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def _not_allowed(self) -> None:
                self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, f"{self.command} is not allowed")

            do_TRACE = do_CONNECT = _not_allowed

            def __getattr__(self, name: str) -> Any:
                # Any other method token (QUERY, PROPFIND, BREW) is routed like the rest: no route
                # declares it, so it meets API Gateway's no-route answer, or a public path's ANY
                # method, whose handler answers 405 naming the methods the path takes.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
                # http.server answers malformed requests (long URI, bad request line, unknown method)
                # with an HTML page; answer them in the API's JSON error shape instead.
                status = HTTPStatus(code)
                body = json.dumps(
                    {"error": status.name.lower(), "message": message or status.phrase}
                ).encode()
                self.close_connection = True
                self.send_response(code, message)
                self.send_header("Content-Type", "application/json")
                if code == HTTPStatus.METHOD_NOT_ALLOWED:
                    self.send_header("Allow", ALLOWED)
                for name, value in GATEWAY_HEADERS.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                method = getattr(self, "command", None) or "-"  # unset when the request line was unreadable
                if method != "HEAD":
                    self.wfile.write(body)
                gateway.log(f"{method} {getattr(self, 'path', '-')[:200]} -> {code} ({status.phrase})")

            def log_message(self, format: str, *args: Any) -> None:
                return  # the gateway logs one line per request itself

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            # socketserver listens with a backlog of 5: a burst of clients connecting at once (100
            # monitors firing together) overflowed it and saw connections reset. API Gateway takes them.
            request_queue_size = 1024

            def handle_error(self, request: Any, client_address: Any) -> None:
                if isinstance(sys.exc_info()[1], ConnectionError):
                    return  # a client hung up on a kept-alive connection: nothing to report
                super().handle_error(request, client_address)

        self.server = _Server((host, port), _Handler)

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.pool.close()

    def _route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        # A route declaring the method wins over one declaring ANY, as in API Gateway.
        for any_method in (False, True):
            for route in self.api.routes:
                if (route.method == "ANY") != any_method:
                    continue
                params = route.matches(method, path)
                if params is not None:
                    return route, params
        return None

    @staticmethod
    def gateway_answer(kind: str, message: str = "") -> tuple[int, str, dict[str, str]]:
        """API Gateway's answer of one GatewayResponse type; DEFAULT_4XX/5XX fill in the status
        and $context.error.messageString, as API Gateway does."""
        fallback = "DEFAULT_5XX" if kind in ("AUTHORIZER_FAILURE", "INTEGRATION_FAILURE") else "DEFAULT_4XX"
        answer = ANSWERS.get(kind) or ANSWERS[fallback]
        status = answer.status or {"AUTHORIZER_FAILURE": 500, "INTEGRATION_FAILURE": 502}.get(kind, 400)
        body = answer.body.replace("$context.error.messageString", json.dumps(message))
        return status, body, {"Content-Type": "application/json", **answer.headers}

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        parts = urlsplit(request.path)
        path = parts.path
        # Accept the stage prefix too, so the deployed URL's shape works locally.
        if path == f"/{self.stage}" or path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :] or "/"
        read = self._read_body(request)
        if isinstance(read, tuple):
            self._answer(request, started, parts.path, *read, close=True)
            return
        raw = read
        headers = {k: v for k, v in request.headers.items()}
        found = self._route(request.command, path)
        payload: bytes | str
        if found is None:
            status, payload, out_headers = self.gateway_answer("MISSING_AUTHENTICATION_TOKEN")
        else:
            route, params = found
            status, payload, out_headers = self._invoke(
                request.command,
                path,
                route,
                params,
                parse_qs(parts.query, keep_blank_values=True),
                headers,
                raw,
            )
        self._answer(request, started, parts.path, status, payload, out_headers)

    def _read_body(self, request: BaseHTTPRequestHandler) -> bytes | tuple[int, str, dict[str, str]]:
        """The body, or the error to answer (after which the connection closes: its bytes are unread)."""
        json_type = {"Content-Type": "application/json"}
        value = (request.headers.get("Content-Length") or "0").strip()
        if not DIGITS.fullmatch(value):
            message = "Content-Length must be a non-negative integer"
            return 400, json.dumps({"error": "bad_request", "message": message}), json_type
        length = int(value)
        if length > MAX_BODY:
            return Gateway.gateway_answer("REQUEST_TOO_LARGE")
        try:
            raw = request.rfile.read(length) if length else b""
        except TimeoutError:
            message = "the body did not arrive in time"
            return 408, json.dumps({"error": "request_timeout", "message": message}), json_type
        if len(raw) < length:
            message = "the body is shorter than Content-Length"
            return 400, json.dumps({"error": "bad_request", "message": message}), json_type
        return raw

    def _answer(
        self,
        request: BaseHTTPRequestHandler,
        started: float,
        path: str,
        status: int,
        payload: bytes | str,
        headers: dict[str, str],
        close: bool = False,
    ) -> None:
        body = payload.encode() if isinstance(payload, str) else payload
        request.send_response(status)
        for name, value in headers.items():
            request.send_header(name, value)
        present = {name.lower() for name in headers}
        for name, value in GATEWAY_HEADERS.items():  # as API Gateway's own answers carry them
            if name.lower() not in present:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        if close:
            request.send_header("Connection", "close")
            request.close_connection = True
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
        self.log(f"{request.command} {path} -> {status} ({(time.monotonic() - started) * 1000:.0f} ms)")

    def _invoke(
        self,
        method: str,
        path: str,
        route: ApiRoute,
        params: dict[str, str],
        query: dict[str, list[str]],
        headers: dict[str, str],
        raw: bytes,
    ) -> tuple[int, bytes | str, dict[str, str]]:
        json_type = {"Content-Type": "application/json"}
        principal = None
        if not route.public:
            arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:local/{self.stage}/{method}{route.path}"
            denied, principal = authorize(self.authorizer, headers, arn, invoker=self.pool.invoke)
            if denied:
                kind = {401: "UNAUTHORIZED", 403: "ACCESS_DENIED"}.get(denied, "AUTHORIZER_FAILURE")
                return self.gateway_answer(kind, "Authorizer error")
        try:
            text = raw.decode("utf-8") if raw else None
        except UnicodeDecodeError:
            return 400, json.dumps({"error": "bad_request", "message": "body is not UTF-8"}), json_type
        event = api_event(
            method,
            path,
            route.path,
            params,
            query,
            headers,
            text,
            stage=self.stage,
            domain=headers.get("Host", "127.0.0.1"),
            principal=principal,
        )
        try:
            result = self.pool.invoke(self.api, event)
        except Exception as exc:  # API Gateway's answer when the integration itself fails
            self.log(f"api handler raised: {exc!r}")
            return self.gateway_answer("INTEGRATION_FAILURE", "Internal server error")
        out_headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        body = result.get("body") or ""
        data: bytes | str = base64.b64decode(body) if result.get("isBase64Encoded") else body
        return int(result.get("statusCode", 200)), data, out_headers
