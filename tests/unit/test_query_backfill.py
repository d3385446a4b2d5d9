"""The backfill's pacing and its order of calls, and the laziness of history queries.

Botocore's Stubber validates every request and response against AWS's own service models and
insists on the exact order of calls, so these tests pin down: ListJobs per status with
pagination, DescribeJobs at most 100 ids a call as the listing streams, the fallback to the
ListJobs summary for a job that vanished, service queues through ListServiceJobs, and that a
history query with a limit stops asking DynamoDB once it has enough.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from botocore.stub import ANY, Stubber

from batchlens.backfill import (
    Backfill,
    Queue,
    TokenBucket,
    detail_from_summary,
    synthesize_event,
)
from batchlens.events import JOB_STATUSES, SERVICE_JOB_STATUSES
from batchlens.failures import FailureCategory
from batchlens.history import HistoryTable, WriteOutcome, version_of
from batchlens.query import JobQuery, find_jobs
from batchlens.records import JobRecord

QUEUE_ARN = "arn:aws:batch:us-east-1:123456789012:job-queue/etl"
T0 = 1_741_943_520_000  # 2025-03-14T09:12:00Z, epoch ms


def offline(service: str) -> Any:
    """A real client that never needs the network (the Stubber answers; no credential lookup)."""
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_bucket_spaces_calls_at_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)

    for _ in range(21):
        bucket.acquire()

    assert clock.now == pytest.approx(2.0)  # the first at once, then one every 0.1 s
    assert bucket.calls == 21


def test_a_burst_is_allowed_then_the_rate_holds_and_idle_time_refills_only_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, burst=5, clock=clock, sleep=clock.sleep)

    for _ in range(5):
        bucket.acquire()
    assert clock.now == 0.0
    bucket.acquire()
    assert clock.now == pytest.approx(0.1)

    clock.now += 60  # idle for a minute: still only 5 at once
    start = clock.now
    for _ in range(7):
        bucket.acquire()
    assert clock.now - start == pytest.approx(0.2)


def test_installed_on_a_client_every_call_takes_a_token() -> None:
    clock = FakeClock()
    bucket = TokenBucket(5, clock=clock, sleep=clock.sleep)
    batch = offline("batch")
    bucket.install(batch)
    with Stubber(batch) as stub:
        for _ in range(3):
            stub.add_response("list_jobs", {"jobSummaryList": []})
        for _ in range(3):
            batch.list_jobs(jobQueue="etl", jobStatus="FAILED")

    assert bucket.calls == 3
    assert clock.now == pytest.approx(0.4)


def test_the_made_up_event_is_the_same_for_the_same_state() -> None:
    detail = {
        "jobArn": "arn:aws:batch:eu-west-1:210987654321:job/j-1",
        "jobId": "j-1",
        "jobName": "orders",
        "status": "FAILED",
        "createdAt": T0,
        "startedAt": T0 + 60_000,
        "stoppedAt": T0 + 120_000,
        "attempts": [{}],
    }

    first = synthesize_event(detail, service=False, region="us-east-1", account="unknown")
    again = synthesize_event(dict(detail), service=False, region="us-east-1", account="unknown")
    moved_on = synthesize_event(
        {**detail, "attempts": [{}, {}]}, service=False, region="us-east-1", account="unknown"
    )

    assert first == again
    assert first["id"].startswith("backfill-")
    assert first["id"] != moved_on["id"]
    assert (first["time"], first["region"], first["account"]) == (
        "2025-03-14T09:14:00Z",  # the job's last activity, in whole seconds as EventBridge's
        "eu-west-1",
        "210987654321",
    )
    late = {**detail, "stoppedAt": T0 + 120_999}
    assert synthesize_event(late, service=False, region="", account="")["time"] == first["time"]
    assert first["detail-type"] == "Batch Job State Change"


def test_a_summary_becomes_a_job_detail_of_its_queue() -> None:
    summary = {
        "jobId": "mnp#1",
        "jobName": "nccl",
        "status": "FAILED",
        "nodeProperties": {"isMainNode": False, "numNodes": 2, "nodeIndex": 1},
        "container": {"exitCode": 1},
    }

    detail = detail_from_summary(summary, Queue(name="etl", arn=QUEUE_ARN, service=False))

    assert detail["jobQueue"] == QUEUE_ARN
    assert detail["nodeDetails"] == {"nodeIndex": 1, "isMainNode": False}
    assert "nodeProperties" not in detail


class FakeHistory:
    """Stands in for HistoryTable: remembers what the backfill stored."""

    def __init__(self, stored: dict[str, str] | None = None) -> None:
        self.versions = dict(stored or {})
        self.records: dict[str, JobRecord] = {}
        self.timeline: list[JobRecord] = []
        self.version_reads = 0

    def stored_versions(self, job_ids: Iterable[str]) -> dict[str, str]:
        self.version_reads += 1
        return {job_id: self.versions[job_id] for job_id in job_ids if job_id in self.versions}

    def put_latest(self, record: JobRecord) -> tuple[WriteOutcome, str | None]:
        previous = self.versions.get(record.job_id)
        self.versions[record.job_id] = version_of(record)
        self.records[record.job_id] = record
        return WriteOutcome.FRESH, previous

    def put_transitions(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        self.timeline.extend(records)
        return []

    def failed_dependency(
        self, depends_on: Sequence[str]
    ) -> tuple[str, FailureCategory | None] | None:
        """The first dependency stored here as FAILED (HistoryTable's, without its guesses)."""
        for job_id in depends_on:
            record = self.records.get(job_id)
            if record is not None and record.status == "FAILED":
                return job_id, record.failure.category if record.failure else None
        return None


def summary(n: int, status: str) -> dict[str, Any]:
    return {
        "jobId": f"job-{n:04d}",
        "jobArn": f"arn:aws:batch:us-east-1:123456789012:job/job-{n:04d}",
        "jobName": f"orders-{n:04d}",
        "status": status,
        "createdAt": T0,
        "startedAt": T0 + 60_000,
        "stoppedAt": T0 + 120_000 + n,
        "jobDefinition": "arn:aws:batch:us-east-1:123456789012:job-definition/etl:3",
        "container": {"exitCode": 0 if status == "SUCCEEDED" else 1},
    }


def described(item: dict[str, Any]) -> dict[str, Any]:
    return {
        **item,
        "jobQueue": QUEUE_ARN,
        "attempts": [
            {
                "container": {"exitCode": item["container"]["exitCode"]},
                "startedAt": item["startedAt"],
                "stoppedAt": item["stoppedAt"],
                "statusReason": "Essential container in task exited",
            }
        ],
    }


def queues_response(queue_type: str | None = None) -> dict[str, Any]:
    queue: dict[str, Any] = {
        "jobQueueName": "etl",
        "jobQueueArn": QUEUE_ARN,
        "state": "ENABLED",
        "priority": 1,
        "computeEnvironmentOrder": [],
    }
    if queue_type:
        queue["jobQueueType"] = queue_type
    return {"jobQueues": [queue]}


def test_listing_pages_and_describes_at_most_100_ids_as_it_streams() -> None:
    batch = offline("batch")
    succeeded = [summary(n, "SUCCEEDED") for n in range(150)]
    failed = [summary(n, "FAILED") for n in range(150, 160)]
    rest = succeeded[100:] + failed
    vanished = {"job-0151", "job-0155"}
    history = FakeHistory()

    with Stubber(batch) as stub:
        stub.add_response("describe_job_queues", queues_response(), {"jobQueues": ["etl"]})
        for status in JOB_STATUSES[:5]:
            stub.add_response(
                "list_jobs",
                {"jobSummaryList": []},
                {"jobQueue": QUEUE_ARN, "jobStatus": status, "maxResults": 1000},
            )
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": succeeded[:120], "nextToken": "page-2"},
            {"jobQueue": QUEUE_ARN, "jobStatus": "SUCCEEDED", "maxResults": 1000},
        )
        stub.add_response(
            "describe_jobs",
            {"jobs": [described(s) for s in succeeded[:100]]},
            {"jobs": [s["jobId"] for s in succeeded[:100]]},
        )
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": succeeded[120:]},
            {
                "jobQueue": QUEUE_ARN,
                "jobStatus": "SUCCEEDED",
                "maxResults": 1000,
                "nextToken": "page-2",
            },
        )
        stub.add_response(
            "list_jobs",
            {"jobSummaryList": failed},
            {"jobQueue": QUEUE_ARN, "jobStatus": "FAILED", "maxResults": 1000},
        )
        stub.add_response(
            "describe_jobs",
            {"jobs": [described(s) for s in rest if s["jobId"] not in vanished]},
            {"jobs": [s["jobId"] for s in rest]},
        )
        result = Backfill(batch, cast(HistoryTable, history)).run(["etl"])
        stub.assert_no_pending_responses()

    assert (result.listed, result.described, result.vanished, result.written) == (160, 158, 2, 160)
    assert history.version_reads == 2  # one BatchGetItem per chunk
    gone = history.records["job-0155"]
    assert (gone.enrichment.value, gone.status, gone.job_queue.name) == (
        "NOT_FOUND",
        "FAILED",
        "etl",
    )
    kept = history.records["job-0042"]
    assert (kept.enrichment.value, kept.attempts_used) == ("DESCRIBED", 1)
    assert len(history.timeline) == 160


