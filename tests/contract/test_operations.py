"""The stack watches itself: alarms, the ops topic and the dashboard, checked on the template as
CloudFormation receives it after the SAM transform (so `EnricherFunction` is the real
`AWS::Lambda::Function`, and conditional Slack resources keep their condition).

Every reference in an alarm or the dashboard must name a resource of the transformed template of
the right type, under a condition at least as strict as the resource's own, and every batchlens
metric the dashboard graphs must be one the enricher emits, with the dimensions it emits.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from batchlens.records import console_host
from batchlens.telemetry import CATALOGUE, Metric
from batchlens.template import default_template_path, function_environment

Template = dict[str, Any]

PSEUDO = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::StackName": "batchlens",
    "AWS::URLSuffix": "amazonaws.com",
}
ALARMS = {
    "DeadLetterQueueAlarm": None,
    "EnricherErrorsAlarm": None,
    "EnricherThrottlesAlarm": None,
    "EventQueueAgeAlarm": None,
    "EventsLostAlarm": None,
    "SlackNotifierErrorsAlarm": "HasSlack",
    "SlackDeadLetterQueueAlarm": "HasSlack",
}
#: alarm/dashboard dimension -> the resource type whose reference fills it
DIMENSION_TYPES = {
    "QueueName": "AWS::SQS::Queue",
    "FunctionName": "AWS::Lambda::Function",
    "RuleName": "AWS::Events::Rule",
}
#: attributes the alarms and dashboard may read, per resource type
ATTRIBUTES = {
    "AWS::SQS::Queue": {"QueueName", "Arn"},
    "AWS::CloudWatch::Alarm": {"Arn"},
    "AWS::Lambda::Function": {"Arn"},
}
MARKER = re.compile(r"@@([A-Za-z0-9]+)(?:\.([A-Za-z]+))?@@")
SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s+(.*?)',\s*'([^']+)',\s*(\d+)\)")


class NoManagedPolicies:
    """The template names no managed policy by name, so IAM is never asked."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def transformed() -> Template:
    from samtranslator.translator.transform import transform  # type: ignore[import-untyped]
    from samtranslator.yaml_helper import yaml_parse  # type: ignore[import-untyped]

    template: Template = yaml_parse(default_template_path().read_text(encoding="utf-8"))
    # As `sam package` leaves it: code in S3.
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://bucket/key.zip"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_DEFAULT_REGION", PSEUDO["AWS::Region"])
        result: Template = transform(template, {}, NoManagedPolicies())
    assert "Transform" not in result
    return result


@pytest.fixture(scope="module")
def service_name() -> str:
    from batchlens.template import load_template

    value = function_environment(load_template(default_template_path()))["POWERTOOLS_SERVICE_NAME"]
    assert isinstance(value, str)
    return value


def resources(template: Template) -> dict[str, Any]:
    found: dict[str, Any] = template["Resources"]
    return found


# --- references ---------------------------------------------------------------------------


def references(value: Any, conditions: frozenset[str] = frozenset()) -> Iterator[Any]:
    """(logical id, attribute or None, conditions in force) for every reference in `value`."""
    if isinstance(value, list):
        for item in value:
            yield from references(item, conditions)
        return
    if not isinstance(value, dict):
        return
    if "Ref" in value:
        yield value["Ref"], None, conditions
    elif "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else target.split(".", 1)
        yield name, attribute, conditions
    elif "Fn::Sub" in value:
        text = value["Fn::Sub"] if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"][0]
        for name in re.findall(r"\$\{([^!}][^}]*)\}", text):
            logical, _, attribute = name.partition(".")
            yield logical, attribute or None, conditions
    elif "Fn::If" in value:
        condition, when_true, when_false = value["Fn::If"]
        yield from references(when_true, conditions | {condition})
        yield from references(when_false, conditions)
    else:
        for item in value.values():
            yield from references(item, conditions)


