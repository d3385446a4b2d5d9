"""`batchlens backfill`: the jobs AWS Batch still remembers (about 7 days), into the history.

Per queue, ListJobs for every status (ListServiceJobs for SageMaker training queues), page by
page; DescribeJobs 100 ids a call; each job then goes through the enricher's own normaliser and
conditional store (`HistoryTable.put_latest`), with an event envelope made up from the job
itself. Idempotent: the envelope is derived from the job's state, and a job the table already
holds in that state or a newer one is left alone (the versions are read first, 100 a call), so a
second run writes nothing. A job Batch forgets between ListJobs and DescribeJobs is stored from
its ListJobs summary (`enrichment: NOT_FOUND`). A failed array or multi-node parent is stored
last, its failure rolled up from its failed children in the history, as the enricher does. Every
Batch call waits for a token from one bucket (10 calls a second by default), far below the
account's Batch API rate, so a backfill never starves the enricher or the account's own
tooling. No alerts: past jobs are not news.

CLI-only; the Lambda never imports this module.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from batchlens import limits, rollup
from batchlens.describe import Descriptions, chunks, describe_jobs, describe_service_jobs
from batchlens.events import JOB_STATUSES, SERVICE_JOB_STATUSES, InvalidEvent, parse_event
from batchlens.history import HistoryTable, WriteOutcome, version_of
from batchlens.records import Enrichment, JobKind, JobRecord, normalise
from batchlens.redact import Redactor

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

# ListJobs lists RUNNING jobs only unless asked for a `jobStatus`: every status is asked for,
# JOB_STATUSES (ListJobs) and SERVICE_JOB_STATUSES (ListServiceJobs), from batchlens.events.
SERVICE_QUEUE_TYPES = frozenset({"SAGEMAKER_TRAINING"})
DEFAULT_RATE = 10.0
#: Batch's API rate is shared by the whole account (about 50 calls a second for the listing and
#: describing calls); a backfill must leave most of it to everyone else.
MAX_RATE = 40.0
LIST_PAGE_SIZE = 1000  # ListJobs returns up to 1000 jobs a page when given a status
_ID_NAMESPACE = uuid.UUID("5b1c7f2e-3a9d-4c5e-8f60-2d4b7a1e9c30")
#: How ListJobs lists the children of a parent job.
_CHILDREN_SCOPE = {JobKind.ARRAY_PARENT: "arrayJobId", JobKind.MULTINODE_PARENT: "multiNodeJobId"}


class BackfillError(Exception):
    """A backfill that cannot start as asked; the message says what to change."""


class TokenBucket:
    """At most `rate` calls a second on average, `burst` at once; thread-safe.

    `install(client)` makes every API call of a boto3 client take a token first (a botocore
    `before-parameter-build` hook, which fires once per call), so no code path can forget to.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = max(1.0, burst)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()
        self.calls = 0
        self.waited = 0.0

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens < 1.0:
                wait = (1.0 - self._tokens) / self.rate
                self._sleep(wait)
                self.waited += wait
                self._last = self._clock()
                self._tokens = 1.0
            self._tokens -= 1.0
            self.calls += 1

    def _before_call(self, **_: Any) -> None:
        self.acquire()

    def install(self, client: Any) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        client.meta.events.register(f"before-parameter-build.{service}", self._before_call)


@dataclass(frozen=True, slots=True)
class Queue:
    name: str
    arn: str
    service: bool


@dataclass(slots=True)
class BackfillResult:
    """What a backfill did, in counts (also the JSON of `backfill --output json`)."""

    queues: int = 0
    listed: int = 0
    #: Older than --since, or than --retention-days (its items would expire as written).
    outside_range: int = 0
    described: int = 0
    #: Listed, then unknown to DescribeJobs: stored from the ListJobs summary.
    vanished: int = 0
    written: int = 0
    unchanged: int = 0
    #: The table holds a newer state of the job (from the enricher): left alone.
    newer_in_table: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "queues": self.queues,
            "listed": self.listed,
            "outsideRange": self.outside_range,
            "described": self.described,
            "vanished": self.vanished,
            "written": self.written,
            "unchanged": self.unchanged,
            "newerInTable": self.newer_in_table,
            "failed": self.failed,
        }


def _ms(value: Any) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


