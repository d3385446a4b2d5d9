"""Array and multi-node jobs alert once, through their parent, with their children's story."""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from batchlens import local
from batchlens.pipeline import Enricher, Message
from tests.conftest import array_child_event

EVENTS = Path(__file__).resolve().parents[2] / "events"
PARENT: dict[str, Any] = json.loads((EVENTS / "array-parent-failed.json").read_text())

Stack = tuple[Enricher, local.LocalStack, Any]


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        created = local.create_stack(session)
        enricher = Enricher(
            created.settings(),
            batch=session.client("batch"),
            dynamodb=session.client("dynamodb"),
            sns=session.client("sns"),
        )
        yield enricher, created, session


def parent_event(size: int, failed: int) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(PARENT)
    event["detail"]["arrayProperties"] = {
        "size": size,
        "statusSummary": {
            "SUBMITTED": 0,
            "PENDING": 0,
            "RUNNABLE": 0,
            "STARTING": 0,
            "RUNNING": 0,
            "SUCCEEDED": size - failed,
            "FAILED": failed,
        },
    }
    return event


def published(session: Any, created: local.LocalStack) -> list[dict[str, Any]]:
    sqs = session.client("sqs")
    records: list[dict[str, Any]] = []
    while True:
        received = sqs.receive_message(QueueUrl=created.alert_queue_url, MaxNumberOfMessages=10)
        if not received.get("Messages"):
            return records
        for message in received["Messages"]:
            records.append(json.loads(json.loads(message["Body"])["Message"]))
            sqs.delete_message(
                QueueUrl=created.alert_queue_url, ReceiptHandle=message["ReceiptHandle"]
            )


def messages(events: list[dict[str, Any]]) -> list[Message]:
    return [Message(str(uuid.uuid4()), json.dumps(event)) for event in events]


def test_thousand_child_array_with_three_failures_alerts_once_with_counts_and_cause(
    stack: Stack,
) -> None:
    # Given a 1000-child array job: 3 children fail (two exit 2, one OOM-killed), 60 succeed
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    children = [array_child_event(parent_id, i, failed=False) for i in range(60)]
    children += [array_child_event(parent_id, 100 + i, failed=True) for i in range(2)]
    oom_reason = "OutOfMemoryError: Container killed due to memory usage"
    oom = array_child_event(parent_id, 500, failed=True, exit_code=137, reason=oom_reason)
    children.append(oom)

    # When the children arrive in batches of 100, then the parent's final FAILED event
    for start in range(0, len(children), 100):
        assert enricher.process(messages(children[start : start + 100])).failures == {}
    result = enricher.process(messages([parent_event(1000, 3)]))

    # Then exactly one alert went out: the parent's, saying 3/1000 failed and why
    assert result.failures == {}
    alerts = published(session, created)
    assert [a["jobId"] for a in alerts] == [parent_id]
    failure = alerts[0]["failure"]
    assert failure["summary"].startswith("3/1000 children failed")
    assert failure["category"] == "APPLICATION_ERROR"  # two of the three
    assert "APPLICATION_ERROR 2" in failure["summary"]
    assert "OUT_OF_MEMORY 1" in failure["summary"]
    assert f"{parent_id}:10" in failure["detail"]  # one failed child named as an example


def test_the_roll_up_counts_children_from_the_index_and_reads_one_record(stack: Stack) -> None:
    # Given an array job whose 150 children all failed, in the history
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    children = [array_child_event(parent_id, i, failed=True) for i in range(150)]
    for start in range(0, len(children), 100):
        assert enricher.process(messages(children[start : start + 100])).failures == {}

    # When an enricher whose DynamoDB calls are counted processes the parent's FAILED event
    calls: Counter[str] = Counter()
    dynamodb = session.client("dynamodb")
    dynamodb.meta.events.register(
        "before-call.dynamodb", lambda event_name, **_: calls.update([event_name.split(".")[-1]])
    )
    counting = Enricher(
        created.settings(),
        batch=session.client("batch"),
        dynamodb=dynamodb,
        sns=session.client("sns"),
    )
    assert counting.process(messages([parent_event(150, 150)])).failures == {}

    # Then the alert counts every child and names the first as its example, with its cause
    failure = published(session, created)[0]["failure"]
    assert failure["summary"].startswith("150/150 children failed: APPLICATION_ERROR 150")
    assert failure["detail"].endswith(
        f"Example, child 0 ({parent_id}:0): Exited with code 2 on attempt 1/1"
    )
    assert "(example: child 0, logs: https://" in failure["nextStep"]
    # And the children were counted from byParent's entries: one record read, the example's
    assert calls["Query"] == 1
    assert calls["GetItem"] == 1
    assert "BatchGetItem" not in calls


