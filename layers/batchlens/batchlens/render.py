"""How the CLI prints what it read: a table for people, JSON Lines and CSV for pipes.

Tables show local time (the zone is named in the header); JSON and CSV keep the history's UTC
ISO-8601 times. JSON output of records is the JobRecord exactly as stored (schema v1). Pure code
over the records' JSON form; CLI-only.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from batchlens.query import FailureGroup, QueueStats, field_map
from batchlens.text import printable

FORMATS = ("table", "json", "csv")
NAME_WIDTH = 40
SUMMARY_WIDTH = 80

JOB_COLUMNS = (
    "updatedAt",
    "status",
    "jobQueue",
    "jobName",
    "jobId",
    "jobKind",
    "jobDefinition",
    "attemptsUsed",
    "attemptsAllowed",
    "queuedSeconds",
    "runSeconds",
    "category",
    "summary",
    "enrichment",
    "console",
    "logs",
)


# --- values ------------------------------------------------------------------------------


def parse_iso(value: object) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def local_time(value: object) -> str:
    """`2025-03-14 10:08:46` in the local zone; `-` when absent."""
    moment = parse_iso(value)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def zone_of(values: Iterable[object]) -> str:
    """The local zone's name(s) at these times (`EST/EDT` when they straddle a change)."""
    zones: list[str] = []
    for value in values:
        moment = parse_iso(value)
        zone = moment.astimezone().tzname() if moment else None
        if zone and zone not in zones:
            zones.append(zone)
    return "/".join(zones) or datetime.now().astimezone().tzname() or "local"


def duration(seconds: object) -> str:
    """`45s`, `16m28s`, `2h03m`, `3d04h`; `-` when absent (or not a number of seconds)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    if not math.isfinite(seconds):
        return "-"
    total = int(seconds)  # truncated, as the alerts show it: the same job reads the same
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def clip(text: object, width: int) -> str:
    value = " ".join(printable("" if text is None else str(text)).split())
    return value if len(value) <= width else value[: width - 1] + "…"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _queue(record: Mapping[str, Any]) -> str:
    return str(field_map(record, "jobQueue").get("name") or "")


def _definition(record: Mapping[str, Any]) -> str:
    definition = field_map(record, "jobDefinition")
    if not definition.get("name"):
        return ""
    revision = definition.get("revision")
    return f"{definition['name']}:{revision}" if revision is not None else str(definition["name"])


def _failure(record: Mapping[str, Any]) -> Mapping[str, Any]:
    return field_map(record, "failure")


def _attempts(record: Mapping[str, Any]) -> str:
    return f"{record.get('attemptsUsed', 0)}/{record.get('attemptsAllowed', 1)}"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart, the last one unpadded."""
    lines = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(line[n]) for line in lines) for n in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell if n == len(widths) - 1 else cell.ljust(widths[n]) for n, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


# --- jobs ---------------------------------------------------------------------------------