def test_jobs_the_history_already_has_are_not_written_again() -> None:
    batch = offline("batch")
    first = FakeHistory()
    jobs = [summary(n, "SUCCEEDED") for n in range(3)]

    def run(history: FakeHistory) -> Any:
        with Stubber(batch) as stub:
            stub.add_response("describe_job_queues", queues_response())
            for status in JOB_STATUSES:
                page = jobs if status == "SUCCEEDED" else []
                stub.add_response("list_jobs", {"jobSummaryList": page})
            stub.add_response("describe_jobs", {"jobs": [described(s) for s in jobs]})
            return Backfill(batch, cast(HistoryTable, history)).run()

    run(first)
    again = FakeHistory(first.versions)
    result = run(again)

    assert (result.written, result.unchanged) == (0, 3)
    assert again.records == {}  # not one write


def test_service_queues_are_listed_with_list_service_jobs() -> None:
    batch = offline("batch")
    history = FakeHistory()
    job = {
        "jobId": "svc-1",
        "jobArn": "arn:aws:batch:us-east-1:123456789012:service-job/svc-1",
        "jobName": "xgb-churn",
        "serviceJobType": "SAGEMAKER_TRAINING",
        "status": "SUCCEEDED",
        "createdAt": T0,
        "startedAt": T0 + 60_000,
        "stoppedAt": T0 + 600_000,
    }

    with Stubber(batch) as stub:
        stub.add_response("describe_job_queues", queues_response("SAGEMAKER_TRAINING"))
        for status in SERVICE_JOB_STATUSES:
            page = [job] if status == "SUCCEEDED" else []
            stub.add_response(
                "list_service_jobs",
                {"jobSummaryList": page},
                {"jobQueue": QUEUE_ARN, "jobStatus": status},
            )
        stub.add_response(
            "describe_service_job", {**job, "jobQueue": QUEUE_ARN}, {"jobId": "svc-1"}
        )
        result = Backfill(batch, cast(HistoryTable, history), describe_concurrency=1).run()
        stub.assert_no_pending_responses()

    assert (result.listed, result.written) == (1, 1)
    stored = history.records["svc-1"]
    assert (stored.job_kind.value, stored.event_type.value) == (
        "SERVICE",
        "SERVICE_JOB_STATE_CHANGE",
    )


