"""`batchlens backfill` against moto's server over real HTTP (Batch without Docker).

Given jobs that moto's Batch ran (some succeeded, some failed), when `backfill` runs, then every
job lands in the history through the enricher's normaliser and conditional store, a second run
changes nothing, a newer state already in the history is never overwritten, a job that vanishes
between ListJobs and DescribeJobs is stored from its summary, and every Batch call is paced.
"""

from __future__ import annotations

import io
import json
import re
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ClientError

from batchlens import backfill, cli, local
from batchlens.events import JOB_STATUSES, parse_event
from batchlens.history import HistoryTable
from batchlens.records import JobRecord, normalise
from tests.chaos.faults import http_response
from tests.conftest import array_child_event
from tests.moto_server import cli_endpoint, hook_cli_sessions

pytestmark = pytest.mark.integration

ETL_OK, ETL_FAILED, ML_OK = 12, 4, 3
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server on loopback, its Batch running jobs without Docker."""
    with cli_endpoint() as url:
        configure_batch(url, use_docker=False)
        try:
            yield url
        finally:
            configure_batch(url, use_docker=True)  # moto's default, for the tests that follow


def configure_batch(url: str, *, use_docker: bool) -> None:
    request = urllib.request.Request(
        f"{url}/moto-api/config",
        data=json.dumps({"batch": {"use_docker": use_docker}}).encode(),
        method="POST",
    )
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)


@pytest.fixture(scope="module")
def session(endpoint: str) -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


@pytest.fixture(scope="module")
def jobs(session: boto3.Session, endpoint: str) -> dict[str, list[str]]:
    """Job ids by queue: `etl` (some succeeded, some failed), `ml` (succeeded), `arrays`."""
    role = session.client("iam", endpoint_url=endpoint).create_role(
        RoleName="batch-service", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    batch = session.client("batch", endpoint_url=endpoint)
    environment = batch.create_compute_environment(
        computeEnvironmentName="local-ce", type="UNMANAGED", state="ENABLED", serviceRole=role
    )["computeEnvironmentArn"]
    for queue in ("etl", "ml", "arrays"):
        batch.create_job_queue(
            jobQueueName=queue,
            state="ENABLED",
            priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
        )
    batch.register_job_definition(
        jobDefinitionName="etl-nightly",
        type="container",
        containerProperties={"image": "busybox", "vcpus": 1, "memory": 128, "command": ["true"]},
    )

    def submit(queue: str, name: str, **extra: Any) -> str:
        return batch.submit_job(jobName=name, jobQueue=queue, jobDefinition="etl-nightly", **extra)[
            "jobId"
        ]

    ids: dict[str, list[str]] = {"etl": [], "ml": [], "arrays": []}
    ids["etl"] += [submit("etl", f"orders-{n:02d}") for n in range(ETL_OK)]
    ids["ml"] += [submit("ml", f"train-{n}") for n in range(ML_OK)]
    ids["arrays"].append(submit("arrays", "render", arrayProperties={"size": 3}))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # moto fails these jobs at once
        ids["etl"] += [submit("etl", f"orders-bad-{n}") for n in range(ETL_FAILED)]
    return ids


def new_table(session: boto3.Session, endpoint: str) -> HistoryTable:
    stack = local.create_stack(session, endpoint_url=endpoint)
    return HistoryTable(session.client("dynamodb", endpoint_url=endpoint), stack.table_name, 90)


class Calls:
    def __init__(self) -> None:
        self.made: Counter[str] = Counter()

    def __call__(self, event_name: str, **kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        self.made[f"{service}.{operation}"] += 1

    def of(self, service: str) -> int:
        return sum(n for op, n in self.made.items() if op.startswith(f"{service}."))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Every AWS call of the sessions the CLI builds (a botocore event hook)."""
    counter = Calls()
    hook_cli_sessions(monkeypatch, "before-parameter-build", counter)
    return counter