def assert_references_resolve(template: Template, logical_id: str) -> None:
    resource = resources(template)[logical_id]
    own = frozenset({resource["Condition"]}) if "Condition" in resource else frozenset()
    for name, attribute, conditions in references(resource.get("Properties", {}), own):
        if name in PSEUDO or name in template.get("Parameters", {}):
            assert attribute is None, f"{logical_id}: {name}.{attribute}"
            continue
        assert name in resources(template), f"{logical_id} refers to missing {name}"
        target = resources(template)[name]
        if attribute is not None:
            assert attribute in ATTRIBUTES.get(target["Type"], set()), (
                f"{logical_id}: {name} ({target['Type']}) has no attribute {attribute}"
            )
        # A conditional resource may only be named where its condition holds.
        if "Condition" in target:
            assert target["Condition"] in conditions, (
                f"{logical_id} names {name} outside its condition {target['Condition']}"
            )


# --- alarms and the ops topic ---------------------------------------------------------------


def test_the_ops_topic_is_encrypted_and_optionally_emails(transformed: Template) -> None:
    # Given the transformed template
    found = resources(transformed)
    # Then the ops topic uses the stack's key, and an email subscription exists only with OpsEmail
    topic = found["OpsTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Properties"]["KmsMasterKeyId"] == {"Ref": "EncryptionKey"}
    subscription = found["OpsEmailSubscription"]
    assert subscription["Condition"] == "HasOpsEmail"
    assert subscription["Properties"]["TopicArn"] == {"Ref": "OpsTopic"}
    assert subscription["Properties"]["Endpoint"] == {"Ref": "OpsEmail"}
    assert transformed["Parameters"]["OpsEmail"]["Default"] == ""
    # And the key lets CloudWatch encrypt for it
    statements = found["EncryptionKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [
        s
        for s in statements
        if "cloudwatch.amazonaws.com" in json.dumps(s.get("Principal", {}))
        and s["Effect"] == "Allow"
    ]
    assert cloudwatch
    assert {"kms:GenerateDataKey*", "kms:Decrypt"} <= set(cloudwatch[0]["Action"])


@pytest.mark.parametrize(("logical_id", "condition"), sorted(ALARMS.items()))
def test_each_alarm_watches_a_real_resource_and_notifies_ops(
    transformed: Template, logical_id: str, condition: str | None
) -> None:
    # Given one of the pipeline's alarms
    alarm = resources(transformed)[logical_id]
    properties = alarm["Properties"]
    # Then it exists, under the condition of what it watches
    assert alarm["Type"] == "AWS::CloudWatch::Alarm"
    assert alarm.get("Condition") == condition
    # And it notifies the ops topic when it fires and when it recovers
    assert properties["AlarmActions"] == [{"Ref": "OpsTopic"}]
    assert properties["OKActions"] == [{"Ref": "OpsTopic"}]
    assert properties["TreatMissingData"] == "notBreaching"
    # And each dimension is filled from a resource of the matching type
    for dimension in properties["Dimensions"]:
        ((name, attribute, _),) = list(references(dimension["Value"]))
        target = resources(transformed)[name]
        assert target["Type"] == DIMENSION_TYPES[dimension["Name"]], (logical_id, dimension)
        if target["Type"] == "AWS::SQS::Queue":
            assert attribute == "QueueName"
    # And every reference resolves
    assert_references_resolve(transformed, logical_id)


def test_the_alarms_cover_the_pipeline(transformed: Template) -> None:
    # Given every alarm of the stack
    alarms = {
        logical_id: resource["Properties"]
        for logical_id, resource in resources(transformed).items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    watched = {
        (p["Namespace"], p["MetricName"], json.dumps(p["Dimensions"][0]["Value"]))
        for p in alarms.values()
    }

    def queue(name: str) -> str:
        return json.dumps({"Fn::GetAtt": [name, "QueueName"]})

    # Then both dead-letter queues, the enricher's errors and throttles, the age of the oldest
    # event, lost events and the Slack notifier's errors are watched
    expected = {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("DeadLetterQueue")),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", queue("SlackDeadLetterQueue")),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", queue("EventQueue")),
        ("AWS/Lambda", "Errors", json.dumps({"Ref": "EnricherFunction"})),
        ("AWS/Lambda", "Throttles", json.dumps({"Ref": "EnricherFunction"})),
        ("AWS/Lambda", "Errors", json.dumps({"Ref": "SlackNotifierFunction"})),
        ("AWS/Events", "InvocationsFailedToBeSentToDlq", json.dumps({"Ref": "BatchEventsRule"})),
    }
    assert expected <= watched
    # And the age threshold is the operator's parameter
    assert alarms["EventQueueAgeAlarm"]["Threshold"] == {"Ref": "EventAgeAlarmSeconds"}


