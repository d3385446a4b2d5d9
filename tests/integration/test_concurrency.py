"""Two invocations processing the same jobs' events at the same moment, over real HTTP.

Two execution environments (two loads of the real handler, each with its own clients and thread
pool) run in two threads against moto's ThreadedMotoServer on 127.0.0.1. moto's backends take no
locks, so the server answers one request at a time (tests/moto_server.py): that is the per-item
atomicity DynamoDB guarantees, and the race between the invocations stays real. Whatever the
interleaving, every job ends in its newest state and alerts once.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import boto3
import pytest

from batchlens.history import HistoryTable
from batchlens.local import FakeLambdaContext, LocalStack, create_stack
from tests.conftest import Json, read_event, sqs_batch, variant
from tests.handler_app import load_handler
from tests.moto_server import locked_moto_server

pytestmark = pytest.mark.integration

JOBS = 12
ROUNDS = 3


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[boto3.Session, LocalStack]]:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with locked_moto_server() as endpoint_url:
        session = boto3.Session(region_name="us-east-1")
        stack = create_stack(session, endpoint_url=endpoint_url)
        for name, value in stack.environment.items():
            monkeypatch.setenv(name, value)
        yield session, stack


def lifecycle(job_id: str) -> list[Json]:
    """RUNNABLE, RUNNING and FAILED of one job (the OOM sample's last attempt)."""
    failed = read_event("job-failed-oom")
    detail = failed["detail"]
    detail["jobId"] = job_id
    detail["jobArn"] = detail["jobArn"].rsplit("/", 1)[0] + f"/{job_id}"
    last = detail["attempts"][-1]
    runnable = variant(
        failed,
        envelope={"time": "2025-03-14T09:58:00Z"},
        status="RUNNABLE",
        attempts=detail["attempts"][:-1],
        drop=["stoppedAt", "statusReason", "startedAt"],
    )
    running = variant(
        failed,
        envelope={"time": "2025-03-14T09:59:00Z"},
        status="RUNNING",
        attempts=detail["attempts"][:-1],
        startedAt=last["startedAt"],
        drop=["stoppedAt", "statusReason"],
    )
    return [runnable, running, variant(failed)]


def invoke_together(apps: list[ModuleType], batches: list[list[Json]]) -> list[set[str]]:
    """Invoke each app with its batch at the same moment; the bodies each one failed."""
    start = threading.Barrier(len(apps))
    failed: list[set[str]] = [set() for _ in apps]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        event = sqs_batch(batches[index])
        bodies = {r["messageId"]: r["body"] for r in event["Records"]}
        context = FakeLambdaContext(aws_request_id=str(uuid.uuid4()))
        start.wait()
        try:
            response = apps[index].handler(event, context)
        except BaseException as exc:
            errors.append(exc)
            return
        failed[index] = {bodies[f["itemIdentifier"]] for f in response["batchItemFailures"]}

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(apps))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return failed


def drain(session: boto3.Session, stack: LocalStack) -> list[Json]:
    sqs = session.client("sqs", endpoint_url=stack.endpoint_url)
    records: list[Json] = []
    while batch := sqs.receive_message(
        QueueUrl=stack.alert_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300
    ).get("Messages", []):
        records += [json.loads(json.loads(m["Body"])["Message"]) for m in batch]
    return records


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_two_invocations_of_the_same_jobs_end_in_the_newest_state_with_one_alert(
    server: tuple[boto3.Session, LocalStack], round_number: int
) -> None:
    session, stack = server
    rng = random.Random(round_number)
    # Given the RUNNABLE, RUNNING and FAILED events of 12 jobs, each invocation receiving all of
    # them (SQS delivers at least once) in its own shuffled order
    jobs = {str(uuid.uuid4()): lifecycle(str(uuid.uuid4())) for _ in range(JOBS)}
    jobs = {events[0]["detail"]["jobId"]: events for events in jobs.values()}
    everything = [event for events in jobs.values() for event in events]
    batches = [rng.sample(everything, len(everything)) for _ in range(2)]
    apps = [load_handler(), load_handler()]

    # When both invocations run at the same moment, over real HTTP
    failed = invoke_together(apps, batches)
    # And SQS redelivers what either left unacknowledged (an alert the other was publishing)
    retried: list[str] = sorted(failed[0] | failed[1])
    for body in retried:
        response = apps[0].handler(sqs_batch([body]), FakeLambdaContext())
        assert response == {"batchItemFailures": []}

    # Then each job's latest state is its FAILED event
    history = HistoryTable(
        session.client("dynamodb", endpoint_url=stack.endpoint_url), stack.table_name, 90
    )
    for job_id, events in jobs.items():
        stored = history.get_latest(job_id)
        assert stored is not None
        assert stored.record["status"] == "FAILED"
        assert stored.record["eventId"] == events[-1]["id"]
        assert [t["status"] for t in history.timeline(job_id)] == ["RUNNABLE", "RUNNING", "FAILED"]
    # And each job alerted exactly once
    alerts: Counter[Any] = Counter(record["jobId"] for record in drain(session, stack))
    assert alerts == Counter(dict.fromkeys(jobs, 1))
    for app in apps:
        app.__dict__["_enricher"] = None
