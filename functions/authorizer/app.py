"""Bearer-token authorizer: the deploy-time admin token, an API token, or an integration key.

Only hashes are ever stored or deployed: the admin token's SHA-256 is a parameter
(ApiTokenSha256); API tokens and integration keys are looked up by their SHA-256 in the config
table (one consistent GetItem). The policy allows exactly the routes the credential's scopes
reach (incident_engine/domain/access.py): API Gateway caches it per token and applies it to every
route, so it must be right for all of them. An integration key reaches the ingestion routes only.

How long a revoked or expired credential keeps working: API Gateway caches this function's answer
per token for ReauthorizeEvery (60 s in template.yaml), and nothing here caches anything (each call
reads the credential afresh). So a revocation, or an expiry, takes effect within 60 seconds.
"""

import hashlib
import hmac
import json
import os
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from incident_engine.auth_wiring import authenticator
from incident_engine.domain.access import ADMIN, INGEST, policy_routes
from incident_engine.domain.services import Principal
from incident_engine.observability import logger

# What an integration key may call: sending alerts in, never the rest of the API.
INGESTION_ROUTES = tuple(policy_routes([INGEST]))
MAX_TOKEN_LENGTH = 512


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


def _context(principal: Principal) -> dict[str, str]:
    """What the api function reads (api/context.py): authorizer context values must be strings."""
    return {
        "role": principal.kind,
        "credential_id": principal.id,
        "scopes": " ".join(principal.scopes),
        "team_ids": json.dumps(list(principal.team_ids)) if principal.team_ids is not None else "",
        "service_id": principal.service_id or "",
    }


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    header = str(event.get("authorizationToken") or "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        raise Exception("Unauthorized")  # API Gateway answers 401 for exactly this message
    arn, stage = _stage_arn(str(event.get("methodArn", "")))
    expected = os.environ.get("API_TOKEN_SHA256", "").strip().lower()
    presented = hashlib.sha256(token.encode()).hexdigest()
    if expected and hmac.compare_digest(presented, expected):
        # Every route of this stage, so a cached decision for one route is right for the others.
        admin = Principal(kind="admin", name="admin", scopes=(ADMIN,), id="admin")
        return _policy("admin", [f"{arn}/{stage}/*/*"], _context(admin))
    check = authenticator()
    principal = check.principal_for(token)
    if principal is None:
        logger.info("rejected a credential")  # never the token, nor its hash
        raise Exception("Unauthorized")
    try:
        check.record_use(principal)
    except Exception:  # last_used_at is a convenience: never refuse a request over it
        logger.warning("could not record a token's use", extra={"credential_id": principal.id})
    if principal.kind == "admin" or ADMIN in principal.scopes:
        resources = [f"{arn}/{stage}/*/*"]
    else:
        resources = [f"{arn}/{stage}/{route}" for route in policy_routes(principal.scopes)]
    return _policy(principal.name, resources, _context(principal))