def _csv_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` with its text made printable: CSV, unlike JSON, escapes nothing, and a CSV is read
    on a terminal (`cat jobs.csv`) as often as in a spreadsheet."""
    return {
        key: printable(value) if isinstance(value, str) else value for key, value in row.items()
    }


def job_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The CSV columns of one record (UTC times, seconds as numbers; text printable)."""
    failure = _failure(record)
    links = field_map(record, "links")
    return _csv_row(
        {
            "updatedAt": record.get("eventTime"),
            "status": record.get("status"),
            "jobQueue": _queue(record),
            "jobName": record.get("jobName"),
            "jobId": record.get("jobId"),
            "jobKind": record.get("jobKind"),
            "jobDefinition": _definition(record),
            "attemptsUsed": record.get("attemptsUsed"),
            "attemptsAllowed": record.get("attemptsAllowed"),
            "queuedSeconds": record.get("queuedSeconds"),
            "runSeconds": record.get("runSeconds"),
            "category": failure.get("category"),
            "summary": failure.get("summary"),
            "enrichment": record.get("enrichment"),
            "console": links.get("console"),
            "logs": links.get("logs"),
        }
    )


def write_jobs(records: Iterable[Mapping[str, Any]], output: str, out: TextIO) -> int:
    """Print records in `output` format; returns how many. JSON and CSV stream as they come."""
    count = 0
    if output == "json":
        for record in records:
            print(json.dumps(record), file=out)
            count += 1
        return count
    if output == "csv":
        writer = csv.DictWriter(out, fieldnames=JOB_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in records:
            writer.writerow(job_row(record))
            count += 1
        return count
    rows = []
    shown: list[object] = []
    for record in records:
        failure = _failure(record)
        shown.append(record.get("eventTime"))
        rows.append(
            (
                local_time(record.get("eventTime")),
                str(record.get("status") or ""),
                _queue(record),
                clip(record.get("jobName"), NAME_WIDTH),
                str(record.get("jobId") or ""),
                _attempts(record),
                duration(record.get("runSeconds")),
                str(failure.get("category") or "-"),
                clip(failure.get("summary"), SUMMARY_WIDTH),
            )
        )
    if rows:
        headers = (
            f"UPDATED ({zone_of(shown)})",
            "STATUS",
            "QUEUE",
            "NAME",
            "JOB ID",
            "ATTEMPTS",
            "RUN",
            "CATEGORY",
            "SUMMARY",
        )
        print(table(headers, rows), file=out)
    return len(rows)


def write_job(
    record: Mapping[str, Any],
    timeline: Sequence[Mapping[str, Any]],
    output: str,
    out: TextIO,
    *,
    header: bool = True,
) -> None:
    """One job: its latest record, attempts and timeline (table); the record (JSON, CSV row).

    `header=False` leaves out the CSV header, for a job after the first.
    """
    if output == "json":
        print(json.dumps(record), file=out)
        return
    if output == "csv":
        writer = csv.DictWriter(out, fieldnames=JOB_COLUMNS, lineterminator="\n")
        if header:
            writer.writeheader()
        writer.writerow(job_row(record))
        return
    failure = _failure(record)
    links = field_map(record, "links")
    fields: list[tuple[str, str]] = [
        ("Job", f"{record.get('jobName')} ({record.get('jobId')})"),
        ("Queue", _queue(record)),
        ("Definition", _definition(record) or str(record.get("serviceJobType") or "-")),
        ("Kind", str(record.get("jobKind") or "-")),
        (
            "Status",
            " — ".join(str(v) for v in (record.get("status"), record.get("statusReason")) if v),
        ),
    ]
    if record.get("parentJobId"):
        fields.append(("Parent", str(record["parentJobId"])))
    summary = record.get("arrayStatusSummary")
    if isinstance(summary, Mapping) and summary:
        counts = ", ".join(f"{status} {n}" for status, n in summary.items() if n)
        fields.append(("Children", f"{record.get('arraySize') or '?'} ({counts or 'none yet'})"))
    if failure:
        fields += [
            ("Failure", f"{failure.get('category')}: {failure.get('summary')}"),
            ("Detail", str(failure.get("detail") or "-")),
            ("Batch retries", "yes" if failure.get("batchWillRetry") else "no"),
            ("Next step", str(failure.get("nextStep") or "-")),
        ]
    fields += [
        ("Created", local_time(record.get("createdAt"))),
        ("Started", local_time(record.get("startedAt"))),
        ("Stopped", local_time(record.get("stoppedAt"))),
        (
            "Durations",
            f"queued {duration(record.get('queuedSeconds'))}, "
            f"ran {duration(record.get('runSeconds'))}, "
            f"total {duration(record.get('totalSeconds'))}",
        ),
        ("Attempts", _attempts(record)),
        ("Console", str(links.get("console") or "-")),
        ("Logs", str(links.get("logs") or "-")),
        (
            "Updated",
            f"{local_time(record.get('eventTime'))} ({zone_of([record.get('eventTime')])}), "
            f"{record.get('enrichment')}, event {record.get('eventId')}",
        ),
    ]
    width = max(len(label) for label, _ in fields)
    for label, value in fields:
        # A reason is free text (TerminateJob's, a log's): its escapes must not drive the terminal.
        print(f"{label.ljust(width)}  {printable(value)}", file=out)

    listed = record.get("attempts")
    attempts = [a for a in listed if isinstance(a, Mapping)] if isinstance(listed, list) else []
    if attempts:
        attempt_times = [a.get(key) for a in attempts for key in ("startedAt", "stoppedAt")]
        print(f"\nAttempts ({zone_of(attempt_times)})", file=out)
        rows = [
            (
                str(attempt.get("number")),
                local_time(attempt.get("startedAt")),
                local_time(attempt.get("stoppedAt")),
                duration(attempt.get("durationSeconds")),
                "-" if attempt.get("exitCode") is None else str(attempt.get("exitCode")),
                clip(attempt.get("reason") or attempt.get("statusReason"), SUMMARY_WIDTH),
            )
            for attempt in attempts
        ]
        print(table(("#", "STARTED", "STOPPED", "RAN", "EXIT", "REASON"), rows), file=out)

    if not timeline:
        print("\nTimeline\n(no transitions recorded)", file=out)
        return
    events: list[tuple[str, str, str, str, str]] = []
    moments: list[str | None] = []
    for item in timeline:
        sk = str(item.get("sk", ""))
        moments.append(sk.split("#", 2)[1] if sk.count("#") >= 2 else None)
        latest = item.get("latestAttempt") or {}
        events.append(
            (
                local_time(moments[-1]),
                str(item.get("status") or ""),
                str(item.get("attemptsFinished", "")),
                str(item.get("category") or "-"),
                clip(
                    item.get("summary") or latest.get("reason") or item.get("statusReason"),
                    SUMMARY_WIDTH,
                ),
            )
        )
    print(f"\nTimeline ({zone_of(moments)})", file=out)
    print(table(("TIME", "STATUS", "ATTEMPTS DONE", "CATEGORY", "REASON"), events), file=out)


# --- failures and stats ---------------------------------------------------------------------


def write_failures(groups: Sequence[FailureGroup], by: str, output: str, out: TextIO) -> None:
    if output == "json":
        for group in groups:
            line = {
                "by": by,
                "group": group.key,
                "count": group.count,
                "share": round(group.share, 4),
                "lastFailedAt": group.last_failed_at,
                "example": group.example,
            }
            print(json.dumps(line), file=out)
        return
    if output == "csv":
        columns = (
            "by",
            "group",
            "count",
            "share",
            "lastFailedAt",
            "exampleJobId",
            "exampleJobName",
            "exampleSummary",
        )
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for group in groups:
            writer.writerow(
                _csv_row(
                    {
                        "by": by,
                        "group": group.key,
                        "count": group.count,
                        "share": round(group.share, 4),
                        "lastFailedAt": group.last_failed_at,
                        "exampleJobId": group.example.get("jobId"),
                        "exampleJobName": group.example.get("jobName"),
                        "exampleSummary": _failure(group.example).get("summary"),
                    }
                )
            )
        return
    rows = [
        (
            group.key,
            str(group.count),
            percent(group.share),
            local_time(group.last_failed_at),
            f"{group.example.get('jobName')} ({group.example.get('jobId')})",
            clip(_failure(group.example).get("summary"), SUMMARY_WIDTH),
        )
        for group in groups
    ]
    last = zone_of(group.last_failed_at for group in groups)
    headers = (by.upper(), "JOBS", "SHARE", f"LAST ({last})", "EXAMPLE", "SUMMARY")
    print(table(headers, rows), file=out)


STATS_COLUMNS = (
    "queue",
    "jobs",
    "succeeded",
    "failed",
    "failureRate",
    "queueWaitP50",
    "queueWaitP95",
    "runP50",
    "runP95",
)


def write_stats(stats: Sequence[QueueStats], output: str, out: TextIO) -> None:
    lines = [
        {
            "queue": s.queue,
            "jobs": s.jobs,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "failureRate": None if s.failure_rate is None else round(s.failure_rate, 4),
            "queueWaitP50": s.queue_wait_p50,
            "queueWaitP95": s.queue_wait_p95,
            "runP50": s.run_p50,
            "runP95": s.run_p95,
        }
        for s in stats
    ]
    if output == "json":
        for line in lines:
            print(json.dumps(line), file=out)
        return
    if output == "csv":
        writer = csv.DictWriter(out, fieldnames=STATS_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lines)
        return
    rows = [
        (
            s.queue,
            str(s.jobs),
            str(s.succeeded),
            str(s.failed),
            percent(s.failure_rate),
            duration(s.queue_wait_p50),
            duration(s.queue_wait_p95),
            duration(s.run_p50),
            duration(s.run_p95),
        )
        for s in stats
    ]
    headers = (
        "QUEUE",
        "JOBS",
        "SUCCEEDED",
        "FAILED",
        "FAILURE RATE",
        "WAIT P50",
        "WAIT P95",
        "RUN P50",
        "RUN P95",
    )
    print(table(headers, rows), file=out)
