# ruff: noqa: E501 - the golden outputs below are as wide as the tables they pin down
"""`batchlens jobs|job|failures|stats` against moto's server over real HTTP.

Given a history table built from template.yaml on a ThreadedMotoServer, filled through the
enricher's own write path (`HistoryTable.put_latest`, `put_transitions`), when the CLI runs, then
it prints the jobs the question names, newest first, in the format asked for, from key and index
queries only; and every mistake in what is asked ends in one line on stderr and exit status 1
(a command line argparse cannot read gets its usage and exit status 2).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ReadTimeoutError

from batchlens import access, cli, local
from batchlens.events import parse_event
from batchlens.history import LATEST_SK, HistoryTable, job_pk, latest_item
from batchlens.records import JobRecord, normalise
from tests.chaos.faults import http_response
from tests.conftest import UNEXPIRED_RETENTION_DAYS, local_time
from tests.moto_server import cli_endpoint, hook_cli_sessions

pytestmark = pytest.mark.integration

EVENTS = Path(__file__).resolve().parents[2] / "events"
RETENTION_DAYS = UNEXPIRED_RETENTION_DAYS
#: The golden history: sample events as the enricher stored them (all but one on 2025-03-14).
GOLDEN_EVENTS = (
    "job-failed-oom.json",
    "job-failed-spot.json",
    "job-failed-image-pull.json",
    "job-failed-app-error.json",
    "job-succeeded.json",
    "job-queue-blocked-capacity.json",
    "service-job-failed.json",
    "service-job-succeeded.json",
    "array-child-failed.json",
    "array-parent-failed.json",
)
MARCH = ("--since", "2025-03-13T00:00:00Z", "--until", "2025-03-15T00:00:00Z")
OOM_JOB = "91d1d12f-bc0b-41ab-bc38-add9e258cb98"


def event(name: str, **envelope: Any) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    loaded.update(envelope)
    return loaded


def record_of(payload: dict[str, Any]) -> JobRecord:
    return normalise(parse_event(payload))


def golden_records() -> list[JobRecord]:
    records = []
    for name in GOLDEN_EVENTS:
        payload = event(name)
        if name == "job-failed-app-error.json":
            payload["time"] = "2025-03-13T22:15:00Z"  # the day before: two day partitions
        records.append(record_of(payload))
    return records


def oom_running() -> JobRecord:
    """The OOM job's RUNNING transition, before its final attempt failed."""
    payload = event("job-failed-oom.json", id="0d5f1a3c-2b4e-4c6d-9e8f-7a6b5c4d3e2f")
    payload["time"] = "2025-03-14T09:52:15Z"
    detail = payload["detail"]
    detail["status"] = "RUNNING"
    detail["attempts"] = detail["attempts"][:2]
    detail.pop("stoppedAt")
    for key in ("exitCode", "reason"):
        detail["container"].pop(key)
    return record_of(payload)


# --- the local stand-in --------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server on loopback (a free port), with fake credentials for this module."""
    with cli_endpoint() as url:
        yield url


@pytest.fixture(scope="module")
def session(endpoint: str) -> boto3.Session:
    return boto3.Session(region_name="us-east-1")


def new_table(session: boto3.Session, endpoint: str) -> HistoryTable:
    stack = local.create_stack(session, endpoint_url=endpoint)
    client = session.client("dynamodb", endpoint_url=endpoint)
    return HistoryTable(client, stack.table_name, RETENTION_DAYS)


@pytest.fixture(scope="module")
def golden(session: boto3.Session, endpoint: str) -> str:
    """The golden history, written by the enricher's own conditional write and timeline write."""
    history = new_table(session, endpoint)
    running = oom_running()
    records = golden_records()
    for record in [running, *records]:
        history.put_latest(record)
    assert history.put_transitions([running, *records]) == []
    return history.table_name


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC, so table output is the same on every machine."""
    with local_time("UTC"):
        yield


class Calls:
    """Every AWS call the CLI makes, with its parameters (a botocore event hook)."""

    def __init__(self) -> None:
        self.made: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, event_name: str, params: dict[str, Any], **_: Any) -> None:
        self.made.append((event_name.rsplit(".", 1)[-1], dict(params)))

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.made if name == operation)

    def indexes(self) -> Counter[str]:
        return Counter(
            str(params.get("IndexName")) for name, params in self.made if name == "Query"
        )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Counts the calls of the sessions the CLI builds."""
    counter = Calls()
    hook_cli_sessions(monkeypatch, "before-parameter-build", counter)
    return counter


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def query(endpoint: str, table: str, *argv: str) -> tuple[int, str, str]:
    command, *rest = argv
    return run(command, "--table", table, "--endpoint-url", endpoint, *rest)


def names(output: str) -> list[str]:
    return [json.loads(line)["jobName"] for line in output.splitlines()]


# --- jobs: golden output ------------------------------------------------------------------

JOBS_TABLE = """\
UPDATED (UTC)        STATUS     QUEUE                     NAME                                  JOB ID                                  ATTEMPTS  RUN     CATEGORY           SUMMARY
2025-03-14 15:47:35  FAILED     media-queue               thumbnail-render-20250314             7e5f376f-6a34-459d-a1e0-46a88061cd91    0/1       45m22s  UNKNOWN            Unrecognised failure: Array Child Job failed
2025-03-14 15:03:50  FAILED     media-queue               thumbnail-render-20250314             7e5f376f-6a34-459d-a1e0-46a88061cd91:7  1/1       46s     APPLICATION_ERROR  Exited with code 2 on attempt 1/1
2025-03-14 14:15:22  RUNNABLE   gpu-training-queue        llm-finetune-llama-8b-run42           50ad3e27-544b-4688-8f04-70c5c0e835f7    0/1       -       CAPACITY           Queue blocked — Not enough capacity: CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - …
2025-03-14 11:37:00  FAILED     etl-spot-queue            clickstream-hourly-20250314-11        4eac0e94-1b72-439a-894b-ee8c0094a8d0    2/2       11m54s  HOST_TERMINATED    Spot/host terminated: instance i-0a1b2c3d4e5f67890 was terminated during attemp…
2025-03-14 11:31:46  FAILED     sagemaker-training-queue  llm-sft-7b-0314                       dd1ae850-27f7-4cbb-be07-b4d50cb5c32a    1/1       19m34s  APPLICATION_ERROR  Training algorithm error: ExecuteUserScriptError: ExitCode 1 ErrorMessage "Valu…
2025-03-14 10:48:19  SUCCEEDED  sagemaker-training-queue  xgb-churn-0314                        1667479a-8f04-4612-9ff1-bb30222df6dc    1/2       42m36s  -
2025-03-14 10:08:46  FAILED     genomics-queue            align-NA12878-chr1                    91d1d12f-bc0b-41ab-bc38-add9e258cb98    3/3       16m28s  OUT_OF_MEMORY      Out of memory: the container used more than its 4096 MiB on attempt 3/3
2025-03-14 03:02:20  FAILED     etl-queue                 etl-nightly-orders-backfill-20250301  e378507a-858f-461b-9a01-5160fa6ef90a    1/3       -       IMAGE_PULL         Image pull failed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2.4.0 not f…
2025-03-14 02:19:09  SUCCEEDED  etl-queue                 etl-nightly-orders-20250313           8db8df93-edd5-4cd5-86b3-bc355166765c    1/2       15m26s  -
2025-03-13 22:15:00  FAILED     etl-queue                 invoice-export-2025-02                da16707b-ae61-46cf-ad81-3ac06f66a39e    1/1       1m46s   APPLICATION_ERROR  Exited with code 1 on attempt 1/1
"""


def test_jobs_table_is_newest_first_across_days_and_statuses_in_local_time(
    endpoint: str, golden: str, utc: None
) -> None:
    code, out, err = query(endpoint, golden, "jobs", *MARCH, "--limit", "0")

    assert (code, err) == (0, "")
    assert out == JOBS_TABLE