# --- queries stop asking once they have enough ------------------------------------------------

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def items(day: str, count: int) -> list[dict[str, Any]]:
    """Index entries: keys and the projected attributes, no record."""
    return [
        {
            "pk": {"S": f"JOB#{day}-{n}"},
            "sk": {"S": "LATEST"},
            "gsi2sk": {"S": f"{day}T11:{59 - n:02d}:00.000Z#{day}-{n}"},
            "version": {"S": "1|001|6|1"},
        }
        for n in range(count)
    ]


def expect_records(stub: Stubber, day: str, count: int) -> None:
    """The BatchGetItem that reads the records behind a page of `items(day, count)`."""
    keys = [{"pk": {"S": f"JOB#{day}-{n}"}, "sk": {"S": "LATEST"}} for n in range(count)]
    latest = [
        {
            **key,
            "version": {"S": "1|001|6|1"},
            "record": {"S": json.dumps({"jobId": f"{day}-{n}", "jobName": "x"})},
        }
        for n, key in enumerate(keys)
    ]
    stub.add_response(
        "batch_get_item",
        {"Responses": {"history": latest}},
        {"RequestItems": {"history": {"Keys": keys, "ConsistentRead": True}}},
    )


def by_day(day: str, limit: int) -> dict[str, Any]:
    return {
        "TableName": "history",
        "IndexName": "byDay",
        "KeyConditionExpression": "gsi2pk = :pk AND gsi2sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {
            ":pk": {"S": f"D#{day}#FAILED"},
            ":lo": ANY,
            ":hi": ANY,
        },
        "ScanIndexForward": False,
        "Limit": limit,
    }


def found(query: JobQuery, dynamodb: Any) -> Iterator[dict[str, Any]]:
    return find_jobs(HistoryTable(dynamodb, "history", 90), query)


