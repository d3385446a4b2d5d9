"""The aggregates and the output formats of the query commands, over JobRecord JSON (no AWS)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from batchlens import alerts, render
from batchlens.query import QueryError, group_failures, percentile, queue_stats


def record(
    job_id: str,
    *,
    queue: str = "etl",
    status: str = "FAILED",
    category: str | None = "OUT_OF_MEMORY",
    at: str = "2025-03-14T10:00:00.000Z",
    queued: float | None = 10.0,
    ran: float | None = 60.0,
    kind: str = "CONTAINER",
    definition: str | None = "etl-nightly",
) -> dict[str, Any]:
    return {
        "jobId": job_id,
        "jobName": f"name-{job_id}",
        "jobQueue": {"name": queue, "arn": None},
        "jobDefinition": {"name": definition, "revision": 3, "arn": None} if definition else None,
        "serviceJobType": None if definition else "SAGEMAKER_TRAINING",
        "jobKind": kind,
        "status": status,
        "isTerminal": status in ("SUCCEEDED", "FAILED"),
        "eventTime": at,
        "queuedSeconds": queued,
        "runSeconds": ran,
        "attemptsUsed": 1,
        "attemptsAllowed": 2,
        "failure": {"category": category, "summary": f"{category} happened"} if category else None,
        "links": {"console": "https://console/x", "logs": None},
        "enrichment": "DESCRIBED",
    }


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([], 50, None),
        ([7.0], 95, 7.0),
        ([1.0, 2.0], 50, 1.0),
        ([1.0, 2.0], 95, 2.0),
        ([float(n) for n in range(1, 101)], 50, 50.0),
        ([float(n) for n in range(1, 101)], 95, 95.0),
        ([float(n) for n in range(100, 0, -1)], 95, 95.0),  # order does not matter
    ],
)
def test_percentiles_are_nearest_rank(
    values: list[float], p: float, expected: float | None
) -> None:
    assert percentile(values, p) == expected


def test_failures_group_largest_first_with_the_newest_as_example() -> None:
    records = [
        record("a", category="OUT_OF_MEMORY", at="2025-03-14T09:00:00.000Z"),
        record("b", category="OUT_OF_MEMORY", at="2025-03-14T11:00:00.000Z"),
        record("c", category="TIMEOUT", queue="ml"),
        record("d", category=None, queue="ml", definition=None),
    ]

    groups = group_failures(records, "category")

    assert [(g.key, g.count, g.share) for g in groups] == [
        ("OUT_OF_MEMORY", 2, 0.5),
        ("TIMEOUT", 1, 0.25),
        ("UNKNOWN", 1, 0.25),
    ]
    assert groups[0].example["jobId"] == "b"
    assert groups[0].last_failed_at == "2025-03-14T11:00:00.000Z"
    assert [g.key for g in group_failures(records, "queue")] == ["etl", "ml"]
    assert [g.key for g in group_failures(records, "jobDefinition")] == [
        "etl-nightly",
        "SAGEMAKER_TRAINING",
    ]
    with pytest.raises(QueryError):
        group_failures(records, "colour")


def test_stats_per_queue_count_children_not_parents() -> None:
    records = [
        record("a", status="SUCCEEDED", category=None, queued=10, ran=100),
        record("b", status="FAILED", queued=30, ran=300),
        record("c", status="RUNNING", category=None, queued=20, ran=None),
        record("p", status="FAILED", kind="ARRAY_PARENT", queued=1, ran=10_000),
        record("x", queue="ml", status="RUNNABLE", category=None, queued=None, ran=None),
    ]

    etl, ml = queue_stats(records)

    assert (etl.queue, etl.jobs, etl.succeeded, etl.failed) == ("etl", 3, 1, 1)
    assert etl.failure_rate == 0.5
    assert (etl.queue_wait_p50, etl.queue_wait_p95) == (20, 30)
    assert (etl.run_p50, etl.run_p95) == (100, 300)  # finished jobs only; no parent
    assert (ml.jobs, ml.failure_rate, ml.queue_wait_p50, ml.run_p95) == (1, None, None, None)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0s"),
        (44.6, "44s"),
        (988.4, "16m28s"),
        (3600, "1h00m"),
        (7380, "2h03m"),
        (273600, "3d04h"),
    ],
)
def test_durations_read_at_a_glance(seconds: float | None, text: str) -> None:
    assert render.duration(seconds) == text


@pytest.mark.parametrize("seconds", [44.6, 59.9, 3403.977, 7380.5])
def test_the_cli_and_the_alerts_show_a_duration_alike(seconds: float) -> None:
    # Given one duration, as `batchlens job` and an alert about the same job show it
    shown = render.duration(seconds)
    alerted = alerts.duration(seconds)

    # Then both count the same whole seconds (the alert spells them out: `56m 43s`, `2h 03m 00s`)
    assert alerted.replace(" ", "").startswith(shown)


def test_long_text_is_clipped_on_one_line() -> None:
    assert render.clip("a\nb   c", 10) == "a b c"
    assert render.clip("x" * 12, 10) == "x" * 9 + "…"


def test_the_table_pads_every_column_but_the_last() -> None:
    assert render.table(("A", "BB", "C"), [("aaa", "b", "c c"), ("a", "", "")]) == (
        "A    BB  C\naaa  b   c c\na"
    )


def test_the_zone_header_names_both_zones_across_a_clock_change(new_york: None) -> None:
    times = ["2025-03-08T12:00:00.000Z", "2025-03-10T12:00:00.000Z", None]
    assert render.zone_of(times) == "EST/EDT"
    assert render.local_time("2025-03-10T12:00:00.000Z") == "2025-03-10 08:00:00"
    assert render.local_time(None) == "-"


def test_csv_keeps_utc_times_and_numbers(new_york: None) -> None:
    out = io.StringIO()

    render.write_jobs([record("a")], "csv", out)

    assert out.getvalue().splitlines() == [
        ",".join(render.JOB_COLUMNS),
        "2025-03-14T10:00:00.000Z,FAILED,etl,name-a,a,CONTAINER,etl-nightly:3,1,2,10.0,60.0,"
        "OUT_OF_MEMORY,OUT_OF_MEMORY happened,DESCRIBED,https://console/x,",
    ]


def test_nothing_to_show_prints_nothing() -> None:
    for output in ("table", "json"):
        out = io.StringIO()
        assert render.write_jobs([], output, out) == 0
        assert out.getvalue() == ""


def test_stats_and_failures_as_json_lines() -> None:
    out = io.StringIO()
    render.write_stats(queue_stats([record("a", status="SUCCEEDED", category=None)]), "json", out)
    render.write_failures(group_failures([record("b")], "queue"), "queue", "csv", out)

    assert out.getvalue().splitlines() == [
        '{"queue": "etl", "jobs": 1, "succeeded": 1, "failed": 0, "failureRate": 0.0, '
        '"queueWaitP50": 10.0, "queueWaitP95": 10.0, "runP50": 60.0, "runP95": 60.0}',
        "by,group,count,share,lastFailedAt,exampleJobId,exampleJobName,exampleSummary",
        "queue,etl,1,1.0,2025-03-14T10:00:00.000Z,b,name-b,OUT_OF_MEMORY happened",
    ]


# --- behaviour pinned by a mutation review ---------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (59.4, "59s"),
        (59.9, "59s"),
        (60, "1m00s"),
        (3599, "59m59s"),
        (86_399, "23h59m"),
        (86_400, "1d00h"),
    ],
)
def test_durations_change_unit_exactly_at_a_minute_an_hour_and_a_day(
    seconds: float, text: str
) -> None:
    assert render.duration(seconds) == text


def test_a_name_of_exactly_the_column_width_is_shown_whole() -> None:
    name = "n" * render.NAME_WIDTH
    assert render.clip(name, render.NAME_WIDTH) == name
    assert render.clip(name + "x", render.NAME_WIDTH) == "n" * (render.NAME_WIDTH - 1) + "…"


def job_record(**extra: object) -> dict[str, object]:
    return {
        "jobId": "child:3",
        "jobName": "etl",
        "jobQueue": {"name": "etl", "arn": None},
        "jobKind": "ARRAY_CHILD",
        "status": "FAILED",
        "eventTime": "2025-03-14T10:00:00.000Z",
        "eventId": "e-1",
        "attemptsUsed": 1,
        "attemptsAllowed": 1,
        "links": {"console": None, "logs": None},
        "enrichment": "DESCRIBED",
        **extra,
    }


def shown(record: dict[str, object]) -> dict[str, str]:
    out = io.StringIO()
    render.write_job(record, [], "table", out)
    head = out.getvalue().split("\n\n")[0]
    pairs = (line.split("  ", 1) for line in head.splitlines())  # label, padding, value
    return {label.strip(): value.strip() for label, value in pairs}


def test_a_child_job_names_its_parent() -> None:
    assert shown(job_record(parentJobId="parent-1"))["Parent"] == "parent-1"


def test_an_array_parent_lists_only_the_statuses_its_children_are_in() -> None:
    summary = {"SUCCEEDED": 3, "FAILED": 1, "RUNNING": 0, "PENDING": 0}
    record = job_record(jobKind="ARRAY_PARENT", arraySize=4, arrayStatusSummary=summary)
    assert shown(record)["Children"] == "4 (SUCCEEDED 3, FAILED 1)"


def test_write_jobs_counts_what_it_printed_in_every_format() -> None:
    for output in render.FORMATS:
        assert render.write_jobs([job_record(), job_record()], output, io.StringIO()) == 2


def test_failures_as_json_keep_the_share_to_four_places() -> None:
    failed = [
        job_record(jobId=job_id, failure={"category": category, "summary": "s"})
        for job_id, category in (("a", "OUT_OF_MEMORY"), ("b", "TIMEOUT"), ("c", "TIMEOUT"))
    ]
    out = io.StringIO()
    render.write_failures(group_failures(failed, "category"), "category", "json", out)
    shares = [json.loads(line)["share"] for line in out.getvalue().splitlines()]
    assert shares == [0.6667, 0.3333]


def test_an_attempt_without_an_exit_code_shows_a_dash() -> None:
    # Given a job whose attempt never ran its container (a Spot loss before start)
    attempt = {"number": 1, "exitCode": None, "reason": "Host EC2 terminated"}
    out = io.StringIO()
    render.write_job(job_record(attempts=[attempt]), [], "table", out)
    rows = out.getvalue().split("\n\nAttempts (")[1].split("\n\n")[0].splitlines()
    assert rows[1].split() == ["#", "STARTED", "STOPPED", "RAN", "EXIT", "REASON"]
    assert rows[2].split()[:5] == ["1", "-", "-", "-", "-"]


def test_a_reasons_terminal_escapes_never_reach_the_readers_terminal() -> None:
    # Given a job terminated with a reason that carries escapes (clear the screen, retitle the
    # window, colours) and a bell, in its status, its failure and its attempt
    reason = "\x1b[2J\x1b]0;owned\x07Stopped by \x1b[31mops\x1b[0m\x07 at 09:00"
    record = job_record(
        statusReason=reason,
        failure={"category": "UNKNOWN", "summary": reason, "detail": reason},
        attempts=[{"number": 1, "exitCode": 143, "statusReason": reason}],
    )

    # When the job is shown as a table, and listed
    out = io.StringIO()
    render.write_job(record, [], "table", out)
    render.write_jobs([record], "table", out)

    # Then the reader sees the words, and no control character reaches the terminal
    text = out.getvalue()
    assert "Stopped by ops at 09:00" in text
    assert not [char for char in text if char < " " and char != "\n"]


def test_csv_carries_no_terminal_escapes_either() -> None:
    # Given a failed job whose summary carries a TerminateJob reason with escapes and a bell
    reason = "\x1b[2J\x1b]0;owned\x07Stopped by \x1b[31mops\x1b[0m\x07 at 09:00"
    failed = job_record(failure={"category": "UNKNOWN", "summary": reason})

    # When it is listed, and its failures counted, as CSV (which escapes nothing, unlike JSON)
    out = io.StringIO()
    render.write_jobs([failed], "csv", out)
    render.write_failures(group_failures([failed], "category"), "category", "csv", out)

    # Then the words are there, and no control character reaches a terminal that shows the CSV
    text = out.getvalue()
    assert text.count("Stopped by ops at 09:00") == 2
    assert not [char for char in text if char < " " and char != "\n"]


def test_a_record_whose_fields_have_the_wrong_types_shows_what_it_can() -> None:
    # Given a record cut short or written by another version: objects where text was expected,
    # text where objects or numbers were, an attempt that is null
    odd = job_record(
        jobQueue="etl",
        jobDefinition="etl-nightly:3",
        failure="OUT_OF_MEMORY",
        links=None,
        attempts=[None, {"number": 2, "startedAt": 1741946400, "exitCode": 1}],
        runSeconds="988.3",
        queuedSeconds=float("nan"),
        createdAt=1741946400,
        statusReason=7,
    )

    # When it is shown and listed in every format, and counted by each grouping
    out = io.StringIO()
    render.write_job(odd, [], "table", out)
    for output in render.FORMATS:
        assert render.write_jobs([odd], output, out) == 1
    for by in ("category", "queue", "jobDefinition"):
        render.write_failures(group_failures([odd], by), by, "table", out)
    render.write_stats(queue_stats([odd]), "table", out)

    # Then each odd field shows as absent, and the rest of the job is there
    text = out.getvalue()
    assert "FAILED — 7" in text
    assert "Attempts (" in text
    assert "\n2  -" in text
