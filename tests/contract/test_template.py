"""Contract tests for template.yaml: what the code relies on and the stack must keep promising.

No network: the template is read from disk, and the DynamoDB/SQS checks run against moto.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from moto import mock_aws
from pydantic import ValidationError

from batchlens.history import INDEX_ATTRIBUTES
from batchlens.local import create_table
from batchlens.settings import ALERTABLE, Settings
from batchlens.template import (
    default_template_path,
    event_pattern,
    function_environment,
    load_template,
    max_receive_count,
    parameter_defaults,
    queue_attributes,
    resolve_environment,
    subscription_filter_policy,
    table_ttl_attribute,
)
from tests.conftest import iam_statements

Template = dict[str, Any]

ROOT = Path(__file__).resolve().parents[2]
BATCH_DETAIL_TYPES = {
    "Batch Job State Change",
    "Batch Service Job State Change",
    "Batch Job Queue Blocked",
    "Batch Service Job Queue Blocked",
}

#: index name -> (hash key, range key), as the history module queries them.
HISTORY_INDEXES = {
    "byQueueStatus": ("gsi1pk", "gsi1sk"),
    "byDay": ("gsi2pk", "gsi2sk"),
    "byName": ("gsi3pk", "gsi3sk"),
    "byParent": ("gsi4pk", "gsi4sk"),
}

PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}

REGION = "us-east-1"


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(default_template_path())


def resource(template: Template, logical_id: str) -> dict[str, Any]:
    resources: dict[str, Any] = template["Resources"]
    assert logical_id in resources, f"template has no {logical_id}"
    found: dict[str, Any] = resources[logical_id]
    return found


def properties(template: Template, logical_id: str) -> dict[str, Any]:
    props: dict[str, Any] = resource(template, logical_id).get("Properties", {})
    return props


def function_setting(template: Template, logical_id: str, name: str) -> Any:
    """A function property, falling back to Globals.Function as SAM does."""
    own = properties(template, logical_id)
    if name in own:
        return own[name]
    return template.get("Globals", {}).get("Function", {})[name]


def sqs_event(template: Template) -> dict[str, Any]:
    events = properties(template, "EnricherFunction")["Events"]
    sqs = [event for event in events.values() if event["Type"] == "SQS"]
    assert len(sqs) == 1, "the enricher has exactly one SQS event source"
    props: dict[str, Any] = sqs[0]["Properties"]
    return props


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def references(value: Any) -> Iterator[str]:
    """Every logical id or parameter a value points at (Ref, GetAtt, ${...} in Sub)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                yield inner
            elif key == "Fn::GetAtt":
                yield inner[0] if isinstance(inner, list) else inner.split(".", 1)[0]
            elif key == "Fn::Sub":
                text, variables = (inner[0], inner[1]) if isinstance(inner, list) else (inner, {})
                for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
                    if name not in variables:
                        yield name.split(".", 1)[0]
                yield from references(variables)
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def policy_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM statement of the stack's functions and IAM resources (not resource policies)."""
    for logical_id, spec in template["Resources"].items():
        props = spec.get("Properties", {})
        if spec["Type"] == "AWS::Serverless::Function":
            for policy in props.get("Policies", []):
                if isinstance(policy, dict) and "Statement" in policy:
                    for statement in iam_statements(policy["Statement"]):
                        yield logical_id, statement
        elif spec["Type"] in {"AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"}:
            documents = [props.get("PolicyDocument")] + [
                policy["PolicyDocument"] for policy in props.get("Policies", [])
            ]
            for document in filter(None, documents):
                for statement in iam_statements(document["Statement"]):
                    yield logical_id, statement


# ---------------------------------------------------------------- event intake


def test_rule_matches_exactly_the_four_batch_detail_types(template: Template) -> None:
    # Given the stack's EventBridge rule
    # When its pattern is read
    pattern = event_pattern(template)
    # Then it selects aws.batch and exactly the four job / queue-blocked detail-types
    assert set(pattern) == {"source", "detail-type"}
    assert pattern["source"] == ["aws.batch"]
    assert len(pattern["detail-type"]) == 4
    assert set(pattern["detail-type"]) == BATCH_DETAIL_TYPES