def test_jobs_json_lines_are_the_stored_jobrecords_in_utc(
    endpoint: str, golden: str, new_york: None
) -> None:
    code, out, _ = query(endpoint, golden, "jobs", *MARCH, "--status", "FAILED", "-o", "json")

    by_id = {r.job_id: r for r in golden_records()}
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [line["eventTime"] for line in lines] == sorted(
        (line["eventTime"] for line in lines), reverse=True
    )
    assert lines == [by_id[line["jobId"]].to_json_dict() for line in lines]
    assert len(lines) == 7
    assert out.splitlines()[0].startswith(
        '{"schemaVersion": 1, "eventType": "JOB_STATE_CHANGE", '
        '"eventId": "97377a32-9578-4f28-b52a-92fb7853c4f5", "eventTime": "2025-03-14T15:47:35.000Z"'
    )


JOBS_CSV = """\
updatedAt,status,jobQueue,jobName,jobId,jobKind,jobDefinition,attemptsUsed,attemptsAllowed,queuedSeconds,runSeconds,category,summary,enrichment,console,logs
2025-03-14T03:02:20.000Z,FAILED,etl-queue,etl-nightly-orders-backfill-20250301,e378507a-858f-461b-9a01-5160fa6ef90a,CONTAINER,etl-nightly:13,1,3,,,IMAGE_PULL,Image pull failed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2.4.0 not found on attempt 1/3,EVENT_ONLY,https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/e378507a-858f-461b-9a01-5160fa6ef90a,
2025-03-14T02:19:09.000Z,SUCCEEDED,etl-queue,etl-nightly-orders-20250313,8db8df93-edd5-4cd5-86b3-bc355166765c,CONTAINER,etl-nightly:12,1,2,217.696,926.725,,,EVENT_ONLY,https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/8db8df93-edd5-4cd5-86b3-bc355166765c,https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Faws$252Fbatch$252Fjob/log-events/etl-nightly$252Fdefault$252F0ef519ec7d021ffe4b8acc079f7fce21
"""


def test_jobs_csv_has_one_row_per_job_in_utc(endpoint: str, golden: str, new_york: None) -> None:
    code, out, _ = query(endpoint, golden, "jobs", *MARCH, "--name", "etl-nightly", "-o", "csv")

    assert code == 0
    assert out == JOBS_CSV


def test_the_table_shows_local_time_and_names_the_zone(
    endpoint: str, golden: str, new_york: None
) -> None:
    code, out, _ = query(endpoint, golden, "jobs", *MARCH, "--name", "align")

    assert code == 0
    assert out.splitlines()[0].startswith("UPDATED (EDT)")
    assert out.splitlines()[1].startswith("2025-03-14 06:08:46  FAILED  genomics-queue")


# --- jobs: every filter, and the index that serves it -----------------------------------------


def test_status_without_queue_reads_by_day_one_query_per_day_and_status(
    endpoint: str, golden: str, calls: Calls
) -> None:
    code, out, _ = query(
        endpoint,
        golden,
        "jobs",
        "--status",
        "failed,succeeded",
        "--since",
        "2025-03-13T00:00:00Z",
        "--until",
        "2025-03-14T23:00:00Z",
        "-o",
        "json",
    )

    assert code == 0
    assert len(out.splitlines()) == 9
    assert calls.indexes() == Counter({"byDay": 4})  # 2 days x 2 statuses
    assert calls.count("Scan") == 0


def test_queue_reads_by_queue_status_one_query_per_status(
    endpoint: str, golden: str, calls: Calls
) -> None:
    code, out, _ = query(
        endpoint, golden, "jobs", *MARCH, "--queue", "etl-queue", "--status", "FAILED", "-o", "json"
    )

    assert code == 0
    assert names(out) == ["etl-nightly-orders-backfill-20250301", "invoice-export-2025-02"]
    assert calls.indexes() == Counter({"byQueueStatus": 1})


def test_queue_without_status_covers_every_status(endpoint: str, golden: str, calls: Calls) -> None:
    code, out, _ = query(endpoint, golden, "jobs", *MARCH, "--queue", "etl-queue", "-o", "json")

    assert code == 0
    assert names(out) == [
        "etl-nightly-orders-backfill-20250301",
        "etl-nightly-orders-20250313",
        "invoice-export-2025-02",
    ]
    assert calls.indexes() == Counter({"byQueueStatus": 8})


def test_name_prefix_reads_by_name_one_query_per_day(
    endpoint: str, golden: str, calls: Calls
) -> None:
    code, out, _ = query(
        endpoint,
        golden,
        "jobs",
        "--name",
        "etl-nightly",
        "--since",
        "2025-03-12T00:00:00Z",
        "--until",
        "2025-03-14T23:00:00Z",
        "-o",
        "json",
    )

    assert code == 0
    assert names(out) == ["etl-nightly-orders-backfill-20250301", "etl-nightly-orders-20250313"]
    assert calls.indexes() == Counter({"byName": 3})


def test_name_prefix_combines_with_status_queue_and_category(endpoint: str, golden: str) -> None:
    def jobs(*filters: str) -> list[str]:
        code, out, _ = query(endpoint, golden, "jobs", *MARCH, "-o", "json", *filters)
        assert code == 0
        return names(out)

    assert jobs("--name", "etl-nightly", "--status", "SUCCEEDED") == ["etl-nightly-orders-20250313"]
    assert jobs("--name", "thumbnail", "--queue", "etl-queue") == []
    assert jobs("--name", "thumbnail", "--queue", "media-queue") == [
        "thumbnail-render-20250314",
        "thumbnail-render-20250314",
    ]
    assert jobs("--name", "etl-nightly", "--category", "IMAGE_PULL") == [
        "etl-nightly-orders-backfill-20250301"
    ]


def test_category_filters_any_index(endpoint: str, golden: str, calls: Calls) -> None:
    code, out, _ = query(
        endpoint,
        golden,
        "jobs",
        *MARCH,
        "--status",
        "FAILED",
        "--category",
        "OUT_OF_MEMORY",
        "host_terminated",
        "-o",
        "json",
    )
    assert code == 0
    assert names(out) == ["clickstream-hourly-20250314-11", "align-NA12878-chr1"]

    code, out, _ = query(
        endpoint,
        golden,
        "jobs",
        *MARCH,
        "--queue",
        "gpu-training-queue",
        "--category",
        "CAPACITY",
        "-o",
        "json",
    )
    assert code == 0
    assert names(out) == ["llm-finetune-llama-8b-run42"]
    assert all(
        params.get("FilterExpression") == "#category IN (:c0, :c1)"
        for name, params in calls.made[:1]
        if name == "Query"
    )


def test_since_and_until_bound_the_time_range(endpoint: str, golden: str) -> None:
    code, out, _ = query(
        endpoint,
        golden,
        "jobs",
        "--since",
        "2025-03-14T10:08:46Z",
        "--until",
        "2025-03-14T11:37:00Z",
        "-o",
        "json",
    )

    assert code == 0
    assert names(out) == [
        "clickstream-hourly-20250314-11",
        "llm-sft-7b-0314",
        "xgb-churn-0314",
        "align-NA12878-chr1",
    ]


def test_limit_keeps_the_newest_and_says_so_on_a_table(
    endpoint: str, golden: str, utc: None
) -> None:
    code, out, err = query(endpoint, golden, "jobs", *MARCH, "--limit", "2")

    assert code == 0
    assert [line.split() for line in out.splitlines()[1:]] == [
        line.split() for line in JOBS_TABLE.splitlines()[1:3]
    ]
    assert err == "(the newest 2; --limit N shows more, --limit 0 all)\n"


def test_jobs_updated_in_the_same_millisecond_keep_one_order_whatever_the_statuses_typed(
    session: boto3.Session, endpoint: str
) -> None:
    # Given a failed and a succeeded job stored with the same update time (two byDay partitions)
    history = new_table(session, endpoint)
    same_time = "2025-03-14T12:00:00Z"
    tied = [
        record_of(event(name, time=same_time))
        for name in ("job-failed-oom.json", "job-succeeded.json")
    ]
    for record in tied:
        history.put_latest(record)
    # Sort keys are `<updatedAt>#<jobId>`: at equal times, the greater job id comes first
    newest_first = sorted((record.job_id for record in tied), reverse=True)

    def job_ids(*argv: str) -> list[str]:
        code, out, _ = query(endpoint, history.table_name, "jobs", *MARCH, "-o", "json", *argv)
        assert code == 0
        return [json.loads(line)["jobId"] for line in out.splitlines()]

    # When listed with the statuses typed in either order, or through the queue-less default
    # Then the tie is broken by job id, as each index's own sort key orders it, every time
    assert job_ids("--status", "FAILED,SUCCEEDED") == newest_first
    assert job_ids("--status", "SUCCEEDED,FAILED") == newest_first
    assert job_ids() == newest_first
    # and --limit 1 names the same job whichever way the question was typed
    assert job_ids("--status", "SUCCEEDED,FAILED", "--limit", "1") == newest_first[:1]


