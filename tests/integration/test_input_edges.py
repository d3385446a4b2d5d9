"""Inputs that used to slip past the parser or stall the batch: each fails alone as poison (or is
processed), and never takes the other records of its batch down with it."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from batchlens.history import HistoryTable
from batchlens.local import FakeLambdaContext
from tests.conftest import SqsEventBuilder, read_event, variant
from tests.handler_app import captured_logs
from tests.integration.test_badinput import good_events, log_lines

pytestmark = pytest.mark.integration

#: Before 0001-01-01T00:00:00Z once moved to UTC: no datetime can hold it.
BEFORE_THE_CALENDAR = "0001-01-01T00:00:00+01:00"


def failed_indexes(event: dict[str, Any], response: dict[str, Any]) -> set[int]:
    ids = [record["messageId"] for record in event["Records"]]
    return {ids.index(item["itemIdentifier"]) for item in response["batchItemFailures"]}


def test_a_time_before_the_calendar_in_utc_is_poison_with_its_reason(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given a good event and one whose time, moved to UTC, falls before year 1
    good = good_events()[0]
    bad = variant(read_event("job-failed-oom"), envelope={"time": BEFORE_THE_CALENDAR})
    event = make_sqs_event([good, bad])

    # When the handler runs
    with captured_logs(app) as output:
        response = app.handler(event, lambda_context)

    # Then only it fails, as poison, with a log line that says why (not a store failure retried)
    assert failed_indexes(event, response) == {1}
    said = [line["message"] for line in log_lines(output.getvalue())]
    assert any(m.startswith("Poison record") and "out of range" in m for m in said), said
    assert history.get_latest(good["detail"]["jobId"]) is not None


def test_a_time_before_the_calendar_does_not_fail_other_jobs_timeline_writes(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given job X's final event, an older event of X whose time is before the calendar in UTC,
    # and job Y's event: the bad one is not X's newest, so its write is not the one that fails
    x, y = good_events()
    older_x = variant(x, envelope={"time": BEFORE_THE_CALENDAR}, status="RUNNING")
    event = make_sqs_event([x, older_x, y])

    # When the handler runs
    response = app.handler(event, lambda_context)

    # Then only the bad record is reported; X and Y (another job) are stored and not redelivered
    assert failed_indexes(event, response) == {1}
    assert len(history.timeline(y["detail"]["jobId"])) == 1


def test_a_dependency_failure_listing_thousands_of_dependencies_reads_at_most_twenty(
    app: ModuleType,
    make_sqs_event: SqsEventBuilder,
    lambda_context: FakeLambdaContext,
    history: HistoryTable,
) -> None:
    # Given a job that failed because a dependency failed, whose event lists 2,000 dependencies
    # (AWS Batch allows 20: a hand-made event; 13,000 fit one SQS message, one GetItem each, in
    # sequence, before any record of the batch is stored: past the function's timeout, the whole
    # batch is redelivered until all of it reaches the dead-letter queue)
    event = read_event("job-failed-dependency")
    event["detail"]["dependsOn"] = [
        {"jobId": f"dep-{n}", "type": "SEQUENTIAL"} for n in range(2000)
    ]
    good = good_events()[0]
    enricher = app.enricher()
    reads: list[str] = []
    enricher.history._client.meta.events.register(
        "before-parameter-build.dynamodb.GetItem",
        lambda params, **_: reads.append(params["Key"]["pk"]["S"]),
    )
    batch = make_sqs_event([event, good])

    # When the handler runs
    response = app.handler(batch, lambda_context)

    # Then it is processed with at most AWS Batch's 20 dependency lookups, and so is the batch
    assert response == {"batchItemFailures": []}
    assert len(reads) <= 20, len(reads)
    assert history.get_latest(event["detail"]["jobId"]) is not None
    assert history.get_latest(good["detail"]["jobId"]) is not None