def test_rule_target_retries_a_day_then_dead_letters(template: Template) -> None:
    # Given the rule's only target
    (target,) = properties(template, "BatchEventsRule")["Targets"]
    # Then it feeds EventQueue, retries for a day, and keeps what it cannot deliver
    assert target["Arn"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400}
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}


def test_queue_visibility_is_at_least_six_function_timeouts(template: Template) -> None:
    # Given the enricher's timeout and the queue's visibility timeout
    timeout = int(function_setting(template, "EnricherFunction", "Timeout"))
    visibility = int(queue_attributes(template, "EventQueue")["VisibilityTimeout"])
    # Then a message cannot reappear while a (retried) invocation may still hold it
    assert visibility >= 6 * timeout


def test_event_queue_redrives_to_the_dead_letter_queue(template: Template) -> None:
    redrive = properties(template, "EventQueue")["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert max_receive_count(template) == 5
    # The dead-letter queue keeps messages for the SQS maximum, 14 days
    assert queue_attributes(template, "DeadLetterQueue")["MessageRetentionPeriod"] == "1209600"
    for queue in ("EventQueue", "DeadLetterQueue"):
        assert queue_attributes(template, queue)["SqsManagedSseEnabled"] == "true"


def test_only_the_rule_may_send_to_the_queues_and_only_over_tls(template: Template) -> None:
    # Given the queue policy
    props = properties(template, "EventQueuePolicy")
    statements = props["PolicyDocument"]["Statement"]
    queue_arns = [
        {"Fn::GetAtt": ["EventQueue", "Arn"]},
        {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
    ]
    # Then it covers both queues
    assert {q["Ref"] for q in props["Queues"]} == {"EventQueue", "DeadLetterQueue"}
    # And EventBridge may send only on behalf of this stack's rule
    allow = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allow) == 1
    assert allow[0]["Principal"] == {"Service": "events.amazonaws.com"}
    assert as_list(allow[0]["Action"]) == ["sqs:SendMessage"]
    assert allow[0]["Resource"] == queue_arns
    assert allow[0]["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["BatchEventsRule", "Arn"]
    }
    # And nothing reaches either queue without TLS
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert any(
        s["Condition"]["Bool"]["aws:SecureTransport"] == "false" and s["Resource"] == queue_arns
        for s in deny
    )


def test_event_source_batches_and_reports_partial_failures(template: Template) -> None:
    # Given the enricher's SQS event source
    event = sqs_event(template)
    # Then it reads EventQueue in batches of 100 with a short window
    assert event["Queue"] == {"Fn::GetAtt": ["EventQueue", "Arn"]}
    assert event["BatchSize"] == 100
    assert 0 < event["MaximumBatchingWindowInSeconds"] <= 10
    # And only the failed records of a batch are retried
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # And its concurrency is capped by the event source, from a parameter
    assert event["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "MaxConcurrency"}
    assert "ReservedConcurrentExecutions" not in properties(template, "EnricherFunction")


# --------------------------------------------------------------------- history


def test_table_has_the_four_history_indexes(template: Template) -> None:
    # Given the history table's definition
    props = properties(template, "HistoryTable")
    indexes = {index["IndexName"]: index for index in props["GlobalSecondaryIndexes"]}
    # Then it has exactly the four indexes the history module queries
    assert set(indexes) == set(HISTORY_INDEXES)
    for name, (hash_key, range_key) in HISTORY_INDEXES.items():
        assert indexes[name]["KeySchema"] == [
            {"AttributeName": hash_key, "KeyType": "HASH"},
            {"AttributeName": range_key, "KeyType": "RANGE"},
        ]
    # And every index carries only what the history code filters on, counts and compares
    # (records are read from the table)
    assert set(INDEX_ATTRIBUTES) == set(indexes)
    for name, attributes in INDEX_ATTRIBUTES.items():
        assert indexes[name]["Projection"] == {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": list(attributes),
        }
    # And its own key is pk/sk
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    # And every key attribute is a string, with no definition left unused
    key_names = {"pk", "sk"} | {name for pair in HISTORY_INDEXES.values() for name in pair}
    definitions = {d["AttributeName"]: d["AttributeType"] for d in props["AttributeDefinitions"]}
    assert definitions == dict.fromkeys(key_names, "S")
    assert props["BillingMode"] == "PAY_PER_REQUEST"


def test_table_expires_items_and_is_protected(template: Template) -> None:
    # Given the history table
    table = resource(template, "HistoryTable")
    props = table["Properties"]
    # Then items expire through TTL on expiresAt
    assert table_ttl_attribute(template) == "expiresAt"
    # And it has point-in-time recovery, the stack's KMS key, and survives stack deletion
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": {"Ref": "EncryptionKey"},
    }
    assert props["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"


def test_encryption_key_rotates_and_is_retained(template: Template) -> None:
    key = resource(template, "EncryptionKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    # No statement of the key policy trusts every principal
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        assert statement["Principal"] != "*"
        assert statement["Principal"].get("AWS") != "*"


def test_table_create_kwargs_build_the_real_table_in_moto(
    template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        # Given the create_table arguments taken from the template (table_create_kwargs)
        # When boto3 creates the table and turns TTL on, as the local stack does
        create_table(dynamodb, template, "history-test")
        # Then the table has the four indexes, keyed as the template says
        table = dynamodb.describe_table(TableName="history-test")["Table"]
        indexes = {
            index["IndexName"]: tuple(key["AttributeName"] for key in index["KeySchema"])
            for index in table.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == HISTORY_INDEXES
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = dynamodb.describe_time_to_live(TableName="history-test")
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expiresAt"


def test_queue_attributes_are_accepted_by_sqs_in_moto(
    template: Template, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        # Given queue attributes from the template
        attributes = queue_attributes(template, "EventQueue")
        # When SQS creates the queue
        url = sqs.create_queue(QueueName="events-test", Attributes=attributes)["QueueUrl"]
        # Then it reports the template's visibility and retention back
        created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert created["VisibilityTimeout"] == "360"
        assert created["MessageRetentionPeriod"] == attributes["MessageRetentionPeriod"]


# ---------------------------------------------------------------------- alerts


def test_alert_topic_is_encrypted_and_tls_only(template: Template) -> None:
    assert properties(template, "AlertTopic")["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}
    policy = properties(template, "AlertTopicPolicy")
    assert policy["Topics"] == [{"Ref": "AlertTopic"}]
    (deny,) = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert "sns:Publish" in as_list(deny["Action"])
    assert deny["Condition"]["Bool"]["aws:SecureTransport"] == "false"


def test_email_subscription_exists_only_with_an_address(template: Template) -> None:
    # Given the email subscription
    subscription = resource(template, "AlertEmailSubscription")
    # Then it is created only when AlertEmail is not empty
    condition = subscription["Condition"]
    assert template["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]
    }
    assert parameter_defaults(template)["AlertEmail"] == ""
    # And it receives only the publishes the enricher marks as alerts
    props = subscription["Properties"]
    assert props["Protocol"] == "email"
    assert props["FilterPolicyScope"] == "MessageAttributes"
    assert props["FilterPolicy"] == {"alert": ["true"]}
    assert subscription_filter_policy(template) == {"alert": ["true"]}


# -------------------------------------------------------------------- function


def test_no_iam_statement_grants_every_resource_except_batch_reads(template: Template) -> None:
    statements = list(policy_statements(template))
    assert statements, "the enricher's inline policy statements were not found"
    for logical_id, statement in statements:
        if "*" in as_list(statement["Resource"]):
            # Batch's describe/list actions and X-Ray's trace writes have no resource-level
            # permissions
            actions = as_list(statement["Action"])
            resourceless = r"batch:(Describe|List)\w+|xray:(PutTraceSegments|PutTelemetryRecords)"
            assert all(re.fullmatch(resourceless, a) for a in actions), (
                f"{logical_id} grants {actions} on every resource"
            )
        assert "*" not in as_list(statement["Action"])


def test_enricher_may_use_exactly_its_own_table_topic_and_key(template: Template) -> None:
    by_sid = {s.get("Sid"): s for _, s in policy_statements(template)}
    assert by_sid["WriteJobHistory"]["Resource"] == [
        {"Fn::GetAtt": ["HistoryTable", "Arn"]},
        {"Fn::Sub": "${HistoryTable.Arn}/index/*"},
    ]
    assert by_sid["PublishAlerts"]["Resource"] == {"Ref": "AlertTopic"}
    assert by_sid["UseEncryptionKey"]["Resource"] == {"Fn::GetAtt": ["EncryptionKey", "Arn"]}


def test_every_environment_variable_refers_to_something_known(template: Template) -> None:
    # Given the enricher's environment
    environment = function_environment(template)
    known = set(template["Parameters"]) | set(template["Resources"]) | PSEUDO_PARAMETERS
    # Then every reference in it names a parameter, a resource or a pseudo parameter
    for name, value in environment.items():
        unknown = set(references(value)) - known
        assert not unknown, f"{name} refers to unknown {sorted(unknown)}"
    # And the variables the code reads are all there
    assert {"TABLE_NAME", "TOPIC_ARN", "ALERT_ON", "POWERTOOLS_SERVICE_NAME"} <= set(environment)


def test_every_batchlens_variable_is_a_settings_field(template: Template) -> None:
    # Given the variables the template sets for batchlens (not those its libraries read)
    environment = function_environment(template)
    ours = {name for name in environment if not name.startswith(("POWERTOOLS_", "PYDANTIC_"))}
    # Then the one settings model reads each of them (none is set for nothing)
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert ours <= aliases


def test_default_parameters_give_valid_settings(template: Template) -> None:
    # Given the environment as a stack with default parameters renders it
    defaults = parameter_defaults(template)
    environment = resolve_environment(
        template, {"HistoryTable": "history", "AlertTopic": "arn:aws:sns:us-east-1:1:alerts"}
    )
    assert environment["TABLE_NAME"] == "history"
    assert environment["POWERTOOLS_LOG_LEVEL"] == "INFO"
    # When the enricher reads it
    settings = Settings.from_env(environment)
    # Then it alerts on failures and blocked queues, and keeps history for the default days
    assert settings.alert_on == ("FAILED", "QUEUE_BLOCKED")
    assert settings.retention_days == int(defaults["RetentionDays"])
    assert settings.log_tail_lines == int(defaults["LogTailLines"])
    assert settings.redact_allowlist == ()
    assert set(settings.alert_on) <= ALERTABLE
    assert settings.training_job_logs is True


def test_overridden_parameters_reach_the_environment(template: Template) -> None:
    # Given a stack deployed with non-default alerting and allowlist (a space after a comma, which
    # CloudFormation trims from each member of a list)
    environment = resolve_environment(
        template,
        {"HistoryTable": "history", "AlertTopic": "topic"},
        {
            "AlertOn": "FAILED, SUCCEEDED",
            "RedactAllowlist": "TOKEN_BUCKET,PASSWORD_POLICY",
            "TrainingJobLogs": "false",
        },
    )
    # When the enricher reads it
    settings = Settings.from_env(environment)
    # Then both lists arrive whole, and the switch as set
    assert settings.alert_on == ("FAILED", "SUCCEEDED")
    assert settings.redact_allowlist == ("TOKEN_BUCKET", "PASSWORD_POLICY")
    assert settings.training_job_logs is False


def test_the_xray_sdk_is_loaded_only_when_the_stack_traces_aws_calls(template: Template) -> None:
    ids = {"HistoryTable": "history", "AlertTopic": "topic"}
    # Given the default stack: Lambda traces invocations, the handler loads no X-Ray SDK
    assert parameter_defaults(template)["TraceAwsCalls"] == "false"
    assert resolve_environment(template, ids)["POWERTOOLS_TRACE_DISABLED"] == "true"
    # When a stack asks for a subsegment per AWS call, Powertools' Tracer is switched on
    traced = resolve_environment(template, ids, {"TraceAwsCalls": "true"})
    assert traced["POWERTOOLS_TRACE_DISABLED"] == "false"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"JobLogGroupPrefx": "/"}, "template has no parameter 'JobLogGroupPrefx'"),
        ({"JobLogGroupPrefix": ""}, "JobLogGroupPrefix='' does not match"),
        ({"AlertOn": "FAILED,FINISHED"}, "AlertOn='FAILED,FINISHED' is not one of"),
        ({"TraceAwsCalls": "yes"}, "TraceAwsCalls='yes' is not one of"),
    ],
)
def test_overrides_cloudformation_would_refuse_are_refused_locally_too(
    template: Template, overrides: dict[str, str], message: str
) -> None:
    # Given a local stack (the demo, the tests) with a misspelt or out-of-range parameter
    # Then it is refused as `sam deploy --parameter-overrides` would refuse it, not ignored
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        resolve_environment(template, {"HistoryTable": "h", "AlertTopic": "t"}, overrides)


def test_resolving_the_environment_needs_every_resource(template: Template) -> None:
    # A resource the caller did not create locally cannot be silently dropped
    with pytest.raises(KeyError, match="AlertTopic"):
        resolve_environment(template, {"HistoryTable": "history"})


def test_enricher_runs_the_layer_code_with_tracing(template: Template) -> None:
    props = properties(template, "EnricherFunction")
    assert props["Handler"] == "app.handler"
    assert props["CodeUri"] == "functions/enrich/"
    assert function_setting(template, "EnricherFunction", "Runtime") == "python3.13"
    assert function_setting(template, "EnricherFunction", "Tracing") == "Active"
    assert {"Ref": "BatchlensLayer"} in function_setting(template, "EnricherFunction", "Layers")
    layer = properties(template, "BatchlensLayer")
    assert layer["ContentUri"] == "layers/batchlens/"
    # Built by layers/batchlens/Makefile, which ships bytecode (see test_cold_start)
    metadata = resource(template, "BatchlensLayer")["Metadata"]
    assert metadata["BuildMethod"] == "makefile"
    assert metadata["BuildArchitecture"] == "x86_64"
    assert "build-BatchlensLayer:" in (ROOT / "layers" / "batchlens" / "Makefile").read_text()
    log_group = properties(template, "EnricherLogGroup")
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-enricher"}
    assert props["LoggingConfig"] == {"LogGroup": {"Ref": "EnricherLogGroup"}}


# ----------------------------------------------------- parameters, outputs, meta


def test_outputs_exist(template: Template) -> None:
    assert set(template["Outputs"]) >= {
        "HistoryTableName",
        "HistoryTableArn",
        "AlertTopicArn",
        "EventQueueUrl",
        "EventQueueArn",
        "DeadLetterQueueUrl",
        "EnricherFunctionName",
        "EncryptionKeyArn",
    }


def test_every_parameter_is_described_grouped_and_its_default_allowed(template: Template) -> None:
    parameters: dict[str, dict[str, Any]] = template["Parameters"]
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(parameters)
    for name, spec in parameters.items():
        assert spec.get("Description"), f"{name} has no Description"
        default = spec["Default"]
        if "AllowedValues" in spec:
            # CloudFormation checks a list's every member against AllowedValues.
            listed = spec["Type"] == "CommaDelimitedList"
            assert set(default.split(",") if listed else [default]) <= set(spec["AllowedValues"])
        if "MinValue" in spec:
            assert spec["MinValue"] <= default <= spec["MaxValue"], name
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], str(default)), name


def test_alert_on_allows_at_deploy_time_exactly_what_the_enricher_accepts(
    template: Template,
) -> None:
    # A token the enricher rejects would fail every batch: the deployment must refuse it instead.
    allowed = set(template["Parameters"]["AlertOn"]["AllowedValues"])
    assert allowed == {*ALERTABLE, ""}  # empty: alert on nothing
    assert Settings.from_env({"ALERT_ON": ""}).alert_on == ()
    with pytest.raises(ValidationError):
        Settings.from_env({"ALERT_ON": "FAILED,QUEUE_BLOKED"})


@pytest.mark.parametrize(
    ("parameter", "variable", "field"),
    [
        ("RetentionDays", "RETENTION_DAYS", "retention_days"),
        ("LogTailLines", "LOG_TAIL_LINES", "log_tail_lines"),
    ],
)
def test_whole_number_parameters_allow_at_deploy_time_exactly_what_the_enricher_accepts(
    template: Template, parameter: str, variable: str, field: str
) -> None:
    # A value the enricher rejects would fail every batch. CloudFormation's Number type takes
    # 30.5, so these are Strings whose pattern spells out the enricher's range.
    spec = template["Parameters"][parameter]
    assert spec["Type"] == "String"
    assert getattr(Settings.from_env({}), field) == int(spec["Default"])
    pattern = spec["AllowedPattern"]
    for number in range(-5, 5_000):
        deployable = re.fullmatch(pattern, str(number)) is not None
        try:
            accepted = getattr(Settings.from_env({variable: str(number)}), field) == number
        except ValidationError:
            accepted = False
        assert deployable == accepted, (parameter, number)
    for text in ("30.5", "1e2", " 30", "30 ", "", "+30", "0x1f", "٣٠"):
        assert re.fullmatch(pattern, text) is None, (parameter, text)


def test_job_log_group_prefix_takes_every_log_group_name(template: Template) -> None:
    pattern = template["Parameters"]["JobLogGroupPrefix"]["AllowedPattern"]
    logs = botocore.session.get_session().get_service_model("logs")
    names = logs.shape_for("LogGroupName").metadata["pattern"]
    for prefix in ("/aws/batch/", "batch-jobs", "team#1/etl.prod_", "/"):
        assert re.fullmatch(names, prefix)
        assert re.fullmatch(pattern, prefix), prefix
    for wrong in ("", "batch jobs", "logs*", "/aws/batch/:x"):
        assert not re.fullmatch(pattern, wrong), wrong


def test_alert_email_pattern_takes_addresses_and_nothing_else(template: Template) -> None:
    pattern = template["Parameters"]["AlertEmail"]["AllowedPattern"]
    assert re.fullmatch(pattern, "oncall@example.com")
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "not an address")