def test_the_example_is_the_first_child_by_index_of_the_most_common_category(
    stack: Stack,
) -> None:
    # Given an array job whose child 0 ran out of memory and children 1000 and 200 exited 2
    # (stored in that order): application errors are the most common failure
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    oom_reason = "OutOfMemoryError: Container killed due to memory usage"
    children = [
        array_child_event(parent_id, 0, failed=True, exit_code=137, reason=oom_reason),
        array_child_event(parent_id, 1000, failed=True),
        array_child_event(parent_id, 200, failed=True),
    ]
    assert enricher.process(messages(children)).failures == {}

    # When the parent's FAILED event is processed
    assert enricher.process(messages([parent_event(1001, 3)])).failures == {}

    # Then its alert names child 200, the lowest index among the application errors
    (alert,) = published(session, created)
    assert alert["failure"]["summary"] == (
        "3/1001 children failed: APPLICATION_ERROR 2, OUT_OF_MEMORY 1"
    )
    assert f"Example, child 200 ({parent_id}:200): Exited with code 2" in alert["failure"]["detail"]


def test_the_example_node_is_the_first_failed_node_by_index(stack: Stack) -> None:
    # Given a multi-node job whose nodes 10 and 2 failed the same way (stored in that order)
    enricher, created, session = stack
    node = json.loads((EVENTS / "multinode-node-failed.json").read_text())
    parent_id = node["detail"]["jobId"].split("#")[0]

    def failed_node(index: int) -> dict[str, Any]:
        event: dict[str, Any] = copy.deepcopy(node)
        event["id"] = str(uuid.uuid4())
        event["detail"]["jobId"] = f"{parent_id}#{index}"
        event["detail"]["jobArn"] = node["detail"]["jobArn"].replace("#2", f"#{index}")
        event["detail"]["nodeDetails"]["nodeIndex"] = index
        return event

    assert enricher.process(messages([failed_node(10), failed_node(2)])).failures == {}

    # When the multi-node parent's FAILED event is processed
    parent = json.loads((EVENTS / "multinode-failed.json").read_text())
    assert enricher.process(messages([parent])).failures == {}

    # Then its one alert counts both nodes and names node 2 as the example
    (alert,) = published(session, created)
    assert alert["failure"]["summary"] == "2 nodes failed: APPLICATION_ERROR 2"
    assert f"Example, job {parent_id}#2 ({parent_id}#2): " in alert["failure"]["detail"]


def test_a_parent_whose_children_cannot_be_read_alerts_with_its_own_counts(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    # Given failed children in the history, and an enricher whose byParent Query fails
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    children = [array_child_event(parent_id, i, failed=True) for i in range(3)]
    assert enricher.process(messages(children)).failures == {}
    dynamodb = session.client("dynamodb")

    def unavailable(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "index unavailable"}}, "Query"
        )

    dynamodb.meta.events.register("before-call.dynamodb.Query", unavailable)
    blind = Enricher(
        created.settings(),
        batch=session.client("batch"),
        dynamodb=dynamodb,
        sns=session.client("sns"),
    )

    # When the parent's FAILED event is processed
    result = blind.process(messages([parent_event(3, 3)]))

    # Then the parent is stored and alerts all the same, summed up from its own counts
    assert result.failures == {}
    (alert,) = published(session, created)
    assert alert["jobId"] == parent_id
    assert alert["failure"]["summary"] == (
        "3/3 children failed (their records are not in the history yet)"
    )
    # And the log says why its children are not named
    assert any(r.getMessage() == "Children lookup failed" for r in caplog.records)


