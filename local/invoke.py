"""`make invoke FUNCTION=<logical id> EVENT=events/<file>.json`: `sam local invoke` without Docker.

Runs the built function (local/build.py: the layout `sam build` makes, for this machine) in a fresh
Python 3.13 whose path is exactly Lambda's (local/lambda_process.py), with the environment the
template gives it, resolved against the local emulator's resources: those of the running `make run`
stack when one answers on AWS_ENDPOINT_URL (or 127.0.0.1:$AWS_PORT), else a fresh emulator started
for this invocation and stopped after it. Prints the function's logs, then its response.

A sample event that names an incident (pathParameters.incident_id) gets a real one: INCIDENT=<id>
when given, else one created first by the same built api function with events/api_create_incident.json.
The authorizer is given ApiTokenSha256 = sha256(API_TOKEN), the sample events' token by default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.build import Artifact, BuiltFunction, build
from local.endpoints import dynamodb_beside
from local.template import ROOT, LocalStack, provision

EVENTS = ROOT / "events"
SAMPLE_TOKEN = "local-dev-token"  # noqa: S105 - the bearer token every sample event carries
RUNNER = Path(__file__).resolve().parent / "lambda_process.py"
STACK_NAME = "incident-engine-local"  # what `make run` provisions


@dataclass(frozen=True)
class Invocation:
    function: str
    response: Any
    error: dict[str, Any] | None
    logs: str
    init_ms: float
    duration_ms: float | None
    compiled: list[str]  # modules compiled from source during the invocation

    def compiled_under(self, folder: Path) -> list[str]:
        return [p for p in self.compiled if Path(p).is_relative_to(folder)]


def lambda_environment(fn: BuiltFunction, variables: dict[str, str], region: str) -> dict[str, str]:
    """What Lambda sets for every function, then the function's own variables from the template."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(fn.task),
        "_HANDLER": fn.handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": fn.logical_id,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.logical_id}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "local/[$LATEST]local",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        # The emulator takes any credentials; Lambda's come from the execution role.
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        **variables,
    }