def run_backfill(endpoint: str, table: str, *argv: str) -> tuple[int, dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(
        [
            "backfill",
            "--table",
            table,
            "--endpoint-url",
            endpoint,
            "--rate",
            "40",
            "-o",
            "json",
            *argv,
        ],
        stdout=out,
        stderr=err,
    )
    summary = json.loads(out.getvalue()) if out.getvalue() else {}
    return code, summary, err.getvalue()


def snapshot(history: HistoryTable, job_ids: list[str]) -> dict[str, Any]:
    """Each job's latest item and timeline, read by key (no Scan)."""
    state: dict[str, Any] = {}
    for job_id in job_ids:
        stored = history.get_latest(job_id)
        state[job_id] = (
            None if stored is None else (stored.version, stored.record, history.timeline(job_id))
        )
    return state


def test_backfill_stores_every_job_and_a_second_run_changes_nothing(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]], calls: Calls
) -> None:
    history = new_table(session, endpoint)
    every = jobs["etl"] + jobs["ml"]

    code, first, progress = run_backfill(endpoint, history.table_name, "--queue", "etl", "ml")
    stored = snapshot(history, every)
    writes_before = calls.made["dynamodb.UpdateItem"] + calls.made["dynamodb.BatchWriteItem"]
    code_again, second, _ = run_backfill(endpoint, history.table_name, "--queue", "etl", "ml")
    writes_after = calls.made["dynamodb.UpdateItem"] + calls.made["dynamodb.BatchWriteItem"]

    total = ETL_OK + ETL_FAILED + ML_OK
    assert (code, code_again) == (0, 0)
    assert first == {
        "queues": 2,
        "listed": total,
        "outsideRange": 0,
        "described": total,
        "vanished": 0,
        "written": total,
        "unchanged": 0,
        "newerInTable": 0,
        "failed": 0,
    }
    assert second == {**first, "written": 0, "unchanged": total}
    assert writes_after == writes_before  # the second run wrote nothing at all
    assert snapshot(history, every) == stored
    assert f"backfill: etl: {ETL_OK + ETL_FAILED} jobs listed, {ETL_OK + ETL_FAILED} written" in (
        progress
    )

    records = {job_id: value[1] for job_id, value in stored.items()}
    statuses = Counter(record["status"] for record in records.values())
    assert statuses == Counter({"SUCCEEDED": ETL_OK + ML_OK, "FAILED": ETL_FAILED})
    assert {record["enrichment"] for record in records.values()} == {"DESCRIBED"}
    failed = [r for r in records.values() if r["status"] == "FAILED"]
    assert all(r["failure"] and r["jobQueue"]["name"] == "etl" for r in failed)
    assert all(r["eventId"].startswith("backfill-") for r in records.values())
    assert all(len(value[2]) == 1 for value in stored.values())  # one transition each


