"""How fast `batchlens jobs --status FAILED --since 7d` answers, and how many queries it makes.

Starts moto's server in its own process on loopback (as `make demo-up` does), creates the stack's
table from template.yaml, stores jobs spread over the last seven days (10 % failed), and runs the
real CLI against it at growing table sizes. It reports the wall time of the command (median of
several runs, CLI start-up included) and its DynamoDB Query calls: the newest 50 failures cost the
same one or two queries whether the table holds 2,500 jobs or 10,000, and listing every failure
costs one query per 1 MB page (and per day), not per stored job. Never a Scan.

    uv run python -m bench.bench_query [--sizes 2500 10000] [--runs 5] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from batchlens import access, cli, local
from batchlens.events import parse_event
from batchlens.history import LATEST_SK, HistoryTable, job_pk, latest_item
from batchlens.records import JobRecord, normalise

EVENTS = Path(__file__).resolve().parents[1] / "events"
RETENTION_DAYS = 90
FAILED_SHARE = 10  # one job in ten fails


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server in a child process on a free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def templates() -> tuple[JobRecord, JobRecord]:
    failed = normalise(parse_event(json.loads((EVENTS / "job-failed-oom.json").read_text())))
    succeeded = normalise(parse_event(json.loads((EVENTS / "job-succeeded.json").read_text())))
    return failed, succeeded


def jobs(start: int, count: int, now: datetime) -> list[JobRecord]:
    """Jobs `start`…`start+count`, their times spread evenly over the seven days before `now`."""
    failed, succeeded = templates()
    week = timedelta(days=7).total_seconds()
    made = []
    for n in range(start, start + count):
        template = failed if n % FAILED_SHARE == 0 else succeeded
        # A stride coprime with the sizes spreads every prefix of jobs over the whole week.
        offset = (n * 7919) % int(week)
        made.append(
            template.model_copy(
                update={
                    "job_id": f"{n:08d}-0000-4000-8000-000000000000",
                    "job_name": f"{template.job_name}-{n:05d}",
                    "event_id": f"{n:08d}-1111-4000-8000-000000000000",
                    "event_time": now - timedelta(seconds=offset),
                }
            )
        )
    return made


def check_equivalence(client: Any, table: str, record: JobRecord) -> None:
    """The bulk loader must write exactly what the enricher's conditional write does."""
    HistoryTable(client, table, RETENTION_DAYS).put_latest(record)
    key = {"pk": {"S": job_pk(record.job_id)}, "sk": {"S": LATEST_SK}}
    stored = client.get_item(TableName=table, Key=key)["Item"]
    if stored != latest_item(record, RETENTION_DAYS):
        raise SystemExit("bench: the bulk loader no longer matches HistoryTable.put_latest")


def bulk_put(client: Any, table: str, records: list[JobRecord]) -> None:
    def write(start: int) -> None:
        pending: list[Any] = [
            {"PutRequest": {"Item": latest_item(r, RETENTION_DAYS)}}
            for r in records[start : start + 25]
        ]
        while pending:
            response = client.batch_write_item(RequestItems={table: pending})
            pending = response.get("UnprocessedItems", {}).get(table, [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, range(0, len(records), 25)))


class QueryMeter:
    """Counts the DynamoDB calls of the sessions the CLI builds."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        real = access.boto3_session

        def watched(profile: str | None, region: str | None) -> boto3.Session:
            made = real(profile, region)
            made.events.register("before-parameter-build.dynamodb", self)
            return made

        access.boto3_session = watched

    def __call__(self, event_name: str, **_: Any) -> None:
        self.calls[event_name.rsplit(".", 1)[-1]] += 1


def timed(meter: QueryMeter, argv: list[str], runs: int) -> dict[str, Any]:
    """Median wall time of the command and its calls (the same on every run)."""
    seconds = []
    for _ in range(runs):
        meter.calls.clear()
        out = io.StringIO()
        started = time.perf_counter()
        code = cli.main(argv, stdout=out, stderr=io.StringIO())
        seconds.append(time.perf_counter() - started)
        if code != 0:
            raise SystemExit(f"bench: {' '.join(argv)} exited {code}")
    return {
        "seconds": round(statistics.median(seconds), 4),
        "queries": meter.calls["Query"],
        "scans": meter.calls["Scan"],
        "lines": len(out.getvalue().splitlines()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_500, 10_000])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the results here (JSON)")
    args = parser.parse_args()

    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1"
    )
    results = []
    now = datetime.now(tz=UTC).replace(microsecond=0) - timedelta(minutes=1)
    with moto_server() as endpoint:
        session = boto3.Session(region_name=local.REGION)
        table = local.create_stack(session, endpoint_url=endpoint).table_name
        client = session.client("dynamodb", endpoint_url=endpoint)
        failed, _ = templates()
        check_equivalence(client, table, failed.model_copy(update={"job_id": "equivalence"}))
        meter = QueryMeter()
        stored = 0
        base = ["jobs", "--table", table, "--endpoint-url", endpoint]
        for size in sorted(args.sizes):
            started = time.perf_counter()
            bulk_put(client, table, jobs(stored, size - stored, now))
            print(f"stored {size:,} jobs ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
            stored = size
            newest = timed(meter, [*base, "--status", "FAILED", "--since", "7d"], args.runs)
            every = timed(
                meter,
                [*base, "--status", "FAILED", "--since", "7d", "--limit", "0", "-o", "json"],
                1,
            )
            results.append({"storedJobs": size, "newest50": newest, "allFailed": every})

    print(
        "| stored jobs | `jobs --status FAILED --since 7d` | its queries "
        "| every failure (`--limit 0`) | its queries |"
    )
    print("|---:|---:|---:|---:|---:|")
    for row in results:
        newest, every = row["newest50"], row["allFailed"]
        print(
            f"| {row['storedJobs']:,} | {newest['seconds'] * 1000:.0f} ms ({newest['lines'] - 1} "
            f"jobs) | {newest['queries']} | {every['seconds'] * 1000:.0f} ms ({every['lines']} "
            f"jobs) | {every['queries']} |"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