def run(
    artifact: Artifact, fn: BuiltFunction, event: dict[str, Any], variables: dict[str, str]
) -> Invocation:
    """One cold invocation in a fresh, isolated Python 3.13 (see local/lambda_process.py)."""
    region = variables.get("AWS_REGION", "us-east-1")
    with tempfile.TemporaryDirectory(prefix="invoke-") as tmp:
        event_path, result_path, request_path = (
            Path(tmp) / n for n in ("event.json", "result.json", "req.json")
        )
        event_path.write_text(json.dumps(event))
        request = {
            "task": str(fn.task),
            "opt": str(fn.opt),
            "handler": fn.handler,
            "function_name": fn.logical_id,
            "memory_mb": fn.memory_mb,
            "timeout_s": fn.timeout_s,
            "event": str(event_path),
            "result": str(result_path),
        }
        request_path.write_text(json.dumps(request))
        try:
            done = subprocess.run(
                [artifact.python, "-I", "-S", "-B", str(RUNNER), str(request_path)],
                cwd=fn.task,
                env=lambda_environment(fn, variables, region),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=fn.timeout_s + 10,  # Lambda's init phase has ten seconds of its own
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            logs = exc.output if isinstance(exc.output, str) else (exc.output or b"").decode()
            error = {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {fn.timeout_s} s",
            }
            return Invocation(fn.logical_id, None, error, logs, 0.0, None, [])
        if not result_path.exists():
            error = {"errorType": "Runtime.ExitError", "errorMessage": f"exited with {done.returncode}"}
            return Invocation(fn.logical_id, None, error, done.stdout, 0.0, None, [])
        outcome: dict[str, Any] = json.loads(result_path.read_text())
    return Invocation(
        fn.logical_id,
        outcome.get("response"),
        outcome.get("error"),
        done.stdout,
        float(outcome["init_ms"]),
        outcome.get("duration_ms"),
        list(outcome["compiled"]),
    )


# --------------------------------------------------------------------------- the emulator


def _answers(url: str) -> bool:
    host, _, port = url.split("://", 1)[-1].rstrip("/").partition(":")
    try:
        with socket.create_connection((host, int(port or 80)), timeout=1):
            return True
    except OSError:
        return False


def _session() -> Any:
    import boto3

    return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1")  # noqa: S106


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_emulator() -> Iterator[str]:
    """`python -m local.emulator` on a free port, stopped on exit; yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "local.emulator", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the emulator did not start: {process.stderr.read() if process.stderr else ''}"
                )
            time.sleep(0.05)  # polling the port until the deadline
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def token_parameters() -> dict[str, str]:
    token = os.environ.get("API_TOKEN") or SAMPLE_TOKEN
    return {"ApiTokenSha256": hashlib.sha256(token.encode()).hexdigest()}


def running_stack(say: Callable[[str], None] = print) -> LocalStack | None:
    """The running `make run` stack's resources, if one answers on its AWS endpoint."""
    running = os.environ.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{os.environ.get('AWS_PORT', '5000')}"
    if not _answers(running):
        return None
    try:
        stack = provision(
            _session(),
            stack_name=STACK_NAME,
            endpoint_url=running,
            dynamodb_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or dynamodb_beside(running),
            api_url=f"http://127.0.0.1:{os.environ.get('API_PORT', '3000')}",
            parameters=token_parameters(),
            create=False,
        )
    except LookupError as exc:
        say(f"(something answers on {running}, but it is not the local stack: {exc})")
        return None
    say(f"(using the running local stack's resources on {running})")
    return stack


@contextmanager
def local_resources(say: Callable[[str], None] = print) -> Iterator[LocalStack]:
    """The running `make run` stack's resources when it answers, else a fresh emulator's."""
    stack = running_stack(say)
    if stack is not None:
        yield stack
        return
    with fresh_emulator() as url:
        say(f"(no local stack running: using a fresh emulator on {url}, stopped afterwards)")
        yield provision(_session(), endpoint_url=url, parameters=token_parameters())


# --------------------------------------------------------------------------- sample events


def load_event(path: Path | str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(path).read_text())
    return data


def needs_incident(event: dict[str, Any]) -> str | None:
    """The incident id a sample event names, if it names one."""
    params = event.get("pathParameters") or {}
    return str(params["incident_id"]) if "incident_id" in params else None


def with_incident(event: dict[str, Any], incident_id: str) -> dict[str, Any]:
    """The same event about another incident (path, parameters, request context alike)."""
    named = needs_incident(event)
    if named is None:
        return event
    replaced: dict[str, Any] = json.loads(json.dumps(event).replace(named, incident_id))
    return replaced


def create_incident(artifact: Artifact, stack: LocalStack) -> tuple[str, Invocation]:
    """An incident to act on, made by the built api function with the create sample."""
    fn = artifact.functions["ApiFunction"]
    created = run(
        artifact,
        fn,
        load_event(EVENTS / "api_create_incident.json"),
        stack.function(fn.logical_id).environment,
    )
    if created.error or int(created.response["statusCode"]) not in (200, 201):
        raise RuntimeError(
            f"could not create an incident first: {created.error or created.response}\n{created.logs}"
        )
    return str(json.loads(created.response["body"])["id"]), created


# --------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make invoke", description=__doc__.split("\n\n")[0])
    parser.add_argument("function", help="the function's logical id in template.yaml, e.g. ApiFunction")
    parser.add_argument("event", type=Path, help="an event file, e.g. events/api_create_incident.json")
    parser.add_argument(
        "--incident", default=os.environ.get("INCIDENT") or None, help="incident id for the event"
    )
    args = parser.parse_args(argv)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    artifact = build(log=say)
    if args.function not in artifact.functions:
        say(
            f"error: no function {args.function!r} in template.yaml; "
            f"one of: {', '.join(sorted(artifact.functions))}"
        )
        return 2
    fn = artifact.functions[args.function]
    event = load_event(args.event)
    with local_resources(say) as stack:
        if needs_incident(event):
            if args.incident:
                incident = args.incident
            else:
                incident, _ = create_incident(artifact, stack)
                say(
                    f"(created {incident} with events/api_create_incident.json for this event; "
                    "INCIDENT=<id> picks one)"
                )
            event = with_incident(event, incident)
        result = run(artifact, fn, event, stack.function(fn.logical_id).environment)
    say(f"--- logs: {fn.logical_id} ---")
    say(result.logs.rstrip() or "(none)")
    duration = f"{result.duration_ms:.0f} ms" if result.duration_ms is not None else "-"
    say(
        f"REPORT Init Duration: {result.init_ms:.0f} ms  Duration: {duration}  "
        f"Layer modules compiled at start: {len(result.compiled_under(fn.opt))}"
    )
    say("--- response ---")
    print(json.dumps(result.error if result.error else result.response, indent=2))
    return 1 if result.error else 0


if __name__ == "__main__":
    sys.exit(main())
