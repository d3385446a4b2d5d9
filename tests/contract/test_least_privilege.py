"""Least privilege, checked on the template CloudFormation deploys (after the SAM transform): no
role carries a managed policy (SAM's defaults grant logs, SQS and X-Ray actions on every
resource), every statement on "*" is an action without resource-level permissions, and each
function may write only its own log group and read only its own queue. Encryption at rest:
KMS on the topic and the table, SSE on every queue.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from batchlens.template import default_template_path
from tests.conftest import iam_statements

Template = dict[str, Any]

#: Actions IAM accepts only on "*": Batch's describe/list actions and X-Ray's trace writes.
RESOURCELESS = re.compile(r"batch:(Describe|List)\w+|xray:(PutTraceSegments|PutTelemetryRecords)")
#: What reading a job's log takes: finding a training job's stream, and reading a stream.
LOG_READS = ("logs:DescribeLogStreams", "logs:GetLogEvents")
FUNCTION_ROLES = {"EnricherFunction": "EnricherRole", "SlackNotifierFunction": "SlackNotifierRole"}


class NoManagedPolicies:
    """The template names no managed policy, so the transform never asks IAM for one."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def deployed() -> Template:
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

    template: Template = yaml_parse(default_template_path().read_text(encoding="utf-8"))
    for resource in template["Resources"].values():  # as `sam package` leaves it
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://bucket/key.zip"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        result: Template = transform(template, {}, NoManagedPolicies())
    return result


def of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for policy in role["Properties"].get("Policies", []):
        yield from iam_statements(policy["PolicyDocument"]["Statement"])