def test_every_checkov_skip_says_why(template: Template) -> None:
    skips = [
        (logical_id, skip)
        for logical_id, spec in template["Resources"].items()
        for skip in spec.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    assert skips, "expected the documented checkov skips"
    for logical_id, skip in skips:
        assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), logical_id
        assert len(str(skip.get("comment", "")).split()) >= 5, f"{logical_id} {skip['id']}"


# ------------------------------------------------------------------- the loader


def test_load_template_turns_short_forms_into_long_forms(tmp_path: Path) -> None:
    # Given a template using every short-form tag
    path = tmp_path / "template.yaml"
    path.write_text(
        "\n".join(
            [
                "Conditions:",
                "  C: !And [!Equals [a, b], !Not [!Condition D], !Or [!Condition D]]",
                "Resources:",
                "  R:",
                "    Properties:",
                "      Ref: !Ref P",
                "      Att: !GetAtt T.Endpoint.Address",
                "      AttList: !GetAtt [T, Arn]",
                "      Sub: !Sub '${AWS::StackName}-x'",
                "      Join: !Join [',', !Ref L]",
                "      If: !If [C, 1, !Ref AWS::NoValue]",
                "      Select: !Select [0, !Split [',', !ImportValue X]]",
                "      Map: !FindInMap [M, k, v]",
                "      B64: !Base64 abc",
                "      Cidr: !Cidr [!Select [0, !GetAZs ''], 6, 5]",
            ]
        ),
        encoding="utf-8",
    )
    # When it is loaded
    document = load_template(path)
    # Then every tag became its long form
    props = document["Resources"]["R"]["Properties"]
    assert document["Conditions"]["C"] == {
        "Fn::And": [
            {"Fn::Equals": ["a", "b"]},
            {"Fn::Not": [{"Condition": "D"}]},
            {"Fn::Or": [{"Condition": "D"}]},
        ]
    }
    assert props["Ref"] == {"Ref": "P"}
    assert props["Att"] == {"Fn::GetAtt": ["T", "Endpoint.Address"]}
    assert props["AttList"] == {"Fn::GetAtt": ["T", "Arn"]}
    assert props["Sub"] == {"Fn::Sub": "${AWS::StackName}-x"}
    assert props["Join"] == {"Fn::Join": [",", {"Ref": "L"}]}
    assert props["If"] == {"Fn::If": ["C", 1, {"Ref": "AWS::NoValue"}]}
    assert props["Select"] == {"Fn::Select": [0, {"Fn::Split": [",", {"Fn::ImportValue": "X"}]}]}
    assert props["Map"] == {"Fn::FindInMap": ["M", "k", "v"]}
    assert props["B64"] == {"Fn::Base64": "abc"}
    assert props["Cidr"] == {"Fn::Cidr": [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, 6, 5]}


def test_load_template_rejects_a_file_that_is_not_a_template(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("just: a mapping\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not a CloudFormation template"):
        load_template(path)


def test_default_template_path_is_the_repository_template() -> None:
    path = default_template_path()
    assert path.name == "template.yaml"
    assert (path.parent / "layers" / "batchlens" / "batchlens" / "template.py").is_file()
