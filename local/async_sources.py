"""SNS and EventBridge event sources of the local stack, wired as template.yaml declares them.

For each function's `SNS` event an SQS queue is subscribed to the topic, and for each
`EventBridgeRule` event a rule with the template's pattern on the default bus gets an SQS
target. `poll()` turns each queued message into the event Lambda would get (the SNS record, or
the EventBridge event itself) and invokes the function; a failing invocation is retried up to the
function's MaximumRetryAttempts, then sent to its OnFailure queue, as Lambda's async invoke does.
With an `invoker` and `concurrency` > 1, what one poll received is delivered side by side (the local
stack gives each delivery a container process of its own, as Lambda runs async invocations
concurrently); one at a time, a burst of alarms queued behind each other for minutes.

`serve()` is what the local stack runs: one thread per feed, each long-polling its queue (moto wakes
a long poll as soon as a message arrives) for as many messages as there are containers free, and
handing each to the pool at once, never waiting for the rest of its batch. Measured at 10 alarms a
second, the earlier loop (a short poll of every feed, a batch delivered, all of it awaited, 0.2 s
idle pause) delivered about 4 a second: the batch waited for its slowest delivery (a container's
cold start, 5 s under load), and the free containers idled meanwhile; the backlog made the CloudWatch
rows of the alert-path benchmark tens of seconds late where the HTTP paths took about one.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from local.runtime import invoke
from local.template import FunctionSpec, LocalStack

RETRY_VISIBILITY_SECONDS = 1  # the pause before a failed invocation is tried again
LONG_POLL_SECONDS = 1  # a feed's receive waits this long for a message (and wakes when one comes)


@dataclass(frozen=True)
class Feed:
    spec: FunctionSpec
    kind: str  # "sns" | "eventbridge"
    queue_url: str
    source_arn: str  # the topic, or the rule
    subscription_arn: str | None = None


class AsyncSources:
    def __init__(
        self,
        session: Any,
        stack: LocalStack,
        endpoint_url: str | None = None,
        invoker: Callable[[FunctionSpec, dict[str, Any]], Any] | None = None,  # None: in this process
        concurrency: int = 1,
    ) -> None:
        self._invoke = invoker
        self._pool = ThreadPoolExecutor(concurrency, "async-source") if concurrency > 1 else None
        self.concurrency = concurrency
        self._in_flight = 0  # deliveries handed to the pool and not finished
        self._free = threading.Condition()
        kwargs: dict[str, Any] = {"region_name": stack.region}
        if endpoint_url:
            kwargs["endpoint_url"] = endpoint_url
        self.sqs = session.client("sqs", **kwargs)
        sns = session.client("sns", **kwargs)
        events = session.client("events", **kwargs)
        self.stack = stack
        self.feeds: list[Feed] = []
        for spec in stack.functions.values():
            for topic in spec.sns_topics:
                url, arn = self._queue(f"{spec.logical_id}-{topic}-feed")
                topic_arn = stack.physical[topic]
                sub = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
                self.feeds.append(Feed(spec, "sns", url, topic_arn, sub))
            for n, pattern in enumerate(spec.event_patterns):
                name = f"{stack.stack_name}-{spec.logical_id}-rule{n}"
                url, arn = self._queue(f"{spec.logical_id}-rule{n}-feed")
                rule_arn = events.put_rule(Name=name, EventPattern=pattern, State="ENABLED")["RuleArn"]
                events.put_targets(Rule=name, Targets=[{"Id": "function", "Arn": arn}])
                self.feeds.append(Feed(spec, "eventbridge", url, rule_arn))

    def _queue(self, suffix: str) -> tuple[str, str]:
        # Long enough that a delivery waiting for a container is not handed out a second time.
        attributes = {"VisibilityTimeout": "180"}
        name = f"{self.stack.stack_name}-{suffix}"
        url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        return url, arn

    def poll(self) -> bool:
        """Deliver what is waiting on every feed once; True when anything was delivered."""
        work = []
        for feed in self.feeds:
            got = self.sqs.receive_message(
                QueueUrl=feed.queue_url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages", [])
            work += [(feed, message) for message in got]
        if self._pool is None:
            for feed, message in work:
                self._deliver(feed, message)
        else:
            list(self._pool.map(lambda item: self._deliver(*item), work))  # each raises nothing
        return bool(work)

    def serve(
        self, stop: threading.Event, log: Callable[[str], None] = print, wait_seconds: int = LONG_POLL_SECONDS
    ) -> list[threading.Thread]:
        """Deliver every feed continuously until `stop` is set: one thread per feed (started here).
        `wait_seconds` 0 makes short polls with a pause between empty ones (for a frozen test clock,
        under which moto's long poll would never end)."""
        threads = [
            threading.Thread(
                target=self._serve_feed, args=(feed, stop, log, wait_seconds), name=f"feed-{n}", daemon=True
            )
            for n, feed in enumerate(self.feeds)
        ]
        for thread in threads:
            thread.start()
        return threads

    def _serve_feed(
        self, feed: Feed, stop: threading.Event, log: Callable[[str], None], wait_seconds: int
    ) -> None:
        while not stop.is_set():
            with self._free:  # no receive while every container is busy: the queue holds the rest
                self._free.wait_for(lambda: self._in_flight < self.concurrency or stop.is_set(), timeout=1)
                room = self.concurrency - self._in_flight
            if room <= 0:
                continue
            try:
                got = self.sqs.receive_message(
                    QueueUrl=feed.queue_url,
                    MaxNumberOfMessages=min(10, room),
                    WaitTimeSeconds=wait_seconds,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
            except Exception as exc:  # the emulator going away at shutdown, say; the next round retries
                log(f"[async-sources] error: {exc!r}")
                stop.wait(1)
                continue
            for message in got:
                self._start(feed, message)
            if not got and not wait_seconds:
                stop.wait(0.05)

    @property
    def in_flight(self) -> int:
        """Deliveries handed to a container and not finished."""
        return self._in_flight

    def _start(self, feed: Feed, message: dict[str, Any]) -> None:
        with self._free:
            self._in_flight += 1
        if self._pool is None:
            self._finish(feed, message)
        else:
            self._pool.submit(self._finish, feed, message)

    def _finish(self, feed: Feed, message: dict[str, Any]) -> None:
        try:
            self._deliver(feed, message)
        finally:
            with self._free:
                self._in_flight -= 1
                self._free.notify_all()

    def _deliver(self, feed: Feed, message: dict[str, Any]) -> None:
        body = json.loads(message["Body"])
        event = sns_event(body, feed.subscription_arn or "") if feed.kind == "sns" else body
        try:
            (self._invoke or invoke)(feed.spec, event)
        except Exception as exc:
            tries = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if tries <= feed.spec.max_retry_attempts:
                self.sqs.change_message_visibility(
                    QueueUrl=feed.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=RETRY_VISIBILITY_SECONDS,
                )
                return
            self._on_failure(feed, event, exc)
        self.sqs.delete_message(QueueUrl=feed.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _on_failure(self, feed: Feed, event: Any, exc: Exception) -> None:
        if feed.spec.on_failure_queue is None:
            return  # Lambda drops it too
        record = {  # the shape of Lambda's OnFailure destination record, trimmed
            "requestContext": {
                "condition": "RetriesExhausted",
                "approximateInvokeCount": feed.spec.max_retry_attempts + 1,
            },
            "requestPayload": event,
            "responsePayload": {"errorType": type(exc).__name__, "errorMessage": str(exc)},
        }
        url = self.stack.physical[feed.spec.on_failure_queue]
        self.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record, default=str))


def sns_event(envelope: dict[str, Any], subscription_arn: str) -> dict[str, Any]:
    """The Lambda SNS event for one notification (SNS's SQS envelope carries the same fields)."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": subscription_arn,
                "Sns": {
                    "Type": envelope.get("Type", "Notification"),
                    "MessageId": envelope.get("MessageId", str(uuid.uuid4())),
                    "TopicArn": envelope.get("TopicArn"),
                    "Subject": envelope.get("Subject"),
                    "Message": envelope.get("Message"),
                    "Timestamp": envelope.get("Timestamp"),
                    "SignatureVersion": envelope.get("SignatureVersion", "1"),
                    "Signature": envelope.get("Signature", ""),
                    "SigningCertUrl": envelope.get("SigningCertURL", ""),
                    "UnsubscribeUrl": envelope.get("UnsubscribeURL", ""),
                    "MessageAttributes": envelope.get("MessageAttributes", {}),
                },
            }
        ]
    }