def test_backfilled_jobs_answer_queries(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    history = new_table(session, endpoint)
    run_backfill(endpoint, history.table_name, "--queue", "etl")
    out, err = io.StringIO(), io.StringIO()

    code = cli.main(
        [
            *("jobs", "--table", history.table_name, "--endpoint-url", endpoint),
            *("--queue", "etl", "--status", "FAILED", "--since", "1h", "-o", "json"),
        ],
        stdout=out,
        stderr=err,
    )

    assert code == 0
    assert sorted(json.loads(line)["jobName"] for line in out.getvalue().splitlines()) == [
        f"orders-bad-{n}" for n in range(ETL_FAILED)
    ]


def test_a_newer_state_in_the_history_is_left_alone(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    history = new_table(session, endpoint)
    run_backfill(endpoint, history.table_name, "--queue", "ml")
    job_id = jobs["ml"][0]
    stored = history.get_latest(job_id)
    assert stored is not None
    # The enricher stores a later event of the same job (a redelivered SUCCEEDED, a minute on).
    later = JobRecord.model_validate(stored.record)
    later = later.model_copy(update={"event_time": later.event_time + timedelta(minutes=1)})
    history.put_latest(later)

    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "ml")

    assert code == 0
    assert (summary["written"], summary["unchanged"], summary["newerInTable"]) == (0, ML_OK - 1, 1)
    kept = history.get_latest(job_id)
    assert kept is not None
    assert kept.record["eventTime"] == later.to_json_dict()["eventTime"]


def test_jobs_that_vanish_before_describe_are_stored_from_their_summary(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = new_table(session, endpoint)
    vanished = set(jobs["etl"][:2]) | {jobs["etl"][-1]}  # two succeeded jobs and a failed one

    def forget(parsed: dict[str, Any], **_: Any) -> None:
        # Batch forgot them between ListJobs and DescribeJobs (it keeps jobs about 7 days).
        parsed["jobs"] = [job for job in parsed.get("jobs", []) if job["jobId"] not in vanished]

    hook_cli_sessions(monkeypatch, "after-call.batch.DescribeJobs", forget)

    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "etl")

    assert code == 0
    assert summary["vanished"] == 3
    assert summary["written"] == ETL_OK + ETL_FAILED
    for job_id in vanished:
        stored = history.get_latest(job_id)
        assert stored is not None
        assert stored.record["enrichment"] == "NOT_FOUND"
        assert stored.record["jobQueue"]["name"] == "etl"
        assert stored.record["status"] in ("SUCCEEDED", "FAILED")
    bad = history.get_latest(jobs["etl"][-1])
    assert bad is not None
    assert bad.record["status"] == "FAILED"
    assert bad.record["failure"] is not None


def test_children_of_array_jobs_on_request(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = new_table(session, endpoint)
    (parent,) = jobs["arrays"]
    scopes: list[str] = []

    def scope(params: dict[str, Any], **_: Any) -> None:
        scopes.append("arrayJobId" if "arrayJobId" in params else "jobQueue")

    hook_cli_sessions(monkeypatch, "before-parameter-build.batch.ListJobs", scope)

    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "arrays", "--children")

    assert code == 0
    # moto lists an array's children with its queue too; each job is stored once either way.
    assert (summary["listed"], summary["written"]) == (4, 4)
    assert Counter(scopes) == Counter(
        {"jobQueue": len(JOB_STATUSES), "arrayJobId": len(JOB_STATUSES)}
    )
    # (moto's descriptions of children leave out arrayProperties.index, so their kind is not
    # checked here; the normaliser's array handling has its own tests.)
    children = [history.get_latest(f"{parent}:{index}") for index in range(3)]
    assert [c.record["enrichment"] if c else None for c in children] == ["DESCRIBED"] * 3
    stored_parent = history.get_latest(parent)
    assert stored_parent is not None
    assert stored_parent.record["jobKind"] == "ARRAY_PARENT"


def test_each_queues_progress_counts_its_own_jobs(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    # Given two queues, etl and then ml, with their own jobs
    history = new_table(session, endpoint)

    # When both are backfilled
    code, _, progress = run_backfill(endpoint, history.table_name, "--queue", "etl", "ml")

    # Then ml's progress counts ml's jobs, not etl's as well
    assert code == 0
    assert f"etl: {len(jobs['etl'])} jobs listed so far" in progress
    assert f"ml: {len(jobs['ml'])} jobs listed so far" in progress


def test_every_batch_call_takes_a_token(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    calls: Calls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    history = new_table(session, endpoint)
    tokens: list[float] = []
    real_acquire = backfill.TokenBucket.acquire

    def counted(self: backfill.TokenBucket) -> None:
        tokens.append(self.rate)
        real_acquire(self)

    monkeypatch.setattr(backfill.TokenBucket, "acquire", counted)

    code, _, _ = run_backfill(endpoint, history.table_name, "--queue", "etl", "ml")

    assert code == 0
    # DescribeJobQueues, ListJobs per status per queue, DescribeJobs per 100 jobs: all paced.
    assert calls.made["batch.ListJobs"] == 2 * len(JOB_STATUSES)
    assert calls.made["batch.DescribeJobs"] == 2
    assert len(tokens) == calls.of("batch") == 1 + 14 + 2
    assert set(tokens) == {40.0}


def test_since_leaves_older_jobs_out(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    history = new_table(session, endpoint)

    code, summary, _ = run_backfill(
        endpoint, history.table_name, "--queue", "ml", "--since", "2999-01-01T00:00:00Z"
    )

    assert code == 0
    assert (summary["listed"], summary["outsideRange"], summary["written"]) == (ML_OK, ML_OK, 0)


def test_since_keeps_a_job_whose_last_activity_is_exactly_then(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    # Given the ml queue's jobs as Batch describes them, and the newest moment one of them moved
    described = session.client("batch", endpoint_url=endpoint).describe_jobs(jobs=jobs["ml"])
    moved = {
        job["jobId"]: max(job.get("stoppedAt", 0), job.get("startedAt", 0), job.get("createdAt", 0))
        for job in described["jobs"]
    }
    newest = max(moved.values())
    since = datetime.fromtimestamp(newest / 1000, tz=UTC).isoformat(timespec="milliseconds")
    history = new_table(session, endpoint)

    # When backfilled --since that very millisecond
    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "ml", "--since", since)

    # Then the bound is inclusive: the jobs that moved then are stored, only older ones left out
    at_since = [job_id for job_id, moment in moved.items() if moment == newest]
    assert code == 0
    assert (summary["written"], summary["outsideRange"]) == (len(at_since), ML_OK - len(at_since))
    assert all(history.get_latest(job_id) is not None for job_id in at_since)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--queue", "no-such-queue"), "batchlens: no job queue named 'no-such-queue'\n"),
        (("--since", "last tuesday"), "batchlens: bad time 'last tuesday': "),
        (("--since", ""), "batchlens: bad time '': "),
        (("--queue", "ml"), "batchlens: history table 't' not found (region us-east-1 at http"),
        # Nothing to write (every job is older than --since), and still the table is checked
        (
            ("--queue", "ml", "--since", "2999-01-01"),
            "batchlens: history table 't' not found (region us-east-1 at http",
        ),
    ],
)
def test_mistakes_are_one_line_and_exit_1(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    argv: tuple[str, ...],
    message: str,
) -> None:
    out, err = io.StringIO(), io.StringIO()
    # The table exists unless the mistake is its name (`t`, which none has)
    table = "t" if "history table 't'" in message else new_table(session, endpoint).table_name

    code = cli.main(
        ["backfill", "--table", table, "--endpoint-url", endpoint, *argv], stdout=out, stderr=err
    )

    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue().startswith(message)
    assert err.getvalue().count("\n") == 1


@pytest.mark.parametrize(
    ("option", "value"),
    [
        # A rate outside one bucket of the Batch API.
        *(("--rate", rate) for rate in ["0", "40.5", "100", "nan", "ten"]),
        # A retention outside the stack's range: 0 days would write jobs whose TTL has already
        # passed, which no query shows, and a huge number overflowed the TTL's date.
        *(("--retention-days", days) for days in ["0", "-30", "3651", "3000000", "ninety"]),
    ],
)
def test_an_option_outside_its_range_is_a_usage_error(
    option: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given no AWS at all: like every argument argparse checks, it prints the usage and exits 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["backfill", "--table", "t", option, value])

    assert exited.value.code == cli.EXIT_USAGE
    assert f"argument {option}: " in capsys.readouterr().err


def test_verbose_reports_the_calls_of_a_backfill(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    history = new_table(session, endpoint)

    code, summary, err = run_backfill(endpoint, history.table_name, "--queue", "ml", "-v")

    assert code == 0
    assert summary["written"] == ML_OK
    (report,) = [line for line in err.splitlines() if line.startswith("batchlens: ")]
    assert re.fullmatch(r"batchlens: .*\d+ BatchGetItem.*\d+ DescribeJobs.* in [0-9.]+ s", report)
    assert " ListJobs" in report


def failed_child(parent_id: str, index: int, *, oom: bool = False) -> JobRecord:
    """A failed child of `parent_id` as the enricher stores it (from the sample child event)."""
    reason = "OutOfMemoryError: Container killed due to memory usage" if oom else None
    event = array_child_event(
        parent_id, index, failed=True, exit_code=137 if oom else 2, reason=reason
    )
    return normalise(parse_event(event))


def failed_array(session: boto3.Session, endpoint: str, queue: str, monkeypatch: Any) -> str:
    """An array job of 3 children that failed in Batch, in a queue of its own; its id."""
    batch = session.client("batch", endpoint_url=endpoint)
    (environment,) = batch.describe_compute_environments(computeEnvironments=["local-ce"])[
        "computeEnvironments"
    ]
    batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[
            {"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}
        ],
    )
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    parent: str = batch.submit_job(
        jobName="render", jobQueue=queue, jobDefinition="etl-nightly", arrayProperties={"size": 3}
    )["jobId"]
    for _ in range(100):
        if batch.describe_jobs(jobs=[parent])["jobs"][0]["status"] == "FAILED":
            break
        time.sleep(0.1)

    # (AWS lists an array's children only when asked by arrayJobId; moto lists them with their
    # queue too, and its descriptions of them carry no array index nor reason)
    def parents_only(parsed: dict[str, Any], **_: Any) -> None:
        parsed["jobSummaryList"] = [j for j in parsed["jobSummaryList"] if ":" not in j["jobId"]]

    hook_cli_sessions(monkeypatch, "after-call.batch.ListJobs", parents_only)
    return parent


def stored_failure(history: HistoryTable, job_id: str) -> dict[str, Any]:
    """The `failure` of the job's record in the history (which must hold the job)."""
    stored = history.get_latest(job_id)
    assert stored is not None, f"{job_id} is not in the history"
    failure: dict[str, Any] = stored.record["failure"]
    return failure


def test_a_failed_array_parent_is_rolled_up_from_its_children_in_the_history(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an array job of 3 children that failed in Batch, in a queue of its own
    parent = failed_array(session, endpoint, "failed-arrays", monkeypatch)
    # And its children's failures in the history, as the enricher stored them: two OOM kills
    history = new_table(session, endpoint)
    for index, oom in ((0, False), (1, True), (2, True)):
        history.put_latest(failed_child(parent, index, oom=oom))

    # When the backfill stores the parent
    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "failed-arrays")

    # Then its failure counts the children by category and names the first OOM-killed one
    assert code == 0
    assert summary["written"] >= 1
    failure = stored_failure(history, parent)
    assert failure["summary"] == "3/3 children failed: OUT_OF_MEMORY 2, APPLICATION_ERROR 1"
    assert failure["category"] == "OUT_OF_MEMORY"
    assert f"Example, child 1 ({parent}:1): " in failure["detail"]
    # And a second run leaves it as it is
    assert run_backfill(endpoint, history.table_name, "--queue", "failed-arrays")[1]["written"] == 0


def test_a_parent_stored_before_its_children_is_rolled_up_again_when_they_arrive(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a failed array job backfilled before any of its children was in the history
    parent = failed_array(session, endpoint, "failed-arrays-late", monkeypatch)
    history = new_table(session, endpoint)
    run_backfill(endpoint, history.table_name, "--queue", "failed-arrays-late")
    assert "not in the history yet" in stored_failure(history, parent)["summary"]

    # When its children reach the history (a run with --children, the enricher), and the
    # backfill runs again
    for index in range(3):
        history.put_latest(failed_child(parent, index, oom=True))
    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "failed-arrays-late")

    # Then the parent's failure, same state, now names its children; and a third run writes nothing
    assert code == 0
    assert summary["written"] == 1
    failure = stored_failure(history, parent)
    assert failure["summary"] == "3/3 children failed: OUT_OF_MEMORY 3"
    again = run_backfill(endpoint, history.table_name, "--queue", "failed-arrays-late")[1]
    assert (again["written"], again["unchanged"]) == (0, 1)


def test_a_parent_whose_children_cannot_be_read_never_replaces_its_rolled_up_record(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a failed array parent stored with its children's failures rolled up
    parent = failed_array(session, endpoint, "failed-arrays-kept", monkeypatch)
    history = new_table(session, endpoint)
    for index in range(3):
        history.put_latest(failed_child(parent, index, oom=True))
    run_backfill(endpoint, history.table_name, "--queue", "failed-arrays-kept")
    rolled_up = stored_failure(history, parent)

    # When a later run cannot read the children (the byParent index fails)
    def unavailable(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "index unavailable"}}, "Query"
        )

    hook_cli_sessions(monkeypatch, "before-call.dynamodb.Query", unavailable)
    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "failed-arrays-kept")

    # Then the record that names the children stays
    assert code == 0
    assert summary["written"] == 0
    assert stored_failure(history, parent) == rolled_up


def test_a_failed_array_parent_whose_children_cannot_be_read_is_rolled_up_from_its_counts(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a failed array job, and a history whose byParent index cannot be queried
    parent = failed_array(session, endpoint, "failed-arrays-unread", monkeypatch)
    history = new_table(session, endpoint)

    def unavailable(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "InternalServerError", "Message": "index unavailable"}}, "Query"
        )

    hook_cli_sessions(monkeypatch, "before-call.dynamodb.Query", unavailable)

    # When the backfill stores the parent
    code, summary, progress = run_backfill(
        endpoint, history.table_name, "--queue", "failed-arrays-unread"
    )

    # Then it is stored all the same, summed up from its own counts as the enricher would,
    # and the progress says why its children are not named
    assert code == 0
    assert summary["written"] >= 1
    assert stored_failure(history, parent)["summary"] == (
        "3/3 children failed (their records are not in the history yet)"
    )
    assert f"{parent}: its children could not be read" in progress


