"""Describing a batch's jobs: DescribeJobs in chunks of at most 100 distinct ids, DescribeServiceJob
once per service job, retries by boto3's standard mode, and a fallback to the event's own detail
whenever the API cannot help.

Real boto3 clients against moto; botocore's Stubber where moto lacks DescribeServiceJob or an exact
answer is needed (it still validates every request and response against AWS's service model); a
`before-send` hook where a raw HTTP status is needed, because Stubber bypasses the retry handler.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse, HTTPHeaders
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from mypy_boto3_batch import BatchClient

from batchlens import aws
from batchlens.describe import describe_jobs, describe_service_jobs
from batchlens.history import HistoryTable
from batchlens.local import LocalStack
from batchlens.pipeline import Message
from batchlens.records import Enrichment
from tests.conftest import EnricherFactory, Json, read_event, variant

pytestmark = pytest.mark.integration


class _RawBody(io.BytesIO):
    """The raw HTTP body botocore reads an AWSResponse from."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def error_response(request: AWSPreparedRequest, status: int, code: str) -> AWSResponse:
    body = json.dumps({"__type": code, "message": f"{code} (injected by the test)"}).encode()
    headers = HTTPHeaders()
    headers["x-amzn-ErrorType"] = code
    headers["Content-Type"] = "application/json"
    return AWSResponse(request.url, status, headers, _RawBody(body))


def request_json(request: AWSPreparedRequest) -> Any:
    """The JSON body of a request on its way out."""
    assert isinstance(request.body, (str, bytes))
    return json.loads(request.body)


