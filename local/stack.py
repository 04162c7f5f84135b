"""`make run`: the whole system on this machine.

moto's server is the AWS endpoint, in two processes (DynamoDB on AWS_PORT + 1, the rest on AWS_PORT,
so that the two halves of its work run on two cores); template.yaml's tables, queues and topic are
created on them;
an HTTP gateway invokes the api handler (behind the token authorizer); a poller feeds the timer
queue to the escalation worker like the SQS event source; a process of its own invokes the
reconciler like EventBridge Scheduler (local/scheduler.py); the template's CloudWatch alarms are
judged on the emulator's metrics and published to EngineHealthTopic (local/alarms.py); the alarm
topic and an EventBridge rule reach the alarm ingest function
(local/async_sources.py); and a tap on the notifications topic prints every message SNS delivers.

Environment: API_PORT (3000), AWS_PORT (5000; DynamoDB's on the next port), API_TOKEN (random when
unset), HOST (127.0.0.1), RECONCILE_SECONDS (60), LOG_LEVEL (WARNING; the functions' Powertools log
level), LOCAL_WORKERS (8; escalation worker processes, each long-polling the timer queue),
LOCAL_WORKER_BATCH (1; messages a worker takes per receive, at most the template's BatchSize),
LOCAL_API_CONTAINERS (4; API requests served at once), LOCAL_ASYNC_CONTAINERS (4; alarm deliveries
at once), LOCAL_READ_TIMEOUT (10; seconds a client may take to send a request), WEBHOOK_RETRY_SCALE
(1; multiplies the webhook sender's retry waits, e.g. 0.01 makes its 8 attempts take seconds instead
of 17 minutes; local only, the template never sets it), TOKEN_RATE_PER_MINUTE (the template's
TokenRateLimitPerMinute; 0: off).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from local import endpoints

STOP = threading.Event()


def say(text: str) -> None:
    """A line of the stack's log, masked like the functions' own (no token, key, secret, address
    or phone number reaches it)."""
    import local.runtime  # noqa: F401 - puts the engine layer (shared/) on the path
    from incident_engine.observability import redact

    print(redact(text), flush=True)


def announce(text: str) -> None:
    """A line of the banner, as it is: it shows the admin token and a curl that works."""
    print(text, flush=True)


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _loop(name: str, every: float, work: Callable[[], Any]) -> threading.Thread:
    def run() -> None:
        while not STOP.is_set():
            try:
                busy = work()
            except Exception as exc:  # keep the stack up; the next round retries
                say(f"[{name}] error: {exc!r}")
                busy = False
            if not busy:
                STOP.wait(every)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    api_port = int(os.environ.get("API_PORT", "3000"))
    aws_port = int(os.environ.get("AWS_PORT", "5000"))
    reconcile_every = float(os.environ.get("RECONCILE_SECONDS", "60"))
    retry_scale = os.environ.get("WEBHOOK_RETRY_SCALE", "1")
    try:
        if float(retry_scale) < 0:
            raise ValueError
    except ValueError:
        say(f"error: WEBHOOK_RETRY_SCALE must be a number of at least 0, not {retry_scale!r}")
        return 2
    token = os.environ.get("API_TOKEN") or secrets.token_urlsafe(24)
    dynamodb_port = endpoints.dynamodb_port(aws_port)  # DynamoDB's emulator, beside the rest
    for name, port in (("API_PORT", api_port), ("AWS_PORT", aws_port), ("AWS_PORT + 1", dynamodb_port)):
        if not _port_free(host, port):
            choose = "AWS_PORT" if name == "AWS_PORT + 1" else name
            say(
                f"error: port {port} ({name}) is already in use on {host}. "
                f"Stop whatever holds it, or choose another: {choose}=<port> make run"
            )
            return 2

    api_url = f"http://{host}:{api_port}"
    aws_url = f"http://{host}:{aws_port}"
    dynamodb_url = endpoints.dynamodb_beside(aws_url)
    # The functions read these, exactly as they would read Lambda's environment.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": aws_url,
            "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_url,
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)

    import logging
    import subprocess
    import warnings

    warnings.filterwarnings("ignore", message="No application metrics to publish")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    # The emulator runs in its own processes, so that it has cores of its own, as AWS would: one
    # answers DynamoDB (about half of its work), the other SQS, SNS, CloudWatch and EventBridge,
    # which deliver to one another and so share one moto.
    say(f"Starting emulated AWS (moto) on {aws_url}, its DynamoDB on {dynamodb_url} ...")
    emulators = [
        subprocess.Popen(
            [sys.executable, "-m", "local.emulator", "--host", host, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # our Ctrl-C handling stops it, in order
        )
        for port in (aws_port, dynamodb_port)
    ]
    deadline = time.monotonic() + 60
    for emulator, port in zip(emulators, (aws_port, dynamodb_port), strict=True):
        while _port_free(host, port):
            if emulator.poll() is not None or time.monotonic() > deadline:
                error = emulator.stderr.read() if emulator.poll() is not None and emulator.stderr else ""
                say(f"error: the emulator on port {port} did not start: {error}")
                for started in emulators:
                    started.kill()
                return 2
            time.sleep(0.05)  # waiting for the emulator's port, up to the deadline

    import boto3

    from local.gateway import Gateway
    from local.template import provision

    session = boto3.Session()
    say("Creating tables, queues and topic from template.yaml ...")
    stack = provision(
        session,
        endpoint_url=aws_url,
        dynamodb_endpoint_url=dynamodb_url,
        api_url=api_url,
        parameters={
            "ApiTokenSha256": hashlib.sha256(token.encode()).hexdigest(),
            **(
                {"TokenRateLimitPerMinute": os.environ["TOKEN_RATE_PER_MINUTE"]}
                if os.environ.get("TOKEN_RATE_PER_MINUTE")
                else {}
            ),
        },
    )
    os.environ.update(stack.environment())
    os.environ["PUBLIC_API_URL"] = api_url
    os.environ.setdefault("ALLOW_PRIVATE_TARGETS", "true")  # receivers on this machine
    os.environ["POWERTOOLS_LOG_LEVEL"] = os.environ.get("LOG_LEVEL", "WARNING")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

    sqs = session.client("sqs", endpoint_url=aws_url)
    sns = session.client("sns", endpoint_url=aws_url)
    worker = stack.function("EscalationWorkerFunction")
    reconciler = stack.function("ReconcilerFunction")
    assert worker.sqs_queue is not None
    queue_url, queue_arn = stack.physical[worker.sqs_queue], stack.arns[worker.sqs_queue]

    # A tap on the topic so you can watch what SNS delivers (an email/SMS subscription in AWS).
    show_sns = os.environ.get("LOCAL_SNS_TAP", "1") != "0"
    tap_url = sqs.create_queue(QueueName=f"{stack.stack_name}-notifications-tap")["QueueUrl"]
    tap_arn = sqs.get_queue_attributes(QueueUrl=tap_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    if show_sns:
        sns.subscribe(TopicArn=stack.physical["NotificationsTopic"], Protocol="sqs", Endpoint=tap_arn)

    # The alarm ingest function's SNS topic and EventBridge rule, wired as the template declares.
    from local.async_sources import AsyncSources
    from local.gateway import ContainerPool

    # Each delivery in a container process of its own, several at once, as Lambda invokes them.
    async_containers = ContainerPool(int(os.environ.get("LOCAL_ASYNC_CONTAINERS", "4")), say)
    async_sources = AsyncSources(
        session, stack, aws_url, invoker=async_containers.invoke, concurrency=async_containers.size
    )

    def show_notifications() -> bool:
        got = sqs.receive_message(QueueUrl=tap_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
            "Messages", []
        )
        for message in got:
            envelope = json.loads(message["Body"])
            attrs = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
            level = attrs.get("level", "-") if attrs.get("kind") == "page" else "-"
            say(
                f"[sns] {attrs.get('kind', 'page'):<12} level {level:<2} {attrs.get('channel', '?'):<7} -> "
                f"{attrs.get('recipient', '?')}  {envelope.get('Subject', '')}"
            )
            sqs.delete_message(QueueUrl=tap_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(got)

    stage = stack.parameters.get("StageName", "v1")
    gateway = Gateway(
        stack.function("ApiFunction"),
        stack.function("AuthorizerFunction"),
        host,
        api_port,
        stage=stage,
        log=lambda line: say(f"[api] {line}"),
        containers=int(os.environ.get("LOCAL_API_CONTAINERS", "4")),
        read_timeout=float(os.environ.get("LOCAL_READ_TIMEOUT", "10")),
    )
    from local.worker import spec_to_env

    # The escalation worker runs as its own process(es), like Lambda containers beside the API's.
    worker_env = {**os.environ, **spec_to_env(worker, queue_url, queue_arn, stack.region)}
    # Every other SQS-fed function (the webhook sender) gets a poller process of its own too.
    # Several, as Lambda scales its SQS pollers out: one worker handles a batch of timers in turn,
    # and a burst of due timers waited for it (the lateness benchmark's level 1, bench/lateness.py).
    worker_envs = [(worker.logical_id, worker_env)] * int(os.environ.get("LOCAL_WORKERS", "8"))
    for spec in stack.functions.values():
        if spec.sqs_queue and spec.logical_id != worker.logical_id:
            queue = (stack.physical[spec.sqs_queue], stack.arns[spec.sqs_queue], stack.region)
            env = {**os.environ, **spec.environment, **spec_to_env(spec, *queue)}
            env["WEBHOOK_RETRY_SCALE"] = retry_scale  # the sender's retry waits (local only)
            worker_envs.append((spec.logical_id, env))

    def start_worker(env: dict[str, str]) -> subprocess.Popen[Any]:
        return subprocess.Popen([sys.executable, "-m", "local.worker"], env=env, start_new_session=True)

    workers = [start_worker(env) for _, env in worker_envs]
    from local.scheduler import schedule_to_env

    # The reconciler: its own process, so that it can die as a Lambda schedule can stop. It is
    # not restarted: a silent reconciler is what ReconcilerHeartbeatAlarm is there to show.
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "local.scheduler"],
        env={**os.environ, **schedule_to_env(reconciler, reconcile_every, stack.region)},
        start_new_session=True,
    )
    scheduler_reported = False
    from local.alarms import LocalAlarms

    alarms = LocalAlarms(session, stack, aws_url, reconcile_every / 60, say)
    # When a dead reconciler shows, in this stack's compressed time (RECONCILE_SECONDS shortens it).
    heartbeat = next((a for a in alarms.specs if a.logical_id == "ReconcilerHeartbeatAlarm"), None)
    heartbeat_due = (
        f"once {heartbeat.evaluation_periods} periods of {alarms.seconds(heartbeat.period)} s "
        "pass without a run"
        if heartbeat
        else "in a few minutes"
    )
    threads = [
        threading.Thread(target=gateway.serve_forever, name="gateway", daemon=True),
    ]
    threads[0].start()
    threads += [
        _loop("alarms", alarms.poll_seconds, alarms.poll),
        *([_loop("sns-tap", 0.2, show_notifications)] if show_sns else []),
    ]
    threads += async_sources.serve(STOP, say)  # a long-polling thread per feed

    example = (
        f"curl -s -X POST {api_url}/incidents -H 'Authorization: Bearer {token}' "
        '-H \'Content-Type: application/json\' -d \'{"title": "Checkout 5xx above 20%", "severity": "P1"}\''
    )
    announce("")
    announce("Incident Engine is running locally.")
    announce(f"  API          {api_url}   (OpenAPI: {api_url}/openapi.json, Swagger UI: {api_url}/docs)")
    announce(
        f"  AWS endpoint {aws_url}, DynamoDB {dynamodb_url}   (moto; it takes any credentials, but the "
        "AWS CLI wants some)"
    )
    # A working line for someone with no AWS configuration at all (the CLI refuses to run without
    # a region and credentials); describe-alarms is how the engine-health alarms' states are read.
    announce(
        f"  AWS CLI      AWS_ENDPOINT_URL={aws_url} AWS_ENDPOINT_URL_DYNAMODB={dynamodb_url} "
        f"AWS_DEFAULT_REGION={stack.region} "
        "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local aws cloudwatch describe-alarms"
    )
    announce(f"  API token    {token}")
    announce(f"  Reconciler   every {reconcile_every:g} s")
    announce(f"  Alarm topic  {stack.outputs['AlarmTopicArn']}   (AlarmTopicArn: a CloudWatch alarm action)")
    announce(
        f"  Health topic {stack.outputs['EngineHealthTopicArn']}   ({len(alarms.specs)} alarms, judged "
        f"locally with periods scaled by {reconcile_every:g}/60; GET {api_url}/health?deep=1 with the token)"
    )
    announce(
        f"  PagerDuty    {api_url}/v2/enqueue   (Events API v2; routing_key = a service's integration key)"
    )
    announce("")
    announce("Try it:")
    announce(f"  curl -s {api_url}/health")
    announce(f"  {example}")
    announce("  (scoped tokens for people and tools: POST /tokens, see the README's Tokens and scopes)")
    announce("")
    announce("State lives in the emulator only while this runs. Press Ctrl-C to stop.")
    announce("")

    def stop(signum: int, frame: Any) -> None:
        STOP.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    while not STOP.is_set():
        # Supervise the workers, as Lambda replaces a crashed container: without one no timer fires.
        for n, process in enumerate(workers):
            code = process.poll()  # also reaps it, so no zombie stays
            if code is not None and not STOP.is_set():
                name, env = worker_envs[n]
                workers[n] = start_worker(env)
                new_pid = workers[n].pid
                say(f"[worker] {name} pid {process.pid} exited with code {code}; restarted as pid {new_pid}")
        code = scheduler.poll()
        if code is not None and not scheduler_reported and not STOP.is_set():
            scheduler_reported = True
            say(
                f"[reconciler] pid {scheduler.pid} exited with code {code}; not restarted: the safety net "
                f"is down until make run restarts (ReconcilerHeartbeatAlarm goes to ALARM {heartbeat_due}: "
                "an [alarm] line here, describe-alarms on the AWS endpoint)"
            )
        STOP.wait(0.5)
    say("Stopping ...")
    gateway.shutdown()
    for thread in threads:
        thread.join(timeout=5)
    async_containers.close()
    children: list[subprocess.Popen[Any]] = [*workers, scheduler, *emulators]
    for child in children:  # workers first, while the emulator still answers
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
    say("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
