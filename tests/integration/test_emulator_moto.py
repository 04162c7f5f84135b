"""What local/emulator.py's patches assume of moto's internals, checked one by one.

The patches replace or wrap private moto code (written against moto MOTO_VERSION). When a moto
upgrade changes one of those internals these tests fail, each naming the internal and the
assumption, instead of the local stack quietly losing its atomicity or its speed.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
import pytest
import time_machine
from moto.dynamodb.models import DynamoDBBackend, dynamodb_backends
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.sns.models import Subscription
from moto.sqs.models import Queue

from local import emulator
from local.emulator import MotoChanged
from local.template import ACCOUNT, LocalStack


def changed(internal: str, assumption: str) -> str:
    return str(MotoChanged(internal, assumption))


def test_every_dynamodb_action_runs_through_call_action(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # serialized_dynamodb holds its lock around DynamoHandler.call_action: every action must pass there.
    seen: list[str] = []
    action = DynamoHandler.call_action

    def recording(self: Any) -> Any:
        seen.append(self.headers.get("X-Amz-Target", "?").split(".")[-1])
        return action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", recording)
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    table = aws.physical["IncidentsTable"]
    key = {"pk": {"S": "INC-X"}, "sk": {"S": "META"}}
    ddb.put_item(TableName=table, Item=key)
    ddb.update_item(
        TableName=table, Key=key, UpdateExpression="SET v = :v", ExpressionAttributeValues={":v": {"N": "1"}}
    )
    ddb.batch_write_item(
        RequestItems={table: [{"PutRequest": {"Item": {"pk": {"S": "INC-Y"}, "sk": {"S": "META"}}}}]}
    )
    ddb.transact_write_items(TransactItems=[{"Delete": {"TableName": table, "Key": key}}])
    ddb.delete_item(TableName=table, Key={"pk": {"S": "INC-Y"}, "sk": {"S": "META"}})
    ddb.get_item(TableName=table, Key=key)
    ddb.query(
        TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC-X"}}
    )
    ddb.scan(TableName=table)
    expected = [
        "PutItem",
        "UpdateItem",
        "BatchWriteItem",
        "TransactWriteItems",
        "DeleteItem",
        "GetItem",
        "Query",
        "Scan",
    ]
    assert seen == expected, changed(
        "moto.dynamodb.responses.DynamoHandler.call_action",
        f"every DynamoDB action runs through it (saw {seen})",
    )


def test_the_transaction_handler_passes_the_items_alone(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fast_transactions replaces DynamoDBBackend.transact_write_items(self, transact_items).
    calls: list[list[dict[str, Any]]] = []

    def recording(self: Any, transact_items: list[dict[str, Any]]) -> None:
        calls.append(transact_items)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", recording)
    item = {
        "Put": {"TableName": aws.physical["IncidentsTable"], "Item": {"pk": {"S": "I"}, "sk": {"S": "S"}}}
    }
    try:
        boto3.client("dynamodb", region_name="us-east-1").transact_write_items(TransactItems=[item])
    except Exception as exc:
        pytest.fail(
            changed("moto.dynamodb.models.DynamoDBBackend.transact_write_items", f"(self, items): {exc}")
        )
    assert calls == [[item]], changed(
        "moto.dynamodb.models.DynamoDBBackend.transact_write_items",
        "TransactWriteItems calls it with the items",
    )


def test_a_table_query_and_scan_read_all_items_and_items_holds_partitions(aws: LocalStack) -> None:
    # fast_queries shows a query one partition by shadowing Table.all_items with table.items[hash_key].
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    name = aws.physical["IncidentsTable"]
    for sk in ("B", "A"):
        ddb.put_item(TableName=name, Item={"pk": {"S": "INC-P"}, "sk": {"S": sk}})
    table = dynamodb_backends[ACCOUNT]["us-east-1"].get_table(name)
    partition = next(iter(table.items.values()), None)
    assert isinstance(partition, dict) and sorted(i.range_key.value for i in partition.values()) == [
        "A",
        "B",
    ], changed(
        "moto.dynamodb.models.table.Table.items", "it maps hash key -> range key -> Item (with .range_key)"
    )

    def count(**kwargs: Any) -> int:
        return int(ddb.query(TableName=name, **kwargs)["Count"])

    index = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    index_hash = next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
    index_keys = {k["AttributeName"]: {"S": "h"} for k in index["KeySchema"]}  # only full keys are indexed
    ddb.put_item(TableName=name, Item={"pk": {"S": "INC-Q"}, "sk": {"S": "A"}, **index_keys})

    def index_count() -> int:
        return count(
            IndexName=index["IndexName"],
            KeyConditionExpression="#h = :h",
            ExpressionAttributeNames={"#h": index_hash},
            ExpressionAttributeValues={":h": {"S": "h"}},
        )

    assert index_count() == 1
    table.all_items = lambda: []  # nothing to read, if moto reads through all_items
    try:
        query = count(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC-P"}})
        scan = int(ddb.scan(TableName=name)["Count"])
        index_query = index_count()
    finally:
        del table.all_items
    assert query == 0, changed(
        "moto.dynamodb.models.table.Table.query", "a query on the table key reads all_items()"
    )
    assert index_query == 0, changed(
        "moto.dynamodb.models.table.Table.query", "an index query reads all_items() and sorts what matches"
    )
    assert scan == 0, changed("moto.dynamodb.models.table.Table.scan", "a scan reads all_items()")
    assert count(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC-P"}}) == 2


def test_an_index_query_passes_index_name_where_fast_queries_binds_it(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inspect

    ddb = boto3.client("dynamodb", region_name="us-east-1")
    name = aws.physical["IncidentsTable"]
    index = ddb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"][0]
    hash_attr = next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
    signature = inspect.signature(Table.query)
    bound: list[Any] = []
    original = Table.query

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound.append(signature.bind(self, *args, **kwargs).arguments.get("index_name"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Table, "query", recording)
    ddb.query(
        TableName=name,
        IndexName=index["IndexName"],
        KeyConditionExpression="#h = :h",
        ExpressionAttributeNames={"#h": hash_attr},
        ExpressionAttributeValues={":h": {"S": "x"}},
    )
    assert bound == [index["IndexName"]], changed(
        "moto.dynamodb.models.table.Table.query", "the backend passes index_name, bindable by its signature"
    )


def test_queue_attributes_is_the_property_sends_read_and_set_attributes_sets_them(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # approximate_queue_counts caches Queue.attributes and drops the cache in Queue._set_attributes.
    monkeypatch.setattr(Queue, "attributes", vars(Queue)["attributes"])
    monkeypatch.setattr(Queue, "_set_attributes", vars(Queue)["_set_attributes"])
    emulator.approximate_queue_counts()
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = aws.physical["TimerQueue"]
    before = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert "ApproximateNumberOfMessages" in before, changed(
        "moto.sqs.models.Queue.attributes", "it holds the queue's counts"
    )
    # What a client sets shows at once; only the counts may lag
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "77"})
    after = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert after == {"VisibilityTimeout": "77"}, changed(
        "moto.sqs.models.Queue._set_attributes", "SetQueueAttributes goes through it"
    )


def test_the_server_routes_by_the_list_of_moto_modules() -> None:
    from moto import backends
    from moto.moto_server import werkzeug_app

    modules = set(backends.list_of_moto_modules())
    assert {"dynamodb", "sqs", "sns"} <= modules and werkzeug_app.backends is backends, changed(
        "moto.backends.list_of_moto_modules", "moto_server.werkzeug_app routes requests by it"
    )


def test_action_names_listed_once_per_class_are_moto_s_and_still_dispatch(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.core import responses
    from moto.sqs.responses import SQSResponse

    # Given moto's own listing of a handler's methods, and the cached one installed over it
    listed = responses.method_names_from_class
    monkeypatch.setattr(responses, "method_names_from_class", listed)  # (restored after the test)
    calls: list[object] = []
    monkeypatch.setattr(
        responses, "method_names_from_class", lambda clazz: calls.append(clazz) or listed(clazz)
    )
    emulator.cached_action_names()
    # When requests reach two handler classes, each twice
    ddb, sqs = boto3.client("dynamodb", region_name=aws.region), boto3.client("sqs", region_name=aws.region)
    for _ in range(2):
        ddb.describe_table(TableName=aws.physical["IncidentsTable"])
        sqs.list_queues()
    # Then they were answered, each class was listed once, and the names are moto's
    assert calls == [DynamoHandler, SQSResponse], changed(
        "moto.core.responses.method_names_from_class", "call_action finds the action's method by it"
    )
    assert responses.method_names_from_class(DynamoHandler) == listed(DynamoHandler)


def test_sns_deliveries_after_the_first_reuse_its_certificate_and_verify_against_it(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64
    import json

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    # Given a topic with a queue subscribed, and the patch installed (restored after the test)
    monkeypatch.setattr(Subscription, "get_post_data", Subscription.get_post_data)
    emulator.one_signing_certificate()
    sns, sqs = boto3.client("sns", region_name=aws.region), boto3.client("sqs", region_name=aws.region)
    topic = sns.create_topic(Name="emu-signing")["TopicArn"]
    queue = sqs.create_queue(QueueName="emu-signing")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    stored = sns_backends[DEFAULT_ACCOUNT_ID][aws.region]._message_public_keys
    before = len(stored)
    # When three messages are published, one with a subject and attributes
    sns.publish(TopicArn=topic, Message="first")
    sns.publish(TopicArn=topic, Message="second\nline")
    attributes = {"kind": {"DataType": "String", "StringValue": "page"}}
    sns.publish(TopicArn=topic, Message="third", Subject="subject", MessageAttributes=attributes)
    got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    envelopes = sorted((json.loads(m["Body"]) for m in got), key=lambda e: str(e["Message"]))
    # Then one certificate was made, every envelope has moto's members, and each signature verifies
    assert len(stored) == before + 1, changed("moto.sns.models.Subscription.get_post_data", "a PEM per call")
    first = envelopes[0]
    assert [e["SigningCertURL"] for e in envelopes] == [first["SigningCertURL"]] * 3
    assert set(envelopes[1]) == set(first)
    assert envelopes[2]["Subject"] == "subject"
    assert envelopes[2]["MessageAttributes"]["kind"]["Value"] == "page"
    certificate = x509.load_pem_x509_certificate(stored[first["SigningCertURL"].rsplit("/", 1)[1]])
    for e in envelopes:
        signed = "".join(
            f"{name}\n{e[name]}\n" for name in ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
        )
        certificate.public_key().verify(  # type: ignore[union-attr, call-arg]
            base64.b64decode(e["Signature"]), signed.encode(), padding.PKCS1v15(), hashes.SHA256()
        )


def test_a_long_poll_wakes_when_a_delayed_message_becomes_visible(
    aws: LocalStack, clock: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import sqs_backends

    monkeypatch.setattr(Queue, "wait_for_messages", Queue.wait_for_messages)  # restored after the test
    emulator.prompt_long_polls()
    # Given the timer queue holding one message delayed by a second, nothing visible yet
    sqs = boto3.client("sqs", region_name=aws.region)
    url = aws.physical["TimerQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="timer", DelaySeconds=1)
    queue = sqs_backends[ACCOUNT][aws.region].queues[url.rsplit("/", 1)[1]]
    # When a long poll waits on it for up to an hour (moto's own wait re-checks only when a message
    # is added), and the clock passes the message's due time while it waits
    waiter = threading.Thread(target=queue.wait_for_messages, args=(3600,), daemon=True)
    waiter.start()
    waiter.join(0.5)
    assert waiter.is_alive() and not queue.messages  # (the clock stands still: nothing is due)
    clock.shift(2)
    # Then the wait ends by itself, the message visible (the join's timeout only guards against a hang)
    waiter.join(timeout=60)
    assert not waiter.is_alive()
    assert [m.body for m in queue.messages] == ["timer"]


def test_the_visible_messages_scan_reads_the_clock_once_and_keeps_moto_s_rule(
    aws: LocalStack, clock: time_machine.Traveller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.sqs.models import sqs_backends

    moto_messages = vars(Queue)["messages"]
    monkeypatch.setattr(Queue, "messages", moto_messages)  # restored after the test
    # Given a queue holding a message received (in flight), one delayed and one visible
    sqs = boto3.client("sqs", region_name=aws.region)
    url = aws.physical["TimerQueue"]
    sqs.send_message(QueueUrl=url, MessageBody="in flight")
    sqs.receive_message(QueueUrl=url, VisibilityTimeout=30)
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=5)
    sqs.send_message(QueueUrl=url, MessageBody="visible")
    queue = sqs_backends[ACCOUNT][aws.region].queues[url.rsplit("/", 1)[1]]
    # When the emulator's scan replaces moto's, Then both see the same messages, now and later
    emulator.one_clock_read_per_scan()
    for shift in (0, 6, 31):
        clock.shift(shift)
        ours = [m.body for m in queue.messages]
        assert ours == [m.body for m in moto_messages.fget(queue)], changed(
            "moto.sqs.models.Message", "visible_at and delayed_until in epoch milliseconds"
        )
    assert ours == ["in flight", "delayed", "visible"]


def test_dynamodb_results_written_plainly_are_what_moto_s_serializer_writes(
    aws: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    # Given every result moto's serializer writes is kept, with what the plain writer makes of it
    monkeypatch.setattr(DynamoResult, "execute_result", None)  # (restored after the test)
    del DynamoResult.execute_result  # as moto has it: inherited
    moto_writes = ActionResult.execute_result
    emulator.plain_dynamodb_results()
    plain_writes = DynamoResult.execute_result
    pairs: list[tuple[str, Any, Any]] = []

    def both(self: Any, context: Any) -> Any:
        pairs.append((context.operation_model.name, moto_writes(self, context), plain_writes(self, context)))
        return pairs[-1][1]

    monkeypatch.setattr(DynamoResult, "execute_result", both)
    # When items of every attribute type are written, read, updated, queried, batched and transacted
    ddb = boto3.client("dynamodb", region_name=aws.region)
    table = aws.physical["IncidentsTable"]
    item = {
        "pk": {"S": "EMU#1"},
        "sk": {"S": 'é ✓ "quoted" \u2028'},
        "blob": {"B": bytes(range(256))},
        "blobs": {"BS": [b"\x00", b"\xff"]},
        "n": {"N": "-1.50"},
        "ns": {"NS": ["1", "2.5"]},
        "ss": {"SS": ["a", "b"]},
        "document": {"S": '{"escalation": null, "note": "\\"null\\""}'},  # JSON kept in a string
        "flag": {"BOOL": False},
        "nothing": {"NULL": True},
        "nested": {"M": {"l": {"L": [{"S": ""}, {"N": "0"}, {"M": {}}]}}},
    }
    key = {"pk": item["pk"], "sk": item["sk"]}
    ddb.put_item(TableName=table, Item=item, ReturnConsumedCapacity="TOTAL")
    ddb.get_item(TableName=table, Key=key)
    ddb.get_item(TableName=table, Key={"pk": {"S": "EMU#none"}, "sk": {"S": "x"}})
    ddb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="ADD c :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="ALL_NEW",
    )
    ddb.query(
        TableName=table,
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": item["pk"]},
        Limit=1,
    )
    ddb.batch_get_item(RequestItems={table: {"Keys": [key]}})
    ddb.transact_get_items(TransactItems=[{"Get": {"TableName": table, "Key": key}}])
    ddb.describe_table(TableName=table)
    # Then each result the plain writer takes is the same JSON with the same headers, and it takes
    # the item reads (the ones the engine makes most)
    taken = []
    for operation, (status, headers, body), (p_status, p_headers, p_body) in pairs:
        if p_body == body:
            continue  # declined: moto's own (moto's JSON has spaces after its separators)
        taken.append(operation)
        assert (p_status, set(p_headers)) == (status, set(headers)), operation
        assert json.loads(p_body) == json.loads(body), changed(
            "moto.dynamodb.responses.DynamoResult", f"{operation}'s result is its JSON's shape"
        )
    assert {"PutItem", "GetItem", "Query", "UpdateItem", "BatchGetItem", "TransactGetItems"} <= set(taken)


def test_each_patch_refuses_to_install_over_an_internal_that_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given moto internals shaped differently from what the patches expect
    monkeypatch.setattr(Queue, "attributes", lambda self: {})
    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", lambda self, items, token: None)
    monkeypatch.setattr(DynamoHandler, "call_action", lambda self, extra: None)
    # When the emulator installs its patches, Then each stops with the internal's name
    with pytest.raises(MotoChanged, match=r"moto\.sqs\.models\.Queue\.attributes"):
        emulator.approximate_queue_counts()
    with pytest.raises(MotoChanged, match=r"DynamoDBBackend\.transact_write_items"):
        emulator.fast_transactions()
    with pytest.raises(MotoChanged, match=r"DynamoHandler\.call_action"):
        emulator.serialized_dynamodb()
    monkeypatch.setattr(Queue, "wait_for_messages", lambda self: None)
    with pytest.raises(MotoChanged, match=r"Queue\.wait_for_messages"):
        emulator.prompt_long_polls()
    from moto.core import responses

    monkeypatch.setattr(responses, "method_names_from_class", lambda clazz, predicate: [])
    with pytest.raises(MotoChanged, match=r"responses\.method_names_from_class"):
        emulator.cached_action_names()
    monkeypatch.setattr(Subscription, "get_post_data", lambda self, message: {})
    with pytest.raises(MotoChanged, match=r"Subscription\.get_post_data"):
        emulator.one_signing_certificate()
    monkeypatch.setattr(Queue, "messages", [])
    with pytest.raises(MotoChanged, match=r"Queue\.messages"):
        emulator.one_clock_read_per_scan()
