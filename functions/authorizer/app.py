"""Bearer-token authorizer: the deploy-time admin token, or a service's integration key.

Only hashes are ever stored or deployed: the admin token's SHA-256 is a parameter
(ApiTokenSha256); an integration key is looked up by its SHA-256 in the config table. An
integration key is allowed the ingestion routes and nothing else.
"""

import hashlib
import hmac
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.observability import logger
from incident_engine.wiring import credential_catalog

# What an integration key may call: sending alerts in, never the rest of the API.
INGESTION_ROUTES = ("POST/integrations/alertmanager", "POST/heartbeats/*/ping")


def _stage_arn(method_arn: str) -> tuple[str, str]:
    # arn:aws:execute-api:region:account:api-id/stage/METHOD/path
    arn, _, path = method_arn.partition("/")
    stage = path.split("/", 1)[0] if path else "*"
    return arn, stage


def _policy(principal_id: str, resources: list[str], context: dict[str, str]) -> dict[str, Any]:
    return {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resources}],
        },
        "context": context,
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    header = str(event.get("authorizationToken") or "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512:
        raise Exception("Unauthorized")  # API Gateway answers 401 for exactly this message
    arn, stage = _stage_arn(str(event.get("methodArn", "")))
    expected = os.environ.get("API_TOKEN_SHA256", "").strip().lower()
    presented = hashlib.sha256(token.encode()).hexdigest()
    if expected and hmac.compare_digest(presented, expected):
        # Every route of this stage, so a cached decision for one route is right for the others.
        return _policy("admin", [f"{arn}/{stage}/*/*"], {"role": "admin"})
    principal = credential_catalog().principal_for(token)
    if principal is None:
        logger.info("rejected a bearer token")
        raise Exception("Unauthorized")
    return _policy(
        principal.name,
        [f"{arn}/{stage}/{route}" for route in INGESTION_ROUTES],
        {"role": "integration", "service_id": principal.service_id or ""},
    )