def test_no_match_is_not_an_error(endpoint: str, golden: str) -> None:
    code, out, err = query(endpoint, golden, "jobs", *MARCH, "--queue", "no-such-queue")

    assert (code, out, err) == (0, "", "No jobs match.\n")


def test_verbose_reports_the_calls_made(endpoint: str, golden: str) -> None:
    code, _, err = query(endpoint, golden, "jobs", *MARCH, "--queue", "etl-queue", "-v")

    assert code == 0
    # Eight index queries, and one BatchGetItem for the records of each page that had entries
    assert err.startswith("batchlens: 2 BatchGetItem, 8 Query in ")


# --- job ----------------------------------------------------------------------------------

JOB_TABLE = """\
Job            align-NA12878-chr1 (91d1d12f-bc0b-41ab-bc38-add9e258cb98)
Queue          genomics-queue
Definition     genomics-align:7
Kind           CONTAINER
Status         FAILED — Essential container in task exited
Failure        OUT_OF_MEMORY: Out of memory: the container used more than its 4096 MiB on attempt 3/3
Detail         container reason: OutOfMemoryError: Container killed due to memory usage; attempt status reason: Essential container in task exited; exit code 137 (SIGKILL). Batch will not retry: attempts exhausted 3/3
Batch retries  no
Next step      Raise memory in the job definition (now 4096 MiB) or fix the leak
Created        2025-03-14 09:12:00
Started        2025-03-14 09:52:15
Stopped        2025-03-14 10:08:44
Durations      queued 2m31s, ran 16m28s, total 56m43s
Attempts       3/3
Console        https://us-east-1.console.aws.amazon.com/batch/home?region=us-east-1#jobs/detail/91d1d12f-bc0b-41ab-bc38-add9e258cb98
Logs           https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#logsV2:log-groups/log-group/$252Fcustom$252Fbatch$252Fgenomics/log-events/genomics-align$252Fdefault$252Fd651b1d9e8ff2f7a0b344198daf25ac0
Updated        2025-03-14 10:08:46 (UTC), EVENT_ONLY, event b74add46-8835-4923-9e16-8e912e8e30db

Attempts (UTC)
#  STARTED              STOPPED              RAN     EXIT  REASON
1  2025-03-14 09:14:31  2025-03-14 09:31:02  16m31s  137   OutOfMemoryError: Container killed due to memory usage
2  2025-03-14 09:33:40  2025-03-14 09:50:11  16m31s  137   OutOfMemoryError: Container killed due to memory usage
3  2025-03-14 09:52:15  2025-03-14 10:08:44  16m28s  137   OutOfMemoryError: Container killed due to memory usage

Timeline (UTC)
TIME                 STATUS   ATTEMPTS DONE  CATEGORY       REASON
2025-03-14 09:52:15  RUNNING  2              -              OutOfMemoryError: Container killed due to memory usage
2025-03-14 10:08:46  FAILED   3              OUT_OF_MEMORY  Out of memory: the container used more than its 4096 MiB on attempt 3/3
"""


def test_job_shows_the_latest_record_its_attempts_and_its_timeline(
    endpoint: str, golden: str, utc: None
) -> None:
    code, out, err = query(endpoint, golden, "job", OOM_JOB)

    assert (code, err) == (0, "")
    assert out == JOB_TABLE


def test_job_json_is_the_jobrecord_and_accepts_a_job_arn(endpoint: str, golden: str) -> None:
    arn = f"arn:aws:batch:us-east-1:123456789012:job/{OOM_JOB}"

    code, out, _ = query(endpoint, golden, "job", arn, "-o", "json")

    expected = next(r for r in golden_records() if r.job_id == OOM_JOB)
    assert code == 0
    assert out == json.dumps(expected.to_json_dict()) + "\n"


def test_job_csv_is_its_row(endpoint: str, golden: str) -> None:
    code, out, _ = query(endpoint, golden, "job", OOM_JOB, "-o", "csv")

    assert code == 0
    header, row = out.splitlines()
    assert header.startswith("updatedAt,status,jobQueue,jobName,jobId")
    assert row.startswith("2025-03-14T10:08:46.000Z,FAILED,genomics-queue,align-NA12878-chr1,")


def test_several_jobs_as_csv_are_one_csv_with_one_header(endpoint: str, golden: str) -> None:
    service = next(r for r in golden_records() if r.job_arn and ":service-job/" in r.job_arn)

    code, out, err = query(
        endpoint, golden, "job", "no-such-job", OOM_JOB, str(service.job_arn), "-o", "csv"
    )

    assert (code, err) == (1, f"batchlens: no job 'no-such-job' in {golden}\n")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["jobId"] for row in rows] == [OOM_JOB, service.job_id]


def test_batch_reads_throttled_to_the_end_are_one_line_and_exit_1(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given DynamoDB answers every BatchGetItem with all its keys unprocessed (throttled)
    def throttled(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in parsed["Responses"][golden]]
        parsed["Responses"][golden] = []
        parsed["UnprocessedKeys"] = {golden: {"Keys": keys}}

    hook_cli_sessions(monkeypatch, "after-call.dynamodb.BatchGetItem", throttled)
    monkeypatch.setattr(time, "sleep", lambda _: None)  # the backoff between retries

    # When jobs are listed
    code, out, err = query(endpoint, golden, "jobs", *MARCH)

    # Then the command gives up after its retries with one line, not a traceback
    assert (code, out) == (1, "")
    assert err.startswith("batchlens: query: DynamoDB throttled the reads (region us-east-1 at ")
    assert err.endswith("keys unprocessed); try again in a moment\n")


def test_a_job_past_its_retention_is_shown_nowhere_before_dynamodb_deletes_it(
    session: boto3.Session, endpoint: str
) -> None:
    # Given a table holding the golden jobs, the OOM job's with a retention that has passed
    live = new_table(session, endpoint)
    oom = next(r for r in golden_records() if r.job_id == OOM_JOB)
    others = [r for r in golden_records() if r.job_id != OOM_JOB]
    for record in others:
        live.put_latest(record)
    days = (datetime.now(tz=UTC) - oom.event_time).days - 1
    client = session.client("dynamodb", endpoint_url=endpoint)
    HistoryTable(client, live.table_name, days).put_latest(oom)

    # When it is asked for, listed or counted, then it is not there, as once DynamoDB deletes it
    code, _, err = query(endpoint, live.table_name, "job", OOM_JOB)
    assert (code, err) == (1, f"batchlens: no job {OOM_JOB!r} in {live.table_name}\n")
    code, out, _ = query(endpoint, live.table_name, "jobs", *MARCH, "-o", "json")
    assert code == 0
    assert sorted(json.loads(line)["jobId"] for line in out.splitlines()) == sorted(
        r.job_id for r in others
    )


def test_a_transition_past_its_retention_is_left_out_of_the_job_timeline(
    session: boto3.Session, endpoint: str, utc: None
) -> None:
    # Given a stack that keeps 2 days of history, and a job that failed an hour ago after
    # running for 3 days: its RUNNING transition's retention has passed, its latest has not
    two_days = new_table(session, endpoint)
    two_days.retention_days = 2
    now = datetime.now(tz=UTC).replace(microsecond=0)
    failed = record_of(event("job-failed-oom.json", time=f"{now - timedelta(hours=1):%FT%TZ}"))
    running = oom_running().model_copy(update={"event_time": now - timedelta(days=3)})
    two_days.put_latest(failed)
    assert two_days.put_transitions([running, failed]) == []

    # When the job is shown
    code, out, err = query(endpoint, two_days.table_name, "job", OOM_JOB)

    # Then its timeline holds the failure only, as once DynamoDB deletes the expired item
    assert (code, err) == (0, "")
    timeline = out.split("Timeline (UTC)\n", 1)[1].splitlines()
    assert [line.split()[2] for line in timeline[1:]] == ["FAILED"]


def test_an_unknown_job_is_one_line_and_exit_1(endpoint: str, golden: str) -> None:
    code, out, err = query(endpoint, golden, "job", "no-such-job")

    assert (code, out) == (1, "")
    assert err == f"batchlens: no job 'no-such-job' in {golden}\n"


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("jobs", "--queue"),
        ("failures", "--queue"),
        ("stats", "--queue"),
        ("jobs", "--status"),
        ("jobs", "--category"),
        ("failures", "--category"),
    ],
)
def test_an_empty_filter_is_one_line_not_every_job(
    endpoint: str, golden: str, command: str, option: str
) -> None:
    # Given `--queue "$QUEUE"` (or --status, --category) with the variable unset; when it runs
    code, out, err = query(endpoint, golden, command, option, "", *MARCH)

    # Then it refuses, instead of answering for every queue, status or category
    assert (code, out) == (1, "")
    assert err == f"batchlens: {option} needs a value; leave it out for every job\n"


