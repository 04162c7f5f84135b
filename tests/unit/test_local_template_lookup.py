"""`provision(create=False)` finds `make run`'s resources, or says where it looked."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from local.template import provision

AWS = "http://127.0.0.1:5000"
DYNAMODB = "http://127.0.0.1:5001"


class RecordingSession:
    """A boto3 session whose clients are stubbed: no request leaves the process."""

    def __init__(self) -> None:
        self._session = boto3.Session(aws_access_key_id="x", aws_secret_access_key="x")
        self.endpoints: dict[str, str | None] = {}
        self.stubbers: dict[str, Stubber] = {}

    def client(self, service: str, **kwargs: Any) -> Any:
        client = self._session.client(service, **kwargs)
        self.endpoints[service] = kwargs.get("endpoint_url")
        self.stubbers[service] = Stubber(client)
        if service == "dynamodb":
            self.stubbers[service].add_client_error("describe_table", "ResourceNotFoundException")
        self.stubbers[service].activate()
        return client


def test_a_missing_table_names_the_dynamodb_emulator_it_was_looked_for_on() -> None:
    # Given a running stack whose DynamoDB emulator (on its own port) holds none of the tables
    session = RecordingSession()
    # When the resources are looked up
    with pytest.raises(LookupError) as raised:
        provision(session, endpoint_url=AWS, dynamodb_endpoint_url=DYNAMODB, create=False)
    # Then the error names the table and the endpoint DynamoDB was asked on, not the other one
    assert f"does not exist on {DYNAMODB}: is the local stack running?" in str(raised.value)
    assert "incident-engine-local-" in str(raised.value)
    assert session.endpoints == {"dynamodb": DYNAMODB, "sqs": AWS, "sns": AWS}


def test_without_a_dynamodb_endpoint_dynamodb_is_asked_on_the_aws_one() -> None:
    session = RecordingSession()
    with pytest.raises(LookupError, match=f"does not exist on {AWS}:"):
        provision(session, endpoint_url=AWS, create=False)
    assert session.endpoints == {"dynamodb": AWS, "sqs": AWS, "sns": AWS}
