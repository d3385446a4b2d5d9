"""The local stack: the stack's resources on an AWS stand-in, built from template.yaml.

Used by `batchlens demo` (moto's server on loopback) and by the integration tests (moto in-process
or its server). Every resource comes from the template's own definitions through
`batchlens.template`, never from a hand-kept copy. Local tooling only: the Lambda never imports
it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from batchlens import template as cfn
from batchlens.settings import Settings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_dynamodb import DynamoDBClient

REGION = "us-east-1"
ACCOUNT = "123456789012"


@dataclass(frozen=True, slots=True)
class LocalStack:
    """Names of the resources of one local stack."""

    region: str
    endpoint_url: str | None
    table_name: str
    topic_arn: str
    event_queue_url: str
    dead_letter_queue_url: str
    alert_queue_url: str  # an SQS subscriber of the topic: what a consumer would receive
    rule_name: str
    max_receive_count: int
    environment: Mapping[str, str]

    def settings(self, **overrides: str) -> Settings:
        return Settings.from_env({**self.environment, **overrides})


def _queue_arn(session: boto3.Session, endpoint_url: str | None, url: str) -> str:
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def create_table(dynamodb: DynamoDBClient, template: Mapping[str, Any], table_name: str) -> None:
    """The history table of `template`: keys, indexes and TTL as the stack declares them."""
    dynamodb.create_table(**cfn.table_create_kwargs(template, table_name))
    dynamodb.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={
            "Enabled": True,
            "AttributeName": cfn.table_ttl_attribute(template),
        },
    )


def create_stack(
    session: boto3.Session,
    *,
    endpoint_url: str | None = None,
    template: Mapping[str, Any] | None = None,
    name: str | None = None,
    parameters: Mapping[str, str] | None = None,
) -> LocalStack:
    """Create the table, topic, queues and rule of template.yaml; return their names.

    `parameters` overrides template parameters' defaults in the function's environment, as
    `sam deploy --parameter-overrides` would (and refuses what CloudFormation would refuse).
    """
    template = template or cfn.load_template(cfn.default_template_path())
    name = name or f"batchlens-{uuid.uuid4().hex[:8]}"
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    sns = session.client("sns", endpoint_url=endpoint_url)
    events = session.client("events", endpoint_url=endpoint_url)

    table_name = f"{name}-history"
    create_table(dynamodb, template, table_name)

    dlq_url = sqs.create_queue(
        QueueName=f"{name}-dlq", Attributes=cfn.queue_attributes(template, "DeadLetterQueue")
    )["QueueUrl"]
    max_receive = cfn.max_receive_count(template)
    queue_url = sqs.create_queue(
        QueueName=f"{name}-events",
        Attributes={
            **cfn.queue_attributes(template, "EventQueue"),
            "RedrivePolicy": json.dumps(
                {
                    "deadLetterTargetArn": _queue_arn(session, endpoint_url, dlq_url),
                    "maxReceiveCount": str(max_receive),
                }
            ),
        },
    )["QueueUrl"]

    topic_arn = sns.create_topic(Name=f"{name}-alerts")["TopicArn"]
    alert_queue_url = sqs.create_queue(QueueName=f"{name}-alert-subscriber")["QueueUrl"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=_queue_arn(session, endpoint_url, alert_queue_url),
        Attributes={
            "FilterPolicy": json.dumps(cfn.subscription_filter_policy(template)),
            "FilterPolicyScope": "MessageAttributes",
        },
    )

    rule_name = f"{name}-batch-events"
    events.put_rule(Name=rule_name, EventPattern=json.dumps(cfn.event_pattern(template)))
    events.put_targets(
        Rule=rule_name,
        Targets=[{"Id": "EventQueue", "Arn": _queue_arn(session, endpoint_url, queue_url)}],
    )

    environment = cfn.resolve_environment(
        template, {"HistoryTable": table_name, "AlertTopic": topic_arn}, parameters
    )
    if endpoint_url:
        environment["BATCHLENS_ENDPOINT_URL"] = endpoint_url
    return LocalStack(
        region=session.region_name or REGION,
        endpoint_url=endpoint_url,
        table_name=table_name,
        topic_arn=topic_arn,
        event_queue_url=queue_url,
        dead_letter_queue_url=dlq_url,
        alert_queue_url=alert_queue_url,
        rule_name=rule_name,
        max_receive_count=max_receive,
        environment=environment,
    )


@dataclass(frozen=True, slots=True)
class FakeLambdaContext:
    """The attributes of a Lambda context that Powertools and the handler read."""

    function_name: str = "batchlens-enricher"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:batchlens-enricher"
    aws_request_id: str = "local"
    timeout_ms: int = 60_000

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms


def sqs_event(messages: list[Mapping[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages as ReceiveMessage returned them."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else REGION,
            }
            for message in messages
        ]
    }


def put_batch_event(
    session: boto3.Session, endpoint_url: str | None, event: Mapping[str, Any]
) -> None:
    """Send one sample event through EventBridge, as AWS Batch would."""
    events = session.client("events", endpoint_url=endpoint_url)
    response = events.put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": list(event.get("resources", [])),
            }
        ]
    )
    if response.get("FailedEntryCount"):
        raise RuntimeError(f"EventBridge refused the event: {response['Entries']}")