@pytest.mark.parametrize(
    "option", ["--table", "--stack", "--endpoint-url", "--region", "--profile"]
)
def test_an_empty_place_is_one_line_not_another_table_or_real_aws(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch, option: str
) -> None:
    # Given BATCHLENS_TABLE and BATCHLENS_ENDPOINT_URL set, and `--stack "$STACK"` (or --table,
    # --endpoint-url, ...) with the variable unset
    monkeypatch.setenv("BATCHLENS_TABLE", golden)
    monkeypatch.setenv("BATCHLENS_ENDPOINT_URL", endpoint)

    # When a query runs
    code, out, err = run("jobs", *MARCH, option, "")

    # Then it refuses, instead of answering from another table, or from real AWS
    assert (code, out) == (1, "")
    assert err == f"batchlens: {option} needs a value; leave it out for its default\n"


@pytest.mark.parametrize("command", ["jobs", "failures", "stats"])
def test_a_queue_is_named_by_its_name_or_its_arn(endpoint: str, golden: str, command: str) -> None:
    # Given the queue's ARN, as the Batch console and `aws batch describe-job-queues` show it
    arn = "arn:aws:batch:us-east-1:123456789012:job-queue/etl-queue"

    by_name = query(endpoint, golden, command, *MARCH, "--queue", "etl-queue", "-o", "json")
    by_arn = query(endpoint, golden, command, *MARCH, "--queue", arn, "-o", "json")

    # Then the answer is the queue's, as by its name
    assert by_arn == by_name
    assert by_arn[0] == 0
    assert "etl-queue" in by_arn[1]


@pytest.mark.parametrize("option", ["--since", "--until"])
def test_an_empty_time_is_one_line_not_a_default(endpoint: str, golden: str, option: str) -> None:
    # Given `--until "$UNTIL"` with the variable unset; when it runs
    code, out, err = query(endpoint, golden, "jobs", "--since", "7d", option, "")

    # Then it refuses, instead of reading it as now (or the default range)
    assert (code, out) == (1, "")
    assert err.startswith("batchlens: bad time '': ")


# --- failures -------------------------------------------------------------------------------

FAILURES_BY_CATEGORY = """\
CATEGORY           JOBS  SHARE  LAST (UTC)           EXAMPLE                                                                      SUMMARY
APPLICATION_ERROR  3     42.9%  2025-03-14 15:03:50  thumbnail-render-20250314 (7e5f376f-6a34-459d-a1e0-46a88061cd91:7)           Exited with code 2 on attempt 1/1
HOST_TERMINATED    1     14.3%  2025-03-14 11:37:00  clickstream-hourly-20250314-11 (4eac0e94-1b72-439a-894b-ee8c0094a8d0)        Spot/host terminated: instance i-0a1b2c3d4e5f67890 was terminated during attemp…
IMAGE_PULL         1     14.3%  2025-03-14 03:02:20  etl-nightly-orders-backfill-20250301 (e378507a-858f-461b-9a01-5160fa6ef90a)  Image pull failed: 123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2.4.0 not f…
OUT_OF_MEMORY      1     14.3%  2025-03-14 10:08:46  align-NA12878-chr1 (91d1d12f-bc0b-41ab-bc38-add9e258cb98)                    Out of memory: the container used more than its 4096 MiB on attempt 3/3
UNKNOWN            1     14.3%  2025-03-14 15:47:35  thumbnail-render-20250314 (7e5f376f-6a34-459d-a1e0-46a88061cd91)             Unrecognised failure: Array Child Job failed
"""


def test_failures_by_category_counts_and_shows_the_newest_example(
    endpoint: str, golden: str, utc: None
) -> None:
    code, out, err = query(endpoint, golden, "failures", *MARCH)

    assert (code, err) == (0, "")
    assert out == FAILURES_BY_CATEGORY


def test_failures_by_queue_and_by_job_definition(endpoint: str, golden: str) -> None:
    def groups(by: str) -> dict[str, int]:
        code, out, _ = query(endpoint, golden, "failures", *MARCH, "--by", by, "-o", "json")
        assert code == 0
        return {line["group"]: line["count"] for line in map(json.loads, out.splitlines())}

    assert groups("queue") == {
        "media-queue": 2,
        "etl-queue": 2,
        "etl-spot-queue": 1,
        "genomics-queue": 1,
        "sagemaker-training-queue": 1,
    }
    assert groups("jobDefinition") == {
        "thumbnail-render": 2,
        "clickstream-hourly": 1,
        "etl-nightly": 1,
        "genomics-align": 1,
        "invoice-export": 1,
        "SAGEMAKER_TRAINING": 1,
    }


def test_failures_json_and_csv_carry_the_example(endpoint: str, golden: str) -> None:
    code, out, _ = query(
        endpoint, golden, "failures", *MARCH, "--queue", "genomics-queue", "-o", "json"
    )
    assert code == 0
    (line,) = map(json.loads, out.splitlines())
    assert {k: v for k, v in line.items() if k != "example"} == {
        "by": "category",
        "group": "OUT_OF_MEMORY",
        "count": 1,
        "share": 1.0,
        "lastFailedAt": "2025-03-14T10:08:46.000Z",
    }
    assert line["example"]["jobId"] == OOM_JOB

    code, out, _ = query(endpoint, golden, "failures", *MARCH, "--by", "queue", "-o", "csv")
    assert code == 0
    assert out.splitlines()[:2] == [
        "by,group,count,share,lastFailedAt,exampleJobId,exampleJobName,exampleSummary",
        "queue,etl-queue,2,0.2857,2025-03-14T03:02:20.000Z,e378507a-858f-461b-9a01-5160fa6ef90a,"
        "etl-nightly-orders-backfill-20250301,Image pull failed: "
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/etl:2.4.0 not found on attempt 1/3",
    ]


# --- stats ----------------------------------------------------------------------------------

STATS_TABLE = """\
QUEUE                     JOBS  SUCCEEDED  FAILED  FAILURE RATE  WAIT P50  WAIT P95  RUN P50  RUN P95
etl-queue                 3     1          2       66.7%         1m15s     3m37s     1m46s    15m26s
etl-spot-queue            1     0          1       100.0%        2m12s     2m12s     11m54s   11m54s
genomics-queue            1     0          1       100.0%        2m31s     2m31s     16m28s   16m28s
gpu-training-queue        1     0          0       -             -         -         -        -
media-queue               1     0          1       100.0%        3m00s     3m00s     46s      46s
sagemaker-training-queue  2     1          1       50.0%         5m38s     7m39s     19m34s   42m36s
"""


def test_stats_per_queue_leave_array_parents_out(endpoint: str, golden: str, utc: None) -> None:
    code, out, err = query(endpoint, golden, "stats", *MARCH)

    assert (code, err) == (0, "")
    assert out == STATS_TABLE


def test_stats_of_one_queue_as_json(endpoint: str, golden: str, calls: Calls) -> None:
    code, out, _ = query(endpoint, golden, "stats", *MARCH, "--queue", "etl-queue", "-o", "json")

    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {
            "queue": "etl-queue",
            "jobs": 3,
            "succeeded": 1,
            "failed": 2,
            "failureRate": 0.6667,
            "queueWaitP50": 75.631,
            "queueWaitP95": 217.696,
            "runP50": 106.483,
            "runP95": 926.725,
        }
    ]
    assert set(calls.indexes()) == {"byQueueStatus"}


