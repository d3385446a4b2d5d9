"""Log excerpts in the pipeline, on moto: a failed job's alert quotes the last lines of its latest
attempt's log, masked; a missing stream or a denied read leaves the alert without an excerpt; and
nothing that does not alert (or LOG_TAIL_LINES=0) ever calls GetLogEvents.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders

from batchlens import aws
from batchlens.history import HistoryTable
from batchlens.local import LocalStack
from batchlens.pipeline import Enricher, Message
from tests.conftest import Json, ecs_app_failed_sidecar_logging_apart, read_event, variant

pytestmark = pytest.mark.integration

APP_LOG = [
    "2025-03-14 06:31:20 INFO export: starting invoice export for 2025-02",
    "2025-03-14 06:31:20 DEBUG config: DB_HOST=db.internal DB_PASSWORD=hunter2-prod-Zx9",
    "Traceback (most recent call last):",
    "ValueError: invoice INV-2025-02-0042 has no customer",
]


class LogsCalls:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, **_: Any) -> None:
        self.count += 1


def write_log(
    session: boto3.Session,
    event: Json,
    lines: list[str],
    stream: str | None = None,
    group: str = "/aws/batch/job",
) -> None:
    """What the job's (latest) container printed, in the stream its event names (or `stream`),
    in Batch's default group (or `group`)."""
    logs = session.client("logs")
    stream = stream or event["detail"]["container"]["logStreamName"]
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )


@pytest.fixture
def calls() -> LogsCalls:
    return LogsCalls()


@pytest.fixture
def enricher_with_logs(
    aws_session: boto3.Session, stack: LocalStack, calls: LogsCalls
) -> Callable[..., Enricher]:
    def make(deny: bool = False, **environment: str) -> Enricher:
        settings = stack.settings(**environment)
        logs = aws.client("logs", settings, aws_session)
        logs.meta.events.register("before-call.logs.GetLogEvents", calls)
        if deny:
            logs.meta.events.register("before-send.logs.GetLogEvents", access_denied)
        return Enricher(
            settings,
            batch=aws.client("batch", settings, aws_session),
            dynamodb=aws.client("dynamodb", settings, aws_session),
            sns=aws.client("sns", settings, aws_session),
            logs=logs,
        )

    return make