# --- the dashboard ------------------------------------------------------------------------


def render(value: Any, template: Template, conditions: Mapping[str, bool]) -> Any:
    """Resolve Join/If/Sub as CloudFormation would; references become @@Name.Attr@@ markers."""
    parameters = template.get("Parameters", {})

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in PSEUDO:
            return PSEUDO[name]
        if name in parameters:
            return str(parameters[name]["Default"])
        return f"@@{name}@@"

    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [render(item, template, conditions) for item in value]
    ((function, argument),) = value.items()
    if function == "Fn::Join":
        separator, parts = argument
        return separator.join(render(part, template, conditions) for part in parts)
    if function == "Fn::If":
        condition, when_true, when_false = argument
        return render(when_true if conditions[condition] else when_false, template, conditions)
    if function == "Fn::Sub":
        return re.sub(r"\$\{([^}]*)\}", substitute, argument)
    raise AssertionError(f"unexpected {function} in the dashboard body")


def dashboard(transformed: Template, *, slack: bool) -> dict[str, Any]:
    body = resources(transformed)["Dashboard"]["Properties"]["DashboardBody"]
    rendered = render(copy.deepcopy(body), transformed, {"HasSlack": slack})
    parsed: dict[str, Any] = json.loads(rendered)
    return parsed


def metric_rows(widget: Mapping[str, Any]) -> Iterator[list[Any]]:
    yield from widget.get("properties", {}).get("metrics", [])


def markers(value: Any) -> Iterator[tuple[str, str | None]]:
    for match in MARKER.finditer(json.dumps(value)):
        yield match.group(1), match.group(2)


@pytest.mark.parametrize("slack", [False, True], ids=["without-slack", "with-slack"])
def test_the_dashboard_body_is_valid_json_naming_real_resources(
    transformed: Template, slack: bool
) -> None:
    # Given the dashboard as CloudFormation renders it, with and without the Slack notifier
    assert resources(transformed)["Dashboard"]["Type"] == "AWS::CloudWatch::Dashboard"
    assert_references_resolve(transformed, "Dashboard")
    body = dashboard(transformed, slack=slack)
    found = resources(transformed)
    # Then every resource it names exists, with the type its place needs
    named = set()
    for widget in body["widgets"]:
        for row in metric_rows(widget):
            if isinstance(row[0], str) and row[0].startswith("AWS/"):
                dimensions = dict(zip(row[2:-1:2], row[3:-1:2], strict=True))
                for dimension, value in dimensions.items():
                    ((name, _),) = list(markers(value))
                    assert found[name]["Type"] == DIMENSION_TYPES[dimension], (widget, row)
        if widget["type"] == "alarm":
            for arn in widget["properties"]["alarms"]:
                ((name, attribute),) = list(markers(arn))
                assert (found[name]["Type"], attribute) == ("AWS::CloudWatch::Alarm", "Arn")
        named |= {name for name, _ in markers(widget)}
    assert named <= set(found)
    # And the Slack pieces appear exactly when the notifier exists
    slack_resources = {name for name in named if found[name].get("Condition") == "HasSlack"}
    assert bool(slack_resources) == slack
    # And every alarm of the stack shows in the alarm widget
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    shown = {name for name, _ in markers(alarm_widget)}
    assert shown == {name for name, condition in ALARMS.items() if slack or condition is None}