def test_a_full_first_page_is_the_only_query() -> None:
    dynamodb = offline("dynamodb")
    question = JobQuery(since=NOW - timedelta(days=7), until=NOW, statuses=("FAILED",), limit=3)
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "query",
            {"Items": items("2025-03-14", 3), "LastEvaluatedKey": {"pk": {"S": "more"}}},
            by_day("2025-03-14", 3),
        )
        expect_records(stub, "2025-03-14", 3)
        jobs = [job["jobId"] for job in found(question, dynamodb)]
        stub.assert_no_pending_responses()  # and no other Query: the Stubber would refuse it

    assert jobs == ["2025-03-14-0", "2025-03-14-1", "2025-03-14-2"]


def test_a_short_day_moves_on_to_the_day_before_and_stops_at_the_limit() -> None:
    dynamodb = offline("dynamodb")
    question = JobQuery(since=NOW - timedelta(days=7), until=NOW, statuses=("FAILED",), limit=5)
    with Stubber(dynamodb) as stub:
        stub.add_response("query", {"Items": items("2025-03-14", 2)}, by_day("2025-03-14", 5))
        expect_records(stub, "2025-03-14", 2)
        stub.add_response(
            "query",
            {"Items": items("2025-03-13", 5), "LastEvaluatedKey": {"pk": {"S": "more"}}},
            by_day("2025-03-13", 5),
        )
        expect_records(stub, "2025-03-13", 5)
        jobs = [job["jobId"] for job in found(question, dynamodb)]
        stub.assert_no_pending_responses()

    assert len(jobs) == 5
    assert jobs[:2] == ["2025-03-14-0", "2025-03-14-1"]


# --- behaviour pinned by a mutation review ---------------------------------------------------


def entry(job_id: str, at: str, version: str) -> dict[str, Any]:
    """One index entry of `job_id`, updated `at` (keys and the projected version)."""
    return {
        "pk": {"S": f"JOB#{job_id}"},
        "sk": {"S": "LATEST"},
        "gsi2sk": {"S": f"{at}#{job_id}"},
        "version": {"S": version},
    }


def test_a_job_that_changes_status_while_listed_is_shown_once() -> None:
    # Given job `a` read from its RUNNING partition, then (it failed meanwhile) from its FAILED one
    dynamodb = offline("dynamodb")
    question = JobQuery(
        since=NOW - timedelta(hours=1), until=NOW, statuses=("RUNNING", "FAILED"), limit=5
    )
    states = [
        ("RUNNING", "2025-03-14T11:50:00.000Z", "0|000|5|1"),
        ("FAILED", "2025-03-14T11:55:00.000Z", "1|001|6|2"),
    ]
    with Stubber(dynamodb) as stub:
        for status, at, version in states:
            stub.add_response(
                "query",
                {"Items": [entry("a", at, version)]},
                {**by_day("2025-03-14", 5), "ExpressionAttributeValues": ANY},
            )
            stored = {"jobId": "a", "status": status}
            stub.add_response(
                "batch_get_item",
                {
                    "Responses": {
                        "history": [
                            {
                                **entry("a", at, version),
                                "record": {"S": json.dumps(stored)},
                            }
                        ]
                    }
                },
            )

        # When the jobs are listed
        jobs = [(job["jobId"], job["status"]) for job in found(question, dynamodb)]
        stub.assert_no_pending_responses()

    # Then the job is listed once, as the newest state read
    assert jobs == [("a", "FAILED")]


def test_a_category_filter_reads_whole_pages_not_limit_items() -> None:
    # Given the newest failure of a category wanted: DynamoDB's Limit counts the items a Query
    # reads before its filter, so a Limit of 1 would cost one Query per failure of the day
    dynamodb = offline("dynamodb")
    question = JobQuery(
        since=NOW - timedelta(hours=1),
        until=NOW,
        statuses=("FAILED",),
        categories=("OUT_OF_MEMORY",),
        limit=1,
    )
    unlimited = {key: value for key, value in by_day("2025-03-14", 1).items() if key != "Limit"}
    with Stubber(dynamodb) as stub:
        stub.add_response(
            "query",
            {"Items": items("2025-03-14", 1), "LastEvaluatedKey": {"pk": {"S": "more"}}},
            {
                **unlimited,
                "ExpressionAttributeValues": {
                    ":pk": {"S": "D#2025-03-14#FAILED"},
                    ":lo": ANY,
                    ":hi": ANY,
                    ":c0": {"S": "OUT_OF_MEMORY"},
                },
                "ExpressionAttributeNames": {"#category": "category"},
                "FilterExpression": "#category IN (:c0)",
            },
        )
        expect_records(stub, "2025-03-14", 1)

        # When it is listed
        jobs = [job["jobId"] for job in found(question, dynamodb)]
        stub.assert_no_pending_responses()

    # Then one Query asked for a whole page, filtered, with no Limit
    assert jobs == ["2025-03-14-0"]