def _access_denied(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    """A before-send handler: IAM refuses the read (as for a log group outside the policy)."""
    body = json.dumps({"__type": "AccessDeniedException", "message": "not authorized"}).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.1"
    return AWSResponse(request.url, 400, headers, _RawBody(body))


access_denied: Callable[..., Any] = _access_denied


class _RawBody(io.BytesIO):
    """The raw HTTP body botocore reads an AWSResponse from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def process(enricher: Enricher, *events: Json) -> None:
    result = enricher.process([Message(str(uuid.uuid4()), json.dumps(e)) for e in events], 60_000)
    assert result.failures == {}


def test_a_failed_jobs_alert_quotes_its_last_log_lines_masked(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    history: HistoryTable,
) -> None:
    # Given a failed job whose log printed a password
    event = read_event("job-failed-app-error")
    write_log(aws_session, event, APP_LOG)

    # When its event is processed with LOG_TAIL_LINES=3
    process(enricher_with_logs(LOG_TAIL_LINES="3"), event)

    # Then its alert quotes the last three lines, with the password masked
    (notification,) = drain_alerts()
    record = json.loads(notification["Message"])
    assert record["logExcerpt"] == [
        "2025-03-14 06:31:20 DEBUG config: DB_HOST=db.internal DB_PASSWORD=****",
        "Traceback (most recent call last):",
        "ValueError: invoice INV-2025-02-0042 has no customer",
    ]
    assert "hunter2-prod-Zx9" not in json.dumps(notification)
    # And the history keeps the record as stored before the excerpt was read (null)
    stored = history.get_latest(event["detail"]["jobId"])
    assert stored is not None
    assert stored.record["logExcerpt"] is None


def test_an_ecs_properties_alert_quotes_the_failed_container_from_its_own_group(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
) -> None:
    # Given an ECS-properties job whose app container failed, logging to Batch's default group,
    # while its sidecar logs to a group of its own
    event = ecs_app_failed_sidecar_logging_apart()
    app = event["detail"]["attempts"][0]["taskProperties"][0]["containers"][0]
    write_log(aws_session, event, ["KeyError: 'week'"], stream=app["logStreamName"])

    # When its event is processed; then its alert quotes the app's log
    process(enricher_with_logs(), event)
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] == ["KeyError: 'week'"]


@pytest.mark.parametrize("deny", [False, True], ids=["missing stream", "access denied"])
def test_an_unreadable_log_leaves_the_alert_without_an_excerpt(
    deny: bool,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
) -> None:
    # Given a failed job whose log stream does not exist (or may not be read)
    event = read_event("job-failed-spot")

    # When it is processed
    process(enricher_with_logs(deny=deny), event)

    # Then the read was tried once, and the alert went out without an excerpt
    assert calls.count == 1
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] is None


def unread_and_why(
    calls: LogsCalls, drain_alerts: Callable[[], list[Json]], caplog: pytest.LogCaptureFixture
) -> tuple[Json, str]:
    """The one alert of a job whose log was not read (no GetLogEvents, no excerpt), and the log
    line that says why."""
    assert calls.count == 0
    (notification,) = drain_alerts()
    record: Json = json.loads(notification["Message"])
    assert record["logExcerpt"] is None
    (line,) = [r for r in caplog.records if r.getMessage().startswith("No log excerpt")]
    return record, line.getMessage()


def test_a_log_group_outside_the_readable_prefix_is_not_read_and_says_why(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a failed job logging to Batch's default group, and a stack whose JobLogGroupPrefix
    # (the log groups its role may read) leaves that group out
    event = read_event("job-failed-app-error")
    write_log(aws_session, event, APP_LOG)
    caplog.set_level(logging.INFO, logger="batchlens")

    # When its event is processed
    process(enricher_with_logs(JOB_LOG_GROUP_PREFIX="/ecs/etl/"), event)

    # Then no read is tried (IAM would refuse it), the alert goes out without an excerpt, and the
    # log says which group and which prefix
    _, why = unread_and_why(calls, drain_alerts, caplog)
    assert why == "No log excerpt: log group /aws/batch/job is outside JobLogGroupPrefix /ecs/etl/"


def with_awslogs_region(event: Json, region: str) -> Json:
    """`event` whose job's awslogs driver writes to `region`, in Batch's default group."""
    event["detail"]["container"]["logConfiguration"] = {
        "logDriver": "awslogs",
        "options": {"awslogs-group": "/aws/batch/job", "awslogs-region": region},
    }
    return event


def test_a_log_in_another_region_is_not_read_and_says_why(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a failed job in the stack's Region whose awslogs driver writes to eu-west-1, and a
    # stream of the same name in the stack's Region (the read would quote another job's log)
    event = with_awslogs_region(read_event("job-failed-app-error"), "eu-west-1")
    assert event["region"] == aws_session.region_name
    write_log(aws_session, event, APP_LOG)
    caplog.set_level(logging.INFO, logger="batchlens")

    # When its event is processed
    process(enricher_with_logs(), event)

    # Then no read is tried, the alert links the log in eu-west-1 without an excerpt, and the log
    # says why
    record, why = unread_and_why(calls, drain_alerts, caplog)
    assert "region=eu-west-1#" in record["links"]["logs"]
    assert why == (
        f"No log excerpt: log group /aws/batch/job is in eu-west-1, "
        f"not in the stack's Region {aws_session.region_name}"
    )


def test_a_log_whose_awslogs_region_is_the_stacks_own_is_read(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
) -> None:
    # Given a failed job whose awslogs driver names the stack's own Region
    event = with_awslogs_region(read_event("job-failed-app-error"), aws_session.region_name)
    write_log(aws_session, event, APP_LOG)

    # When its event is processed; then the log is read
    process(enricher_with_logs(LOG_TAIL_LINES="1"), event)
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] == [APP_LOG[-1]]


def test_the_stacks_default_prefix_reads_batchs_default_group(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    stack: LocalStack,
) -> None:
    # Given the enricher's environment as the template sets it by default
    assert stack.environment["JOB_LOG_GROUP_PREFIX"] == "/aws/batch/"
    event = read_event("job-failed-app-error")
    write_log(aws_session, event, APP_LOG)

    # When its event is processed; then the log is read
    process(enricher_with_logs(LOG_TAIL_LINES="1"), event)
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] == [APP_LOG[-1]]


TRAINING_LOG = [
    "[2025-03-14 11:51:40] epoch 3/3 step 1200 loss nan",
    "ValueError: Input contains NaN, infinity or a value too large for dtype('float32').",
]


def write_training_log(session: boto3.Session, event: Json, lines: list[str]) -> str:
    """What the service job's SageMaker training job printed on its one host; the stream name."""
    arn = event["detail"]["latestAttempt"]["serviceResourceId"]["value"]
    group, stream = "/aws/sagemaker/TrainingJobs", f"{arn.rsplit('/', 1)[-1]}/algo-1-1741950800"
    write_log(session, event, lines, stream, group)
    # Another training job whose name starts with this one's, its stream created later (so that
    # only the prefix's "/" keeps it out) and written: never read for it
    time.sleep(0.01)
    logs = session.client("logs")
    other = stream.replace("/algo-1-", "0/algo-1-")
    logs.create_log_stream(logGroupName=group, logStreamName=other)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=other,
        logEvents=[{"timestamp": int(time.time() * 1000), "message": "another job's line"}],
    )
    return stream


