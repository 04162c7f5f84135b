"""template.yaml is the source of truth: lint it, translate it offline, and hold the code to it."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from cfnlint.api import lint_file
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from incident_engine.api.app import ROUTERS, app
from local.template import TEMPLATE, load_template


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def translated(template: dict[str, Any]) -> dict[str, Any]:
    # Offline: a session with a region and dummy keys; no managed policies are looked up.
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    translator = Translator(None, Parser(), boto_session=session)
    packaged = copy.deepcopy(template)
    for res in packaged["Resources"].values():  # what `sam package` does: code goes to S3
        for key in ("CodeUri", "ContentUri"):
            if key in res.get("Properties", {}):
                res["Properties"][key] = f"s3://artifacts/{res['Properties'][key].strip('/')}.zip"
    out: dict[str, Any] = translator.translate(
        packaged, parameter_values={"ApiTokenSha256": "0" * 64}, get_managed_policy_map=dict
    )
    return out


def test_cfn_lint_is_clean() -> None:
    findings = lint_file(TEMPLATE)
    assert [str(f) for f in findings] == []


ANY = "x-amazon-apigateway-any-method"


def test_only_public_paths_declare_any_method(translated: dict[str, Any]) -> None:
    # API Gateway answers an undeclared method before any authorizer, in its no-route answer; the
    # public paths declare ANY so that their handler answers 405 with Allow (RFC 9110) instead.
    body = next(r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")[
        "Properties"
    ]["Body"]
    with_any = {p for p, methods in body["paths"].items() if ANY in methods}
    assert with_any == {"/health", "/a/{token}", "/v2/enqueue"}
    assert all(
        "BearerTokenAuthorizer" not in str(body["paths"][p][ANY].get("security", [])) for p in with_any
    )


def test_every_route_in_the_code_is_declared_in_the_template_and_back(translated: dict[str, Any]) -> None:
    rest_apis = [r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi"]
    assert len(rest_apis) == 1
    declared = {
        (method.upper(), path)
        for path, methods in rest_apis[0]["Properties"]["Body"]["paths"].items()
        for method in methods
        if method != ANY  # a public path's other methods, answered 405 by the handler
    }
    ROUTERS.include_all()  # a request includes only its own routers
    in_code = {(r.method, r.openapi_path) for r in app._static_routes + app._dynamic_routes}
    assert declared == in_code


def test_only_health_pagerdutys_enqueue_and_the_signed_page_links_are_public(
    translated: dict[str, Any],
) -> None:
    body = next(r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")[
        "Properties"
    ]["Body"]
    public = {
        (m.upper(), p)
        for p, methods in body["paths"].items()
        for m, op in methods.items()
        if "BearerTokenAuthorizer" not in str(op.get("security", [])) and m != ANY
    }
    # /v2/enqueue carries its credential in the body (PagerDuty's routing_key), checked by the handler;
    # the page links carry theirs in the path (a signed, expiring token for one action).
    assert public == {
        ("GET", "/health"),
        ("POST", "/v2/enqueue"),
        ("GET", "/a/{token}"),
        ("POST", "/a/{token}"),
    }


def test_worker_queue_fits_the_worker(template: dict[str, Any]) -> None:
    res = template["Resources"]
    worker = res["EscalationWorkerFunction"]["Properties"]
    queue = res["TimerQueue"]["Properties"]
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["TimerDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] in range(2, 11)
    event = worker["Events"]["Timers"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_reconciler_runs_every_minute_from_the_scheduler(template: dict[str, Any]) -> None:
    event = template["Resources"]["ReconcilerFunction"]["Properties"]["Events"]["EveryMinute"]
    assert event["Type"] == "ScheduleV2" and event["Properties"]["ScheduleExpression"] == "rate(1 minute)"


def test_tables_are_on_demand_with_point_in_time_recovery(template: dict[str, Any]) -> None:
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 2
    for table in tables:
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["DeletionPolicy"] == "Retain"


def test_no_iam_statement_grants_every_resource(translated: dict[str, Any]) -> None:
    roles = [r for r in translated["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert roles
    for role in roles:
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                resources = (
                    statement["Resource"]
                    if isinstance(statement["Resource"], list)
                    else [statement["Resource"]]
                )
                assert "*" not in resources, statement
                assert not any(
                    str(a).endswith(":*") or a == "*"
                    for a in (
                        statement["Action"]
                        if isinstance(statement["Action"], list)
                        else [statement["Action"]]
                    )
                )
                assert "dynamodb:DeleteItem" not in str(statement["Action"])  # nothing is ever deleted


def test_globals_and_outputs(template: dict[str, Any]) -> None:
    fn = template["Globals"]["Function"]
    assert fn["Runtime"] == "python3.13" and fn["Architectures"] == ["arm64"]
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(
        fn["Environment"]["Variables"]
    )
    assert set(template["Outputs"]) >= {
        "ApiUrl",
        "IncidentsTableName",
        "ConfigTableName",
        "TimerQueueUrl",
        "NotificationsTopicArn",
    }
    layers = {k for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::LayerVersion"}
    assert layers == {"DependenciesLayer", "EngineLayer"}
    assert template["Resources"]["EngineLayer"]["Properties"]["ContentUri"] == "shared/"


def test_a_second_stack_can_be_created_beside_the_first(translated: dict[str, Any]) -> None:
    # A fixed schedule name would collide between two stacks (staging beside production).
    schedules = [r for r in translated["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedules
    assert all("Name" not in s["Properties"] for s in schedules)
    fixed_names = [
        (logical_id, key)
        for logical_id, r in translated["Resources"].items()
        for key in ("Name", "FunctionName", "TableName", "QueueName", "TopicName", "LogGroupName")
        if isinstance(r.get("Properties", {}).get(key), str)  # a literal, not a Ref or a generated name
        and r["Type"] != "AWS::Lambda::Alias"  # an alias's name is within its own function, never shared
    ]
    assert fixed_names == []


def test_the_api_cold_start_option_is_off_by_default_and_applies_to_the_api_alone(
    template: dict[str, Any], translated: dict[str, Any]
) -> None:
    assert template["Parameters"]["ApiColdStart"]["Default"] == "on-demand"
    with_option = [
        logical_id
        for logical_id, r in template["Resources"].items()
        if {"SnapStart", "ProvisionedConcurrencyConfig", "AutoPublishAlias"} & set(r.get("Properties", {}))
    ]
    assert with_option == ["ApiFunction"]
    # and the API calls the alias, the one SnapStart and provisioned concurrency apply to
    rest_api = next(r for r in translated["Resources"].values() if r["Type"] == "AWS::ApiGateway::RestApi")
    assert "ApiFunctionAliaslive" in str(rest_api["Properties"]["Body"])


def test_every_function_logs_to_a_group_with_a_retention(template: dict[str, Any]) -> None:
    res = template["Resources"]
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    functions = {k: r for k, r in res.items() if r["Type"] == "AWS::Serverless::Function"}
    groups = {k for k, r in res.items() if r["Type"] == "AWS::Logs::LogGroup"}
    used = set()
    for logical_id, fn in functions.items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert group in groups, logical_id
        assert res[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert res[group]["DeletionPolicy"] == "Delete"  # logs go with the stack
        used.add(group)
    assert len(used) == len(functions)  # one group each


def test_every_alarm_notifies_the_engine_health_topic(template: dict[str, Any]) -> None:
    res = template["Resources"]
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    assert alarms
    for alarm in alarms:
        assert {"Ref": "EngineHealthTopic"} in alarm["Properties"]["AlarmActions"]
    assert res["EngineHealthTopic"]["Type"] == "AWS::SNS::Topic"
    assert template["Outputs"]["EngineHealthTopicArn"]["Value"] == {"Ref": "EngineHealthTopic"}


def test_queues_holding_timers_say_what_happens_to_them(template: dict[str, Any]) -> None:
    res = template["Resources"]
    for logical_id in ("TimerQueue", "TimerDeadLetterQueue"):
        queue = res[logical_id]
        assert queue["Properties"]["MessageRetentionPeriod"] == 1209600  # SQS's longest, 14 days
        assert {queue["DeletionPolicy"], queue["UpdateReplacePolicy"]} <= {"Delete", "Retain"}
    # Timers that failed are not on any incident: keep them for a human to read.
    assert res["TimerDeadLetterQueue"]["DeletionPolicy"] == "Retain"


def test_cfn_lint_informational_checks_are_clean_too() -> None:
    from cfnlint.api import ManualArgs

    findings = lint_file(TEMPLATE, config=ManualArgs(include_checks=["I"]))
    assert [str(f) for f in findings] == []


def test_layers_are_built_for_the_functions_architecture_and_python(template: dict[str, Any]) -> None:
    arch = template["Globals"]["Function"]["Architectures"]
    runtime = template["Globals"]["Function"]["Runtime"]
    for logical_id in ("DependenciesLayer", "EngineLayer"):
        layer = template["Resources"][logical_id]
        assert layer["Metadata"]["BuildMethod"] == "makefile"  # compiles bytecode for the runtime
        assert [layer["Metadata"]["BuildArchitecture"]] == arch
        assert layer["Properties"]["CompatibleArchitectures"] == arch
        assert layer["Properties"]["CompatibleRuntimes"] == [runtime]
    # SAM does not tell a makefile build the architecture: the Makefile's default must agree.
    makefile = (TEMPLATE.parent / "layers" / "dependencies" / "Makefile").read_text()
    assert f"LAMBDA_ARCH ?= {arch[0]}\n" in makefile
