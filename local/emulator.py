"""The emulated AWS for the local stack: moto's server in its own process, with a few local changes.

moto's server answers each request on a thread of its own and its DynamoDB takes no lock, so a
condition one request has checked can be overtaken by another request's write before the first
writes: two transactions conditioned on one item's version could both commit.
`serialized_dynamodb` runs each DynamoDB call alone under DYNAMODB_LOCK.

moto's DynamoDB TransactWriteItems deep-copies every table it touches before applying, so that
it can roll back; with a few thousand items stored that copy dominates every state change, and
the emulator, not the engine, sets the pace. `fast_transactions` keeps the semantics (conditions
judged against the state before the transaction, all or nothing, one operation per item) but
checks every condition first and snapshots only the items it writes. `fast_queries` reads one
partition for a Query on the table's own key instead of sorting the whole table.

Each patch leans on moto internals (written against moto MOTO_VERSION); each checks at install what
it can, and tests/integration/test_emulator_moto.py checks how they behave, naming the internal
that changed when a moto upgrade breaks one.

Run: python -m local.emulator --host 127.0.0.1 --port 5000   (the local stack does this for you)
"""

from __future__ import annotations

import argparse
import base64
import copy
import inspect
import logging
import os
import re
import threading
import time
from typing import Any

MOTO_VERSION = "5.2.5"  # the moto whose internals these patches were written against

# One lock for the whole emulated DynamoDB. Reentrant: the patches below take it too, so that they
# hold on their own in-process (tests) and nest inside a locked call on the server.
DYNAMODB_LOCK = threading.RLock()


