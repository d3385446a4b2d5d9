"""The query indexes carry no records: queries read them from the table, and skip stale entries.

Against moto, which projects INCLUDE indexes as DynamoDB does, with the table built from
template.yaml. Stale entries (an index behind the table) cannot happen on moto, so an
`after-call` hook on Query rewrites the page DynamoDB would have returned.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from mypy_boto3_dynamodb import DynamoDBClient

from batchlens import aws
from batchlens.events import parse_event
from batchlens.history import (
    INDEX_ATTRIBUTES,
    HistoryTable,
    ReadThrottled,
    WriteOutcome,
    job_pk,
    version_of,
)
from batchlens.local import LocalStack
from batchlens.records import JobRecord, normalise
from tests.chaos.faults import http_response
from tests.conftest import UNEXPIRED_RETENTION_DAYS, read_event

FAILED_EVENTS = ("job-failed-oom.json", "job-failed-spot.json", "job-failed-image-pull.json")


@pytest.fixture
def dynamodb(aws_session: boto3.Session, stack: LocalStack) -> DynamoDBClient:
    return aws.client("dynamodb", stack.settings(), aws_session)


@pytest.fixture
def failed_jobs(dynamodb: DynamoDBClient, stack: LocalStack) -> HistoryTable:
    """The history, through `dynamodb`, holding three jobs that failed on one day."""
    table = HistoryTable(dynamodb, stack.table_name, UNEXPIRED_RETENTION_DAYS)
    for name in FAILED_EVENTS:
        table.put_latest(normalise(parse_event(read_event(name))))
    return table


def failed_on(record: JobRecord) -> tuple[str, dict[str, Any]]:
    day = record.event_time.strftime("%Y-%m-%d")
    return "gsi2pk = :pk", {":pk": {"S": f"D#{day}#FAILED"}}


def oom() -> JobRecord:
    return normalise(parse_event(read_event("job-failed-oom.json")))


def test_an_index_entry_is_small_and_its_query_returns_whole_records(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given three failed jobs of one day; when the index itself is read
    condition, values = failed_on(oom())
    entries = dynamodb.query(
        TableName=failed_jobs.table_name,
        IndexName="byDay",
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        ScanIndexForward=False,  # newest first, as query_latest reads it
    )["Items"]
    # Then it holds keys and the projected attributes only, no record
    assert len(entries) == 3
    for entry in entries:
        assert "record" not in entry
        assert set(entry) <= {"pk", "sk", "gsi2pk", "gsi2sk", *INDEX_ATTRIBUTES["byDay"]}
    # And the history's query returns each job's whole record, in the index's order
    found = list(failed_jobs.query_latest("byDay", condition, values))
    assert [item["record"]["jobId"] for item in found] == [
        entry["pk"]["S"].removeprefix("JOB#") for entry in entries
    ]
    assert all(item["record"]["status"] == "FAILED" for item in found)


def test_an_entry_the_table_has_moved_past_is_left_out(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given an index that has not yet caught up: one entry still carries an older version
    stale_job = oom().job_id

    def lag(parsed: dict[str, Any], **_: Any) -> None:
        for entry in parsed.get("Items", []):
            if entry["pk"]["S"] == f"JOB#{stale_job}":
                entry["version"] = {"S": "0|000|2|000000000000001"}

    dynamodb.meta.events.register("after-call.dynamodb.Query", lag)
    # When the day's failures are queried
    found = list(failed_jobs.query_latest("byDay", *failed_on(oom())))
    # Then that job is not reported from the stale entry; the others are
    assert len(found) == 2
    assert stale_job not in {item["record"]["jobId"] for item in found}


def test_an_entry_whose_job_is_gone_is_left_out(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given an index entry for a job the table no longer holds (expired by TTL since)
    def phantom(parsed: dict[str, Any], **_: Any) -> None:
        parsed["Items"].append({"pk": {"S": "JOB#gone"}, "sk": {"S": "LATEST"}})

    dynamodb.meta.events.register("after-call.dynamodb.Query", phantom)
    # When queried, then only the three jobs the table holds come back
    found = list(failed_jobs.query_latest("byDay", *failed_on(oom())))
    assert len(found) == 3
    assert "gone" not in {item["record"]["jobId"] for item in found}


def test_a_job_past_its_retention_is_left_out_before_dynamodb_deletes_it(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given a later event of the OOM job written with a retention that has passed (moto, like
    # DynamoDB for a while after the TTL, still returns the item)
    later = oom().model_copy(update={"event_time": oom().event_time + timedelta(seconds=1)})
    expired_by_now = (datetime.now(tz=UTC) - later.event_time).days - 1
    outcome, _ = HistoryTable(dynamodb, failed_jobs.table_name, expired_by_now).put_latest(later)
    assert outcome is WriteOutcome.FRESH
    item = dynamodb.get_item(
        TableName=failed_jobs.table_name,
        Key={"pk": {"S": job_pk(oom().job_id)}, "sk": {"S": "LATEST"}},
    )["Item"]
    assert int(item["expiresAt"]["N"]) < datetime.now(tz=UTC).timestamp()

    # When the day is queried, then the other two come back, and the job reads as expired
    found = list(failed_jobs.query_latest("byDay", *failed_on(oom())))
    assert oom().job_id not in {item["record"]["jobId"] for item in found}
    assert len(found) == 2
    stored = failed_jobs.get_latest(oom().job_id)
    assert stored is not None
    assert stored.expired


def test_records_held_back_once_are_read_on_a_retry(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given DynamoDB holding back every key of the first BatchGetItem (throttled)
    held_back: list[int] = []

    def unprocessed_once(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if held_back:
            return None
        assert isinstance(request.body, bytes)
        (table, keys), *_ = json.loads(request.body)["RequestItems"].items()
        held_back.append(len(keys["Keys"]))
        body = json.dumps({"Responses": {table: []}, "UnprocessedKeys": {table: keys}}).encode()
        return http_response(request, 200, body, {"Content-Type": "application/x-amz-json-1.0"})

    hook: Callable[..., Any] = unprocessed_once
    dynamodb.meta.events.register("before-send.dynamodb.BatchGetItem", hook)

    # When the day's failures are queried; then the keys are asked for again, and every job is
    # there
    found = list(failed_jobs.query_latest("byDay", *failed_on(oom())))
    assert held_back == [3]
    assert len(found) == 3


def test_keys_held_back_every_time_wait_between_attempts_only(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB holding back every key of every BatchGetItem (throttled)
    def all_unprocessed(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        assert isinstance(request.body, bytes)
        (table, keys), *_ = json.loads(request.body)["RequestItems"].items()
        body = json.dumps({"Responses": {table: []}, "UnprocessedKeys": {table: keys}}).encode()
        return http_response(request, 200, body, {"Content-Type": "application/x-amz-json-1.0"})

    hook: Callable[..., Any] = all_unprocessed
    dynamodb.meta.events.register("before-send.dynamodb.BatchGetItem", hook)
    waits: list[float] = []
    monkeypatch.setattr("batchlens.history.time.sleep", waits.append)

    # When versions are read, then the read gives up after 8 attempts, having waited only
    # between them (50 ms doubling to 1 s), not after the last
    with pytest.raises(ReadThrottled):
        failed_jobs.stored_versions([oom().job_id])
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_versions_of_a_job_named_twice_are_read_once(failed_jobs: HistoryTable) -> None:
    # Given job ids naming the OOM job twice (BatchGetItem refuses a key given twice)
    job_ids = [oom().job_id, "not-stored", oom().job_id]

    # When their stored versions are read; then the stored job's version comes back, once
    assert failed_jobs.stored_versions(job_ids) == {oom().job_id: version_of(oom())}


def test_a_job_is_read_with_a_strongly_consistent_read(
    dynamodb: DynamoDBClient, failed_jobs: HistoryTable
) -> None:
    # Given the GetItem calls of the history's client watched (moto is always consistent;
    # DynamoDB is only when asked, and the CLI and the roll-up read what was just written)
    reads: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        reads.append(params)

    dynamodb.meta.events.register("before-parameter-build.dynamodb.GetItem", record)

    # When a job is read
    stored = failed_jobs.get_latest(oom().job_id)

    # Then it was asked for consistently
    assert stored is not None
    assert [params.get("ConsistentRead") for params in reads] == [True]
