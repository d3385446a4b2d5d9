"""The enrichment pipeline for one batch of events: parse → describe → normalise → store → alert.

Work is done per batch, not per event: every distinct job id is described once (DescribeJobs takes
100 ids a call), the events of one job are collapsed into one conditional write of the newest, the
writes of different jobs go out concurrently, timeline items go out 25 at a time and alerts 10 at a
time. A record that cannot be processed fails alone and is reported back to SQS for redelivery.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from batchlens import alerts, limits, logtail, rollup
from batchlens.describe import Descriptions, describe_jobs, describe_service_jobs
from batchlens.events import BatchEvent, InvalidEvent, parse_event
from batchlens.history import BATCH_WRITE_MAX, HistoryTable, WriteOutcome, version_of
from batchlens.publish import Claim, publish_alerts
from batchlens.records import Enrichment, JobRecord, normalise
from batchlens.redact import Redactor, guard_logger
from batchlens.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_sns import SNSClient

    from batchlens.publish import AlertLedger

logger = logging.getLogger("batchlens")

#: Time an invocation must still have to publish alerts (at most a quarter of its timeout): a
#: timeout between SNS accepting an alert and the ledger recording it would send it again once its
#: claim expires. With less time left, the records are retried by SQS instead.
ALERT_MARGIN_MS = 5_000

#: Tries of the ledger's "sent" mark after a publish (each is boto3's own retries).
COMPLETE_ATTEMPTS = 3


#: The most characters of a poison record's reason kept (logged, and returned for a bare event):
#: it may quote an input field of any length, and a log line over 256 KiB is split in two.
POISON_REASON_MAX = 1_000

#: Concurrent conditional writes within one batch (boto3 clients are thread-safe).
WRITE_CONCURRENCY = 16

#: The share of the invocation's remaining time the Batch API may take to describe a batch. A
#: call that hangs is retried by boto3 for about a minute (5 attempts of a 10 s read timeout),
#: longer than the function's timeout: past its share, the batch goes on with the events' own
#: detail instead of timing out whole, so alerts still go out while the Batch API is unwell.
DESCRIBE_SHARE = 0.5

#: Threads for the describe calls, apart from the writers: a call still hanging after its share
#: keeps its thread (it cannot be cancelled) and must not hold up a later batch's writes.
DESCRIBE_THREADS = 4

#: Threads for the log excerpts, apart from the writers for the same reason: a read still running
#: after `logtail.FETCH_TIMEOUT_SECONDS` must not hold up the "sent" marks or a later batch.
LOG_THREADS = 16


@dataclass(frozen=True, slots=True)
class Message:
    """One delivery: the SQS message id (or the event id for a bare event) and its body."""

    message_id: str
    body: str | Mapping[str, Any]
    #: SQS's ApproximateReceiveCount: above 1, SQS has delivered this message before.
    receive_count: int = 1

    @classmethod
    def from_sqs(cls, record: Mapping[str, Any]) -> Message:
        """A record of Lambda's SQS event."""
        count = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
        return cls(
            record["messageId"],
            record["body"],
            int(count) if isinstance(count, str) and count.isascii() and count.isdigit() else 1,
        )


@dataclass(slots=True)
class Processed:
    """What happened to one message."""

    message_id: str
    receive_count: int = 1
    record: JobRecord | None = None
    write: WriteOutcome | None = None
    alerted: bool = False
    error: str | None = None
    poison: bool = False
    #: When its job's latest-state write returned (enrichment latency is measured up to here).
    stored_at: datetime | None = None


@dataclass(slots=True)
class BatchResult:
    processed: list[Processed] = field(default_factory=list)
    describe_calls: int = 0
    publish_calls: int = 0

    @property
    def failures(self) -> dict[str, str]:
        return {p.message_id: p.error for p in self.processed if p.error is not None}

    def count(self, outcome: WriteOutcome) -> int:
        return sum(1 for p in self.processed if p.write is outcome)


class RecordFailed(Exception):
    """Raised for a message the batch could not process, so SQS redelivers it."""


