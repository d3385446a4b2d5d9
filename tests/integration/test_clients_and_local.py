"""Clients as the Lambda builds them, DescribeJobs' answer, and the local stack against the
template: behaviour a mutation review of aws.py, describe.py, settings.py and local.py showed no
test pinned (each test fails with the mutant it was written for)."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from pydantic import ValidationError

from batchlens import aws
from batchlens.access import Connection
from batchlens.describe import describe_jobs
from batchlens.events import parse_event
from batchlens.local import LocalStack, put_batch_event
from batchlens.pipeline import Enricher, Message
from batchlens.records import Enrichment
from batchlens.settings import Settings
from batchlens.template import default_template_path, load_template, queue_attributes
from tests.conftest import EnricherFactory, read_event
from tests.integration.test_describe import error_response, failing_first, with_job_id

TEMPLATE = load_template(default_template_path())


def test_clients_use_standard_retries_and_the_timeouts_of_the_settings(
    aws_session: boto3.Session,
) -> None:
    # Given the default settings, then: standard mode, 5 attempts in all, 3 s / 10 s
    config: Any = aws.client("batch", Settings.from_env({}), aws_session).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}
    assert (config.connect_timeout, config.read_timeout) == (3.0, 10.0)
    # Given every variable set, then each reaches the client
    tuned = Settings.from_env(
        {
            "BATCHLENS_CONNECT_TIMEOUT": "1.5",
            "BATCHLENS_READ_TIMEOUT": "4",
            "BATCHLENS_MAX_ATTEMPTS": "2",
        }
    )
    config = aws.client("batch", tuned, aws_session).meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert (config.connect_timeout, config.read_timeout) == (1.5, 4.0)


@pytest.mark.integration
def test_batchlens_max_attempts_bounds_the_attempts_of_a_failing_call(
    aws_session: boto3.Session, stack: LocalStack, no_retry_delay: list[float]
) -> None:
    # Given a Batch client for BATCHLENS_MAX_ATTEMPTS=2 and DescribeJobs always answering 500
    batch = aws.client("batch", stack.settings(BATCHLENS_MAX_ATTEMPTS="2"), aws_session)
    seen: list[str] = []
    batch.meta.events.register(
        "before-send.batch.DescribeJobs", failing_first(10**6, 500, "ServerException", seen)
    )
    # When one job is described, then boto3 gives up after two attempts in all
    job_id = str(uuid.uuid4())
    assert set(describe_jobs(batch, [job_id]).errors) == {job_id}
    assert len(seen) == 2


class _SlowBatch(BaseHTTPRequestHandler):
    """A loopback Batch endpoint that holds every answer until `parties` requests are in flight.

    botocore still validates every request and parses every answer against Batch's model; only
    real HTTP shows how many connections urllib3's pool must hold.
    """

    barrier: threading.Barrier

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        # Fewer calls overlapping than the test needs breaks the barrier; the test says so below.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.barrier.wait(timeout=10)
        body: dict[str, Any]
        headers: dict[str, str] = {}
        if self.path == "/v1/describejobs":
            status, body = 200, {"jobs": []}
        else:  # DescribeServiceJob: an id Batch does not know
            body = {"__type": "ClientException", "message": "Job not found"}
            status, headers["x-amzn-ErrorType"] = 400, "ClientException"
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_the_connection_pool_holds_the_most_concurrent_describes(
    aws_credentials: None, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the highest describe concurrency the settings allow, and a Batch endpoint that answers
    # only once DescribeJobs and every DescribeServiceJob of the batch are in flight together
    most = 32
    with pytest.raises(ValidationError, match="BATCHLENS_DESCRIBE_CONCURRENCY"):
        Settings.from_env({"BATCHLENS_DESCRIBE_CONCURRENCY": str(most + 1)})
    barrier = threading.Barrier(most + 1)
    handler = type("Handler", (_SlowBatch,), {"barrier": barrier})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = Settings.from_env(
        {
            "BATCHLENS_DESCRIBE_CONCURRENCY": str(most),
            "BATCHLENS_ENDPOINT_URL": f"http://127.0.0.1:{server.server_address[1]}",
        }
    )
    session = boto3.Session(region_name="us-east-1")
    enricher = Enricher(
        settings,
        batch=aws.client("batch", settings, session),
        dynamodb=aws.client("dynamodb", settings, session),
        sns=aws.client("sns", settings, session),
    )
    container = parse_event(read_event("job-failed-oom"))
    service = [
        parse_event(with_job_id(read_event("service-job-failed"), str(uuid.uuid4())))
        for _ in range(most)
    ]
    caplog.set_level(logging.WARNING, logger="urllib3")
    # When the enricher describes them
    try:
        result = enricher.describe([container, *service])
    finally:
        server.shutdown()
        server.server_close()
    # Then every call was answered over a connection the pool keeps: none was opened only to be
    # thrown away ("Connection pool is full, discarding connection")
    assert not barrier.broken, "fewer calls overlapped than the most concurrent describes"
    assert result.calls == most + 1
    assert not result.errors
    assert len(result.not_found) == most + 1
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("urllib3")]


def test_clients_come_from_the_session_passed(aws_session: boto3.Session) -> None:
    # Given a session for another region than the environment's (us-east-1)
    session = boto3.Session(region_name="eu-west-1")
    # Then the client is that session's
    assert aws.client("batch", Settings.from_env({}), session).meta.region_name == "eu-west-1"


def test_the_functions_botocore_session_builds_the_same_clients(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given the session the functions build their clients from (botocore's, without boto3)
    session = aws.lambda_session()
    settings = stack.settings(BATCHLENS_MAX_ATTEMPTS="2", BATCHLENS_READ_TIMEOUT="4")

    # When a client is built from it
    dynamodb = aws.client("dynamodb", settings, session)

    # Then it has the settings' retries, timeouts and pool, the environment's region, and it
    # reaches the same (local) table as a boto3 client does
    config: Any = dynamodb.meta.config
    assert config.retries == {"mode": "standard", "total_max_attempts": 2}
    assert (config.connect_timeout, config.read_timeout) == (3.0, 4.0)
    assert config.max_pool_connections == aws.POOL_CONNECTIONS
    assert dynamodb.meta.region_name == aws_session.region_name
    table = dynamodb.describe_table(TableName=stack.table_name)["Table"]["TableName"]
    assert table == stack.table_name


@pytest.fixture
def dynamodb(aws_session: boto3.Session, stack: LocalStack) -> Any:
    """A DynamoDB client exactly as the Lambda builds it (standard retries, DynamoDB's quota)."""
    return aws.client("dynamodb", stack.settings(), aws_session)


def _is_first_attempt(request: AWSPreparedRequest) -> bool:
    header = request.headers.get("amz-sdk-request", b"")
    return "attempt=1;" in (header.decode() if isinstance(header, bytes) else header)


def _first_attempt_fails(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
    """A before-send handler: every call's first attempt gets a 500, its retries go through."""
    return (
        error_response(request, 500, "InternalServerError") if _is_first_attempt(request) else None
    )


def _get_latest(dynamodb: Any, table: str) -> Any:
    """A GetItem of a job's latest item (which the tests' hooks answer)."""
    return dynamodb.get_item(TableName=table, Key={"pk": {"S": "JOB#x"}, "sk": {"S": "LATEST"}})


def _stale_write(dynamodb: Any, table: str, pk: str) -> str:
    """A conditional write that loses to the stored item; returns the error DynamoDB ends with."""
    with pytest.raises(ClientError) as raised:
        dynamodb.update_item(
            TableName=table,
            Key={"pk": {"S": pk}, "sk": {"S": "LATEST"}},
            UpdateExpression="SET version = :v",
            ConditionExpression="version < :v",
            ExpressionAttributeValues={":v": {"S": "1"}},
        )
    code: str = raised.value.response["Error"]["Code"]
    return code


@pytest.mark.integration
@pytest.mark.parametrize("built_by", ["functions", "cli"])
def test_a_retried_write_that_fails_its_condition_gives_its_retry_quota_back(
    built_by: str, aws_session: boto3.Session, stack: LocalStack, no_retry_delay: list[float]
) -> None:
    # Given a DynamoDB client as the functions or the CLI (backfill) build it, and a job whose
    # stored version is newer
    if built_by == "functions":
        dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    else:
        connection = Connection(session=aws_session, endpoint_url=None, region="us-east-1")
        dynamodb = connection.client("dynamodb")
    pk = f"JOB#{uuid.uuid4()}"
    dynamodb.put_item(
        TableName=stack.table_name,
        Item={"pk": {"S": pk}, "sk": {"S": "LATEST"}, "version": {"S": "9"}},
    )
    hook: Callable[..., Any] = _first_attempt_fails
    dynamodb.meta.events.register("before-send.dynamodb.UpdateItem", hook)

    # When 60 stale writes each get a 500 first (14 of the quota's 500 for each retry: botocore
    # alone would refuse retries after 35 of them)
    codes = [_stale_write(dynamodb, stack.table_name, pk) for _ in range(60)]

    # Then every retry was made and ended in the failed condition, not in the injected 500
    assert set(codes) == {"ConditionalCheckFailedException"}
    assert len(no_retry_delay) == 60
    # And a fresh write after them is still retried past its 500
    response = dynamodb.update_item(
        TableName=stack.table_name,
        Key={"pk": {"S": pk}, "sk": {"S": "LATEST"}},
        UpdateExpression="SET version = :v",
        ExpressionAttributeValues={":v": {"S": "99"}},
    )
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


@pytest.mark.integration
def test_a_botocore_whose_retry_parts_differ_keeps_its_own_retries(
    aws_session: boto3.Session,
    stack: LocalStack,
    no_retry_delay: list[float],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given a botocore whose RetryQuotaChecker takes other arguments than 1.44's (1.40's took
    # the bucket alone)
    def older_signature(*_: Any) -> None:
        raise TypeError("__init__() takes 2 positional arguments but 3 were given")

    monkeypatch.setattr(aws, "_ConditionAwareQuota", older_signature)

    # When a DynamoDB client is built, then it is, with a warning that names the version
    with caplog.at_level(logging.WARNING, logger="batchlens.aws"):
        dynamodb = aws.client("dynamodb", stack.settings(), aws_session)
    assert "builds its retry handler differently" in caplog.text
    # And botocore's own handler still retries a first attempt's 500
    hook: Callable[..., Any] = _first_attempt_fails
    dynamodb.meta.events.register("before-send.dynamodb.GetItem", hook)
    response = _get_latest(dynamodb, stack.table_name)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1


@pytest.mark.integration
def test_a_retry_that_ends_in_another_client_error_still_costs_its_quota(
    dynamodb: Any, stack: LocalStack, no_retry_delay: list[float]
) -> None:
    # Given a DynamoDB client as the Lambda builds it, whose reads get a 500 and then, on the
    # retry, a 400 that is no failed condition
    attempts: list[bool] = []

    def then_refused(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        first = _is_first_attempt(request)
        attempts.append(first)
        if first:
            return error_response(request, 500, "InternalServerError")
        return error_response(request, 400, "ValidationException")

    hook: Callable[..., Any] = then_refused
    dynamodb.meta.events.register("before-send.dynamodb.GetItem", hook)

    # When 40 such reads are made (14 of 500 for each retry, none given back)
    codes = []
    for _ in range(40):
        with pytest.raises(ClientError) as raised:
            _get_latest(dynamodb, stack.table_name)
        codes.append(raised.value.response["Error"]["Code"])

    # Then the first 35 were retried and the last ones were not: only a failed condition counts
    # as an answer
    assert codes[:35] == ["ValidationException"] * 35
    assert codes[-1] == "InternalServerError"
    assert attempts.count(False) == 35


@pytest.mark.integration
def test_dynamodb_failing_on_every_attempt_still_runs_the_retry_quota_dry(
    dynamodb: Any, stack: LocalStack, no_retry_delay: list[float]
) -> None:
    # Given a DynamoDB client as the Lambda builds it and a table answering every attempt with 500
    seen: list[str] = []
    dynamodb.meta.events.register(
        "before-send.dynamodb.GetItem", failing_first(10**6, 500, "InternalServerError", seen)
    )

    # When reads keep failing
    def attempts_of_one_read() -> int:
        before = len(seen)
        with pytest.raises(ClientError):
            _get_latest(dynamodb, stack.table_name)
        return len(seen) - before

    made = [attempts_of_one_read() for _ in range(12)]

    # Then the first reads make all 5 attempts, and once the quota (500, 14 a retry) is spent
    # a read makes one attempt only: the quota still stops retries against a failing table
    assert made[:8] == [5] * 8
    assert made[-1] == 1


# --- describe.py (D6, D14; S14) --------------------------------------------------------------


@pytest.mark.integration
def test_describe_jobs_marks_only_the_unknown_ids_not_found(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    batch = aws.client("batch", stack.settings(), aws_session)
    known = read_event("job-succeeded")["detail"]
    unknown = str(uuid.uuid4())
    stubber = Stubber(batch)
    stubber.add_response("describe_jobs", {"jobs": [known]}, {"jobs": [known["jobId"], unknown]})
    with stubber:
        result = describe_jobs(batch, [known["jobId"], unknown])
    assert set(result.jobs) == {known["jobId"]}
    assert result.not_found == {unknown}


@pytest.mark.integration
def test_service_jobs_are_described_concurrently_by_default(
    aws_session: boto3.Session, stack: LocalStack, make_enricher: EnricherFactory
) -> None:
    # Given two service-job events, and DescribeServiceJob calls that each wait for the other
    batch = aws.client("batch", stack.settings(), aws_session)
    both_in_flight = threading.Barrier(2, timeout=5)

    def wait_for_the_other(**_: Any) -> None:
        both_in_flight.wait()

    batch.meta.events.register(
        "before-parameter-build.batch.DescribeServiceJob", wait_for_the_other
    )
    stubber = Stubber(batch)
    for _ in range(2):
        stubber.add_client_error("describe_service_job", "ClientException", "Job not found", 400)
    base = read_event("service-job-failed")
    events = [with_job_id(base, str(uuid.uuid4())) for _ in range(2)]

    # When the pipeline describes them with the default settings
    with stubber:
        result = make_enricher(batch=batch).process(
            [Message(str(n), e) for n, e in enumerate(events)]
        )

    # Then both calls ran at once and answered (NOT_FOUND), not the event-only fallback
    assert {p.record.enrichment for p in result.processed if p.record} == {Enrichment.NOT_FOUND}


# --- settings.py: the Slack secret cache (S17) ------------------------------------------------


@pytest.mark.integration
def test_the_local_event_queue_has_the_template_attributes(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    attributes = aws_session.client("sqs").get_queue_attributes(
        QueueUrl=stack.event_queue_url, AttributeNames=["All"]
    )["Attributes"]
    expected = queue_attributes(TEMPLATE, "EventQueue")
    assert {name: attributes.get(name) for name in expected} == expected


def _drain(sqs: Any, url: str) -> Iterator[dict[str, Any]]:
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            yield json.loads(message["Body"])


@pytest.mark.integration
def test_the_local_rule_routes_only_the_four_batch_detail_types(
    aws_session: boto3.Session, stack: LocalStack
) -> None:
    # Given a Batch event of another detail-type, and a job state change
    other = read_event("job-runnable")
    other["detail-type"] = "Batch Compute Environment State Change"
    put_batch_event(aws_session, None, other)
    put_batch_event(aws_session, None, read_event("job-runnable"))
    # Then only the job state change reaches the event queue
    received = list(_drain(aws_session.client("sqs"), stack.event_queue_url))
    assert [body["detail-type"] for body in received] == ["Batch Job State Change"]