def last_activity_ms(job: Mapping[str, Any]) -> int | None:
    """When the job last moved: stopped, else started, else created (epoch ms)."""
    times = [_ms(job.get(key)) for key in ("stoppedAt", "startedAt", "createdAt")]
    known = [t for t in times if t is not None]
    return max(known) if known else None


def _arn_region_account(arn: str | None) -> tuple[str | None, str | None]:
    parts = (arn or "").split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[3] or None, parts[4] or None
    return None, None


def synthesize_event(
    detail: Mapping[str, Any], *, service: bool, region: str, account: str
) -> dict[str, Any]:
    """The EventBridge event AWS Batch would have sent for the job's current state.

    Its time is the job's last activity, and its id is derived from the job's state, so the
    same state always makes the same event (and the same version in the history).
    """
    moment_ms = last_activity_ms(detail)
    # In whole seconds, as EventBridge's `time` is (its events' times can fall before the job's own
    # millisecond times): with the milliseconds kept, this event would outrank the real one of the
    # same state that the enricher stored, and rewrite it.
    moment = (
        datetime.fromtimestamp(moment_ms // 1000, tz=UTC) if moment_ms else datetime.now(tz=UTC)
    ).replace(microsecond=0)
    arn_region, arn_account = _arn_region_account(detail.get("jobArn"))
    attempts = detail.get("attempts") or []
    state = (
        f"{detail.get('jobArn') or detail.get('jobId')}|{detail.get('status')}"
        f"|{len(attempts)}|{moment_ms}"
    )
    return {
        "version": "0",
        "id": f"backfill-{uuid.uuid5(_ID_NAMESPACE, state)}",
        "detail-type": "Batch Service Job State Change" if service else "Batch Job State Change",
        "source": "aws.batch",
        "account": arn_account or account,
        "time": moment.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "region": arn_region or region,
        "resources": [detail["jobArn"]] if detail.get("jobArn") else [],
        "detail": dict(detail),
    }


def detail_from_summary(summary: Mapping[str, Any], queue: Queue) -> dict[str, Any]:
    """A job detail made of what ListJobs (or ListServiceJobs) said about the job."""
    detail = {key: value for key, value in summary.items() if key != "nodeProperties"}
    detail["jobQueue"] = queue.arn
    nodes = summary.get("nodeProperties") or {}
    if nodes.get("nodeIndex") is not None:
        detail["nodeDetails"] = {
            "nodeIndex": nodes["nodeIndex"],
            "isMainNode": nodes.get("isMainNode"),
        }
    elif nodes.get("numNodes") is not None:
        detail["nodeProperties"] = {"numNodes": nodes["numNodes"]}
    return detail


class Backfill:
    """One backfill run, wired to its clients (the Batch client already rate-limited)."""

    def __init__(
        self,
        batch: BatchClient,
        history: HistoryTable,
        *,
        since: datetime | None = None,
        children: bool = False,
        redactor: Redactor | None = None,
        progress: Callable[[str], None] = lambda _: None,
        describe_concurrency: int = 4,
        retention_days: int | None = None,
    ) -> None:
        self._batch = batch
        self._history = history
        self._since_ms = int(since.timestamp() * 1000) if since else None
        # A job whose items would expire `retention_days` after its last activity, already past:
        # no query shows such an item, and once DynamoDB deletes it the next run writes it again.
        self._kept_since_ms = (
            int(time.time() * 1000) - retention_days * 86_400_000 if retention_days else None
        )
        self._children = children
        self._redactor = redactor or Redactor()
        self._progress = progress
        self._concurrency = describe_concurrency
        self._region = batch.meta.region_name or "us-east-1"
        self._parents: list[tuple[str, str]] = []
        # Failed parents wait for their children, whose failures their record summarises.
        self._held: list[JobRecord] = []
        self._listed_before = 0  # `result.listed` when the current queue began
        self._unread_parents: set[str] = set()  # parents rolled up from their own counts
        self.result = BackfillResult()

    # --- listing ------------------------------------------------------------------------

    def queues(self, names: Sequence[str] = ()) -> list[Queue]:
        """The queues to backfill: those named (by name or ARN), else every queue."""
        found: list[Queue] = []
        paginator = self._batch.get_paginator("describe_job_queues")
        pages = paginator.paginate(jobQueues=list(names)) if names else paginator.paginate()
        for page in pages:
            for queue in page.get("jobQueues", []):
                found.append(
                    Queue(
                        name=queue["jobQueueName"],
                        arn=queue["jobQueueArn"],
                        service=queue.get("jobQueueType") in SERVICE_QUEUE_TYPES,
                    )
                )
        missing = [name for name in names if not any(name in (q.name, q.arn) for q in found)]
        if missing:
            raise BackfillError(f"no job queue named {', '.join(map(repr, missing))}")
        return found

    def _summaries(self, queue: Queue, **scope: str) -> Iterator[Mapping[str, Any]]:
        """Every job of the queue (or of one array/multi-node job), one status after another."""
        if queue.service:
            service_pages = self._batch.get_paginator("list_service_jobs")
            for status in SERVICE_JOB_STATUSES:
                for service_page in service_pages.paginate(
                    jobQueue=queue.arn,
                    jobStatus=status,  # type: ignore[arg-type]
                ):
                    yield from service_page.get("jobSummaryList", [])
            return
        pages = self._batch.get_paginator("list_jobs")
        for status in JOB_STATUSES:
            target: dict[str, Any] = dict(scope) if scope else {"jobQueue": queue.arn}
            for page in pages.paginate(
                **target,
                jobStatus=status,  # type: ignore[arg-type]
                PaginationConfig={"PageSize": LIST_PAGE_SIZE},
            ):
                yield from page.get("jobSummaryList", [])

    # --- the run ------------------------------------------------------------------------

    def run(self, names: Sequence[str] = ()) -> BackfillResult:
        queues = self.queues(names)
        self.result.queues = len(queues)
        if not queues:
            self._progress("no job queues in this account and region")
        for queue in queues:
            self._backfill_queue(queue)
        return self.result

    def _backfill_queue(self, queue: Queue) -> None:
        before = self.result.as_dict()
        self._listed_before = self.result.listed
        seen: set[str] = set()
        self._parents = []
        self._store_all(queue, self._in_range(self._summaries(queue), seen))
        if self._children:
            parents, self._parents = self._parents, []
            for parent_id, scope in parents:
                children = self._summaries(queue, **{scope: parent_id})
                self._store_all(queue, self._in_range(children, seen))
        held, self._held = self._held, []
        if held:
            rolled = [self._history.rolled_up(parent, self._unread(parent)) for parent in held]
            self._store(rolled, refresh_rollups=True)
        after = self.result.as_dict()
        delta = {key: after[key] - before[key] for key in after}
        self._progress(
            f"{queue.name}: {delta['listed']} jobs listed, {delta['written']} written, "
            f"{delta['unchanged']} unchanged, {delta['newerInTable']} newer in the history, "
            f"{delta['vanished']} gone before DescribeJobs, {delta['failed']} failed"
        )

    def _in_range(
        self, summaries: Iterator[Mapping[str, Any]], seen: set[str]
    ) -> Iterator[Mapping[str, Any]]:
        for summary in summaries:
            job_id = summary.get("jobId")
            # A job that moves on while we list shows up under two statuses: take it once.
            if not isinstance(job_id, str) or job_id in seen:
                continue
            seen.add(job_id)
            self.result.listed += 1
            moment = last_activity_ms(summary)
            if self._since_ms is not None and (moment is None or moment < self._since_ms):
                self.result.outside_range += 1
                continue
            # In whole seconds, as the made-up event's time (and so the items' TTL) is.
            kept_since = self._kept_since_ms
            if (
                kept_since is not None
                and moment is not None
                and moment // 1000 * 1000 <= kept_since
            ):
                self.result.outside_range += 1
                continue
            yield summary

    def _store_all(self, queue: Queue, summaries: Iterator[Mapping[str, Any]]) -> None:
        pending: list[Mapping[str, Any]] = []
        for summary in summaries:
            pending.append(summary)
            if len(pending) == 100:
                self._store_chunk(queue, pending)
                pending = []
        if pending:
            self._store_chunk(queue, pending)

    def _describe(self, queue: Queue, ids: list[str]) -> Descriptions:
        if queue.service:
            return describe_service_jobs(self._batch, ids, concurrency=self._concurrency)
        return describe_jobs(self._batch, ids)

    def _store_chunk(self, queue: Queue, summaries: list[Mapping[str, Any]]) -> None:
        ids = [str(summary["jobId"]) for summary in summaries]
        descriptions = Descriptions()
        for chunk in chunks(ids):
            part = self._describe(queue, chunk)
            descriptions.jobs.update(part.jobs)
            descriptions.not_found |= part.not_found
            descriptions.errors.update(part.errors)
        records: list[JobRecord] = []
        for summary in summaries:
            job_id = str(summary["jobId"])
            described = descriptions.jobs.get(job_id)
            if job_id in descriptions.errors:
                # Not stored from its summary: the next run, finding nothing newer, describes it.
                self._fail(f"{job_id}: could not be described: {descriptions.errors[job_id]}")
                continue
            if described is not None:
                detail: Mapping[str, Any] = described
                enrichment = Enrichment.DESCRIBED
                self.result.described += 1
            else:
                detail = detail_from_summary(summary, queue)
                enrichment = Enrichment.NOT_FOUND
                self.result.vanished += 1
            try:
                event = parse_event(
                    synthesize_event(
                        detail, service=queue.service, region=self._region, account="unknown"
                    )
                )
                record = normalise(
                    event,
                    None,
                    enrichment=enrichment,
                    redactor=self._redactor,
                    # Named as the enricher names it: the dependency the history shows failed.
                    failed_dependency=self._history.failed_dependency,
                )
                # Cut to the item limit as the enricher cuts it: DynamoDB refuses a larger item,
                # on this run and every run after.
                record = limits.fit_for_store(record)
            except InvalidEvent as exc:
                self._fail(f"{job_id}: {exc}")
                continue
            # The description, not the summary, says for sure whether a job has children.
            if record.job_kind in _CHILDREN_SCOPE:
                self._parents.append((record.job_id, _CHILDREN_SCOPE[record.job_kind]))
            if rollup.needs_rollup(record):
                self._held.append(record)
            else:
                records.append(record)
        self._store(records)
        listed = self.result.listed - self._listed_before
        self._progress(f"{queue.name}: {listed} jobs listed so far")

    def _unread(self, parent: JobRecord) -> Callable[[Exception], None]:
        """Reports a parent whose children could not be read (it is rolled up from its counts)."""

        def unread(exc: Exception) -> None:
            self._unread_parents.add(parent.job_id)
            self._progress(f"{parent.job_id}: its children could not be read: {exc}")

        return unread

    def _store(self, records: list[JobRecord], *, refresh_rollups: bool = False) -> None:
        stored = self._history.stored_versions(record.job_id for record in records)
        newer: list[JobRecord] = []
        for record in records:
            version = version_of(record)
            previous = stored.get(record.job_id)
            if previous is None or previous < version:
                newer.append(record)
            elif previous == version and refresh_rollups:
                self._refresh_rollup(record)
            elif previous == version:
                self.result.unchanged += 1
            else:
                self.result.newer_in_table += 1
        # The timeline first (its keys come from the event, so writing one again is harmless): a
        # job whose transition could not be written is not stored either, so the next run tries
        # it again instead of finding it unchanged and leaving its timeline without it.
        unwritten = {record.job_id for record in self._history.put_transitions(newer)}
        for record in newer:
            if record.job_id in unwritten:
                self._fail(f"{record.job_id}: timeline write failed")
                continue
            try:
                outcome, _ = self._history.put_latest(record)
            except Exception as exc:  # one job's failure must not stop the backfill
                self._fail(f"{record.job_id}: store failed: {exc}")
                continue
            self._count(outcome)

    def _count(self, outcome: WriteOutcome) -> None:
        if outcome is WriteOutcome.FRESH:
            self.result.written += 1
        elif outcome is WriteOutcome.DUPLICATE:
            self.result.unchanged += 1
        else:
            self.result.newer_in_table += 1

    def _refresh_rollup(self, record: JobRecord) -> None:
        """A failed parent the history holds in the same state: its roll-up counts its children
        in the history, which may have reached it since (a later run with --children), so a new
        summary is rewritten in place. One rolled up from its own counts (its children unread)
        never replaces a stored one."""
        if record.job_id in self._unread_parents:
            self.result.unchanged += 1
            return
        try:
            stored = self._history.get_latest(record.job_id)
            if stored is None or stored.record.get("failure") == record.to_json_dict()["failure"]:
                self.result.unchanged += 1
                return
            outcome, _ = self._history.refresh_latest(record)
        except Exception as exc:  # one job's failure must not stop the backfill
            self._fail(f"{record.job_id}: store failed: {exc}")
            return
        self._count(outcome)

    def _fail(self, message: str) -> None:
        self.result.failed += 1
        self.result.errors.append(message)
        self._progress(f"error: {message}")