@pytest.mark.parametrize("setting", ["true", "false"])
def test_a_failed_training_jobs_alert_quotes_its_stream_when_the_stack_allows_it(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
    setting: str,
) -> None:
    # Given a failed SageMaker service job whose training job logged the error, under the
    # stack's default JobLogGroupPrefix (/aws/batch/), which does not cover SageMaker's group
    event = read_event("service-job-failed")
    write_training_log(aws_session, event, TRAINING_LOG)

    # When its event is processed with TrainingJobLogs on or off
    enricher = enricher_with_logs(TRAINING_JOB_LOGS=setting, JOB_LOG_GROUP_PREFIX="/aws/batch/")
    process(enricher, event)

    # Then the alert quotes the training job's last lines only when it is on
    (notification,) = drain_alerts()
    excerpt = json.loads(notification["Message"])["logExcerpt"]
    assert excerpt == (TRAINING_LOG if setting == "true" else None)
    # (two reads: the second, older, finds the stream's start: its 2 lines are all there is)
    assert calls.count == (2 if setting == "true" else 0)


def test_a_training_job_arn_in_lower_case_still_quotes_the_stream_sagemaker_named(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
) -> None:
    # Given a failed service job whose training job logged the error under its name as created
    # ("AWSBatch…"), while the event's ARN spells that name in lower case (as SageMaker does in
    # some ARNs); and a newer stream of another job whose name starts with this one's
    event = read_event("service-job-failed")
    stream = write_training_log(aws_session, event, TRAINING_LOG)
    assert stream != stream.lower()
    for attempt in [*event["detail"]["attempts"], event["detail"]["latestAttempt"]]:
        attempt["serviceResourceId"]["value"] = attempt["serviceResourceId"]["value"].lower()

    # When its event is processed
    process(enricher_with_logs(), event)

    # Then the alert quotes that stream, and its record names it as SageMaker does
    (notification,) = drain_alerts()
    alerted = json.loads(notification["Message"])
    assert alerted["logExcerpt"] == TRAINING_LOG
    assert alerted["attempts"][-1]["logStreamName"] == stream


def test_nothing_reads_logs_off_the_alert_path(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
) -> None:
    # Given events that store but do not alert, and a failure with excerpts turned off
    failed = read_event("job-failed-app-error")
    write_log(aws_session, failed, APP_LOG)
    quiet = [read_event(n) for n in ("job-succeeded", "job-running", "array-child-failed")]

    # When they are processed
    process(enricher_with_logs(), *quiet)
    process(enricher_with_logs(LOG_TAIL_LINES="0"), failed)

    # Then GetLogEvents was never called, and the one alert carries no excerpt
    assert calls.count == 0
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] is None


def test_an_invocation_short_of_time_sends_the_alert_without_reading_the_log(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    calls: LogsCalls,
) -> None:
    # Given a failed job with a readable log, and an invocation with 10 s left (under the 15 s
    # an excerpt needs, yet enough to publish)
    event = read_event("job-failed-app-error")
    write_log(aws_session, event, APP_LOG)
    message = Message(str(uuid.uuid4()), json.dumps(event))

    # When its event is processed
    result = enricher_with_logs().process([message], 10_000)

    # Then the alert went out now, without an excerpt, and the log was never read
    assert result.failures == {}
    (notification,) = drain_alerts()
    assert json.loads(notification["Message"])["logExcerpt"] is None
    assert calls.count == 0


def test_slow_log_reads_never_hold_up_the_alerts_past_the_excerpt_wait(
    aws_session: boto3.Session,
    enricher_with_logs: Callable[..., Enricher],
    drain_alerts: Callable[[], list[Json]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given 20 failed jobs in one batch (a bad release fails many at once), and CloudWatch Logs
    # answering slowly (throttled and retried, or hanging until the read timeout)
    monkeypatch.setattr("batchlens.logtail.FETCH_TIMEOUT_SECONDS", 0.2)
    enricher = enricher_with_logs()
    assert enricher._logs is not None

    gate, finished = threading.Event(), []

    def slow(**_: Any) -> None:
        gate.wait(timeout=10)  # held until the batch is done (or 10 s, should it wait for them)
        finished.append(True)

    enricher._logs.meta.events.register("before-call.logs.GetLogEvents", slow)
    base = read_event("job-failed-app-error")
    events = [variant(base, jobId=str(uuid.uuid4())) for _ in range(20)]

    # When the batch is processed
    try:
        messages = [Message(str(uuid.uuid4()), json.dumps(e)) for e in events]
        result = enricher.process(messages, 60_000)
        reads_done_first = len(finished)
    finally:
        gate.set()

    # Then every alert went out and was marked sent while the reads still hung: none of the
    # pipeline's own work waited for them (a shared pool queued the marks behind the reads)
    assert result.failures == {}
    assert len(drain_alerts()) == 20
    assert reads_done_first == 0