def test_parent_in_the_same_batch_as_its_children_reads_them_back(stack: Stack) -> None:
    # Given the parent's FAILED event arrives in the same batch as its failed children
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    batch = [parent_event(4, 2)] + [array_child_event(parent_id, i, failed=True) for i in range(2)]

    # When the batch is processed
    result = enricher.process(messages(batch))

    # Then the parent alone alerts, and its summary counts the children stored just before it
    assert result.failures == {}
    alerts = published(session, created)
    assert len(alerts) == 1
    assert alerts[0]["failure"]["summary"].startswith("2/4 children failed: APPLICATION_ERROR 2")


def test_a_parent_in_the_same_batch_as_its_children_counts_them_while_the_index_lags(
    stack: Stack,
) -> None:
    # Given child 1 failed in an earlier batch, and one batch with the parent's FAILED event, its
    # failed children 0 (out of memory), 1 (redelivered) and 2, and child 3's RUNNING event
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    oom_reason = "OutOfMemoryError: Container killed due to memory usage"
    earlier = array_child_event(parent_id, 1, failed=True)
    assert enricher.process(messages([earlier])).failures == {}
    running = array_child_event(parent_id, 3, failed=False)
    running["detail"]["status"] = "RUNNING"
    batch = [
        parent_event(4, 3),
        array_child_event(parent_id, 0, failed=True, exit_code=137, reason=oom_reason),
        earlier,
        array_child_event(parent_id, 2, failed=True),
        running,
    ]
    # And a byParent index that has not caught up with this batch's writes yet (a GSI is
    # updated asynchronously and cannot be read consistently; moto's is up to date at once)
    dynamodb = session.client("dynamodb")
    behind = {f"JOB#{parent_id}:{i}" for i in (0, 2, 3)}

    def lagging(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            parsed["Items"] = [i for i in parsed.get("Items", []) if i["pk"]["S"] not in behind]

    dynamodb.meta.events.register("after-call.dynamodb.Query", lagging)
    lagging_enricher = Enricher(
        created.settings(),
        batch=session.client("batch"),
        dynamodb=dynamodb,
        sns=session.client("sns"),
    )

    # When the batch is processed
    assert lagging_enricher.process(messages(batch)).failures == {}

    # Then the parent's one alert counts every failed child once, in the batch or in the index
    (alert,) = published(session, created)
    assert alert["jobId"] == parent_id
    assert alert["failure"]["summary"] == (
        "3/4 children failed: APPLICATION_ERROR 2, OUT_OF_MEMORY 1"
    )
    # And names child 1, the first application error by index, as its example
    assert f"Example, child 1 ({parent_id}:1): Exited with code 2" in alert["failure"]["detail"]


def test_a_succeeded_array_parent_is_not_rolled_up_into_a_failure(stack: Stack) -> None:
    # Given a 4-child array job whose children all succeeded, in the history
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    children = [array_child_event(parent_id, i, failed=False) for i in range(4)]
    assert enricher.process(messages(children)).failures == {}

    # When the parent's final SUCCEEDED event arrives
    succeeded = parent_event(4, 0)
    succeeded["detail"]["status"] = "SUCCEEDED"
    succeeded["detail"]["statusReason"] = "Array Child Job succeeded"
    assert enricher.process(messages([succeeded])).failures == {}

    # Then it is stored as a success, with no failure made up from its children, and no alert
    stored = enricher.history.get_latest(parent_id)
    assert stored is not None
    assert (stored.record["status"], stored.record["failure"]) == ("SUCCEEDED", None)
    assert published(session, created) == []


def test_failed_children_alone_never_alert(stack: Stack) -> None:
    enricher, created, session = stack
    parent_id = PARENT["detail"]["jobId"]
    result = enricher.process(
        messages([array_child_event(parent_id, i, failed=True) for i in range(5)])
    )
    assert result.failures == {}
    assert published(session, created) == []


def test_dependency_failure_names_the_dependency_and_its_category(stack: Stack) -> None:
    # Given the OOM job failed and is in the history, and a job depending on it failed too
    enricher, created, session = stack
    oom = json.loads((EVENTS / "job-failed-oom.json").read_text())
    dependent = json.loads((EVENTS / "job-failed-dependency.json").read_text())
    enricher.process(messages([oom]))
    published(session, created)

    # When the dependent job's event is processed
    result = enricher.process(messages([dependent]))

    # Then its failure names the dependency and that dependency's own category, and (by default)
    # it does not alert on its own
    record = result.processed[0].record
    assert record is not None
    assert record.failure is not None
    assert record.failure.category.value == "DEPENDENCY_FAILED"
    text = record.failure.summary + " " + record.failure.next_step
    assert oom["detail"]["jobId"] in text
    assert "OUT_OF_MEMORY" in text
    assert published(session, created) == []


def dependent_on(*job_ids: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / "job-failed-dependency.json").read_text())
    event["detail"]["dependsOn"] = [{"jobId": j, "type": "SEQUENTIAL"} for j in job_ids]
    return event