def test_the_state_the_enricher_stored_is_left_alone(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    # Given a job whose SUCCEEDED event the enricher stored. EventBridge's `time` has whole seconds
    # (AWS's example: "23:36:40Z" for a createdAt of 1641944200058), before the job's own stoppedAt.
    history = new_table(session, endpoint)
    details = session.client("batch", endpoint_url=endpoint).describe_jobs(jobs=jobs["ml"])["jobs"]
    detail = next(d for d in details if d["stoppedAt"] % 1000)
    event = backfill.synthesize_event(detail, service=False, region="us-east-1", account="1" * 12)
    event["time"] = f"{datetime.fromtimestamp(detail['stoppedAt'] // 1000, tz=UTC):%FT%TZ}"
    event["id"] = "c8f9c4b5-76e5-d76a-f980-7011e206042b"
    record = normalise(parse_event(event))
    history.put_latest(record)
    history.put_transitions([record])
    before = snapshot(history, [detail["jobId"]])

    # When the backfill runs
    code, summary, _ = run_backfill(endpoint, history.table_name, "--queue", "ml")

    # Then that job counts as unchanged: neither its latest item nor its timeline is written again
    assert code == 0
    assert (summary["written"], summary["unchanged"]) == (ML_OK - 1, 1)
    assert snapshot(history, [detail["jobId"]]) == before


def test_a_job_whose_timeline_item_was_not_written_is_written_whole_by_the_next_run(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]], monkeypatch: Any
) -> None:
    # Given DynamoDB leaving every timeline item unprocessed, on every retry of the first run
    def unprocessed(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        assert isinstance(request.body, bytes)
        (table, items), *_ = json.loads(request.body)["RequestItems"].items()
        body = json.dumps({"UnprocessedItems": {table: items}}).encode()
        return http_response(request, 200, body, {"Content-Type": "application/x-amz-json-1.0"})

    history = new_table(session, endpoint)
    with monkeypatch.context() as throttled:
        hook_cli_sessions(throttled, "before-send.dynamodb.BatchWriteItem", unprocessed)
        code, first, _ = run_backfill(endpoint, history.table_name, "--queue", "ml")

    # Then each job counts once, as failed, and none is stored without its timeline
    assert code == 1
    assert (first["written"], first["failed"]) == (0, ML_OK)
    assert all(history.get_latest(job_id) is None for job_id in jobs["ml"])

    # And the next run writes every job and its timeline item
    code, second, _ = run_backfill(endpoint, history.table_name, "--queue", "ml")
    assert (code, second["written"], second["failed"]) == (0, ML_OK, 0)
    assert [len(history.timeline(job_id)) for job_id in jobs["ml"]] == [1] * ML_OK


def test_a_job_that_could_not_be_described_is_written_by_the_next_run(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]], monkeypatch: Any
) -> None:
    # Given DescribeJobs refused on the first run (a role without batch:DescribeJobs, say)
    def refused(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        body = json.dumps({"__type": "AccessDeniedException", "message": "not allowed"}).encode()
        headers = {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}
        return http_response(request, 403, body, headers)

    history = new_table(session, endpoint)
    with monkeypatch.context() as denied:
        hook_cli_sessions(denied, "before-send.batch.DescribeJobs", refused)
        code, first, err = run_backfill(endpoint, history.table_name, "--queue", "ml")

    # Then each job counts as failed, saying why, and none is stored from its summary alone
    assert code == 1
    assert (first["written"], first["failed"], first["vanished"]) == (0, ML_OK, 0)
    assert "could not be described: AccessDeniedException" in err
    assert all(history.get_latest(job_id) is None for job_id in jobs["ml"])

    # And the next run describes and writes every job
    code, second, _ = run_backfill(endpoint, history.table_name, "--queue", "ml")
    assert (code, second["written"], second["described"], second["failed"]) == (0, ML_OK, ML_OK, 0)


# --- behaviour pinned by a mutation review ---------------------------------------------------


def terminated_alone(session: boto3.Session, endpoint: str, queue: str, reason: str) -> str:
    """A job alone in a new queue, terminated with `reason` (moto records the reason of a
    TerminateJob on a job it has already run); its id."""
    batch = session.client("batch", endpoint_url=endpoint)
    environment = batch.describe_compute_environments(computeEnvironments=["local-ce"])[
        "computeEnvironments"
    ][0]["computeEnvironmentArn"]
    batch.create_job_queue(
        jobQueueName=queue,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment}],
    )
    job_id = batch.submit_job(jobName=f"{queue}-job", jobQueue=queue, jobDefinition="etl-nightly")[
        "jobId"
    ]
    batch.terminate_job(jobId=job_id, reason=reason)
    return job_id


