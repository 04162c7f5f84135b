"""An HTTP gateway that does what API Gateway does for this API, on localhost.

It matches the request against the routes template.yaml declares, runs the token authorizer
for every route not marked `Authorizer: NONE`, turns the request into a REST proxy event, and
invokes the api handler in-process. Like one Lambda container, it handles one request at a time.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.runtime import api_event, authorize, invoke
from local.template import ACCOUNT, ApiRoute, FunctionSpec

UNAUTHORIZED = {"error": "unauthorized", "message": "send Authorization: Bearer <token>"}
FORBIDDEN = {"error": "forbidden", "message": "this token may not call this route"}
NO_ROUTE = {"message": "Missing Authentication Token"}  # what API Gateway says for an undeclared route


class Gateway:
    def __init__(
        self, api: FunctionSpec, authorizer: FunctionSpec, host: str, port: int, stage: str, log: Any = print
    ) -> None:
        self.api = api
        self.authorizer = authorizer
        self.stage = stage
        self.log = log
        self._lock = threading.Lock()
        gateway = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                gateway.serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return  # the gateway logs one line per request itself

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

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

    def _route(self, method: str, path: str) -> tuple[ApiRoute, dict[str, str]] | None:
        for route in self.api.routes:
            params = route.matches(method, path)
            if params is not None:
                return route, params
        return None

    def serve(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        parts = urlsplit(request.path)
        path = parts.path
        # Accept the stage prefix too, so the deployed URL's shape works locally.
        if path == f"/{self.stage}" or path.startswith(f"/{self.stage}/"):
            path = path[len(self.stage) + 1 :] or "/"
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        headers = {k: v for k, v in request.headers.items()}
        found = self._route(request.command, path)
        payload: bytes | str
        if found is None:
            status, payload, out_headers = 403, json.dumps(NO_ROUTE), {"Content-Type": "application/json"}
        else:
            route, params = found
            status, payload, out_headers = self._invoke(
                request.command, path, route, params, parse_qs(parts.query), headers, raw
            )
        body = payload.encode() if isinstance(payload, str) else payload
        request.send_response(status)
        for name, value in out_headers.items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)
        self.log(f"{request.command} {parts.path} -> {status} ({(time.monotonic() - started) * 1000:.0f} ms)")

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
        with self._lock:
            if not route.public:
                arn = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:local/{self.stage}/{method}{route.path}"
                denied, principal = authorize(self.authorizer, headers, arn)
                if denied:
                    return denied, json.dumps(UNAUTHORIZED if denied == 401 else FORBIDDEN), json_type
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
                result = invoke(self.api, event)
            except Exception as exc:  # API Gateway's answer when the integration itself fails
                self.log(f"api handler raised: {exc!r}")
                return 502, json.dumps({"message": "Internal server error"}), json_type
        out_headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            out_headers[name] = ", ".join(values)
        body = result.get("body") or ""
        data: bytes | str = base64.b64decode(body) if result.get("isBase64Encoded") else body
        return int(result.get("statusCode", 200)), data, out_headers
