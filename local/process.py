"""The local stack as a child process, for tests and benchmarks that drive it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from local.endpoints import dynamodb_beside, dynamodb_port

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A free port whose next one is free too: the local stack's emulators take AWS_PORT and AWS_PORT + 1."""
    while True:
        port = free_port()
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", dynamodb_port(port)))
            except OSError:
                continue
        return port


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `check` until it returns something truthy, or fail once the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # poll until the deadline


class LocalStackProcess:
    """`python -m local.stack` on free ports, with a known token; a context manager."""

    def __init__(self, token: str, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.token = token
        self.aws_port = free_port_pair()
        self.api_port = free_port()
        while self.api_port in (self.aws_port, dynamodb_port(self.aws_port)):
            self.api_port = free_port()
        self.url = f"http://127.0.0.1:{self.api_port}"
        self.aws_url = f"http://127.0.0.1:{self.aws_port}"
        self.dynamodb_url = dynamodb_beside(self.aws_url)
        self.log_path = log_path
        self.env = {
            **os.environ,
            "API_PORT": str(self.api_port),
            "AWS_PORT": str(self.aws_port),
            "API_TOKEN": token,
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.env.pop("AWS_ENDPOINT_URL", None)
        self.env.pop("AWS_ENDPOINT_URL_DYNAMODB", None)
        self.process: subprocess.Popen[str] | None = None
        self.exit_code: int | None = None

    def __enter__(self) -> LocalStackProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"local stack exited early:\n{self.log_path.read_text()}")
            try:
                return self.call("GET", "/health", token=None) == (200, {"status": "ok"})
            except OSError:
                return False

        try:
            wait_for(healthy, 90, "the local stack to answer /health")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.exit_code = self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.exit_code = self.process.wait()
        self._log.close()

    def call(self, method: str, path: str, body: Any = None, token: str | None = "") -> tuple[int, Any]:
        """One HTTP request; `token` "" means this stack's token, None means no Authorization header."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)  # noqa: S310 - loopback
        request.add_header("Content-Type", "application/json")
        bearer = self.token if token == "" else token
        if bearer:
            request.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def aws_client(self, service: str) -> Any:
        import boto3

        # The emulator accepts any credentials; these name it in its logs.
        session: Any = boto3.Session(
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106
            region_name="us-east-1",
        )
        return session.client(
            service, endpoint_url=self.dynamodb_url if service == "dynamodb" else self.aws_url
        )


class TopicTap:
    """An SQS queue subscribed to the stack's notifications topic: what SNS really delivered."""

    def __init__(self, stack: LocalStackProcess, name: str) -> None:
        self.sqs = stack.aws_client("sqs")
        sns = stack.aws_client("sns")
        topic = next(
            t["TopicArn"] for t in sns.list_topics()["Topics"] if t["TopicArn"].endswith("NotificationsTopic")
        )
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        # (arrived on our side (monotonic), SNS's send time (epoch ms), message attributes)
        self.seen: list[tuple[float, int, dict[str, str]]] = []
        # every message in full, in arrival order: {"subject", "message", "attributes"}
        self.messages: list[dict[str, Any]] = []

    def poll(self, wait_seconds: int = 0) -> list[tuple[float, int, dict[str, str]]]:
        got = self.sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        for message in got:
            envelope = json.loads(message["Body"])
            attrs = {k: v["Value"] for k, v in envelope["MessageAttributes"].items()}
            self.seen.append((time.monotonic(), int(message["Attributes"]["SentTimestamp"]), attrs))
            self.messages.append(
                {"subject": envelope.get("Subject"), "message": envelope["Message"], "attributes": attrs}
            )
        if got:
            self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)],
            )
        return self.seen