def test_every_function_has_its_own_role_and_no_role_has_a_managed_policy(
    deployed: Template,
) -> None:
    functions = of_type(deployed, "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTION_ROLES)
    for function, role in FUNCTION_ROLES.items():
        assert functions[function]["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}
    roles = of_type(deployed, "AWS::IAM::Role")
    assert set(roles) == set(FUNCTION_ROLES.values())
    for logical_id, spec in roles.items():
        assert not spec["Properties"].get("ManagedPolicyArns"), logical_id
    assert not of_type(deployed, "AWS::IAM::Policy")
    assert not of_type(deployed, "AWS::IAM::ManagedPolicy")


def test_only_actions_without_resource_level_permissions_are_on_every_resource(
    deployed: Template,
) -> None:
    for logical_id, role in of_type(deployed, "AWS::IAM::Role").items():
        for statement in statements(role):
            actions = as_list(statement["Action"])
            assert not any("*" in action for action in actions), (logical_id, actions)
            if "*" in as_list(statement["Resource"]):
                assert all(RESOURCELESS.fullmatch(a) for a in actions), (logical_id, actions)


def test_each_function_writes_only_its_own_log_group(deployed: Template) -> None:
    for function, role in FUNCTION_ROLES.items():
        log_group = f"{function.removesuffix('Function')}LogGroup"
        config = deployed["Resources"][function]["Properties"]["LoggingConfig"]
        assert config == {"LogGroup": {"Ref": log_group}}
        writes = [
            s
            for s in statements(deployed["Resources"][role])
            if any(a.startswith("logs:") and a not in LOG_READS for a in as_list(s["Action"]))
        ]
        assert [w["Resource"] for w in writes] == [{"Fn::GetAtt": [log_group, "Arn"]}]
        assert sorted(as_list(writes[0]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]


def test_the_enricher_reads_job_logs_only_under_job_log_group_prefix_and_training_jobs(
    deployed: Template,
) -> None:
    reads = {
        s["Sid"]: s
        for s in statements(deployed["Resources"]["EnricherRole"])
        if any(a in LOG_READS for a in as_list(s["Action"]))
    }
    assert set(reads) == {"ReadJobLogs", "ReadTrainingJobLogs"}
    assert as_list(reads["ReadJobLogs"]["Action"]) == ["logs:GetLogEvents"]
    assert reads["ReadJobLogs"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
        ":log-group:${JobLogGroupPrefix}*"
    }
    assert sorted(as_list(reads["ReadTrainingJobLogs"]["Action"])) == sorted(LOG_READS)
    assert reads["ReadTrainingJobLogs"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}"
        ":log-group:/aws/sagemaker/TrainingJobs:*"
    }


def test_training_job_logs_are_readable_only_when_the_stack_says_so(deployed: Template) -> None:
    (policy,) = deployed["Resources"]["EnricherRole"]["Properties"]["Policies"]
    (conditional,) = [s for s in policy["PolicyDocument"]["Statement"] if "Fn::If" in s]
    condition, granted, otherwise = conditional["Fn::If"]
    assert granted["Sid"] == "ReadTrainingJobLogs"
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert deployed["Conditions"][condition] == {"Fn::Equals": [{"Ref": "TrainingJobLogs"}, "true"]}
    variables = deployed["Resources"]["EnricherFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TRAINING_JOB_LOGS"] == {"Ref": "TrainingJobLogs"}


def test_the_enricher_polls_only_its_event_queue(deployed: Template) -> None:
    (mapping,) = of_type(deployed, "AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    sqs = [
        s
        for s in statements(deployed["Resources"]["EnricherRole"])
        if any(a.startswith("sqs:") for a in as_list(s["Action"]))
    ]
    assert [s["Resource"] for s in sqs] == [{"Fn::GetAtt": ["EventQueue", "Arn"]}]
    assert set(sqs[0]["Action"]) == {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
    }


def test_the_enricher_role_keeps_the_path_the_key_policy_recognises(deployed: Template) -> None:
    role = deployed["Resources"]["EnricherRole"]["Properties"]
    assert role["Path"] == {"Fn::Sub": "/batchlens/${AWS::StackName}/"}
    key = deployed["Resources"]["EncryptionKey"]["Properties"]["KeyPolicy"]
    (publish,) = [s for s in key["Statement"] if s.get("Sid") == "EnricherPublishesToTopic"]
    principal = publish["Condition"]["ArnLike"]["aws:PrincipalArn"]
    assert "role/batchlens/${AWS::StackName}/*" in principal["Fn::Sub"]


def test_topics_and_table_use_kms_and_every_queue_sse(deployed: Template) -> None:
    for logical_id, topic in of_type(deployed, "AWS::SNS::Topic").items():
        assert topic["Properties"].get("KmsMasterKeyId"), logical_id
    for table in of_type(deployed, "AWS::DynamoDB::Table").values():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True
        assert sse["SSEType"] == "KMS"
    for logical_id, queue in of_type(deployed, "AWS::SQS::Queue").items():
        props = queue["Properties"]
        assert props.get("SqsManagedSseEnabled") is True or props.get("KmsMasterKeyId"), logical_id


def test_only_the_enricher_publishes_alerts(deployed: Template) -> None:
    # Given the alert topic's policy and the key's
    (topic_policy,) = [
        r
        for r in of_type(deployed, "AWS::SNS::TopicPolicy").values()
        if {"Ref": "AlertTopic"} in r["Properties"]["Topics"]
    ]
    (key,) = of_type(deployed, "AWS::KMS::Key").values()

    # Then no service may publish to the topic (an alarm's or a rule's JSON would reach the SQS
    # and Lambda subscribers that expect JobRecords), and the key lets no EventBridge rule encrypt
    allowed = [
        s
        for s in topic_policy["Properties"]["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allowed == []
    principals = [s.get("Principal", {}) for s in key["Properties"]["KeyPolicy"]["Statement"]]
    assert "events.amazonaws.com" not in repr(principals)


def _enricher_modules() -> set[Path]:
    """The enricher's handler and every batchlens module it can import (lazily too)."""
    root = default_template_path().parent
    package = root / "layers" / "batchlens" / "batchlens"
    seen: set[Path] = set()
    todo = [root / "functions" / "enrich" / "app.py"]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("batchlens"):
                module = node.module or ""
                names = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("batchlens")]
            for name in names:
                parts = name.split(".")[1:]
                candidate = package.joinpath(*parts).with_suffix(".py") if parts else None
                if candidate is not None and candidate.is_file():
                    todo.append(candidate)
    return seen


def test_the_enricher_is_granted_exactly_the_batch_actions_its_code_calls(
    deployed: Template,
) -> None:
    # Batch's grants are the role's widest (Resource "*"): each must be one the enricher calls.
    # ListJobs is the CLI's `backfill`, which runs with the operator's credentials.
    import botocore.session
    from botocore import xform_name

    model = botocore.session.get_session().get_service_model("batch")
    by_method = {xform_name(op): op for op in model.operation_names}
    called = set()
    for path in _enricher_modules():
        text = path.read_text(encoding="utf-8")
        methods = re.findall(r"\.(\w+)\(", text) + re.findall(r"get_paginator\(\"(\w+)\"\)", text)
        called |= {f"batch:{by_method[m]}" for m in methods if m in by_method}
    granted = {
        action
        for s in statements(deployed["Resources"]["EnricherRole"])
        for action in as_list(s["Action"])
        if action.startswith("batch:")
    }
    assert called == {"batch:DescribeJobs", "batch:DescribeServiceJob"}
    assert granted == called
