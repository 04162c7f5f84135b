"""The emulator as the local stack runs it: `python -m local.emulator`, a threaded HTTP server.

Concurrent requests here really interleave on the server's threads, which in-process moto never
shows: these tests race conditional writes against one item and count what committed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.process import ROOT, free_port, wait_for
from local.template import provision

ROUNDS = 100  # 2 racers over 200 rounds doubled a commit in 81 rounds before the lock
RACERS = 4
# An incident item carries its policy snapshot; its size is what each write copies, and so how
# wide the window between a condition's check and its write is.
SNAPSHOT = {
    "M": {
        f"level{n}": {
            "M": {"delay_minutes": {"N": "5"}, "targets": {"L": [{"S": f"user{n}@example.com"}] * 5}}
        }
        for n in range(40)
    }
}


@dataclass
class Emulator:
    url: str
    table: str  # template.yaml's IncidentsTable, as the stack names it

    def client(self) -> Any:
        # No retries: a retried request would blur what one request did.
        session: Any = boto3.Session(
            aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
        )
        return session.client(
            "dynamodb",
            endpoint_url=self.url,
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=RACERS + 2),
        )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    port = free_port()
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "local.emulator", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),  # a file, not a pipe nobody reads: a chatty server never blocks
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    session: Any = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local")

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited: {log.read_text()}")
        try:
            session.client("dynamodb", endpoint_url=url, region_name="us-east-1").list_tables()
        except Exception:
            return False
        return True

    try:
        wait_for(up, 60, "the emulator to answer")
        stack = provision(session, endpoint_url=url)
        yield Emulator(url, stack.physical["IncidentsTable"])
    finally:
        process.terminate()
        process.wait(timeout=20)


def race(emulator: Emulator, pk: str, attempt: Callable[[Any, int, int], None]) -> dict[int, list[int]]:
    """RACERS threads, released together each round, each calling attempt(client, round, racer);
    returns round -> the racers whose attempt did not raise ConditionalCheckFailed/cancellation."""
    clients = [emulator.client() for _ in range(RACERS)]
    clients[0].put_item(
        TableName=emulator.table,
        Item={"pk": {"S": pk}, "sk": {"S": "META"}, "version": {"N": "0"}, "policy": SNAPSHOT},
    )
    barrier = threading.Barrier(RACERS)
    commits: dict[int, list[int]] = {r: [] for r in range(ROUNDS)}
    errors: list[BaseException] = []

    def racer(n: int) -> None:
        try:
            for r in range(ROUNDS):
                barrier.wait(timeout=60)  # a hang guard, not a pace
                try:
                    attempt(clients[n], r, n)
                except ClientError as err:
                    if err.response["Error"]["Code"] not in (
                        "ConditionalCheckFailedException",
                        "TransactionCanceledException",
                    ):
                        raise
                else:
                    commits[r].append(n)
                barrier.wait(timeout=60)  # the round is over for everyone before the next starts
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return commits


def fire(emulator: Emulator, pk: str) -> Callable[[Any, int, int], None]:
    """The engine's shape: bump the item's version on a condition, append an event, in one transaction."""

    def attempt(client: Any, r: int, n: int) -> None:
        client.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": emulator.table,
                        "Key": {"pk": {"S": pk}, "sk": {"S": "META"}},
                        "UpdateExpression": "SET version = :next, winner = :me",
                        "ConditionExpression": "version = :seen",
                        "ExpressionAttributeValues": {
                            ":seen": {"N": str(r)},
                            ":next": {"N": str(r + 1)},
                            ":me": {"N": str(n)},
                        },
                    }
                },
                {
                    "Put": {
                        "TableName": emulator.table,
                        "Item": {"pk": {"S": pk}, "sk": {"S": f"EV#{r:04d}#{n}"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )

    return attempt


def events(emulator: Emulator, pk: str) -> dict[int, list[int]]:
    """round -> racers whose event row was stored."""
    client = emulator.client()
    stored: dict[int, list[int]] = {}
    pages = client.get_paginator("query").paginate(
        TableName=emulator.table,
        KeyConditionExpression="pk = :p AND begins_with(sk, :e)",
        ExpressionAttributeValues={":p": {"S": pk}, ":e": {"S": "EV#"}},
    )
    for page in pages:
        for item in page["Items"]:
            _, r, n = item["sk"]["S"].split("#")
            stored.setdefault(int(r), []).append(int(n))
    return stored


def version(emulator: Emulator, pk: str) -> int:
    item = emulator.client().get_item(TableName=emulator.table, Key={"pk": {"S": pk}, "sk": {"S": "META"}})
    return int(item["Item"]["version"]["N"])


def test_concurrent_conditional_transactions_on_one_item_commit_once_per_round(emulator: Emulator) -> None:
    # Given an item at version r, When RACERS transactions conditioned on version r run at once
    commits = race(emulator, "INC-RACE-TX", fire(emulator, "INC-RACE-TX"))
    # Then exactly one commits each round: the others are cancelled, not applied
    doubled = {r: who for r, who in commits.items() if len(who) != 1}
    assert not doubled, f"{len(doubled)} of {ROUNDS} rounds did not commit exactly once: {doubled}"
    # And the store holds one event per round, the winner's, and the version moved once a round
    assert events(emulator, "INC-RACE-TX") == commits
    assert version(emulator, "INC-RACE-TX") == ROUNDS


def test_transactions_and_single_item_conditional_writes_exclude_each_other(emulator: Emulator) -> None:
    pk = "INC-RACE-MIXED"
    transaction = fire(emulator, pk)

    def attempt(client: Any, r: int, n: int) -> None:
        key = {"pk": {"S": pk}, "sk": {"S": "META"}}
        values = {":seen": {"N": str(r)}, ":next": {"N": str(r + 1)}, ":me": {"N": str(n)}}
        if n % 2 == 0:
            transaction(client, r, n)
            return
        if r % 2 == 0:
            client.update_item(
                TableName=emulator.table,
                Key=key,
                UpdateExpression="SET version = :next, winner = :me",
                ConditionExpression="version = :seen",
                ExpressionAttributeValues=values,
            )
        else:
            client.put_item(
                TableName=emulator.table,
                Item={**key, "version": values[":next"], "winner": values[":me"]},
                ConditionExpression="version = :seen",
                ExpressionAttributeValues={":seen": values[":seen"]},
            )
        # a single-item write has no event row of its own; record the win the same way
        client.put_item(TableName=emulator.table, Item={"pk": {"S": pk}, "sk": {"S": f"EV#{r:04d}#{n}"}})

    # Given an item at version r, When a transaction, an UpdateItem and a PutItem, each
    # conditioned on version r, race for it
    commits = race(emulator, pk, attempt)
    # Then exactly one of them wins each round
    doubled = {r: who for r, who in commits.items() if len(who) != 1}
    assert not doubled, f"{len(doubled)} of {ROUNDS} rounds did not commit exactly once: {doubled}"
    assert events(emulator, pk) == commits
    assert version(emulator, pk) == ROUNDS


def test_a_scan_never_sees_a_concurrent_querys_partition_view(emulator: Emulator) -> None:
    # Given a long partition and a few short ones
    client = emulator.client()
    rows = [("INC-VIEW-LONG", f"EV#{n:04d}") for n in range(300)]
    rows += [(f"INC-VIEW-{n}", sk) for n in range(3) for sk in ("META", "EV#1")]
    for start in range(0, len(rows), 25):
        client.batch_write_item(
            RequestItems={
                emulator.table: [
                    {"PutRequest": {"Item": {"pk": {"S": pk}, "sk": {"S": sk}}}}
                    for pk, sk in rows[start : start + 25]
                ]
            }
        )
    seen: list[int] = []

    def attempt(client: Any, r: int, n: int) -> None:
        if n % 2:
            client.query(
                TableName=emulator.table,
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": {"S": "INC-VIEW-LONG"}},
                Select="COUNT",
            )
        else:
            got = client.scan(
                TableName=emulator.table,
                FilterExpression="begins_with(pk, :v)",
                ExpressionAttributeValues={":v": {"S": "INC-VIEW-"}},
                Select="COUNT",
            )
            seen.append(got["Count"])

    # When scans of the table race queries of the long partition
    race(emulator, "INC-SCAN-RACE", attempt)
    # Then every scan saw every partition's items, not only the one a query was reading
    short = [n for n in seen if n != len(rows)]
    assert not short, f"{len(short)} of {len(seen)} scans missed items: {sorted(set(short))}"
