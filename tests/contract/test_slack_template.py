"""Contract tests for the Slack notifier's part of template.yaml: created only with a webhook
secret, subscribed to alerting publishes only, least privilege, and its own dead-letter queue.
"""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import pytest

from batchlens.settings import Settings
from batchlens.template import default_template_path, load_template
from batchlens.webhook import RetryPolicy

Template = dict[str, Any]
SLACK_RESOURCES = (
    "SlackDeadLetterQueue",
    "SlackNotifierFunction",
    "SlackNotifierRole",
    "SlackNotifierLogGroup",
)


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template(default_template_path())


def props(template: Template, logical_id: str) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"][logical_id].get("Properties", {})
    return found


def test_slack_resources_exist_only_with_a_webhook_secret(template: Template) -> None:
    assert template["Parameters"]["SlackWebhookSecretArn"]["Default"] == ""
    assert template["Conditions"]["HasSlack"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SlackWebhookSecretArn"}, ""]}]
    }
    for logical_id in SLACK_RESOURCES:
        assert template["Resources"][logical_id]["Condition"] == "HasSlack", logical_id
    for name, output in template["Outputs"].items():
        if "Slack" in name:
            assert output["Condition"] == "HasSlack", name


def test_secret_parameter_takes_a_secret_arn_or_nothing(template: Template) -> None:
    pattern = template["Parameters"]["SlackWebhookSecretArn"]["AllowedPattern"]
    assert re.fullmatch(pattern, "")
    assert re.fullmatch(
        pattern, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:batchlens/slack-AbCdEf"
    )
    assert not re.fullmatch(pattern, "batchlens/slack")
    assert not re.fullmatch(pattern, "arn:aws:ssm:eu-west-1:123456789012:parameter/slack")


def test_notifier_hears_alerting_publishes_only(template: Template) -> None:
    function = props(template, "SlackNotifierFunction")
    (event,) = function["Events"].values()
    assert event["Type"] == "SNS"
    assert event["Properties"]["Topic"] == {"Ref": "AlertTopic"}
    assert event["Properties"]["FilterPolicyScope"] == "MessageAttributes"
    assert event["Properties"]["FilterPolicy"] == {"alert": ["true"]}
    assert function["Handler"] == "app.handler"
    assert function["CodeUri"] == "functions/notify_slack/"


def test_undeliverable_alerts_go_to_the_notifiers_own_encrypted_queue(template: Template) -> None:
    function = props(template, "SlackNotifierFunction")
    assert function["DeadLetterQueue"] == {
        "Type": "SQS",
        "TargetArn": {"Fn::GetAtt": ["SlackDeadLetterQueue", "Arn"]},
    }
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 2
    queue = props(template, "SlackDeadLetterQueue")
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["MessageRetentionPeriod"] == 1209600
    log_group = props(template, "SlackNotifierLogGroup")
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}-slack-notifier"}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "SlackNotifierLogGroup"}}
    assert log_group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_notifier_may_read_only_its_secret(template: Template) -> None:
    # Its own role (no managed policies): the secret, its dead-letter queue, logs and traces
    assert props(template, "SlackNotifierFunction")["Role"] == {
        "Fn::GetAtt": ["SlackNotifierRole", "Arn"]
    }
    (policy,) = props(template, "SlackNotifierRole")["Policies"]
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert set(by_sid) == {
        "ReadSlackWebhookSecret",
        "DecryptSlackWebhookSecret",
        "SendUndeliverableAlerts",
        "WriteOwnLogs",
        "WriteTraces",
    }
    assert by_sid["SendUndeliverableAlerts"]["Resource"] == {
        "Fn::GetAtt": ["SlackDeadLetterQueue", "Arn"]
    }
    read = by_sid["ReadSlackWebhookSecret"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    assert read["Resource"] == {"Ref": "SlackWebhookSecretArn"}
    decrypt = by_sid["DecryptSlackWebhookSecret"]
    assert decrypt["Action"] == "kms:Decrypt"
    conditions = decrypt["Condition"]["StringEquals"]
    assert conditions["kms:EncryptionContext:SecretARN"] == {"Ref": "SlackWebhookSecretArn"}
    assert conditions["kms:ViaService"] == {
        "Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"
    }


def test_notifier_environment_is_read_by_the_settings_model(template: Template) -> None:
    variables = props(template, "SlackNotifierFunction")["Environment"]["Variables"]
    ours = {name for name in variables if not name.startswith("POWERTOOLS_")}
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert ours == {"SLACK_WEBHOOK_SECRET_ARN"}
    assert ours <= aliases
    assert "https://" not in str(variables)  # the URL itself stays in Secrets Manager


def test_lambda_retries_have_time_to_run_and_each_run_time_to_post(template: Template) -> None:
    # Lambda waits about 1 and then 2 minutes between its asynchronous retries: an event must
    # live long enough for both, and each run must leave the deadline margin plus one full POST
    function = props(template, "SlackNotifierFunction")
    assert function["EventInvokeConfig"]["MaximumEventAgeInSeconds"] >= 6 * 60
    timeout = function.get("Timeout", template["Globals"]["Function"]["Timeout"])
    spec = importlib.util.spec_from_file_location(
        "notify_slack_margin",
        default_template_path().parent / "functions" / "notify_slack" / "app.py",
    )
    assert spec is not None
    assert spec.loader is not None
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    assert timeout >= app.DEADLINE_MARGIN_SECONDS + 2 * RetryPolicy().timeout_seconds


def test_notifier_log_level_is_the_stacks_parameter(template: Template) -> None:
    variables = props(template, "SlackNotifierFunction")["Environment"]["Variables"]
    assert variables["POWERTOOLS_LOG_LEVEL"] == {"Ref": "LogLevel"}


def test_secret_parameter_refuses_a_partial_arn(template: Template) -> None:
    # IAM compares ReadSlackWebhookSecret's Resource (and DecryptSlackWebhookSecret's
    # kms:EncryptionContext:SecretARN) literally with the secret's full ARN, which always ends in
    # "-" and 6 random characters. Secrets Manager's API accepts a partial ARN, so one deploys
    # cleanly and then every GetSecretValue is AccessDenied: every Slack alert ends in the DLQ.
    pattern = template["Parameters"]["SlackWebhookSecretArn"]["AllowedPattern"]
    partial = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:batchlens/slack"
    assert not re.fullmatch(pattern, partial)
    for full in (
        f"{partial}-AbCdEf",
        "arn:aws-us-gov:secretsmanager:us-gov-west-1:123456789012:secret:a_b.c@d+e=f-Zz9Zz9",
    ):
        assert re.fullmatch(pattern, full), full
