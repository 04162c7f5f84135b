"""The local stack's faster TransactWriteItems behaves as moto's own (and DynamoDB's) does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from local.emulator import fast_transactions


@pytest.fixture(params=["moto", "local.emulator"])
def ddb(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    if request.param == "local.emulator":
        monkeypatch.setattr(DynamoDBBackend, "transact_write_items", DynamoDBBackend.transact_write_items)
        fast_transactions()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "v": {"N": "1"}})
        yield client


def put(pk: str, v: int, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": "t", "Item": {"pk": {"S": pk}, "v": {"N": str(v)}}}
    if condition:
        op["ConditionExpression"] = condition
    return {"Put": op}


def items(ddb: Any) -> dict[str, str]:
    return {i["pk"]["S"]: i["v"]["N"] for i in ddb.scan(TableName="t")["Items"]}


def test_all_conditions_hold_so_everything_is_written(ddb: Any) -> None:
    ddb.transact_write_items(
        TransactItems=[
            put("a", 2, "attribute_exists(pk)"),
            put("b", 1, "attribute_not_exists(pk)"),
            {
                "Update": {
                    "TableName": "t",
                    "Key": {"pk": {"S": "c"}},
                    "UpdateExpression": "SET v = :three",
                    "ExpressionAttributeValues": {":three": {"N": "3"}},
                }
            },
        ]
    )
    assert items(ddb) == {"a": "2", "b": "1", "c": "3"}


def test_one_failed_condition_writes_nothing_and_names_the_item(ddb: Any) -> None:
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[put("b", 1), put("a", 9, "attribute_not_exists(pk)")])
    reasons = [r["Code"] for r in err.value.response["CancellationReasons"]]
    assert reasons == ["None", "ConditionalCheckFailed"]
    assert items(ddb) == {"a": "1"}


def test_two_operations_on_one_item_are_refused(ddb: Any) -> None:
    with pytest.raises(ClientError) as err:
        ddb.transact_write_items(TransactItems=[put("b", 1), put("b", 2)])
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert items(ddb) == {"a": "1"}


@pytest.fixture(params=["moto", "local.emulator"])
def ranged(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from moto.dynamodb.models.table import Table

    from local.emulator import fast_queries

    if request.param == "local.emulator":
        monkeypatch.setattr(Table, "query", Table.query)
        fast_queries()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="r",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
        )
        for pk in ("INC#1", "INC#2"):
            for sk in ("META", "EV#2", "EV#1", "OUT#a"):
                client.put_item(TableName="r", Item={"pk": {"S": pk}, "sk": {"S": sk}})
        yield client


def test_a_query_on_the_table_key_reads_its_partition_in_order(ranged: Any) -> None:
    def sks(**kwargs: Any) -> list[str]:
        return [i["sk"]["S"] for i in ranged.query(TableName="r", **kwargs)["Items"]]

    values = {":p": {"S": "INC#1"}, ":e": {"S": "EV#"}}
    assert sks(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC#1"}}) == [
        "EV#1",
        "EV#2",
        "META",
        "OUT#a",
    ]
    assert sks(
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
    ) == ["EV#2", "EV#1"]
    assert sks(KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC#9"}}) == []


def query_due(client: Any, **kwargs: Any) -> dict[str, Any]:
    """The DueIndex partition "DUE" of table r."""
    return dict(
        client.query(
            TableName="r",
            IndexName="DueIndex",
            KeyConditionExpression="due_pk = :d",
            ExpressionAttributeValues={":d": {"S": "DUE"}},
            **kwargs,
        )
    )


def test_an_index_query_reads_every_partition_in_index_order(ranged: Any) -> None:
    # Given items that carry an index key, in several partitions, written in an order that is
    # neither the index's nor the table's (the emulator hands moto the table's items unsorted)
    ranged.update_table(
        TableName="r",
        AttributeDefinitions=[
            {"AttributeName": "due_pk", "AttributeType": "S"},
            {"AttributeName": "due_key", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexUpdates=[
            {
                "Create": {
                    "IndexName": "DueIndex",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [
                        {"AttributeName": "due_pk", "KeyType": "HASH"},
                        {"AttributeName": "due_key", "KeyType": "RANGE"},
                    ],
                }
            }
        ],
    )
    written = [
        ("INC#3", "07:02"),
        ("INC#1", "07:00"),
        ("INC#4", "07:01"),
        ("INC#2", "07:01"),
        ("INC#5", "07:09"),
    ]
    for pk, at in written:
        ranged.put_item(
            TableName="r",
            Item={"pk": {"S": pk}, "sk": {"S": "META"}, "due_pk": {"S": "DUE"}, "due_key": {"S": at}},
        )
    ranged.put_item(  # in another index partition
        TableName="r",
        Item={"pk": {"S": "INC#6"}, "sk": {"S": "META"}, "due_pk": {"S": "LATER"}, "due_key": {"S": "07:00"}},
    )

    def due(**kwargs: Any) -> dict[str, Any]:
        return query_due(ranged, **kwargs)

    # When the index is queried, Then every partition's items come back in index order, ties in
    # the table's key order, forwards and backwards
    in_order = ["INC#1", "INC#2", "INC#4", "INC#3", "INC#5"]
    assert [i["pk"]["S"] for i in due()["Items"]] == in_order
    assert [i["pk"]["S"] for i in due(ScanIndexForward=False)["Items"]] == in_order[::-1]
    # And page by page, each page starting where the last ended
    pages, start = [], None
    while True:
        page = due(Limit=2, **({"ExclusiveStartKey": start} if start else {}))
        pages.append([i["pk"]["S"] for i in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert [pk for page in pages for pk in page] == in_order and pages[0] == in_order[:2]


def test_an_index_query_on_another_thread_waits_for_a_partition_view(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools
    import threading

    from moto.dynamodb.models.table import Table

    from local.emulator import fast_queries

    # Given: while a base-table query has its partition view in place, another server thread
    # starts an index query (the interleaving is forced here, not left to the scheduler)
    monkeypatch.setattr(Table, "query", Table.query)
    moto_query = Table.query
    index_counts: list[int] = []
    threads: list[threading.Thread] = []

    @functools.wraps(moto_query)  # keeps moto's signature, which fast_queries reads index_name from
    def interleaving(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        if "all_items" in vars(self) and not threads:  # inside a partition view
            thread = threading.Thread(target=lambda: index_counts.append(index_query()))
            threads.append(thread)
            thread.start()
            thread.join(timeout=0.5)  # it either finishes now (no lock) or waits for us
        return moto_query(self, hash_key, *args, **kwargs)

    monkeypatch.setattr(Table, "query", interleaving)
    fast_queries()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="r",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "due_pk", "due_key")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "DueIndex",
                    "Projection": {"ProjectionType": "ALL"},
                    "KeySchema": [
                        {"AttributeName": "due_pk", "KeyType": "HASH"},
                        {"AttributeName": "due_key", "KeyType": "RANGE"},
                    ],
                }
            ],
        )
        for n, pk in enumerate(("INC#1", "INC#2")):
            client.put_item(
                TableName="r",
                Item={
                    "pk": {"S": pk},
                    "sk": {"S": "META"},
                    "due_pk": {"S": "DUE"},
                    "due_key": {"S": f"2026-11-22T07:0{n}"},
                },
            )

        def index_query() -> int:
            return len(query_due(client)["Items"])

        assert index_query() == 2  # the index answers both before anything interleaves
        # When the base-table query runs
        client.query(
            TableName="r", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "INC#1"}}
        )
        threads[0].join(timeout=120)  # a hang guard: on a busy machine the index query may take a while
        assert not threads[0].is_alive(), "the index query never finished"
    # Then the index query still saw both incidents, not only the viewed partition
    assert index_counts == [2]