# --- where the table is -----------------------------------------------------------------------


def test_the_table_can_come_from_a_stack_output(
    endpoint: str, golden: str, session: boto3.Session
) -> None:
    cloudformation = session.client("cloudformation", endpoint_url=endpoint)
    cloudformation.create_stack(
        StackName="batchlens-prod",
        TemplateBody=json.dumps(
            {
                "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {"HistoryTableName": {"Value": golden}},
            }
        ),
    )

    code, out, _ = run(
        "jobs", "--stack", "batchlens-prod", "--endpoint-url", endpoint, *MARCH, "-o", "json"
    )

    assert code == 0
    assert len(out.splitlines()) == 10


def test_the_table_and_endpoint_can_come_from_the_environment(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHLENS_TABLE", golden)
    monkeypatch.setenv("BATCHLENS_ENDPOINT_URL", endpoint)

    code, out, _ = run("jobs", "--name", "align", *MARCH, "-o", "json")

    assert code == 0
    assert names(out) == ["align-NA12878-chr1"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_local_endpoint_needs_no_credentials_or_region(
    endpoint: str, golden: str, host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no credentials and no region anywhere, and the stand-in named by address or host name
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    local = endpoint.replace("127.0.0.1", host)

    # When jobs are listed; then it needs neither
    code, out, _ = query(local, golden, "jobs", "--name", "align", *MARCH, "-o", "json")

    assert code == 0
    assert names(out) == ["align-NA12878-chr1"]


def test_aws_region_comes_before_the_profile_region(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a profile with a region, and AWS_REGION set, as the AWS CLI and the SDKs read them
    config = tmp_path / "config"
    config.write_text("[default]\nregion = us-east-1\n", encoding="utf-8")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    def region(flag: str | None) -> str | None:
        return access.connect(
            profile=None, region=flag, endpoint_url=None, environ=os.environ
        ).region

    # Then AWS_REGION wins over the profile, --region over both, and the profile serves alone
    assert region(None) == "eu-west-1"
    assert region("ap-south-1") == "ap-south-1"
    monkeypatch.delenv("AWS_REGION")
    assert region(None) == "us-east-1"


@pytest.mark.parametrize(
    "endpoint_url",
    ["http://[::1]:4566", "http://127.0.1.1:4566", "http://LOCALHOST:4566", "http://127.9.9.9:1"],
)
def test_a_loopback_endpoint_is_accepted_as_local(endpoint_url: str) -> None:
    # Given the stand-in's address in IPv6 brackets, or another of 127.0.0.0/8 (Debian names its
    # own host 127.0.1.1); when the connection is made
    connection = access.connect(profile=None, region=None, endpoint_url=endpoint_url, environ={})
    # Then it is accepted, and read in the stand-in's region
    assert (connection.endpoint_url, connection.region) == (endpoint_url, "us-east-1")


@pytest.mark.parametrize(
    "endpoint_url", ["http://128.0.0.1:4566", "http://localhost.example.com:1", "http://10.0.0.1"]
)
def test_an_endpoint_elsewhere_is_not_local(endpoint_url: str) -> None:
    assert not access.is_loopback(endpoint_url)


def test_a_local_endpoint_signs_with_the_credentials_configured(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given credentials in the environment (access key "testing"), and the local stand-in
    signed: list[str] = []

    def record(request: AWSPreparedRequest, **_: Any) -> None:
        signed.append(str(request.headers["Authorization"]))

    hook_cli_sessions(monkeypatch, "before-send.dynamodb", record)

    # When jobs are listed; then every call is signed with them, not the stand-in's placeholders
    code, _, _ = query(endpoint, golden, "jobs", "--name", "align", *MARCH)
    assert code == 0
    assert signed
    assert all("Credential=testing/" in header for header in signed)


# --- errors a person can act on ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("jobs", "--since", "3 fortnights"),
            "batchlens: bad time '3 fortnights': use a duration ago (30m, 24h, 7d, 2w), now, "
            "today, yesterday, or an ISO date or time (2025-03-14, 2025-03-14T09:30, "
            "2025-03-14T09:30:00Z)",
        ),
        (
            ("jobs", "--status", "FAILD"),
            "batchlens: unknown status 'FAILD'; expected one of SUBMITTED, PENDING, RUNNABLE, "
            "SCHEDULED, STARTING, RUNNING, SUCCEEDED, FAILED",
        ),
        (
            ("failures", "--category", "OOM"),
            "batchlens: unknown failure category 'OOM'; expected one of OUT_OF_MEMORY, "
            "HOST_TERMINATED, TIMEOUT, IMAGE_PULL, CONTAINER_START, RESOURCE_INITIALIZATION, "
            "INFRASTRUCTURE, APPLICATION_ERROR, CANCELLED, DEPENDENCY_FAILED, CAPACITY, "
            "MISCONFIGURATION, UNKNOWN",
        ),
        (
            ("stats", "--since", "2025-03-14", "--until", "2025-03-01"),
            "batchlens: --since (2025-03-14T00:00:00.000Z) is after --until "
            "(2025-03-01T00:00:00.000Z)",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_1(
    endpoint: str, golden: str, utc: None, argv: tuple[str, ...], message: str
) -> None:
    command, *rest = argv
    code, out, err = query(endpoint, golden, command, *rest)

    assert (code, out, err) == (1, "", message + "\n")


def test_a_missing_table_is_one_line(endpoint: str) -> None:
    code, out, err = query(endpoint, "no-such-table", "jobs")

    assert (code, out) == (1, "")
    assert err == (
        f"batchlens: history table 'no-such-table' not found (region us-east-1 at {endpoint})\n"
    )


def test_no_table_named_anywhere_is_one_line(endpoint: str) -> None:
    code, _, err = run("jobs", "--endpoint-url", endpoint)

    assert code == 1
    assert err == (
        "batchlens: which history table? pass --table NAME or --stack STACK_NAME, "
        "or set BATCHLENS_TABLE\n"
    )


def test_a_missing_stack_is_one_line(endpoint: str) -> None:
    code, _, err = run("jobs", "--stack", "no-such-stack", "--endpoint-url", endpoint)

    assert code == 1
    assert err == (
        "batchlens: stack 'no-such-stack' not found: Stack with id no-such-stack does not exist\n"
    )


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)

    # A remote endpoint: credentials are needed (and missing) before anything is sent.
    code, out, err = run(
        "jobs",
        "--table",
        "t",
        "--region",
        "eu-west-1",
        "--endpoint-url",
        "https://dynamodb.invalid",
    )

    assert (code, out) == (1, "")
    assert err == (
        "batchlens: no AWS credentials: pass --profile, run `aws configure` or `aws sso login`, "
        "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY\n"
    )


def test_an_unknown_profile_is_one_line() -> None:
    code, _, err = run("jobs", "--table", "t", "--profile", "no-such-profile-batchlens")

    assert code == 1
    assert err == "batchlens: AWS profile 'no-such-profile-batchlens' not found\n"


def test_an_unreachable_local_stack_says_to_start_it() -> None:
    code, _, err = run("jobs", "--table", "t", "--endpoint-url", "http://127.0.0.1:9")

    assert code == 1
    assert err == (
        "batchlens: cannot reach http://127.0.0.1:9/ — is the local stack running (make demo-up)?\n"
    )


def test_no_region_anywhere_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given no --region, no region variable and no profile region, and AWS itself (no endpoint)
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "BATCHLENS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))

    # When jobs are listed; then one line says every place a region can come from
    code, out, err = run("jobs", "--table", "t")
    assert (code, out) == (1, "")
    assert err == (
        "batchlens: no AWS region: pass --region, or set AWS_DEFAULT_REGION (or a region in your "
        "profile)\n"
    )


def test_an_unreachable_remote_endpoint_is_one_line_without_the_local_hint(
    endpoint: str, no_retry_delay: list[float]
) -> None:
    # Given credentials (the module's, which `endpoint` sets even when this test runs alone), and
    # an endpoint that is not on this machine and does not resolve
    url = "http://dynamodb.invalid"

    # When jobs are listed; then one line names it, without asking for the local stack
    code, out, err = run("jobs", "--table", "t", "--region", "us-east-1", "--endpoint-url", url)
    assert (code, out) == (1, "")
    assert err == "batchlens: cannot reach http://dynamodb.invalid/\n"


def aws_error(request: AWSPreparedRequest, status: int, code: str, message: str) -> AWSResponse:
    """DynamoDB's error answer to a request (its JSON protocol)."""
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message})
    headers = {"Content-Type": "application/x-amz-json-1.0"}
    return http_response(request, status, body.encode(), headers)


@pytest.mark.parametrize(
    ("code", "message", "line"),
    [
        (
            "AccessDeniedException",
            "User: arn:aws:iam::123456789012:user/ana is not authorized to perform: dynamodb:Query",
            "query: access denied (region us-east-1 at {endpoint}): User: "
            "arn:aws:iam::123456789012:user/ana is not authorized to perform: dynamodb:Query",
        ),
        (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            "AWS rejected the credentials (UnrecognizedClientException): The security token "
            "included in the request is invalid.",
        ),
        (
            "ValidationException",
            "The table does not have the specified index: byName",
            "query: Query failed (region us-east-1 at {endpoint}): ValidationException: The table "
            "does not have the specified index: byName",
        ),
    ],
)
def test_a_refused_query_is_one_line_saying_why_and_where(
    endpoint: str,
    golden: str,
    monkeypatch: pytest.MonkeyPatch,
    code: str,
    message: str,
    line: str,
) -> None:
    # Given DynamoDB refusing every Query with `code`
    def refuse(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        return aws_error(request, 400, code, message)

    hook_cli_sessions(monkeypatch, "before-send.dynamodb.Query", refuse)

    # When jobs are listed; then one line says what was refused, where, and AWS's words
    result = query(endpoint, golden, "jobs", "--name", "align", *MARCH)
    assert result == (1, "", f"batchlens: {line.format(endpoint=endpoint)}\n")


def test_a_query_that_keeps_timing_out_is_one_line(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch, no_retry_delay: list[float]
) -> None:
    # Given DynamoDB never answering a Query in time
    def too_slow(request: AWSPreparedRequest, **_: Any) -> None:
        raise ReadTimeoutError(endpoint_url=request.url)

    hook_cli_sessions(monkeypatch, "before-send.dynamodb.Query", too_slow)

    # When jobs are listed; then one line says so, and where
    result = query(endpoint, golden, "jobs", "--name", "align", *MARCH)
    assert result == (
        1,
        "",
        f"batchlens: query: timed out talking to AWS (region us-east-1 at {endpoint})\n",
    )


def test_errors_that_pass_are_retried_unseen(
    endpoint: str, golden: str, monkeypatch: pytest.MonkeyPatch, no_retry_delay: list[float]
) -> None:
    # Given DynamoDB failing the first three Query calls with a server error
    failed: list[str] = []

    def flaky(request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        if len(failed) == 3:
            return None
        failed.append(request.url)
        return aws_error(request, 500, "InternalServerError", "Internal server error")

    hook_cli_sessions(monkeypatch, "before-send.dynamodb.Query", flaky)

    # When jobs are listed; then the retries absorb them and the answer is whole
    code, out, err = query(endpoint, golden, "jobs", "--name", "align", *MARCH, "-o", "json")
    assert (code, err) == (0, "")
    assert names(out) == ["align-NA12878-chr1"]
    assert len(failed) == 3


@pytest.mark.parametrize(
    "url", ["localhost:4566", "127.0.0.1:4566", "http://127.0.0.1:99999", "http://127.0.0.1:abc"]
)
def test_a_malformed_endpoint_url_is_one_line(url: str) -> None:
    # Given an endpoint typed without its scheme, or with a port that is no port
    code, out, err = run("jobs", "--table", "t", "--region", "us-east-1", "--endpoint-url", url)

    # Then one line naming it, not a traceback
    assert (code, out) == (1, "")
    assert err == (
        f"batchlens: bad endpoint URL {url!r}: expected http://HOST:PORT or https://HOST "
        "(the local stack's is printed by make demo-up)\n"
    )


def test_an_until_in_the_future_reads_no_future_day_partitions(
    endpoint: str, golden: str, calls: Calls
) -> None:
    # Given a range that ends a year from now ("through the end of the year", "until 2099")
    next_year = (datetime.now(tz=UTC) + timedelta(days=365)).date().isoformat()

    # When the last day's failures are listed
    code, _, _ = query(
        endpoint, golden, "jobs", "--status", "FAILED", "--since", "1d", "--until", next_year
    )

    # Then only the day partitions up to now (and the clock's allowance) are read: nothing is
    # stored after now
    now = datetime.now(tz=UTC)
    days = (now + cli.CLOCK_SKEW).date() - (now - timedelta(days=1)).date()
    assert code == 0
    assert calls.indexes() == Counter({"byDay": days.days + 1})


def test_a_clock_running_behind_aws_still_lists_the_newest_jobs(
    session: boto3.Session, endpoint: str
) -> None:
    # Given a job that failed at 10:05 by AWS's clock, and a machine whose clock reads 10:00
    history = new_table(session, endpoint)
    ahead = datetime.now(tz=UTC).replace(microsecond=0) + timedelta(minutes=5)
    history.put_latest(record_of(event("job-failed-oom.json", time=f"{ahead:%FT%TZ}")))

    # When the last day's failures are listed, with the default end of the range
    code, out, err = query(
        endpoint,
        history.table_name,
        "jobs",
        "--status",
        "FAILED",
        "--since",
        "1d",
        "-o",
        "json",
    )

    # Then the job is listed
    assert (code, err) == (0, "")
    assert names(out) == ["align-NA12878-chr1"]


# --- pagination, and queries that grow with pages, not with the table ------------------------

BIG = 2_500


def bulk_put(history: HistoryTable, records: list[JobRecord]) -> None:
    """Latest items for new jobs, 25 a BatchWriteItem, 8 at once: what put_latest would write."""
    client: Any = history._client  # the adapter's own client, over real HTTP

    def write(start: int) -> None:
        pending: list[Any] = [
            {"PutRequest": {"Item": latest_item(r, RETENTION_DAYS)}}
            for r in records[start : start + 25]
        ]
        while pending:
            response = client.batch_write_item(RequestItems={history.table_name: pending})
            pending = response.get("UnprocessedItems", {}).get(history.table_name, [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(0, len(records), 25)))


def recent_records(now: datetime) -> list[JobRecord]:
    """BIG failed jobs, one a second back from `now`: the sample OOM event, new ids and times."""
    failed = json.loads((EVENTS / "job-failed-oom.json").read_text())
    records = []
    for n in range(BIG):
        payload = copy.deepcopy(failed)
        job_id = f"{n:08d}-0000-4000-8000-000000000000"
        payload["id"] = f"{n:08d}-1111-4000-8000-000000000000"
        moment = now - timedelta(seconds=n)
        payload["time"] = moment.isoformat().replace("+00:00", "Z")
        payload["detail"]["jobId"] = job_id
        payload["detail"]["jobName"] = f"sample-{n:05d}"
        records.append(record_of(payload))
    return records


@pytest.fixture(scope="module")
def sized_tables(session: boto3.Session, endpoint: str) -> tuple[str, str, list[JobRecord]]:
    """The same 300 newest failures alone in a small table, and among BIG in a large one."""
    now = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(seconds=5)
    records = recent_records(now)
    small, large = new_table(session, endpoint), new_table(session, endpoint)
    bulk_put(small, records[:300])
    bulk_put(large, records)
    return small.table_name, large.table_name, records


def test_bulk_items_are_what_put_latest_writes(session: boto3.Session, endpoint: str) -> None:
    """Guards the bulk loader above: it must write exactly the enricher's latest item."""
    history = new_table(session, endpoint)
    record = golden_records()[0]
    history.put_latest(record)
    client: Any = history._client
    key = {"pk": {"S": job_pk(record.job_id)}, "sk": {"S": LATEST_SK}}

    stored = client.get_item(TableName=history.table_name, Key=key)["Item"]

    assert stored == latest_item(record, RETENTION_DAYS)


def test_pagination_returns_every_job_once_newest_first(
    endpoint: str, sized_tables: tuple[str, str, list[JobRecord]], calls: Calls
) -> None:
    _, large, records = sized_tables

    code, out, _ = query(
        endpoint, large, "jobs", "--status", "FAILED", "--since", "7d", "--limit", "0", "-o", "json"
    )

    ids = [json.loads(line)["jobId"] for line in out.splitlines()]
    assert code == 0
    assert ids == [r.job_id for r in records[:BIG]]  # newest first, each once
    assert calls.count("Query") > 2  # DynamoDB's 1 MB pages: many pages, each one Query


def test_a_limit_beyond_one_page_reads_the_next_page(
    endpoint: str, sized_tables: tuple[str, str, list[JobRecord]], calls: Calls
) -> None:
    small, _, records = sized_tables

    code, out, _ = query(
        endpoint, small, "jobs", "--status", "FAILED", "--since", "24h", "--limit", "290", "-o",
        "json",
    )  # fmt: skip

    assert code == 0
    assert [json.loads(line)["jobId"] for line in out.splitlines()] == [
        r.job_id for r in records[:290]
    ]
    assert calls.count("Query") >= 2  # 290 records of ~4 KB do not fit DynamoDB's 1 MB page


def test_query_count_depends_on_the_page_not_on_the_table_size(
    endpoint: str, sized_tables: tuple[str, str, list[JobRecord]], calls: Calls
) -> None:
    small, large, _ = sized_tables
    question = ("jobs", "--status", "FAILED", "--since", "7d", "--limit", "50", "-o", "json")

    code_small, out_small, _ = query(endpoint, small, *question)
    small_queries = calls.count("Query")
    code_large, out_large, _ = query(endpoint, large, *question)
    large_queries = calls.count("Query") - small_queries

    assert (code_small, code_large) == (0, 0)
    assert out_small == out_large
    assert len(out_large.splitlines()) == 50
    # 300 vs 2,500 jobs: the same one page (two if the newest 50 straddle UTC midnight).
    assert small_queries == large_queries
    assert large_queries <= 2
    assert all(params.get("Limit") == 50 for name, params in calls.made if name == "Query")
    assert calls.count("Scan") == 0


# --- behaviour pinned by a mutation review ---------------------------------------------------


def stack_with_outputs(session: boto3.Session, endpoint: str, name: str, **outputs: str) -> None:
    """A deployed stack with these outputs (a marker resource, as a stack needs one)."""
    session.client("cloudformation", endpoint_url=endpoint).create_stack(
        StackName=name,
        TemplateBody=json.dumps(
            {
                "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {key: {"Value": value} for key, value in outputs.items()},
            }
        ),
    )


def test_the_table_is_the_stack_output_named_history_table_name(
    endpoint: str, golden: str, session: boto3.Session
) -> None:
    # Given a stack whose HistoryTableName comes after another output, and a stack without one
    stack_with_outputs(
        session,
        endpoint,
        "batchlens-outputs",
        AlertTopicArn="arn:aws:sns:us-east-1:123456789012:not-the-history-table",
        HistoryTableName=golden,
    )
    stack_with_outputs(session, endpoint, "not-batchlens", AlertTopicArn=golden)

    def jobs(stack: str) -> tuple[int, str, str]:
        return run("jobs", "--stack", stack, "--endpoint-url", endpoint, *MARCH, "-o", "json")

    # When jobs are listed through each, then the first reads the table its output names
    code, out, _ = jobs("batchlens-outputs")
    assert code == 0
    assert len(out.splitlines()) == 10
    # and the second says what it lacks, in one line
    assert jobs("not-batchlens") == (
        1,
        "",
        "batchlens: stack 'not-batchlens' has no HistoryTableName output; "
        "is it a batchlens stack?\n",
    )


def test_verbose_counts_the_stack_lookup_too(
    endpoint: str, golden: str, session: boto3.Session
) -> None:
    # Given the history table named by a deployed stack's output
    stack_with_outputs(session, endpoint, "batchlens-verbose", HistoryTableName=golden)

    # When jobs are listed through it with -v
    code, _, err = run(
        "jobs", "--stack", "batchlens-verbose", "--endpoint-url", endpoint, *MARCH,
        "--queue", "etl-queue", "-v",
    )  # fmt: skip

    # Then the calls reported are every call made: CloudFormation's as well as DynamoDB's
    assert code == 0
    assert err.startswith("batchlens: 2 BatchGetItem, 1 DescribeStacks, 8 Query in ")


def test_notes_are_for_tables_and_pipes_get_only_data(endpoint: str, golden: str) -> None:
    # Given questions the golden history has no answer to, or more answers than the limit
    nowhere = (*MARCH, "--queue", "no-such-queue")

    # When they are asked for JSON or CSV
    # Then stderr stays empty (no "No jobs match.", no limit hint) and a CSV keeps its header
    assert query(endpoint, golden, "jobs", *nowhere, "-o", "json") == (0, "", "")
    code, out, err = query(endpoint, golden, "jobs", *MARCH, "--limit", "1", "-o", "json")
    assert (code, len(out.splitlines()), err) == (0, 1, "")
    assert query(endpoint, golden, "failures", *nowhere, "-o", "csv") == (
        0,
        "by,group,count,share,lastFailedAt,exampleJobId,exampleJobName,exampleSummary\n",
        "",
    )
    assert query(endpoint, golden, "stats", *nowhere, "-o", "csv") == (
        0,
        "queue,jobs,succeeded,failed,failureRate,queueWaitP50,queueWaitP95,runP50,runP95\n",
        "",
    )


def test_failures_and_stats_say_so_when_there_is_nothing_to_count(
    endpoint: str, golden: str
) -> None:
    # Given a queue the golden history has never seen
    nowhere = (*MARCH, "--queue", "no-such-queue")

    # When its failures and stats are asked for as a table
    # Then a note on stderr says there was nothing, and the exit status is 0
    assert query(endpoint, golden, "failures", *nowhere) == (0, "", "No failed jobs.\n")
    assert query(endpoint, golden, "stats", *nowhere) == (0, "", "No jobs in that time range.\n")


def test_several_jobs_as_a_table_are_apart_by_a_blank_line(
    endpoint: str, golden: str, utc: None
) -> None:
    # Given the OOM job and the failed service job in the golden history
    service = next(r for r in golden_records() if r.job_arn and ":service-job/" in r.job_arn)

    # When both are shown as tables
    code, out, _ = query(endpoint, golden, "job", OOM_JOB, service.job_id)

    # Then the second begins after one blank line
    assert code == 0
    assert out.startswith(JOB_TABLE + f"\nJob            {service.job_name} ({service.job_id})\n")


def test_failures_category_counts_only_those_categories(endpoint: str, golden: str) -> None:
    # Given the golden history's failures of five categories
    # When failures are counted for two categories
    code, out, _ = query(
        endpoint, golden, "failures", *MARCH, "--category", "OUT_OF_MEMORY,IMAGE_PULL", "-o",
        "json",
    )  # fmt: skip

    # Then only those groups are there
    assert code == 0
    assert [(line["group"], line["count"]) for line in map(json.loads, out.splitlines())] == [
        ("IMAGE_PULL", 1),
        ("OUT_OF_MEMORY", 1),
    ]


def test_status_and_category_may_be_repeated(endpoint: str, golden: str) -> None:
    # Given the golden history
    # When --status and --category are each given twice
    code, out, _ = query(
        endpoint, golden, "jobs", *MARCH, "--name", "etl-nightly", "--status", "FAILED",
        "--status", "SUCCEEDED", "-o", "json",
    )  # fmt: skip
    assert code == 0
    assert names(out) == ["etl-nightly-orders-backfill-20250301", "etl-nightly-orders-20250313"]
    code, out, _ = query(
        endpoint, golden, "jobs", *MARCH, "--category", "OUT_OF_MEMORY", "--category",
        "HOST_TERMINATED", "-o", "json",
    )  # fmt: skip

    # Then every value given counts, not only the last
    assert code == 0
    assert names(out) == ["clickstream-hourly-20250314-11", "align-NA12878-chr1"]


def test_a_negative_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    # Given no AWS at all (the table `t` is never reached)
    # When --limit is given a negative number
    with pytest.raises(SystemExit) as exited:
        run("jobs", "--table", "t", "--limit", "-1")

    # Then argparse refuses it before anything is asked of AWS, with the usage exit status
    assert exited.value.code == cli.EXIT_USAGE
    assert "argument --limit: must be 0 or more" in capsys.readouterr().err


def test_jobs_are_the_newest_50_by_default(
    endpoint: str, sized_tables: tuple[str, str, list[JobRecord]]
) -> None:
    # Given 300 failures of the last few minutes
    small, _, records = sized_tables

    # When failures are listed without --limit
    code, out, _ = query(
        endpoint, small, "jobs", "--status", "FAILED", "--since", "24h", "-o", "json"
    )

    # Then the newest 50 are shown, as the README says
    assert code == 0
    assert [json.loads(line)["jobId"] for line in out.splitlines()] == [
        r.job_id for r in records[:50]
    ]


def test_the_default_range_is_the_last_7_days(session: boto3.Session, endpoint: str) -> None:
    # Given failures updated 6 and 8 days ago
    history = new_table(session, endpoint)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    for days in (6, 8):
        payload = event("job-failed-oom.json", id=f"{days:08d}-2222-4000-8000-000000000000")
        payload["time"] = (now - timedelta(days=days)).isoformat().replace("+00:00", "Z")
        payload["detail"]["jobId"] = f"{days:08d}-0000-4000-8000-000000000000"
        payload["detail"]["jobName"] = f"failed-{days}-days-ago"
        history.put_latest(record_of(payload))

    # When jobs are listed without --since
    code, out, _ = query(endpoint, history.table_name, "jobs", "-o", "json")

    # Then only the one of the last 7 days is there
    assert code == 0
    assert names(out) == ["failed-6-days-ago"]


class Interrupting(io.StringIO):
    """Standard output as it is when the reader goes away, or the person presses Ctrl-C."""

    def __init__(self, raised: type[BaseException]) -> None:
        super().__init__()
        self.raised = raised

    def write(self, text: str) -> int:
        raise self.raised


@pytest.mark.parametrize(
    ("raised", "status"), [(BrokenPipeError, cli.EXIT_OK), (KeyboardInterrupt, 130)]
)
def test_a_closed_pipe_is_success_and_ctrl_c_is_130(
    endpoint: str, golden: str, raised: type[BaseException], status: int
) -> None:
    # Given standard output that fails as jobs print (`| head` has read enough, or Ctrl-C)
    err = io.StringIO()

    # When jobs are listed
    code = cli.main(
        ["jobs", "--table", golden, "--endpoint-url", endpoint, *MARCH, "-o", "json"],
        stdout=Interrupting(raised),
        stderr=err,
    )

    # Then the command ends quietly: 0 for a closed pipe, 130 (128 + SIGINT) for Ctrl-C
    assert (code, err.getvalue()) == (status, "")


# --- items a reader cannot show ---------------------------------------------------------------

FAILED_NAMES = ("job-failed-oom.json", "job-failed-spot.json", "job-failed-image-pull.json")


def test_a_job_whose_stored_record_cannot_be_read_is_one_line_and_the_rest_still_show(
    session: boto3.Session, endpoint: str
) -> None:
    # Given three failed jobs, the newest two of which hold no readable record: one without its
    # `record` attribute, one whose record is cut short (an item edited by hand, or written by
    # something other than this version's enricher)
    history = new_table(session, endpoint)
    client: Any = history._client
    oom, spot, pull = (record_of(event(name)) for name in FAILED_NAMES)
    history.put_latest(pull)  # 03:02, the oldest
    for record, damage in ((oom, None), (spot, '{"schemaVersion": 1, "jobId"')):
        item = latest_item(record, RETENTION_DAYS)
        if damage is None:
            del item["record"]
        else:
            item["record"] = {"S": damage}
        client.put_item(TableName=history.table_name, Item=item)
    broken = {oom.job_id, spot.job_id}

    def said(err: str) -> set[str]:
        return {line.split("'")[1] for line in err.splitlines() if "not a JobRecord" in line}

    # When the newest failure is listed, and every failure counted
    code, out, err = query(
        endpoint, history.table_name, "jobs", *MARCH, "--limit", "1", "-o", "json"
    )

    # Then the readable job is shown (the unreadable ones do not use up the limit), each
    # unreadable one is named in one line, and the exit status says the answer is short
    assert (code, names(out)) == (1, [pull.job_name])
    assert said(err) == broken
    assert "Traceback" not in err
    code, out, err = query(endpoint, history.table_name, "failures", *MARCH, "-o", "json")
    assert (code, [json.loads(line)["count"] for line in out.splitlines()]) == (1, [1])
    assert said(err) == broken
    code, out, err = query(endpoint, history.table_name, "stats", *MARCH, "-o", "json")
    assert (code, [json.loads(line)["jobs"] for line in out.splitlines()]) == (1, [1])

    # And `job` says which job it cannot show, and still shows the others asked for
    code, out, err = query(endpoint, history.table_name, "job", oom.job_id, pull.job_id)
    assert code == 1
    assert err == f"batchlens: job {oom.job_id!r}: its stored record is not a JobRecord\n"
    assert f"Job            {pull.job_name} ({pull.job_id})" in out


def test_a_name_prefix_reads_only_the_records_the_limit_shows(
    session: boto3.Session, endpoint: str, calls: Calls
) -> None:
    # Given 250 failures of one day whose names sort the other way round from their times (byName
    # keys sort by name, so the day's entries are all read to find the newest)
    history = new_table(session, endpoint)
    moment = datetime(2025, 3, 14, 12, tzinfo=UTC)
    records = recent_records(moment)[:250]
    bulk_put(
        history,
        [r.model_copy(update={"job_name": f"render-{249 - n:03d}"}) for n, r in enumerate(records)],
    )

    # When the newest job of the name prefix is listed
    code, out, _ = query(
        endpoint, history.table_name, "jobs", "--since", "2025-03-14T00:00:00Z", "--until",
        "2025-03-14T23:00:00Z", "--name", "render-", "--limit", "1", "-o", "json",
    )  # fmt: skip

    # Then it is the newest by time, its record read with one BatchGetItem (the day's entries are
    # all queried, but not their 250 records)
    assert (code, names(out)) == (0, ["render-249"])
    assert calls.count("BatchGetItem") == 1


def test_the_readme_names_every_permission_the_query_commands_use(
    endpoint: str, golden: str, calls: Calls
) -> None:
    # Given the README's IAM for the CLI (what the query commands need; backfill needs more)
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    bullet = readme.split("- **IAM for the CLI**", 1)[1].split("`backfill` also needs", 1)[0]

    # When every query command runs
    for argv in (("jobs", *MARCH), ("job", OOM_JOB), ("failures", *MARCH), ("stats", *MARCH)):
        assert query(endpoint, golden, *argv)[0] == 0

    # Then each DynamoDB operation they made is one the README grants
    operations = {name for name, _ in calls.made}
    assert {"Query", "GetItem", "BatchGetItem"} <= operations
    assert not [op for op in operations if f"`dynamodb:{op}`" not in " ".join(bullet.split())]


def test_a_filtered_page_reads_only_the_records_the_limit_shows(
    session: boto3.Session, endpoint: str, calls: Calls
) -> None:
    # Given 250 out-of-memory failures of one day: a category is a filter, so DynamoDB's page is
    # its 1 MB (every one of them), not the limit
    history = new_table(session, endpoint)
    moment = datetime(2025, 3, 14, 12, tzinfo=UTC)
    bulk_put(history, recent_records(moment)[:250])

    # When the newest one is listed
    code, out, _ = query(
        endpoint, history.table_name, "jobs", *MARCH, "--status", "FAILED", "--category",
        "OUT_OF_MEMORY", "--limit", "1", "-o", "json",
    )  # fmt: skip

    # Then it is shown, from one BatchGetItem of the page's first 100 records, not three reading
    # all 250 (MARCH ends at midnight of the 15th: its partition is read too, empty)
    assert (code, names(out)) == (0, ["sample-00000"])
    assert (calls.count("Query"), calls.count("BatchGetItem")) == (2, 1)
