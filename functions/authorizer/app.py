"""Token authorizer: lets a request through when its bearer token hashes to the configured value.

Only the SHA-256 of the token is deployed (parameter ApiTokenSha256), so the token itself never
sits in the template, the function configuration or the logs.
"""

import hashlib
import hmac
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.observability import logger


def _allowed_resource(method_arn: str) -> str:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path -> every route of this stage,
    # so a cached decision for one route is right for the others.
    arn, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0] if path else "*"
    return f"{arn}/{stage}/*/*"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    header = str(event.get("authorizationToken") or "")
    scheme, _, token = header.partition(" ")
    expected = os.environ.get("API_TOKEN_SHA256", "").strip().lower()
    if scheme.lower() != "bearer" or not token or not expected:
        raise Exception("Unauthorized")  # API Gateway answers 401 for exactly this message
    presented = hashlib.sha256(token.strip().encode()).hexdigest()
    if not hmac.compare_digest(presented, expected):
        logger.info("rejected a bearer token")
        raise Exception("Unauthorized")
    return {
        "principalId": "admin",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Action": "execute-api:Invoke",
                    "Effect": "Allow",
                    "Resource": _allowed_resource(str(event.get("methodArn", ""))),
                }
            ],
        },
        "context": {"role": "admin"},
    }
