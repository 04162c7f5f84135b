"""`make env-vars`: an --env-vars file for `sam local invoke`, so the functions find real resources.

Without a stack, SAM resolves !Ref to logical ids (INCIDENTS_TABLE=IncidentsTable): every call
fails. This writes each function's variables, as the template declares them, resolved against

- the running `make run` stack (default): its tables, queues and topics on the emulator, with
  AWS_ENDPOINT_URL pointing there and AWS_ENDPOINT_URL_DYNAMODB at the port after it (DynamoDB's
  emulator); --aws-endpoint rewrites both for what the container can reach, e.g.
  http://host.docker.internal:5000 under Docker Desktop (DynamoDB then on :5001); or
- a deployed stack (--stack NAME): each variable whose template expression is also an Output's
  takes that output's value (INCIDENTS_TABLE and the IncidentsTableName output are both
  !Ref IncidentsTable), one that is a !Ref to a parameter takes the stack's parameter value.

API_TOKEN_SHA256 comes from the NoEcho parameter ApiTokenSha256, which no stack reveals: pass it
to `sam local invoke --parameter-overrides` (the README shows how).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from local.endpoints import dynamodb_beside
from local.invoke import running_stack
from local.template import ROOT, load_template

DEFAULT_OUT = ROOT / ".aws-sam" / "env-vars.json"


def _declared(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's variables as the template writes them (Globals, then its own)."""
    glob = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    return {
        logical_id: {**glob, **r["Properties"].get("Environment", {}).get("Variables", {})}
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }


def from_local_stack(aws_endpoint: str | None = None) -> dict[str, dict[str, str]] | None:
    stack = running_stack(lambda text: print(text, file=sys.stderr))
    if stack is None:
        return None
    out = {logical_id: dict(spec.environment) for logical_id, spec in stack.functions.items()}
    for variables in out.values():
        variables.pop("API_TOKEN_SHA256", None)  # the parameter override sets it (see the README)
        if aws_endpoint and "AWS_ENDPOINT_URL" in variables:
            variables["AWS_ENDPOINT_URL"] = aws_endpoint
        if aws_endpoint and "AWS_ENDPOINT_URL_DYNAMODB" in variables:
            variables["AWS_ENDPOINT_URL_DYNAMODB"] = dynamodb_beside(aws_endpoint)
    return out


def from_outputs(
    outputs: dict[str, str], parameters: dict[str, str], template: dict[str, Any] | None = None
) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Variables resolved from a deployed stack's outputs and parameters; and those left unresolved."""
    tpl = template or load_template()
    by_expression = {
        json.dumps(o["Value"], sort_keys=True): outputs[name]
        for name, o in tpl.get("Outputs", {}).items()
        if name in outputs
    }
    # NoEcho parameters read back as **** from AWS; they are for --parameter-overrides, not this file.
    hidden = {name for name, p in tpl.get("Parameters", {}).items() if p.get("NoEcho")}
    resolved: dict[str, dict[str, str]] = {}
    unresolved: list[str] = []
    for logical_id, variables in _declared(tpl).items():
        resolved[logical_id] = {}
        for name, node in variables.items():
            value: str | None
            if isinstance(node, str | int | float):
                value = str(node)
            elif json.dumps(node, sort_keys=True) in by_expression:
                value = by_expression[json.dumps(node, sort_keys=True)]
            elif (
                isinstance(node, dict)
                and set(node) == {"Ref"}
                and node["Ref"] in parameters
                and node["Ref"] not in hidden
            ):
                value = parameters[node["Ref"]]
            else:
                value = None
            if value is None:
                unresolved.append(f"{logical_id}.{name}")
            else:
                resolved[logical_id][name] = value
    return resolved, unresolved


def from_deployed_stack(stack_name: str, region: str | None) -> tuple[dict[str, dict[str, str]], list[str]]:
    import boto3

    stack = boto3.client("cloudformation", region_name=region).describe_stacks(StackName=stack_name)[
        "Stacks"
    ][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    return from_outputs(outputs, parameters)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make env-vars", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", help="a deployed stack's name (default: the running local stack)")
    parser.add_argument("--region", help="the deployed stack's region (default: your AWS configuration's)")
    parser.add_argument("--aws-endpoint", help="the emulator's URL as the Lambda container reaches it")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"default {DEFAULT_OUT.relative_to(ROOT)}"
    )
    args = parser.parse_args(argv)
    if args.stack:
        variables, unresolved = from_deployed_stack(args.stack, args.region)
        for name in unresolved:
            if not name.endswith(".API_TOKEN_SHA256"):
                print(
                    f"note: {name} is not an output or parameter of {args.stack}; left to the template",
                    file=sys.stderr,
                )
    else:
        found = from_local_stack(args.aws_endpoint)
        if found is None:
            print(
                "error: no local stack answers: start `make run` first, or pass STACK=<deployed stack>",
                file=sys.stderr,
            )
            return 2
        variables = found
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(variables, indent=2, sort_keys=True) + "\n")
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(
        f"wrote {shown}; use it as: sam local invoke <Function> -e events/<file>.json --env-vars {shown} \\"
    )
    print("  --parameter-overrides ApiTokenSha256=<sha256 of your token>   (see README: Run one function)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
