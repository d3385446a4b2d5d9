"""Fixtures shared by every test layer: the sample events, SQS batches, a Lambda context, and the
moto-backed stack built from template.yaml (requested only by integration tests).
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings as hypothesis_settings

from batchlens.local import FakeLambdaContext, LocalStack, create_stack, sqs_event

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient

    from batchlens.history import HistoryTable
    from batchlens.pipeline import Enricher

# Powertools outside Lambda: no X-Ray (the handler's Tracer would look for a daemon), and the
# metric namespace the template gives the enricher (flushing metrics without one raises).
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
# Property tests judge behaviour, not speed: CI shares two cores with the rest of `make test`.
hypothesis_settings.register_profile("batchlens", deadline=None)
hypothesis_settings.load_profile("batchlens")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "batchlens")

Json = dict[str, Any]
EventLoader = Callable[[str], Json]
SqsEventBuilder = Callable[[Sequence[str | Mapping[str, Any]]], Json]
EnricherFactory = Callable[..., "Enricher"]

REPO_ROOT = Path(__file__).resolve().parents[1]
EVENTS_DIR = REPO_ROOT / "events"
SQS_SAMPLE = "sqs-batch.json"
EVENT_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:batchlens-events"
#: A retention under which the sample events (of early 2025) have not expired yet: queries leave
#: out what has, as DynamoDB deletes it only some time after its TTL.
UNEXPIRED_RETENTION_DAYS = int((time.time() - 1_735_689_600) // 86_400) + 365  # since 2025-01-01


@cache
def _read(name: str) -> str:
    return (EVENTS_DIR / name).read_text(encoding="utf-8")


def read_event(name: str) -> Json:
    """A fresh copy of one sample from events/ (the name with or without `.json`)."""
    file_name = name if name.endswith(".json") else f"{name}.json"
    return copy.deepcopy(json.loads(_read(file_name)))


def read_log(name: str) -> list[str]:
    """The lines of a sample job's log, events/<name>.log (what the demo's jobs write)."""
    return (EVENTS_DIR / f"{name}.log").read_text(encoding="utf-8").splitlines()


def ecs_app_failed_sidecar_logging_apart() -> Json:
    """The ECS-properties sample, failed: its app container exited 1 and logs to Batch's default
    group, its sidecar logs to a group of its own (/ecs/otel-collector)."""
    event = read_event("ecs-properties-succeeded")
    detail = event["detail"]
    detail["status"] = "FAILED"
    app, sidecar = detail["ecsProperties"]["taskProperties"][0]["containers"]
    app["exitCode"] = detail["attempts"][0]["taskProperties"][0]["containers"][0]["exitCode"] = 1
    sidecar["logConfiguration"] = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/ecs/otel-collector"},
    }
    return event


def array_child_event(
    parent_id: str, index: int, *, failed: bool, exit_code: int = 2, reason: str | None = None
) -> Json:
    """The sample array child, as child `index` of `parent_id`: failed (with `exit_code` and, if
    given, a container `reason`) or succeeded."""
    event = read_event("array-child-failed.json")
    event["id"] = str(uuid.uuid4())
    detail = event["detail"]
    detail["jobId"] = f"{parent_id}:{index}"
    detail["jobArn"] = detail["jobArn"].rsplit("/", 1)[0] + f"/{parent_id}:{index}"
    detail["arrayProperties"] = {"index": index}
    containers = [detail["container"], *(a["container"] for a in detail.get("attempts", []))]
    if failed:
        detail["status"] = "FAILED"
        for container in containers:
            container["exitCode"] = exit_code
            if reason is not None:
                container["reason"] = reason
    else:
        detail["status"] = "SUCCEEDED"
        detail["statusReason"] = "Essential container in task exited"
        for container in containers:
            container["exitCode"] = 0
            container.pop("reason", None)
    return event


def sample_event_names() -> list[str]:
    """Every single-event sample (all of events/*.json but the SQS batch)."""
    return sorted(p.name for p in EVENTS_DIR.glob("*.json") if p.name != SQS_SAMPLE)


def variant(
    event: Mapping[str, Any],
    *,
    envelope: Mapping[str, Any] | None = None,
    drop: Sequence[str] = (),
    **detail: Any,
) -> Json:
    """A copy of `event` with a new envelope id, detail keys replaced (camelCase) or dropped."""
    copied = copy.deepcopy(dict(event))
    copied["id"] = str(uuid.uuid4())
    copied.update(envelope or {})
    copied["detail"].update(detail)
    for key in drop:
        copied["detail"].pop(key, None)
    return copied


def with_second_attempt(
    event: Json, time: str, attempt: Mapping[str, Any] | None = None, **detail: Any
) -> Json:
    """`event`, a job after its first attempt, at `time` after a second attempt like the first:
    started a minute after the first stopped and stopped nine minutes later, with `attempt`'s
    keys replaced; `detail` as in `variant`."""
    first = event["detail"]["attempts"][0]
    second = {
        **first,
        "startedAt": first["stoppedAt"] + 60_000,
        "stoppedAt": first["stoppedAt"] + 600_000,
        **(attempt or {}),
    }
    return variant(event, envelope={"time": time}, attempts=[first, second], **detail)


def iam_statements(statements: Any) -> Iterator[Json]:
    """A policy's statements, each branch of a conditional one (`Fn::If`) included: least
    privilege holds whatever the stack's parameters."""
    for statement in statements if isinstance(statements, list) else [statements]:
        branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        yield from (b for b in branches if b != {"Ref": "AWS::NoValue"})


def sqs_batch(bodies: Sequence[str | Mapping[str, Any]]) -> Json:
    """Lambda's SQS event for `bodies` (events are JSON-encoded; strings are sent as they are)."""
    messages: list[Mapping[str, Any]] = [
        {
            "MessageId": str(uuid.uuid4()),
            "ReceiptHandle": uuid.uuid4().hex,
            "Body": body if isinstance(body, str) else json.dumps(body),
            "Attributes": {"ApproximateReceiveCount": "1"},
        }
        for body in bodies
    ]
    return sqs_event(messages, EVENT_QUEUE_ARN)


@pytest.fixture(autouse=True)
def _no_metrics_left_over() -> None:
    """Powertools keeps metrics in a store every `Metrics` instance shares: each test starts
    without what an earlier one in the same process left unflushed."""
    from aws_lambda_powertools import Metrics

    Metrics().clear_metrics()


@pytest.fixture
def load_event() -> EventLoader:
    """`load_event(name) -> dict`: a fresh copy of a sample event."""
    return read_event


@pytest.fixture
def make_sqs_event() -> SqsEventBuilder:
    """`make_sqs_event([event or raw body, ...]) -> Lambda SQS event` with unique message ids."""
    return sqs_batch


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext(aws_request_id=str(uuid.uuid4()))


# --- moto (integration tests only) ---------------------------------------------------------


@contextmanager
def local_time(zone: str) -> Iterator[None]:
    """The process's local time zone is `zone` (TZ), restored afterwards."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TZ", zone)
        time.tzset()
        yield
    time.tzset()


@pytest.fixture
def new_york() -> Iterator[None]:
    """Local time is New York's, so table output shows local times and a zone other than UTC."""
    with local_time("America/New_York"):
        yield


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a fixed region, so nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "BATCHLENS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
def aws_session(aws_credentials: None) -> Iterator[boto3.Session]:
    """A boto3 session inside moto's in-process mock."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.Session(region_name="us-east-1")


@pytest.fixture
def stack(aws_session: boto3.Session) -> LocalStack:
    """The stack's table, topic, queues and rule, created from template.yaml on moto."""
    return create_stack(aws_session)


@pytest.fixture
def make_enricher(aws_session: boto3.Session, stack: LocalStack) -> EnricherFactory:
    """`make_enricher(batch=…, sns=…, ALERT_ON="…") -> Enricher` on real boto3 clients (moto).

    A test that hooks or stubs a client passes its own (built with `batchlens.aws.client`).
    """
    from batchlens import aws
    from batchlens.pipeline import Enricher

    def make(
        *,
        batch: BatchClient | None = None,
        dynamodb: DynamoDBClient | None = None,
        sns: SNSClient | None = None,
        **environment: str,
    ) -> Enricher:
        settings = stack.settings(**environment)
        return Enricher(
            settings,
            batch=batch or aws.client("batch", settings, aws_session),
            dynamodb=dynamodb or aws.client("dynamodb", settings, aws_session),
            sns=sns or aws.client("sns", settings, aws_session),
        )

    return make


@pytest.fixture
def history(aws_session: boto3.Session, stack: LocalStack) -> HistoryTable:
    """The stack's history table, read through the production adapter."""
    from batchlens.history import HistoryTable

    return HistoryTable(aws_session.client("dynamodb"), stack.table_name, retention_days=90)


def batch_write_unprocessed(params: Mapping[str, Any], **_: Any) -> tuple[Any, Json]:
    """A `before-call.dynamodb.BatchWriteItem` handler: DynamoDB leaves every item unprocessed.

    Answered before the call, not before the send: with in-process moto, botocore runs every
    before-send handler and moto's applies the request even when another one answers it.
    """
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    (table, items), *_ = json.loads(params["body"])["RequestItems"].items()
    parsed = {"UnprocessedItems": {table: items}, "ResponseMetadata": {"HTTPStatusCode": 200}}
    return AWSResponse(params["url"], 200, HTTPHeaders(), None), parsed


@pytest.fixture
def no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Standard-mode retries without their backoff sleeps; returns the delays botocore chose."""
    from botocore.retries.standard import ExponentialBackoff

    chosen: list[float] = []
    original = ExponentialBackoff.delay_amount

    def no_delay(self: ExponentialBackoff, context: Any) -> float:
        chosen.append(original(self, context))
        return 0.0

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", no_delay)
    return chosen


@pytest.fixture
def drain_alerts(aws_session: boto3.Session, stack: LocalStack) -> Callable[[], list[Json]]:
    """`drain_alerts() -> [SNS notification]`: everything SNS delivered to the subscriber queue."""
    sqs = aws_session.client("sqs")

    def drain() -> list[Json]:
        received: list[Json] = []
        while True:
            messages = sqs.receive_message(
                QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return received
            for message in messages:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(
                    QueueUrl=stack.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    return drain