def failing_first(calls: int, status: int, code: str, seen: list[str]) -> Callable[..., Any]:
    """A before-send handler: the first `calls` requests get an HTTP error, the rest go through."""
    lock = threading.Lock()

    def handler(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        with lock:
            seen.append(request.url)
            failing = len(seen) <= calls
        return error_response(request, status, code) if failing else None

    return handler


def recorder(key: str, into: list[Any]) -> Callable[..., None]:
    """A provide-client-params handler that records one parameter of every call (thread-safe)."""
    lock = threading.Lock()

    def handler(params: dict[str, Any], **_: Any) -> None:
        with lock:
            into.append(params[key])

    return handler


@pytest.fixture
def batch(aws_session: boto3.Session, stack: LocalStack) -> BatchClient:
    """A Batch client exactly as the Lambda builds it (standard retries, short timeouts)."""
    return aws.client("batch", stack.settings(), aws_session)


def with_job_id(event: Json, job_id: str) -> Json:
    arn = event["detail"]["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    return variant(event, jobId=job_id, jobArn=arn)


# --- DescribeJobs ---------------------------------------------------------------------------


def test_describe_jobs_chunks_distinct_ids_by_100(batch: BatchClient) -> None:
    # Given 250 ids of which 230 are distinct
    distinct = [str(uuid.uuid4()) for _ in range(230)]
    ids = distinct + distinct[:20]
    requested: list[list[str]] = []
    batch.meta.events.register(
        "provide-client-params.batch.DescribeJobs", recorder("jobs", requested)
    )

    # When they are described
    result = describe_jobs(batch, ids)

    # Then three calls asked for every distinct id exactly once, at most 100 at a time
    assert len(requested) == result.calls == 3
    assert all(0 < len(chunk) <= 100 for chunk in requested)
    flat = [job_id for chunk in requested for job_id in chunk]
    assert sorted(flat) == sorted(distinct)
    # And moto, which knows none of them, answered "not found" for each
    assert result.not_found == set(distinct)
    assert result.jobs == {}


def test_describe_jobs_without_ids_makes_no_call(batch: BatchClient) -> None:
    requested: list[list[str]] = []
    batch.meta.events.register(
        "provide-client-params.batch.DescribeJobs", recorder("jobs", requested)
    )
    result = describe_jobs(batch, ["", ""])
    assert requested == []
    assert result.calls == 0


def test_a_batch_of_250_events_for_230_jobs_is_described_in_3_calls(
    batch: BatchClient, make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given 250 RUNNABLE events for 230 distinct jobs (20 delivered twice)
    base = read_event("job-runnable")
    events = [with_job_id(base, str(uuid.uuid4())) for _ in range(230)]
    events += events[:20]
    requested: list[list[str]] = []
    batch.meta.events.register(
        "provide-client-params.batch.DescribeJobs", recorder("jobs", requested)
    )
    enricher = make_enricher(batch=batch)

    # When the pipeline processes them as one SQS batch
    result = enricher.process([Message(str(n), e) for n, e in enumerate(events)])

    # Then DescribeJobs ran 3 times with non-empty, distinct, <=100-id lists
    assert result.describe_calls == 3
    assert [len(chunk) for chunk in requested] == sorted(
        (len(chunk) for chunk in requested), reverse=True
    )
    assert all(0 < len(chunk) <= 100 for chunk in requested)
    assert len({job_id for chunk in requested for job_id in chunk}) == 230
    assert sum(len(chunk) for chunk in requested) == 230
    # And every job is stored
    assert result.failures == {}
    assert all(history.get_latest(e["detail"]["jobId"]) is not None for e in events[:230])


def test_a_job_the_api_no_longer_knows_is_stored_from_the_event(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a FAILED event for a job moto's Batch has never heard of
    event = read_event("job-failed-oom")

    # When processed
    result = make_enricher().process([Message("m-1", event)])

    # Then the record says NOT_FOUND and carries the event's own detail
    processed = result.processed[0]
    assert processed.error is None
    assert processed.record is not None
    assert processed.record.enrichment is Enrichment.NOT_FOUND
    stored = history.get_latest(event["detail"]["jobId"])
    assert stored is not None
    assert stored.record["enrichment"] == "NOT_FOUND"
    assert stored.record["status"] == "FAILED"
    assert len(stored.record["attempts"]) == len(event["detail"]["attempts"])
    assert stored.record["failure"]["category"] == "OUT_OF_MEMORY"


def test_throttled_describe_jobs_is_retried_by_the_standard_retry_mode(
    batch: BatchClient, no_retry_delay: list[float]
) -> None:
    # Given DescribeJobs answers 429 ThrottlingException twice, then goes through to moto
    seen: list[str] = []
    batch.meta.events.register(
        "before-send.batch.DescribeJobs", failing_first(2, 429, "ThrottlingException", seen)
    )

    # When one job is described
    result = describe_jobs(batch, ["a6d5a1c2-0000-4000-8000-000000000001"])

    # Then boto3 retried twice on its own and the third attempt got moto's answer
    assert len(seen) == 3
    assert len(no_retry_delay) == 2
    assert result.calls == 1
    assert result.not_found == {"a6d5a1c2-0000-4000-8000-000000000001"}


def test_a_throttled_describe_still_enriches_instead_of_falling_back(
    batch: BatchClient, make_enricher: EnricherFactory, no_retry_delay: list[float]
) -> None:
    # Given DescribeJobs is throttled once
    seen: list[str] = []
    batch.meta.events.register(
        "before-send.batch.DescribeJobs", failing_first(1, 429, "ThrottlingException", seen)
    )

    # When a batch is processed
    result = make_enricher(batch=batch).process([Message("m", read_event("job-failed-oom"))])

    # Then the retried call answered (NOT_FOUND from the API), not the event-only fallback
    record = result.processed[0].record
    assert record is not None
    assert record.enrichment is Enrichment.NOT_FOUND
    assert len(seen) == 2


def test_describe_jobs_that_keeps_failing_falls_back_to_the_events(
    batch: BatchClient,
    stack: LocalStack,
    make_enricher: EnricherFactory,
    history: HistoryTable,
    no_retry_delay: list[float],
) -> None:
    # Given DescribeJobs always answers HTTP 500
    seen: list[str] = []
    batch.meta.events.register(
        "before-send.batch.DescribeJobs", failing_first(10**6, 500, "ServerException", seen)
    )
    events = [read_event(name) for name in ("job-failed-oom", "job-succeeded", "job-runnable")]
    events[2] = with_job_id(events[2], str(uuid.uuid4()))

    # When a batch is processed
    result = make_enricher(batch=batch).process(
        [Message(f"m-{n}", event) for n, event in enumerate(events)]
    )

    # Then boto3 gave up after its attempts, and every record was stored from its event
    assert len(seen) == stack.settings().aws_max_attempts
    assert result.failures == {}
    for event in events:
        stored = history.get_latest(event["detail"]["jobId"])
        assert stored is not None
        assert stored.record["enrichment"] == "EVENT_ONLY"
        assert stored.record["status"] == event["detail"]["status"]


def test_a_description_enriches_the_record_without_moving_its_state(
    batch: BatchClient, make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a RUNNING event that lacks its job definition, and DescribeJobs (stubbed, validated
    # against AWS's model) answering with the job as it is now: SUCCEEDED
    running = variant(read_event("job-running"), drop=["jobDefinition"])
    now = read_event("job-succeeded")["detail"]
    job_id = running["detail"]["jobId"]
    stubber = Stubber(batch)
    stubber.add_response("describe_jobs", {"jobs": [now]}, {"jobs": [job_id]})

    # When processed
    with stubber:
        result = make_enricher(batch=batch).process([Message("m", running)])

    # Then the record is DESCRIBED, gains the definition, and is still RUNNING
    stubber.assert_no_pending_responses()
    stored = history.get_latest(job_id)
    assert stored is not None
    assert result.failures == {}
    assert stored.record["enrichment"] == "DESCRIBED"
    assert stored.record["jobDefinition"]["arn"] == now["jobDefinition"]
    assert stored.record["status"] == "RUNNING"
    assert stored.record["stoppedAt"] is None


def test_a_description_the_model_refuses_leaves_the_record_to_its_event(
    batch: BatchClient, make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given a failed job's valid event, and a DescribeJobs answer (stubbed, validated against
    # AWS's model) that the client then hands over with a part batchlens's model refuses, as an
    # API shape added after this release could be
    failed = read_event("job-failed-oom")
    job_id = failed["detail"]["jobId"]
    stubber = Stubber(batch)
    stubber.add_response("describe_jobs", {"jobs": [failed["detail"]]}, {"jobs": [job_id]})

    def garble(parsed: Json, **_: Any) -> None:
        parsed["jobs"][0]["ecsProperties"] = {"taskProperties": [{"containers": "not a list"}]}

    batch.meta.events.register("after-call.batch.DescribeJobs", garble)

    # When processed
    with stubber:
        result = make_enricher(batch=batch).process([Message("m", failed)])

    # Then the event is not poison: its record is stored from the event alone, and says so
    stubber.assert_no_pending_responses()
    assert result.failures == {}
    stored = history.get_latest(job_id)
    assert stored is not None
    assert (stored.record["enrichment"], stored.record["status"]) == ("EVENT_ONLY", "FAILED")
    assert stored.record["failure"]["category"] == "OUT_OF_MEMORY"


# --- DescribeServiceJob ---------------------------------------------------------------------


def test_describe_service_job_once_per_distinct_job(batch: BatchClient) -> None:
    # Given four service-job ids, one twice: one known, one unknown, one failing
    found = read_event("service-job-succeeded")["detail"]
    known, unknown, broken = found["jobId"], str(uuid.uuid4()), str(uuid.uuid4())
    stubber = Stubber(batch)
    stubber.add_response("describe_service_job", found, {"jobId": known})
    stubber.add_client_error(
        "describe_service_job", "ClientException", "Job not found", 400, {"jobId": unknown}
    )
    stubber.add_client_error(
        "describe_service_job", "ServerException", "Internal", 500, {"jobId": broken}
    )

    # When they are described one at a time (so the stubbed order is the call order)
    with stubber:
        result = describe_service_jobs(batch, [known, unknown, known, broken], concurrency=1)

    # Then each distinct job was asked for once, and each answer went where it belongs
    stubber.assert_no_pending_responses()
    assert result.calls == 3
    assert set(result.jobs) == {known}
    assert result.jobs[known]["serviceJobType"] == found["serviceJobType"]
    assert result.not_found == {unknown}
    assert set(result.errors) == {broken}


def test_service_jobs_are_described_concurrently_each_once(
    batch: BatchClient, make_enricher: EnricherFactory
) -> None:
    # Given 12 service-job events for 10 distinct jobs, none known to the API
    base = read_event("service-job-failed")
    events = [with_job_id(base, str(uuid.uuid4())) for _ in range(10)]
    events += events[:2]
    requested: list[str] = []
    batch.meta.events.register(
        "provide-client-params.batch.DescribeServiceJob", recorder("jobId", requested)
    )
    stubber = Stubber(batch)
    for _ in range(10):
        stubber.add_client_error("describe_service_job", "ClientException", "Job not found", 400)

    # When the pipeline describes them (8 at a time by default)
    with stubber:
        result = make_enricher(batch=batch).process(
            [Message(str(n), e) for n, e in enumerate(events)]
        )

    # Then DescribeServiceJob ran once per distinct job, and none called DescribeJobs
    stubber.assert_no_pending_responses()
    assert sorted(requested) == sorted(e["detail"]["jobId"] for e in events[:10])
    assert result.describe_calls == 10
    assert result.failures == {}
    assert {p.record.enrichment for p in result.processed if p.record} == {Enrichment.NOT_FOUND}


def test_describe_service_job_unavailable_falls_back_to_event_only(
    make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given moto, which answers DescribeServiceJob with "Not yet implemented"
    event = read_event("service-job-failed")

    # When a service-job event is processed
    result = make_enricher().process([Message("m", event)])

    # Then it is stored from the event alone, and said so
    assert result.failures == {}
    stored = history.get_latest(event["detail"]["jobId"])
    assert stored is not None
    assert stored.record["enrichment"] == "EVENT_ONLY"
    assert stored.record["jobKind"] == "SERVICE"
    assert stored.record["serviceJobType"] == event["detail"]["serviceJobType"]
    assert stored.record["links"]["trainingJob"] is not None


def test_describe_service_job_errors_fall_back_to_event_only(
    batch: BatchClient, make_enricher: EnricherFactory, history: HistoryTable
) -> None:
    # Given DescribeServiceJob failing with a server error (stubbed, so no retry hides it)
    event = read_event("service-job-failed")
    stubber = Stubber(batch)
    stubber.add_client_error(
        "describe_service_job",
        "ServerException",
        "Internal error",
        500,
        expected_params={"jobId": event["detail"]["jobId"]},
    )

    # When the event is processed
    with stubber:
        result = make_enricher(batch=batch).process([Message("m", event)])

    # Then the record is stored from the event, flagged EVENT_ONLY, and the batch succeeds
    stubber.assert_no_pending_responses()
    assert result.failures == {}
    stored = history.get_latest(event["detail"]["jobId"])
    assert stored is not None
    assert stored.record["enrichment"] == "EVENT_ONLY"
    assert stored.record["failure"]["category"] == "APPLICATION_ERROR"


# --- a call that fails fails only its own ids ---------------------------------------------------


def test_an_answered_describe_jobs_chunk_survives_a_failing_one(
    batch: BatchClient, no_retry_delay: list[float]
) -> None:
    # Given 150 jobs (two DescribeJobs calls), and HTTP 500 for the call holding the last 50
    ids = [str(uuid.uuid4()) for _ in range(150)]

    def second_chunk_fails(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if ids[-1] in request_json(request)["jobs"]:
            return error_response(request, 500, "ServerException")
        return None

    hook: Callable[..., Any] = second_chunk_fails
    batch.meta.events.register("before-send.batch.DescribeJobs", hook)

    # When they are described
    result = describe_jobs(batch, ids)

    # Then the first call's answer is kept (moto knows none of them), the rest are errors
    assert result.not_found == set(ids[:100])
    assert set(result.errors) == set(ids[100:])
    assert all(why.startswith("ServerException: ") for why in result.errors.values())
    assert result.calls == 2


def test_a_timed_out_service_job_is_an_error_of_its_own(
    batch: BatchClient, make_enricher: EnricherFactory, no_retry_delay: list[float]
) -> None:
    # Given two service jobs: Batch says the first is unknown, the second's calls all time out
    gone, slow = str(uuid.uuid4()), str(uuid.uuid4())

    def answer(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        if request_json(request)["jobId"] == slow:
            raise ReadTimeoutError(endpoint_url=request.url)
        return error_response(request, 400, "ClientException")

    hook: Callable[..., Any] = answer
    batch.meta.events.register("before-send.batch.DescribeServiceJob", hook)

    # When both are described, then the unknown one is not found, the slow one an error
    result = describe_service_jobs(batch, [gone, slow], concurrency=2)
    assert result.not_found == {gone}
    assert set(result.errors) == {slow}
    assert result.errors[slow].startswith("ReadTimeoutError: ")

    # And through the pipeline, the timeout costs only the slow job its description
    base = read_event("service-job-failed")
    processed = make_enricher(batch=batch).process(
        [Message("a", with_job_id(base, gone)), Message("b", with_job_id(base, slow))]
    )
    enrichment = {p.record.job_id: p.record.enrichment for p in processed.processed if p.record}
    assert enrichment == {gone: Enrichment.NOT_FOUND, slow: Enrichment.EVENT_ONLY}


def test_a_hanging_describe_takes_only_its_share_of_the_invocation(
    batch: BatchClient,
    make_enricher: EnricherFactory,
    history: HistoryTable,
    drain_alerts: Callable[[], list[Json]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Given DescribeJobs that hangs until the test lets it go (longer than the invocation has),
    # and an invocation with 8 s left
    released = threading.Event()
    hung: list[str] = []

    def hang(request: AWSPreparedRequest, **_: Any) -> None:
        hung.append(request.url)
        released.wait(timeout=30)  # then moto answers, after the batch is done

    hook: Callable[..., Any] = hang
    batch.meta.events.register("before-send.batch.DescribeJobs", hook)
    failed, succeeded = read_event("job-failed-oom"), read_event("job-succeeded")
    caplog.set_level(logging.WARNING, logger="batchlens")

    # When a batch is processed
    try:
        result = make_enricher(batch=batch).process(
            [Message("a", failed), Message("b", succeeded)], remaining_ms=8_000
        )
    finally:
        released.set()

    # Then after half the time it went on with the events' own detail: both are stored, the
    # failed job alerted, and the log says why the records are not described
    assert len(hung) == 1
    assert result.failures == {}
    for event in (failed, succeeded):
        stored = history.get_latest(event["detail"]["jobId"])
        assert stored is not None
        assert stored.record["enrichment"] == "EVENT_ONLY"
    alerted = [json.loads(alert["Message"])["jobId"] for alert in drain_alerts()]
    assert alerted == [failed["detail"]["jobId"]]
    assert "DescribeJobs: no answer within" in caplog.text