def test_retention_days_and_allow_shape_what_is_stored(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    # Given a job whose status reason quotes a token, alone in its queue
    job_id = terminated_alone(session, endpoint, "reasons", "stopped by API_TOKEN=abc123secret")
    history = new_table(session, endpoint)

    # When it is backfilled to be kept 7 days, with API_TOKEN allowed
    code, summary, _ = run_backfill(
        endpoint, history.table_name, "--queue", "reasons", "--retention-days", "7", "--allow",
        "API_TOKEN",
    )  # fmt: skip

    # Then its items expire 7 days after its state, and the allowed variable is shown as it is
    stored = session.client("dynamodb", endpoint_url=endpoint).get_item(
        TableName=history.table_name, Key={"pk": {"S": f"JOB#{job_id}"}, "sk": {"S": "LATEST"}}
    )["Item"]
    record = json.loads(stored["record"]["S"])
    expires = datetime.fromisoformat(record["eventTime"]) + timedelta(days=7)
    assert (code, summary["written"]) == (0, 1)
    assert stored["expiresAt"] == {"N": str(int(expires.timestamp()))}
    assert record["statusReason"] == "stopped by API_TOKEN=abc123secret"


def test_a_job_too_large_for_an_item_is_stored_cut_to_fit_as_the_enricher_would(
    session: boto3.Session, endpoint: str, jobs: dict[str, list[str]]
) -> None:
    # Given a job whose status reason is half a megabyte, alone in its queue: its record is
    # larger than a DynamoDB item may be
    job_id = terminated_alone(session, endpoint, "enormous", "x" * 500_000)
    history = new_table(session, endpoint)

    # When it is backfilled
    code, summary, err = run_backfill(endpoint, history.table_name, "--queue", "enormous")

    # Then it is stored cut to the size rule, as the enricher stores such a job, not refused by
    # DynamoDB on this run and every run after
    assert (code, summary["written"], summary["failed"]) == (0, 1, 0), err
    stored = history.get_latest(job_id)
    assert stored is not None
    assert stored.record["truncated"] is True
    assert len(stored.record["statusReason"]) <= 8_192


def test_a_job_older_than_the_retention_is_left_out_not_written_already_expired(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the ml queue's jobs as Batch would list them three days on (Batch keeps about 7)
    three_days_ms = 3 * 86_400_000

    def aged(parsed: dict[str, Any], **_: Any) -> None:
        for job in parsed.get("jobSummaryList", []) + parsed.get("jobs", []):
            for key in ("createdAt", "startedAt", "stoppedAt"):
                if isinstance(job.get(key), int):
                    job[key] -= three_days_ms
            for attempt in job.get("attempts", []):
                for key in ("startedAt", "stoppedAt"):
                    if isinstance(attempt.get(key), int):
                        attempt[key] -= three_days_ms

    hook_cli_sessions(monkeypatch, "after-call.batch.ListJobs", aged)
    hook_cli_sessions(monkeypatch, "after-call.batch.DescribeJobs", aged)
    history = new_table(session, endpoint)

    # When they are backfilled to be kept 2 days (the stack's RetentionDays)
    code, summary, _ = run_backfill(
        endpoint, history.table_name, "--queue", "ml", "--retention-days", "2"
    )

    # Then none is written with a TTL already past (no query would show it, DynamoDB would delete
    # it, and the next run would write it again): they are outside the range kept
    assert code == 0
    assert (summary["written"], summary["outsideRange"]) == (0, ML_OK)
    assert all(history.get_latest(job_id) is None for job_id in jobs["ml"])

    # And kept 7 days, they are written
    code, summary, _ = run_backfill(
        endpoint, history.table_name, "--queue", "ml", "--retention-days", "7"
    )
    assert (code, summary["written"], summary["outsideRange"]) == (0, ML_OK, 0)


def test_a_job_whose_dependency_failed_names_it_as_the_enricher_does(
    session: boto3.Session,
    endpoint: str,
    jobs: dict[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given an ml job that Batch failed because a dependency failed: of its two dependencies, the
    # history holds one that succeeded and one that ran out of memory
    history = new_table(session, endpoint)
    oom = normalise(parse_event(json.loads((EVENTS / "job-failed-oom.json").read_text())))
    succeeded = normalise(parse_event(json.loads((EVENTS / "job-succeeded.json").read_text())))
    for record in (oom, succeeded):
        history.put_latest(record)
    downstream = jobs["ml"][0]

    def dependency_failed(parsed: dict[str, Any], **_: Any) -> None:
        for job in parsed.get("jobs", []):
            if job["jobId"] == downstream:
                job.update(status="FAILED", statusReason="Dependent Job failed", attempts=[])
                job["dependsOn"] = [{"jobId": succeeded.job_id}, {"jobId": oom.job_id}]
                job.pop("startedAt", None)
                job.get("container", {}).pop("exitCode", None)

    hook_cli_sessions(monkeypatch, "after-call.batch.DescribeJobs", dependency_failed)

    # When the queue is backfilled
    code, summary, err = run_backfill(endpoint, history.table_name, "--queue", "ml")

    # Then its failure names the dependency that failed, with its category, as the enricher's
    # does, rather than send the reader through both
    assert (code, summary["failed"]) == (0, 0), err
    stored = history.get_latest(downstream)
    assert stored is not None
    failure = stored.record["failure"]
    assert failure["category"] == "DEPENDENCY_FAILED"
    assert failure["summary"] == (
        f"Dependency failed: job {oom.job_id} (OUT_OF_MEMORY) failed, so this job never ran"
    )