class Enricher:
    """The pipeline, wired to its AWS clients (built once per cold start by the handler)."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch: BatchClient,
        dynamodb: DynamoDBClient,
        sns: SNSClient,
        logs: CloudWatchLogsClient | None = None,
    ) -> None:
        self.settings = settings
        self._batch = batch
        self._sns = sns
        self._logs = logs  # None: alerts go out without log excerpts
        self.history = HistoryTable(dynamodb, settings.table_name, settings.retention_days)
        self._dynamodb = dynamodb
        self._ledger: AlertLedger | None = None
        self.redactor = Redactor(settings.redact_allowlist)
        # Whatever reaches the log (an exception quoting its input, a logged event) is masked too.
        guard_logger(logger, self.redactor)
        self._pool = ThreadPoolExecutor(max_workers=WRITE_CONCURRENCY)
        self._describe_pool = ThreadPoolExecutor(max_workers=DESCRIBE_THREADS)
        self._logs_pool = ThreadPoolExecutor(max_workers=LOG_THREADS)

    @property
    def ledger(self) -> AlertLedger:
        """Built on the first alert: most batches publish none, so cold starts skip it."""
        if self._ledger is None:
            from batchlens.publish import AlertLedger

            self._ledger = AlertLedger(self._dynamodb, self.settings.table_name)
        return self._ledger

    # --- phases ------------------------------------------------------------------------

    def describe(self, events: Sequence[BatchEvent], budget_s: float | None = None) -> Descriptions:
        """Describe every distinct job once; a failing API, or one that has not answered within
        `budget_s` seconds (None: no limit), degrades to the events' own detail."""
        container_ids = [e.job_id for e in events if not e.event_type.is_service]
        service_ids = [e.job_id for e in events if e.event_type.is_service]
        merged = Descriptions()
        calls: list[tuple[str, list[str], Callable[[], Descriptions]]] = []
        if container_ids:
            calls.append(
                ("DescribeJobs", container_ids, lambda: describe_jobs(self._batch, container_ids))
            )
        if service_ids:
            calls.append(
                (
                    "DescribeServiceJob",
                    service_ids,
                    lambda: describe_service_jobs(
                        self._batch, service_ids, concurrency=self.settings.describe_concurrency
                    ),
                )
            )
        ends = None if budget_s is None else time.monotonic() + budget_s
        futures = [(name, ids, self._describe_pool.submit(call)) for name, ids, call in calls]
        for name, ids, future in futures:
            try:
                part = future.result(None if ends is None else max(0.0, ends - time.monotonic()))
            except TimeoutError:  # the call goes on in its thread; its answer comes too late
                why = f"no answer within {budget_s:.1f} s"
                logger.warning("%s: %s; using the events' own detail", name, why)
                merged.errors.update(dict.fromkeys(ids, why))
                continue
            except Exception as exc:  # the event itself still carries the job's detail
                logger.warning(
                    "%s failed; using the events' own detail", name, extra={"error": repr(exc)}
                )
                continue
            if part.errors:
                logger.warning(
                    "%s failed for %d jobs; using the events' own detail",
                    name,
                    len(part.errors),
                    extra={"error": next(iter(part.errors.values()))},
                )
            merged.jobs.update(part.jobs)
            merged.not_found |= part.not_found
            merged.errors.update(part.errors)
            merged.calls += part.calls
        return merged

    def process(
        self,
        messages: Sequence[Message],
        remaining_ms: int | None = None,
        on_stored: Callable[[list[Processed]], None] | None = None,
    ) -> BatchResult:
        """`on_stored` is called with the batch's records once their latest states are written,
        before the timeline and alerts: what it emits then survives a timeout later on."""
        started = time.monotonic()
        result = BatchResult()
        parsed: list[tuple[Processed, BatchEvent]] = []
        for message in messages:
            outcome = Processed(message.message_id, message.receive_count)
            result.processed.append(outcome)
            try:
                parsed.append((outcome, parse_event(message.body)))
            except InvalidEvent as exc:
                # The reason may quote the input (a detail-type, a source): mask it like a record,
                # then cut it, so its log line stays one CloudWatch Logs event.
                reason = limits.clip(self.redactor.text(str(exc))[0], POISON_REASON_MAX)
                outcome.error, outcome.poison = f"invalid event: {reason}", True
                logger.error(
                    "Poison record: %s",
                    reason,
                    extra={"message_id": message.message_id, "reason": reason},
                )
            except Exception as exc:  # a parser bug must fail this record only, never the batch
                outcome.error, outcome.poison = f"unparseable event: {type(exc).__name__}", True
                logger.exception("Poison record", extra={"message_id": message.message_id})

        deadline = _Deadline(remaining_ms, started)
        descriptions = self.describe(
            [event for _, event in parsed], deadline.share_s(DESCRIBE_SHARE)
        )
        result.describe_calls = descriptions.calls

        by_job: dict[str, list[Processed]] = defaultdict(list)
        for outcome, event in parsed:
            try:
                outcome.record = self._normalise(event, descriptions)
            except InvalidEvent as exc:
                reason = limits.clip(self.redactor.text(str(exc))[0], POISON_REASON_MAX)
                outcome.error, outcome.poison = f"invalid event: {reason}", True
                logger.error("Poison record: %s", reason, extra={"message_id": outcome.message_id})
                continue
            except Exception as exc:  # a bug must fail this record only, loudly
                outcome.error = f"normalise failed: {exc!r}"
                logger.exception("Could not normalise", extra={"message_id": outcome.message_id})
                continue
            by_job[outcome.record.job_id].append(outcome)

        # Children first, so a parent arriving in the same batch can read them back (and counts
        # them from memory where byParent, updated asynchronously, does not show them yet).
        parents = {job: group for job, group in by_job.items() if self._is_parent(group)}
        self._store({job: group for job, group in by_job.items() if job not in parents})
        children = [
            p.record
            for job, group in by_job.items()
            if job not in parents
            for p in group
            if p.record is not None and p.record.parent_job_id is not None
        ]
        for group in parents.values():
            self._roll_up(group, children)
        self._store(parents)
        if on_stored is not None:
            try:  # best effort: the records are stored whatever it does
                on_stored([p for group in by_job.values() for p in group])
            except Exception:
                logger.exception("on_stored failed")
        self._write_timeline([p for group in by_job.values() for p in group if p.error is None])
        result.publish_calls = self._alert(
            [p for group in by_job.values() for p in group], deadline
        )
        for group in by_job.values():
            self._hold_newer_siblings(group)
        return result

    def _normalise(self, event: BatchEvent, descriptions: Descriptions) -> JobRecord:
        described = descriptions.jobs.get(event.job_id)
        if described is not None:
            enrichment = Enrichment.DESCRIBED
        elif event.job_id in descriptions.not_found:
            enrichment = Enrichment.NOT_FOUND
        else:
            enrichment = Enrichment.EVENT_ONLY
        build = functools.partial(
            normalise, redactor=self.redactor, failed_dependency=self.history.failed_dependency
        )
        try:
            record = build(event, described, enrichment=enrichment)
        except InvalidEvent as exc:
            if described is None:
                raise
            # The event was valid on its own: a description the model refuses (a shape the API
            # added since, a value out of range) must not make a good event poison.
            logger.warning(
                "Description of job %s refused (%s); using the event's own detail",
                event.job_id,
                limits.clip(self.redactor.text(str(exc))[0], POISON_REASON_MAX),
            )
            record = build(event, None, enrichment=Enrichment.EVENT_ONLY)
        # Cut to the item limit here, once: the stored item, the timeline and the alert all use it.
        return limits.fit_for_store(record)

    def _hold_newer_siblings(self, group: list[Processed]) -> None:
        """Fail a job's newer events in this batch while an older one's alert waits for SQS.

        SQS redelivers only the records reported failed. Redelivered alone, the older event
        would lose to the newer state stored now and count as stale, which never alerts: its
        alert would be lost. Redelivered with them, the batch's newest is a duplicate and its
        older siblings count as redelivered (see `_store`), so the alert goes out, once.
        """
        waiting = [
            version_of(p.record)
            for p in group
            if p.record is not None
            and p.error is not None
            and p.write in (WriteOutcome.FRESH, WriteOutcome.DUPLICATE)
            and not p.alerted
            and alerts.should_alert(p.record, self.settings)
        ]
        if not waiting:
            return
        oldest = min(waiting)
        for processed in group:
            if processed.error is None and version_of(_record(processed)) > oldest:
                processed.error = SIBLING_ALERT_WAITS

    @staticmethod
    def _is_parent(group: list[Processed]) -> bool:
        return any(p.record is not None and rollup.needs_rollup(p.record) for p in group)

    def _roll_up(self, group: list[Processed], children: Sequence[JobRecord]) -> None:
        """A failed parent's failure explained by its failed children (byParent index, and
        `children`, this batch's child records)."""
        for processed in group:
            record = processed.record
            if record is None or not rollup.needs_rollup(record):
                continue
            processed.record = self.history.rolled_up(
                record,
                lambda exc: logger.warning("Children lookup failed", extra={"error": repr(exc)}),
                children,
            )

    def _store(self, by_job: Mapping[str, list[Processed]]) -> None:
        """One conditional write per job: the newest of its events in this batch."""

        def write(group: list[Processed]) -> None:
            job_id = _record(group[0]).job_id
            try:  # whatever goes wrong with one job fails its records only, not the batch
                ordered = sorted(group, key=lambda p: version_of(_record(p)))
                newest = _record(ordered[-1])
                outcome, previous = self.history.put_latest(newest)
            except Exception as exc:
                for processed in group:
                    processed.error = f"store failed: {exc!r}"
                logger.warning(
                    "Store failed",
                    extra={"correlation_id": job_id, "job_id": job_id, "error": repr(exc)},
                )
                return
            stored_at = datetime.now(UTC)
            newest_version = version_of(newest)
            for processed in group:
                processed.stored_at = stored_at
                version = version_of(_record(processed))
                if processed is ordered[-1]:
                    processed.write = outcome
                elif outcome is WriteOutcome.STALE:
                    processed.write = WriteOutcome.STALE
                elif outcome is WriteOutcome.DUPLICATE and (
                    processed.receive_count > 1 or ordered[-1].receive_count == 1
                ):
                    # The table holds this batch's newest already: the batch is redelivered
                    # after its write went through (its alerts postponed, or its timeline
                    # throttled), or botocore retried our own write after losing its answer.
                    # What the table held before is gone, so an older sibling is redelivered
                    # too: its alert goes out unless the ledger shows it sent. Counted stale,
                    # the alert it waited for would be lost.
                    processed.write = WriteOutcome.DUPLICATE
                elif outcome is WriteOutcome.DUPLICATE:
                    # On its first receive beside a redelivered newest, it was in no earlier
                    # delivery: a late event, stale (and silent) like any other.
                    processed.write = WriteOutcome.STALE
                elif previous is not None and version < previous:
                    processed.write = WriteOutcome.STALE
                elif previous is not None and version == previous:
                    processed.write = WriteOutcome.DUPLICATE
                elif version == newest_version:
                    processed.write = WriteOutcome.DUPLICATE  # the same event twice in one batch
                else:
                    # Newer than the table, older than a sibling: in order, it would have been
                    # the latest for a moment; it still counts for alerts and the timeline.
                    processed.write = WriteOutcome.FRESH

        futures: list[Future[None]] = [self._pool.submit(write, group) for group in by_job.values()]
        for future in futures:
            future.result()

    def _write_timeline(self, stored: list[Processed]) -> None:
        """Timeline items, 25 a call, the calls concurrently."""
        # Stale events too: a transition that arrives after a newer state still happened, and its
        # item's key comes from the event, so writing it again is harmless (found by the soak).
        records = [_record(p) for p in stored]

        def write(chunk: list[JobRecord]) -> set[int]:
            try:
                return {id(r) for r in self.history.put_transitions(chunk)}
            except Exception as exc:
                logger.warning("Timeline write failed", extra={"error": repr(exc)})
                return {id(r) for r in chunk}

        chunks = [records[i : i + BATCH_WRITE_MAX] for i in range(0, len(records), BATCH_WRITE_MAX)]
        unwritten: set[int] = set().union(*self._pool.map(write, chunks))
        for processed in stored:
            if id(processed.record) in unwritten:
                processed.error = TIMELINE_FAILED

    def _alert(self, candidates: list[Processed], deadline: _Deadline) -> int:
        """Publish the alerts of fresh (or redelivered) transitions, each exactly once."""
        wanted: dict[str, tuple[alerts.Alert, list[Processed]]] = {}
        for processed in candidates:
            record = processed.record
            if (
                record is None
                # A record whose timeline item waits for the redelivery alerts then, not now:
                # it is sure to be redelivered, and when the ledger's "sent" mark fails as well
                # (the same throttled table), the redelivery would publish its alert again.
                or processed.error is not None
                or processed.write not in (WriteOutcome.FRESH, WriteOutcome.DUPLICATE)
                or not alerts.should_alert(record, self.settings)
            ):
                continue
            key = json.dumps(alerts.alert_key(record), sort_keys=True)
            if key in wanted:
                wanted[key][1].append(processed)  # the same alert twice in one batch
                continue
            # Cut (and marked truncated) when the whole SNS message would pass 256 KiB.
            wanted[key] = (limits.fit_alert(record, alerts.build_alert), [processed])

        if wanted and deadline.too_late():
            self._postpone([group for _, group in wanted.values()])
            return 0
        remaining_ms = deadline.left_ms()

        def claim(alert: alerts.Alert) -> Claim | Exception:
            try:  # the claim expires with the invocation
                return self.ledger.claim(alert, remaining_ms)
            except Exception as exc:
                return exc

        owned: dict[str, tuple[alerts.Alert, list[Processed]]] = {}
        claims = self._pool.map(claim, [alert for alert, _ in wanted.values()])
        for (key, (alert, group)), outcome in zip(wanted.items(), claims, strict=True):
            if outcome is Claim.CLAIMED:
                owned[key] = (alert, group)
                continue
            for processed in group:
                if isinstance(outcome, Exception):
                    processed.error = f"alert ledger failed: {outcome!r}"
                elif outcome is Claim.BUSY:
                    processed.error = "alert is being published by another invocation"
        if not owned or not self.settings.topic_arn:
            return 0
        owned = self._with_log_excerpts(owned, deadline.left_ms())
        if deadline.too_late():  # the excerpts took the time: publish on the redelivery
            for alert, group in owned.values():
                self._release(alert, TimeoutError("too little time left"), group, _POSTPONED)
            return 0

        sent: list[tuple[alerts.Alert, str]] = []
        marking: list[Future[None]] = []

        def published(alert: alerts.Alert, message_id: str) -> None:
            # Marked sent as soon as its PublishBatch answers, while the next group goes out:
            # the shorter the gap between publish and mark, the smaller a crash's window.
            sent.append((alert, message_id))
            marking.append(self._pool.submit(self._complete, alert, message_id))

        try:
            result = publish_alerts(
                self._sns,
                self.settings.topic_arn,
                [alert for alert, _ in owned.values()],
                on_published=published,
            )
        except Exception as exc:
            # Alerts of the groups that went out before the failure are published: never release
            # their claims (a concurrent invocation could claim and send them again).
            went_out = {id(alert) for alert, _ in sent}
            for alert, group in owned.values():
                if id(alert) in went_out:
                    for processed in group:
                        processed.alerted = True
                else:
                    self._release(alert, exc, group, f"publish failed: {exc!r}")
            return 1
        finally:
            wait(marking)
        by_alert = {id(alert): group for alert, group in owned.values()}
        for alert in result.published:
            for processed in by_alert[id(alert)]:
                processed.alerted = True
        for alert, reason in result.failed:
            self._release(alert, RuntimeError(reason), by_alert[id(alert)], f"publish: {reason}")
        return result.calls

    def _with_log_excerpts(
        self, owned: dict[str, tuple[alerts.Alert, list[Processed]]], remaining_ms: int | None
    ) -> dict[str, tuple[alerts.Alert, list[Processed]]]:
        """Quote failed jobs' last log lines in the alerts about to go out (never blocks them)."""
        lines, logs = self.settings.log_tail_lines, self._logs
        if logs is None or (remaining_ms is not None and remaining_ms < logtail.MIN_REMAINING_MS):
            return owned
        prefix = self.settings.job_log_group_prefix
        futures = {
            key: self._logs_pool.submit(
                logtail.fetch_excerpt, logs, alert.record, lines, self.redactor, prefix
            )
            for key, (alert, _) in owned.items()
            if logtail.wants_excerpt(alert.record, lines, self.settings.training_job_logs)
        }
        done, late = wait(futures.values(), timeout=logtail.FETCH_TIMEOUT_SECONDS)
        for future in late:
            future.cancel()  # not started yet: its excerpt would come too late anyway
        quoted = dict(owned)
        for key, future in futures.items():
            if future in done and future.exception() is None and future.result().log_excerpt:
                quoted[key] = (limits.fit_alert(future.result(), alerts.build_alert), owned[key][1])
        return quoted

    def _postpone(self, groups: list[list[Processed]]) -> None:
        logger.warning("Too little time left to publish alerts; SQS will redeliver their events")
        for group in groups:
            for processed in group:
                processed.error = _POSTPONED

    def _complete(self, alert: alerts.Alert, message_id: str) -> None:
        # The alert went out: unless the ledger says so, a redelivery of its event would send it
        # again once the claim expires. Worth more tries than boto3's own (found by the soak).
        for attempt in range(COMPLETE_ATTEMPTS):
            if attempt:
                time.sleep(0.1 * 2 ** (attempt - 1))
            try:
                self.ledger.complete(alert, message_id)
                return
            except Exception as exc:
                error = exc
        logger.error(
            "Could not mark alert sent; a redelivery of its event may send it again",
            extra={"error": repr(error), "alert": dict(alert.key)},
        )

    def _release(
        self, alert: alerts.Alert, error: Exception, group: list[Processed], reason: str
    ) -> None:
        try:
            self.ledger.release(alert, error)
        except Exception as exc:  # its claim expires with the invocation anyway
            logger.warning("Could not release alert claim", extra={"error": repr(exc)})
        for processed in group:
            processed.error = reason


_POSTPONED = "too little time left in this invocation to alert safely"
#: The record's latest state is stored, its timeline item is not: SQS redelivers it.
TIMELINE_FAILED = "timeline write failed"
#: Stored, but an older event of its job waits for its alert: redelivered with it.
SIBLING_ALERT_WAITS = "an older event of this job waits for its alert; redelivered with it"


@dataclass(frozen=True, slots=True)
class _Deadline:
    """When the invocation ends (None: no limit, outside Lambda)."""

    remaining_ms: int | None
    started: float

    def left_ms(self) -> int | None:
        if self.remaining_ms is None:
            return None
        return self.remaining_ms - int((time.monotonic() - self.started) * 1000)

    def share_s(self, share: float) -> float | None:
        """`share` of the time left, in seconds (None: no limit)."""
        left = self.left_ms()
        return None if left is None else max(0, left) * share / 1000

    def too_late(self) -> bool:
        left = self.left_ms()
        if left is None or self.remaining_ms is None:
            return False
        return left < min(ALERT_MARGIN_MS, self.remaining_ms // 4)


def _record(processed: Processed) -> JobRecord:
    assert processed.record is not None
    return processed.record