class MotoChanged(RuntimeError):
    """A moto internal a patch relies on is gone or behaves differently."""

    def __init__(self, internal: str, assumption: str) -> None:
        from moto import __version__

        super().__init__(
            f"local/emulator.py patches {internal}, assuming {assumption}; moto {__version__} "
            f"no longer does (written against moto {MOTO_VERSION}). Adapt the patch or pin moto."
        )


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def serialized_dynamodb() -> None:
    """Every DynamoDB API call on the emulator runs alone, under DYNAMODB_LOCK.

    Writes must exclude one another for a condition to mean anything (a transaction's checks and
    its writes; a conditional PutItem's); reads must not see half a transaction, nor the one
    partition that fast_queries shows a table for the length of a query. These calls are Python
    over in-memory dicts that the interpreter lock serializes already, so this costs little.
    """
    from moto.dynamodb.responses import DynamoHandler

    action = getattr(DynamoHandler, "call_action", None)
    if action is None or _parameters(action) != ["self"]:
        raise MotoChanged(
            "moto.dynamodb.responses.DynamoHandler.call_action", "call_action(self) runs every action"
        )
    if getattr(action, "serialized", False):
        return  # installed already

    def call_action(self: Any) -> Any:
        with DYNAMODB_LOCK:
            return action(self)

    call_action.serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def fast_transactions() -> None:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import DynamoDBBackend

    if _parameters(DynamoDBBackend.transact_write_items) != ["self", "transact_items"]:
        raise MotoChanged(
            "moto.dynamodb.models.DynamoDBBackend.transact_write_items", "it takes (self, transact_items)"
        )

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        # Checks and writes under one lock: no other write lands between a check and its write.
        with DYNAMODB_LOCK:
            _transact_write_items(self, transact_items)

    def _transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        if len(transact_items) > 100:
            raise TooManyTransactionsException()
        planned: list[tuple[str, dict[str, Any], str, dict[str, Any], Any]] = []
        seen: set[tuple[str, str]] = set()
        errors: list[tuple[str | None, str | None, Any]] = []
        # 1. every condition against the state before the transaction; nothing written yet
        for entry in transact_items:
            if len(entry) > 1:
                raise TransactWriteSingleOpException
            op_type, op = next(iter(entry.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            if op_type == "Put":
                table = self.get_table(table_name)
                key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = op["Item"][table.range_key_attr]
            else:
                key = op["Key"]
            marker = (str(table_name), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(table_name, key)
            condition = op.get("ConditionExpression")
            failed = False
            if condition is not None:
                check = get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                )
                failed = not check.expr(current)
            if failed:
                old = (
                    current.to_json()["Attributes"]
                    if (current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD")
                    else None
                )
                errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
            else:
                errors.append((None, None, None))
            planned.append((op_type, op, table_name, key, copy.deepcopy(current)))
        if any(code is not None for code, _, _ in errors):
            raise TransactionCanceledException(errors)
        # 2. apply; should an operation itself fail, put back the items already written
        applied: list[tuple[str, dict[str, Any], Any]] = []
        for index, (op_type, op, table_name, key, before) in enumerate(planned):
            try:
                names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
                if op_type == "Put":
                    self.put_item(
                        table_name,
                        op["Item"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                elif op_type == "Delete":
                    self.delete_item(table_name, key)
                elif op_type == "Update":
                    self.update_item(
                        table_name,
                        key,
                        update_expression=op["UpdateExpression"],
                        expression_attribute_names=names,
                        expression_attribute_values=values,
                    )
                applied.append((table_name, key, before))
            except Exception as exc:
                for name, written_key, previous in reversed(applied):
                    if previous is None:
                        self.delete_item(name, written_key)
                    else:
                        self.put_item(name, previous.to_json()["Attributes"])
                reasons: list[tuple[str | None, str | None, Any]] = [(None, None, None)] * len(planned)
                reasons[index] = (type(exc).__name__, str(exc), None)
                raise TransactionCanceledException(reasons) from exc

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


def fast_queries() -> None:
    """A Query on a table's own key reads that partition, not the whole table; an index Query
    reads the table's items unsorted.

    moto answers every Query by sorting and scanning all items of the table; with the thousands
    of timeline and outbox items of a long local session, reading one incident's timeline slows
    to a crawl. An index query still has to look at every item (moto keeps no index), but moto
    re-sorts the items that match by the index's keys and then the table's (a total order), so
    sorting all of them first, with moto's slow comparisons, changed nothing but the time: with
    a thousand incidents stored the reconciler's pass took 2 s, and every other DynamoDB call
    waited behind it (pages fired during a pass took up to 0.9 s).
    """
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "partition_reads", False):
        return  # installed already
    original = Table.query
    signature = inspect.signature(original)
    if "index_name" not in signature.parameters or not callable(getattr(Table, "all_items", None)):
        raise MotoChanged(
            "moto.dynamodb.models.table.Table.query", "it takes index_name and reads Table.all_items()"
        )

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # moto passes index_name positionally; bind to find it wherever it is
        index_name = signature.bind(self, hash_key, *args, **kwargs).arguments.get("index_name")
        # Every query holds the lock, index queries too: while a partition view shadows all_items,
        # nothing else may read the table (an index query or a scan would miss other partitions).
        with DYNAMODB_LOCK:
            items: list[Any]
            if index_name and self.range_key_attr:  # every item, unsorted: moto sorts what matches
                items = [item for part in self.items.values() for item in part.values()]
            elif index_name:
                items = list(self.items.values())
            elif self.range_key_attr:  # the one partition, in range-key order
                items = sorted(self.items.get(hash_key, {}).values(), key=lambda item: item.range_key)
            else:
                return original(self, hash_key, *args, **kwargs)
            self.all_items = lambda: items
            try:
                return original(self, hash_key, *args, **kwargs)
            finally:
                del self.all_items

    query.partition_reads = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


def approximate_queue_counts() -> None:
    """moto recomputes a queue's attributes, counting every message, on each SendMessage (to read
    one flag). SQS's counts are approximate by contract; reusing them for a quarter second keeps
    them honest and stops a queue of a thousand delayed timers from taxing every send."""
    from moto.sqs.models import Queue

    if not isinstance(vars(Queue).get("attributes"), property) or not callable(
        vars(Queue).get("_set_attributes")
    ):
        raise MotoChanged(
            "moto.sqs.models.Queue.attributes", "it is a property, and _set_attributes sets them"
        )
    compute = Queue.attributes.fget  # type: ignore[attr-defined]
    if getattr(compute, "approximate", False):
        return  # installed already
    cache: dict[int, tuple[float, dict[str, Any]]] = {}
    set_attributes = Queue._set_attributes

    def attributes(self: Any) -> dict[str, Any]:
        now = time.monotonic()
        hit = cache.get(id(self))
        if hit is None or now - hit[0] > 0.25:
            hit = (now, compute(self))
            cache[id(self)] = hit
        return dict(hit[1])

    def _set_attributes(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return set_attributes(self, *args, **kwargs)
        finally:
            cache.pop(id(self), None)  # only the counts may lag; what a client just set may not

    attributes.approximate = True  # type: ignore[attr-defined]
    Queue.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    Queue._set_attributes = _set_attributes  # type: ignore[method-assign]


def one_clock_read_per_scan() -> None:
    """moto's list of a queue's visible messages reads the clock twice per message (a datetime
    subtraction each); every receive, long-poll check and count walks that list, so a queue holding
    a thousand delayed timers or undelivered pages cost the emulator a core. Read the clock once
    per walk: the same comparisons (visible after visible_at, not before delayed_until)."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Message, Queue

    walk = vars(Queue).get("messages")
    if not isinstance(walk, property) or not all(
        isinstance(vars(Message).get(name), property) for name in ("visible", "delayed")
    ):
        raise MotoChanged("moto.sqs.models.Queue.messages", "a property over Message.visible/delayed")
    if getattr(walk.fget, "one_clock_read", False):
        return  # installed already

    def messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and now >= m.delayed_until]

    messages.one_clock_read = True  # type: ignore[attr-defined]
    Queue.messages = property(messages)  # type: ignore[assignment,method-assign]


def plain_dynamodb_results() -> None:
    """moto walks each DynamoDB result through the operation's output shape to write its JSON,
    about a sixth of the emulator's time under load. DynamoDB's results are already their JSON's
    shape (attribute values tagged with their types), so they are written with json.dumps; a
    result holding anything but plain JSON values and bytes (a timestamp, a null) takes moto's
    serializer. tests/integration/test_emulator_moto.py compares the two on every kind of result."""
    import json
    import uuid
    from email.utils import formatdate

    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    if vars(DynamoResult).get("execute_result") is not None:
        if getattr(DynamoResult.execute_result, "plain", False):
            return  # installed already
        raise MotoChanged("moto.dynamodb.responses.DynamoResult", "it inherits ActionResult.execute_result")
    slow = ActionResult.execute_result
    if _parameters(slow) != ["self", "context"]:
        raise MotoChanged("moto.core.responses.ActionResult.execute_result", "execute_result(self, context)")

    strings = re.compile(r'"(?:[^"\\]|\\.)*"')  # a JSON string, escapes and all

    def blob(value: object) -> str:
        if isinstance(value, bytes):
            return base64.b64encode(value).decode()  # a B or BS value, as the wire carries it
        raise TypeError(type(value).__name__)

    def execute_result(self: Any, context: Any) -> Any:
        try:
            body = json.dumps(self.result, default=blob, separators=(",", ":"))
        except (TypeError, ValueError):
            return slow(self, context)
        # moto's serializer leaves out a member set to None. "null" is also in many a string value
        # (an item holding JSON), so it is looked for only outside the strings.
        if "null" in body and "null" in strings.sub("", body):
            return slow(self, context)
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "server": "amazon.com",
            "date": formatdate(usegmt=True),
            "x-amzn-requestid": uuid.uuid4().hex,
        }
        return 200, headers, body

    execute_result.plain = True  # type: ignore[attr-defined]
    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]


def prompt_long_polls() -> None:
    """moto's long poll sleeps on a condition that only a new message wakes, re-checking once a
    second: a delayed message (a timer) or one whose visibility timeout ran out waited up to a
    second more in a long poll than in SQS. The wait is cut at the moment the first of them is
    due, so that a long-polling worker receives a timer when it is due, as SQS would give it."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.models import Queue

    wait = vars(Queue).get("wait_for_messages")
    if not callable(wait) or _parameters(wait) != ["self", "timeout"]:
        raise MotoChanged("moto.sqs.models.Queue.wait_for_messages", "wait_for_messages(self, timeout)")
    if getattr(wait, "prompt", False):
        return  # installed already

    def wait_for_messages(self: Any, timeout: float) -> None:
        end = time.monotonic() + timeout
        with self._messages_lock:
            while not self.messages:  # every message added wakes this wait, and it looks again
                left = end - time.monotonic()
                if left <= 0:
                    return
                now = unix_time_millis()
                due = min(
                    (max(m.delayed_until, m.visible_at) for m in self._messages),
                    default=float("inf"),
                )
                self._messages_lock.wait(min(left, max(0.001, (due - now) / 1000)))

    wait_for_messages.prompt = True  # type: ignore[attr-defined]
    Queue.wait_for_messages = wait_for_messages  # type: ignore[method-assign]


def cached_service_list() -> None:
    """moto's server lists its own package directory on every request to route it; list it once."""
    from moto import backends

    if not callable(getattr(backends, "list_of_moto_modules", None)):
        raise MotoChanged("moto.backends.list_of_moto_modules", "the server routes requests by it")
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def cached_action_names() -> None:
    """moto lists a handler class's methods (inspect.getmembers) on every request to find the
    action's; a class's methods do not change once the server runs, so each is listed once."""
    from moto.core import responses

    listed = getattr(responses, "method_names_from_class", None)
    if not callable(listed) or _parameters(listed) != ["clazz"]:
        raise MotoChanged(
            "moto.core.responses.method_names_from_class", "call_action finds the action's method by it"
        )
    if getattr(listed, "cached", False):
        return  # installed already
    names: dict[object, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        if clazz not in names:
            names[clazz] = listed(clazz)
        return names[clazz]

    method_names_from_class.cached = True  # type: ignore[attr-defined]
    responses.method_names_from_class = method_names_from_class


def one_signing_certificate() -> None:
    """moto makes a new certificate for every SNS delivery (an RSA signature more, and a PEM kept
    per message: about 1.2 of its 2.4 ms per delivery). Here the first delivery of a subscription
    makes it as moto does and the later ones reuse it; each message is still signed with the
    subscription's key, as SNS's signature version 2 describes, and verifies against the PEM at
    its SigningCertURL."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.sns.models import Subscription, iso_8601_datetime_with_milliseconds

    original = Subscription.get_post_data
    if getattr(original, "one_certificate", False):
        return  # installed already
    if _parameters(original)[:4] != ["self", "message", "message_id", "subject"] or not callable(
        getattr(Subscription, "private_key", None)
    ):
        raise MotoChanged(
            "moto.sns.models.Subscription.get_post_data",
            "get_post_data(self, message, message_id, subject, ...) signs with self.private_key()",
        )
    urls: dict[Any, tuple[str, str]] = {}  # by key: its certificate's URL, the unsubscribe URL

    def get_post_data(
        self: Any, message: str, message_id: str, subject: str | None, message_attributes: Any = None
    ) -> dict[str, Any]:
        key = self.private_key()
        if key not in urls:
            first: dict[str, Any] = original(self, message, message_id, subject, message_attributes)
            urls[key] = first["SigningCertURL"], first["UnsubscribeURL"]
            return first
        timestamp = iso_8601_datetime_with_milliseconds()
        signed = "".join(
            f"{name}\n{value}\n"
            for name, value in (
                ("Message", message),
                ("MessageId", message_id),
                ("Timestamp", timestamp),
                ("TopicArn", self.topic.arn),
                ("Type", "Notification"),
            )
        )
        signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
        post: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": self.topic.arn,
            "Message": message,
            "Timestamp": timestamp,
            "SignatureVersion": "2",
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": urls[key][0],
            "UnsubscribeURL": urls[key][1],
        }
        if subject:
            post["Subject"] = subject
        if message_attributes:
            post["MessageAttributes"] = message_attributes
        return post

    get_post_data.one_certificate = True  # type: ignore[attr-defined]
    Subscription.get_post_data = get_post_data  # type: ignore[method-assign]


def exit_with_parent() -> None:
    """Stop when the process that started us is gone, so a killed stack leaves no emulator behind."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)  # polling the parent; there is no event to wait on
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    exit_with_parent()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request access log
    serialized_dynamodb()
    fast_transactions()
    fast_queries()
    approximate_queue_counts()
    one_clock_read_per_scan()
    plain_dynamodb_results()
    prompt_long_polls()
    cached_service_list()
    cached_action_names()
    one_signing_certificate()
    from moto.server import main as moto_main

    moto_main(["-H", args.host, "-p", str(args.port)])


if __name__ == "__main__":
    main()
