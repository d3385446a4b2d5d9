"""The bench's cost projection does the arithmetic its assumptions state (bench/__main__.py)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import pricing
from bench.__main__ import projection

# Per event, as the bench measures them: one latest write per job per batch, a quarter of the
# events new jobs, a tenth child updates (a twentieth new children), an alert per 50 events with
# two ledger writes each, a DescribeJobs per batch.
OURS = {
    "dynamodb.UpdateItem": 0.5,
    "newJobs": 0.25,
    "childUpdates": 0.1,
    "newChildren": 0.05,
    "timelineItems": 1.0,
    "dynamodb.PutItem": 0.04,
    "sns.PublishBatchEntries": 0.02,
    "batch": 0.01,
}
NAIVE = {"dynamodb.PutItem": 1.0, "sns.Publish": 1.0, "batch": 1.0}


def project(ours: dict[str, float] = OURS, **options: Any) -> dict[str, dict[str, float]]:
    """The projection of `ours` against NAIVE at the measurements every test here shares."""
    return projection(
        {"batchlens": ours, "naive": NAIVE},
        batch_seconds=0.5,
        naive_event_seconds=0.03,
        kib=1.7,
        index_kib=0.29,
        stored={"timeline": 300.0, "latest": 2000.0, "naive": 1500.0},
        **options,
    )


@pytest.fixture
def projected() -> dict[str, dict[str, float]]:
    return project()


def test_write_units_count_the_table_every_index_the_timeline_and_the_ledger(
    projected: dict[str, dict[str, float]],
) -> None:
    # A 1.7 KiB record is 2 units a write; entries under 1 KiB 1 unit each. Per event:
    latest = 0.5 * 2
    # three query indexes: a put for a new job, a delete and a put for every other update
    indexes = 3 * (0.25 + 2 * (0.5 - 0.25))
    by_parent = 0.05 + 2 * (0.1 - 0.05)
    ledger = 0.04 * 2
    timeline = 1.0
    expected = (latest + indexes + by_parent + ledger + timeline) * 1_000_000
    assert projected["batchlens"]["dynamodbWriteUnits"] == round(expected)
    # And the naive design writes one unindexed record per event
    assert projected["naive"]["dynamodbWriteUnits"] == 2_000_000


def test_cost_adds_lambda_dynamodb_sns_and_the_event_queue(
    projected: dict[str, dict[str, float]],
) -> None:
    ours = projected["batchlens"]
    # 10,000 batches of 0.5 s at 256 MB
    assert ours["lambdaGbSeconds"] == 10_000 * 0.5 * 0.25
    # a send per event; per batch of 100, 10 receives and 10 deletes (10 messages a call)
    assert ours["sqsRequests"] == 1_000_000 + 20 * 10_000
    expected = (
        ours["lambdaGbSeconds"] * pricing.LAMBDA_PER_GB_SECOND
        + 10_000 / 1e6 * pricing.LAMBDA_PER_MILLION_REQUESTS
        + ours["dynamodbWriteUnits"] / 1e6 * pricing.DYNAMODB_PER_MILLION_WRITE_UNITS
        + 20_000 / 1e6 * pricing.SNS_PER_MILLION_PUBLISHES
        + 1_200_000 / 1e6 * pricing.SQS_PER_MILLION_REQUESTS
    )
    assert ours["costUsd"] == round(expected, 2)
    assert ours["batchApiCalls"] == 10_000
    # And a Step Functions workflow per event reads no queue and runs no Lambda
    assert projected["stepFunctionsExpress"]["sqsRequests"] == 0
    assert projected["stepFunctionsExpress"]["invocations"] == 1_000_000


def test_storage_counts_every_item_and_index_entry_with_dynamodbs_overhead(
    projected: dict[str, dict[str, float]],
) -> None:
    # Per event a 300-byte timeline item; per job (a quarter of the events) a 2,000-byte latest
    # item and three index entries of 0.29 KiB; per child (a twentieth) one more entry; each with
    # DynamoDB's 100 bytes of overhead
    entry = 0.29 * 1024 + 100
    per_event = (300 + 100) + 0.25 * (2000 + 100 + 3 * entry) + 0.05 * entry
    stored_gb = per_event * 1_000_000 / 1e9
    assert projected["batchlens"]["storedGb"] == round(stored_gb, 3)
    assert projected["batchlens"]["storageUsdPerMonth"] == round(
        stored_gb * pricing.DYNAMODB_PER_GB_MONTH, 3
    )
    # And the naive design keeps one item per job, as does a Step Functions workflow per event
    naive_gb = 0.25 * 1_000_000 * (1500 + 100) / 1e9
    assert projected["naive"]["storedGb"] == round(naive_gb, 3)
    assert projected["stepFunctionsExpress"]["storedGb"] == round(naive_gb, 3)


def test_ledger_writes_are_one_unit_each_and_touch_no_index() -> None:
    # The ledger's claim (PutItem) and "sent" mark (UpdateItem) share the latest write's
    # operations: counted apart, they are not billed as 2-unit records with 3 index writes.
    with_ledger = {
        **OURS,
        "dynamodb.UpdateItem": 0.5 + 0.02,
        "ledger.dynamodb.UpdateItem": 0.02,
        "ledger.dynamodb.PutItem": 0.04,
    }
    projected = project(with_ledger)
    latest = 0.5 * 2
    indexes = 3 * (0.25 + 2 * (0.5 - 0.25))
    by_parent = 0.05 + 2 * (0.1 - 0.05)
    expected = (latest + indexes + by_parent + 0.02 + 0.04 + 1.0) * 1_000_000
    assert projected["batchlens"]["dynamodbWriteUnits"] == round(expected)


def test_items_are_billed_their_own_units_and_step_functions_in_100_ms_steps() -> None:
    projected = project(units={"latest": 2.25, "naive": 2.2})
    assert projected["naive"]["dynamodbWriteUnits"] == 2_200_000
    sfn = projected["stepFunctionsExpress"]
    assert sfn["dynamodbWriteUnits"] == 2_200_000
    expected = (
        1.0 * pricing.STEP_FUNCTIONS_EXPRESS_PER_MILLION_REQUESTS
        + 1_000_000 * 0.2 * 0.0625 * pricing.STEP_FUNCTIONS_EXPRESS_PER_GB_SECOND  # 0.15 s -> 0.2
        + 2.2 * pricing.DYNAMODB_PER_MILLION_WRITE_UNITS
        + 1.0 * pricing.SNS_PER_MILLION_PUBLISHES
    )
    assert sfn["costUsd"] == round(expected, 2)