def test_a_dependency_stored_with_a_category_this_version_does_not_know_is_named_without_it(
    stack: Stack,
) -> None:
    # Given the OOM job stored FAILED by a newer batchlens, with a category this one does not know
    enricher, created, session = stack
    oom = json.loads((EVENTS / "job-failed-oom.json").read_text())
    enricher.process(messages([oom]))
    stored = enricher.history.get_latest(oom["detail"]["jobId"])
    assert stored is not None
    record = {**stored.record, "failure": {**stored.record["failure"], "category": "GPU_XID"}}
    session.client("dynamodb").update_item(
        TableName=created.table_name,
        Key={"pk": {"S": f"JOB#{oom['detail']['jobId']}"}, "sk": {"S": "LATEST"}},
        UpdateExpression="SET #r = :r",
        ExpressionAttributeNames={"#r": "record"},
        ExpressionAttributeValues={":r": {"S": json.dumps(record)}},
    )

    # When a job that depended on it is processed
    result = enricher.process(messages([dependent_on(oom["detail"]["jobId"])]))

    # Then it is stored, naming the dependency without a category, rather than failing for good
    assert result.failures == {}
    (processed,) = result.processed
    assert processed.record is not None
    assert processed.record.failure is not None
    assert processed.record.failure.summary == (
        f"Dependency failed: job {oom['detail']['jobId']} failed, so this job never ran"
    )


def test_a_dependency_that_succeeded_is_never_blamed(stack: Stack) -> None:
    # Given a job that depends on one that succeeded (in the history) and on the OOM job, whose
    # FAILED event is not stored yet (it sits later in the same batch)
    enricher = stack[0]
    succeeded = json.loads((EVENTS / "job-succeeded.json").read_text())
    enricher.process(messages([succeeded]))
    succeeded_id = succeeded["detail"]["jobId"]
    oom_id = json.loads((EVENTS / "job-failed-oom.json").read_text())["detail"]["jobId"]

    def failure_of(event: dict[str, Any]) -> str:
        record = enricher.process(messages([event])).processed[0].record
        assert record is not None
        assert record.failure is not None
        assert record.failure.category.value == "DEPENDENCY_FAILED"
        return record.failure.summary + " | " + record.failure.next_step

    # Then the one dependency not known to have succeeded is named
    assert failure_of(dependent_on(succeeded_id, oom_id)) == (
        f"Dependency failed: job {oom_id} failed, so this job never ran"
        f" | Look at dependency job {oom_id}"
    )
    # And with two unknown, both are listed rather than one guessed
    other = str(uuid.uuid4())
    assert failure_of(dependent_on(succeeded_id, oom_id, other)) == (
        "Dependency failed: a job it depends on failed, so this job never ran"
        f" | Look at the dependency jobs ({succeeded_id}, {oom_id}, {other}) to find the one "
        "that failed"
    )
