"""Where the local stack's emulators listen: one place for the rule every tool relies on.

`make run` answers DynamoDB from an emulator process of its own (so its work and the rest of
AWS's run on two cores), on the port after the AWS endpoint's.
"""

from __future__ import annotations

import urllib.parse


def dynamodb_port(aws_port: int) -> int:
    """The DynamoDB emulator's port for an AWS endpoint on `aws_port`."""
    return aws_port + 1


def dynamodb_beside(aws_url: str) -> str:
    """The DynamoDB emulator's URL for the AWS endpoint `aws_url`."""
    parts = urllib.parse.urlsplit(aws_url)
    return parts._replace(netloc=f"{parts.hostname}:{dynamodb_port(parts.port or 80)}").geturl()