def test_the_dashboard_graphs_only_metrics_the_enricher_emits(
    transformed: Template, service_name: str
) -> None:
    # Given every batchlens metric the dashboard graphs (plain rows and SEARCH expressions)
    body = dashboard(transformed, slack=True)
    graphed: set[tuple[str, frozenset[str]]] = set()
    statistics: dict[str, set[str]] = {}
    for widget in body["widgets"]:
        for row in metric_rows(widget):
            if isinstance(row[0], dict) and "expression" in row[0]:
                match = SEARCH.search(row[0]["expression"])
                assert match, row
                schema, terms, statistic, _ = match.groups()
                namespace, *dimensions = [part.strip() for part in schema.split(",")]
                assert namespace == "batchlens"
                name = re.search(r'MetricName="([^"]+)"', terms)
                service = re.search(r'service="([^"]+)"', terms)
                assert name, terms
                assert service, terms
                assert service.group(1) == service_name
                graphed.add((name.group(1), frozenset(dimensions)))
                statistics.setdefault(name.group(1), set()).add(statistic)
            elif row[0] == "batchlens":
                plain = dict(zip(row[2:-1:2], row[3:-1:2], strict=True))
                assert plain == {"service": service_name}, row
                graphed.add((row[1], frozenset(plain)))
    # Then each is in the telemetry catalogue, with a dimension set the enricher emits
    for metric, dimension_set in graphed:
        declared = {frozenset({"service", *s}) for s in CATALOGUE[Metric(metric)][1]}
        assert dimension_set in declared, (metric, sorted(dimension_set))
    # And the views are there: failures by category and by queue, wait and run
    # percentiles, alert volume
    assert ("JobFailures", frozenset({"service", "category"})) in graphed
    assert ("JobFailures", frozenset({"service", "queue"})) in graphed
    assert {"p50", "p95"} <= statistics["QueueWaitSeconds"]
    assert {"p50", "p95"} <= statistics["RunSeconds"]
    assert ("AlertsSent", frozenset({"service"})) in graphed


def test_the_dashboard_shows_pipeline_health(transformed: Template) -> None:
    # Given the dashboard's AWS metrics
    body = dashboard(transformed, slack=False)
    shown = set()
    for widget in body["widgets"]:
        for row in metric_rows(widget):
            if isinstance(row[0], str) and row[0].startswith("AWS/"):
                ((name, _),) = list(markers(row[3]))
                shown.add((row[0], row[1], name))
    # Then queue depth and age, the enricher's errors, throttles and duration, and the DLQ show
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "EventQueue"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "EventQueue"),
        ("AWS/Lambda", "Errors", "EnricherFunction"),
        ("AWS/Lambda", "Throttles", "EnricherFunction"),
        ("AWS/Lambda", "Duration", "EnricherFunction"),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "DeadLetterQueue"),
    } <= shown
    # And every widget reads the stack's own Region
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == PSEUDO["AWS::Region"]


def test_the_stack_outputs_the_ops_topic(transformed: Template) -> None:
    assert transformed["Outputs"]["OpsTopicArn"]["Value"] == {"Ref": "OpsTopic"}


@pytest.mark.parametrize(
    ("partition", "region"),
    [("aws", "us-east-1"), ("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")],
)
def test_dashboard_url_opens_the_console_of_the_stacks_partition(
    transformed: Template, partition: str, region: str
) -> None:
    # Given the DashboardUrl output
    url, variables = transformed["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    mapping, key, name = variables["Domain"]["Fn::FindInMap"]
    assert key == {"Ref": "AWS::Partition"}

    # When CloudFormation resolves it in a stack of that partition
    host = transformed["Mappings"][mapping][partition][name]
    resolved = url.replace("${AWS::Region}", region).replace("${Domain}", host)

    # Then the dashboard opens on the same console host as a job's deep links
    assert resolved.startswith(console_host(partition, region) + "/cloudwatch/home?")
    assert resolved.endswith("#dashboards/dashboard/${Dashboard}")
