"""DynamoDB history: the latest state of every job, its timeline, and the queries over them.

One table (see template.yaml `HistoryTable` and the README's access-pattern table):

| item       | pk         | sk                               | GSIs                            |
|------------|------------|----------------------------------|---------------------------------|
| latest     | `JOB#<id>` | `LATEST`                         | byQueueStatus, byDay, byName,   |
|            |            |                                  | byParent (children only)        |
| transition | `JOB#<id>` | `T#<eventTime>#<status>#<event>` | none                            |
| alert mark | `ALERT`    | `<hash of job, status, attempt>` | none (Powertools Idempotency)   |

The latest item carries a `version` that orders (terminal, finished attempts, status rank, event
time); its write is one conditional UpdateItem that loses to anything newer, so events delivered
late or twice never move a job backwards.

The indexes project only their `INDEX_ATTRIBUTES` besides the keys. Their sort keys hold the
update time (byParent's the status), so nearly every update of a job is a delete and a put in
each of them, and an entry of about 300 bytes costs one write unit where the whole ~1.7 KiB record
cost two. A query reads the records of each page from the table (`query_latest`); the roll-up
counts a parent's failed children from byParent's entries and reads one record, its example.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from batchlens import limits, rollup
from batchlens.failures import FailureCategory
from batchlens.records import JobRecord

logger = logging.getLogger("batchlens")

#: The most jobs a job may depend on (SubmitJob `dependsOn`): the most looked up for one failure.
DEPENDS_ON_MAX = 20

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

LATEST_SK = "LATEST"
#: What each index carries besides keys: what a query filters on (and the roll-up counts), and
#: the version that tells an entry the table has already moved past. byName filters on the update
#: time too, which byDay's sort key holds.
_QUERY_ATTRIBUTES = ("version", "status", "jobQueue", "category")
INDEX_ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "byQueueStatus": _QUERY_ATTRIBUTES,
    "byDay": _QUERY_ATTRIBUTES,
    "byName": (*_QUERY_ATTRIBUTES, "gsi2sk"),
    "byParent": _QUERY_ATTRIBUTES,
}
BATCH_GET_MAX = 100
ALERT_PK = "ALERT"
TTL_ATTRIBUTE = "expiresAt"
BATCH_WRITE_MAX = 25

#: Job statuses in the order a job moves through them; both terminal states share the top rank.
STATUS_RANK: Mapping[str, int] = {
    "SUBMITTED": 0,
    "PENDING": 1,
    "RUNNABLE": 2,
    "SCHEDULED": 3,
    "STARTING": 4,
    "RUNNING": 5,
    "SUCCEEDED": 6,
    "FAILED": 6,
}


class WriteOutcome(StrEnum):
    #: This event is the newest the table has seen for the job: the latest item now shows it.
    FRESH = "FRESH"
    #: The table already holds exactly this state (a redelivery): nothing changed.
    DUPLICATE = "DUPLICATE"
    #: The table holds a newer state: nothing changed.
    STALE = "STALE"


def version_of(record: JobRecord) -> str:
    """A string whose byte order is the order of job states (what DynamoDB compares)."""
    epoch_ms = int(record.event_time.timestamp() * 1000)
    return (
        f"{int(record.is_terminal)}"
        f"|{min(record.attempts_finished, 999):03d}"
        f"|{STATUS_RANK.get(record.status, 0)}"
        f"|{max(epoch_ms, 0):015d}"
        # Last, a queue-blocked event outranks the RUNNABLE of the same moment: Batch reports a
        # block of a job already RUNNABLE, and EventBridge's times have whole seconds only.
        f"|{int(record.event_type.is_queue_blocked)}"
    )


def job_pk(job_id: str) -> str:
    return f"JOB#{job_id}"


def expired(item: Mapping[str, Any], now: float | None = None) -> bool:
    """Has the item's TTL passed? DynamoDB deletes such items only some time later (typically
    within days), and until then reads return them: what a person reads leaves them out."""
    ttl = item.get(TTL_ATTRIBUTE)
    return ttl is not None and "N" in ttl and float(ttl["N"]) <= (now or time.time())


def _job_id(pk: str) -> str:
    return pk.removeprefix("JOB#")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def _n(value: float) -> AttributeValueTypeDef:
    return {"N": str(value)}


def index_keys(record: JobRecord) -> dict[str, str]:
    """The GSI key attributes of a latest item (see the module table)."""
    updated = _iso(record.event_time)
    day = updated[:10]
    keys = {
        "gsi1pk": f"Q#{record.job_queue.name}#{record.status}",
        "gsi1sk": f"{updated}#{record.job_id}",
        "gsi2pk": f"D#{day}#{record.status}",
        "gsi2sk": f"{updated}#{record.job_id}",
        "gsi3pk": f"N#{day}",
        "gsi3sk": f"{record.job_name}#{updated}#{record.job_id}",
    }
    if record.parent_job_id:
        index = record.array_index
        if index is None and "#" in record.job_id:
            tail = record.job_id.rsplit("#", 1)[-1]
            # isdigit() also holds for "²", which int() refuses.
            index = int(tail) if tail.isascii() and tail.isdigit() else None
        keys["gsi4pk"] = f"P#{record.parent_job_id}"
        keys["gsi4sk"] = f"{record.status}#{index if index is not None else 0:06d}"
    return keys


def _back_off(attempt: int) -> None:
    """The wait before asking again for what a batch call held back (UnprocessedItems or
    UnprocessedKeys mean throttling): 50 ms, doubling up to 1 s; none before the first attempt,
    and none after the last, which nothing follows."""
    if attempt:
        time.sleep(min(0.05 * 2 ** (attempt - 1), 1.0))


class ReadThrottled(RuntimeError):
    """DynamoDB still held back part of a batch read (UnprocessedKeys) after every retry."""


class UnreadableRecord(ValueError):
    """A latest item whose `record` is missing or is not a JSON object (cut short, edited by
    hand, or written by something other than this schema's writer)."""


def decoded_record(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JobRecord a latest item holds (DynamoDB's typed form), or None when it holds none."""
    text = (item.get("record") or {}).get("S")
    try:
        record = json.loads(text) if isinstance(text, str) else None
    except ValueError:  # JSONDecodeError: cut short, or not JSON at all
        return None
    return record if isinstance(record, dict) else None


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A latest item read back: the record as stored and its version."""

    record: dict[str, Any]
    version: str
    #: Its TTL has passed when read (see `expired`): DynamoDB deletes it some time later.
    expired: bool = False


def expires_at(record: JobRecord, retention_days: int) -> int:
    """The TTL of the record's items: `retention_days` after its event."""
    return int((record.event_time + timedelta(days=retention_days)).timestamp())


def latest_attributes(
    record: JobRecord, retention_days: int, record_json: str | None = None
) -> dict[str, AttributeValueTypeDef]:
    """The attributes of a job's latest item, besides its key.

    Only what a key, an index or a filter needs lives outside `record`: every clause of the
    update expression costs parsing time on each write.
    """
    attributes: dict[str, AttributeValueTypeDef] = {
        "version": _s(version_of(record)),
        "record": _s(record_json if record_json is not None else record.to_json()),
        "status": _s(record.status),
        "jobQueue": _s(record.job_queue.name),
        TTL_ATTRIBUTE: _n(expires_at(record, retention_days)),
    }
    if record.failure is not None:
        attributes["category"] = _s(record.failure.category.value)
    attributes.update({key: _s(value) for key, value in index_keys(record).items()})
    return attributes


def latest_item(record: JobRecord, retention_days: int) -> dict[str, AttributeValueTypeDef]:
    """The whole latest item as `put_latest` leaves it for a new job (for bulk loads)."""
    return {
        "pk": _s(job_pk(record.job_id)),
        "sk": _s(LATEST_SK),
        **latest_attributes(record, retention_days),
    }


def _category(value: object) -> FailureCategory | None:
    """A stored failure category; None for one this version does not know."""
    try:
        return FailureCategory(value) if isinstance(value, str) else None
    except ValueError:
        return None


class HistoryTable:
    """Adapter over the history table; takes its DynamoDB client."""

    def __init__(self, client: DynamoDBClient, table_name: str, retention_days: int) -> None:
        self._client = client
        self.table_name = table_name
        self.retention_days = retention_days

    # --- writes ------------------------------------------------------------------------

    def put_latest(
        self, record: JobRecord, record_json: str | None = None
    ) -> tuple[WriteOutcome, str | None]:
        """Conditionally replace the job's latest item; never moves a job backwards.

        Returns the outcome and the version the table held before (None for a new job), which
        tells the caller whether other events of the same job were newer than the table too.
        """
        return self._update_latest(
            record, record_json, "attribute_not_exists(pk) OR #version < :version"
        )

    def refresh_latest(self, record: JobRecord) -> tuple[WriteOutcome, str | None]:
        """Rewrite the latest item only where it holds exactly the record's version: the same
        state, told anew (a parent's roll-up whose children reached the history since)."""
        return self._update_latest(record, None, "#version = :version")

    def _update_latest(
        self, record: JobRecord, record_json: str | None, condition: str
    ) -> tuple[WriteOutcome, str | None]:
        attributes = latest_attributes(record, self.retention_days, record_json)
        version = version_of(record)
        names: dict[str, str] = {}
        values: dict[str, AttributeValueTypeDef] = {}
        sets = []
        for position, (name, value) in enumerate(attributes.items()):
            names[f"#a{position}"], values[f":a{position}"] = name, value
            sets.append(f"#a{position} = :a{position}")
        names["#version"], values[":version"] = "version", attributes["version"]
        expression = "SET " + ", ".join(sets)
        if "category" not in attributes:
            expression += " REMOVE category"
        return self._conditional_write(
            lambda: self._client.update_item(
                TableName=self.table_name,
                Key={"pk": _s(job_pk(record.job_id)), "sk": _s(LATEST_SK)},
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="UPDATED_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            ),
            record.job_id,
            version,
        )

    def _conditional_write(
        self, write: Callable[[], Mapping[str, Any]], job_id: str, version: str
    ) -> tuple[WriteOutcome, str | None]:
        """Run a latest write conditioned on `version`; its outcome and the version it replaced.

        `write` returns the old item's version in `Attributes` and, when refused, the item the
        table held (`ReturnValuesOnConditionCheckFailure=ALL_OLD`).
        """
        try:
            response = write()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            old = exc.response.get("Item", {})
            stored = old.get("version", {}).get("S") if isinstance(old, dict) else None
            if stored is None:
                stored = self._stored_version(job_id)
            outcome = WriteOutcome.DUPLICATE if stored == version else WriteOutcome.STALE
            return outcome, stored
        previous = response.get("Attributes", {}).get("version", {}).get("S")
        return WriteOutcome.FRESH, previous

    def _stored_version(self, job_id: str) -> str | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": _s(job_pk(job_id)), "sk": _s(LATEST_SK)},
            ProjectionExpression="#v",
            ExpressionAttributeNames={"#v": "version"},
            ConsistentRead=True,
        )
        return response.get("Item", {}).get("version", {}).get("S")

    def put_transitions(self, records: Sequence[JobRecord]) -> list[JobRecord]:
        """Write a timeline item per observed transition; returns the records it could not write.

        Keys are derived from the event, so a redelivered event rewrites the same item.
        """
        # The same event twice in a batch (two SQS messages) is one item: if it is not written,
        # neither copy is.
        by_key: dict[tuple[str, str], tuple[dict[str, Any], list[JobRecord]]] = {}
        unwritten: list[JobRecord] = []
        for record in records:
            try:
                key, item = self._transition_item(record)
            except Exception as exc:  # one record's item must not fail its chunk's other jobs
                logger.warning(
                    "Timeline item not built", extra={"job_id": record.job_id, "error": repr(exc)}
                )
                unwritten.append(record)
                continue
            by_key.setdefault(key, (item, []))[1].append(record)
        entries = list(by_key.items())
        for start in range(0, len(entries), BATCH_WRITE_MAX):
            chunk = dict(entries[start : start + BATCH_WRITE_MAX])
            for key in self._batch_write(chunk):
                unwritten.extend(chunk[key][1])
        return unwritten

    def _batch_write(
        self,
        chunk: Mapping[tuple[str, str], tuple[dict[str, Any], list[JobRecord]]],
        attempts: int = 5,
    ) -> list[tuple[str, str]]:
        """BatchWriteItem with backoff on UnprocessedItems; returns the keys still unwritten."""
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item, _ in chunk.values()]
        for attempt in range(attempts):
            _back_off(attempt)
            response = self._client.batch_write_item(RequestItems={self.table_name: pending})
            pending = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
            if not pending:
                return []
        return [
            (r["PutRequest"]["Item"]["pk"]["S"], r["PutRequest"]["Item"]["sk"]["S"])
            for r in pending
        ]

    def _transition_item(self, record: JobRecord) -> tuple[tuple[str, str], dict[str, Any]]:
        latest_attempt = record.attempts[-1] if record.attempts else None
        pk = job_pk(record.job_id)
        sk = f"T#{_iso(record.event_time)}#{record.status}#{record.event_id}"
        item: dict[str, Any] = {
            "pk": _s(pk),
            "sk": _s(sk),
            "eventType": _s(record.event_type.value),
            "eventId": _s(record.event_id),
            "status": _s(record.status),
            "attemptsFinished": _n(record.attempts_finished),
            "enrichment": _s(record.enrichment.value),
            TTL_ATTRIBUTE: _n(expires_at(record, self.retention_days)),
        }
        if record.status_reason:
            item["statusReason"] = _s(record.status_reason[:2000])
        if latest_attempt is not None:
            attempt = {
                "number": latest_attempt.number,
                "exitCode": latest_attempt.exit_code,
                "reason": (latest_attempt.reason or "")[:2000] or None,
                "statusReason": (latest_attempt.status_reason or "")[:2000] or None,
            }
            item["latestAttempt"] = _s(json.dumps(attempt))
        if record.failure is not None:
            item["category"] = _s(record.failure.category.value)
            item["summary"] = _s(record.failure.summary)
            item["batchWillRetry"] = {"BOOL": record.failure.batch_will_retry}
        return (pk, sk), item

    # --- reads -------------------------------------------------------------------------

    def failed_dependency(
        self, depends_on: Sequence[str]
    ) -> tuple[str, FailureCategory | None] | None:
        """The dependency that failed (first found in the history), with its own category.

        Where the history shows none failed yet (its event may sit later in this very batch),
        the one dependency not known to have succeeded, if only one is left; else None, and the
        failure lists them all rather than blame one that may have succeeded.
        """
        # One GetItem each, in sequence: AWS Batch allows 20, and a hand-made event listing
        # thousands would hold up the whole batch past the function's timeout.
        unknown: list[str] = list(depends_on[DEPENDS_ON_MAX:])
        looked_up = depends_on[:DEPENDS_ON_MAX]
        for n, job_id in enumerate(looked_up):
            try:
                stored = self.get_latest(job_id)
            except Exception as exc:  # the failure still lists the dependencies
                logger.warning("Dependency lookup failed", extra={"error": repr(exc)})
                unknown.extend(looked_up[n:])
                break
            status = stored.record.get("status") if stored is not None else None
            if stored is not None and status == "FAILED":
                failure = stored.record.get("failure")
                return job_id, _category(
                    failure.get("category") if isinstance(failure, dict) else None
                )
            if status != "SUCCEEDED":
                unknown.append(job_id)
        return (unknown[0], None) if len(unknown) == 1 else None

    def get_latest(self, job_id: str) -> StoredJob | None:
        response = self._client.get_item(
            TableName=self.table_name,
            Key={"pk": _s(job_pk(job_id)), "sk": _s(LATEST_SK)},
            ConsistentRead=True,
        )
        item = response.get("Item")
        if not item:
            return None
        record = decoded_record(item)
        version = (item.get("version") or {}).get("S")
        if record is None or not isinstance(version, str):
            # A KeyError or JSONDecodeError would say nothing of which job, or why.
            raise UnreadableRecord(f"job {job_id!r}: its stored record is not a JobRecord")
        return StoredJob(record=record, version=version, expired=expired(item))

    def timeline(self, job_id: str, *, unexpired: bool = False) -> list[dict[str, Any]]:
        """The job's transitions, oldest first (one Query, paginated); with `unexpired`, only
        those whose TTL has not passed (see `expired`), as a person reads them."""
        items = self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :t)",
            ExpressionAttributeValues={":pk": _s(job_pk(job_id)), ":t": _s("T#")},
        )
        now = time.time()
        return [_plain_item(item) for item in items if not (unexpired and expired(item, now))]

    def failed_children(
        self, parent_job_id: str, known: Sequence[JobRecord] = ()
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """What a failed parent's roll-up reads, without a record per child.

        Its failed children (or nodes) as byParent holds them, in index order, each `{"jobId",
        "category"}`; and the record of the one the roll-up names as its example (None where
        there is none to read). `known` are records just written (the parent's own batch): a GSI
        is updated asynchronously and cannot be read consistently, so they may not be in it yet;
        each failed child among them counts once, where the index would have put it.
        """
        by_job: dict[str, tuple[str, dict[str, Any]]] = {}
        for item in self._query(
            IndexName="byParent",
            KeyConditionExpression="gsi4pk = :p AND begins_with(gsi4sk, :s)",
            ExpressionAttributeValues={":p": _s(f"P#{parent_job_id}"), ":s": _s("FAILED#")},
        ):
            job_id = _job_id(item["pk"]["S"])
            category = item.get("category", {}).get("S")
            by_job[job_id] = (item["gsi4sk"]["S"], {"jobId": job_id, "category": category})
        written: dict[str, JobRecord] = {}
        for record in known:
            if record.parent_job_id != parent_job_id or record.status != "FAILED":
                continue
            written[record.job_id] = record
            category = record.failure.category.value if record.failure else None
            by_job.setdefault(
                record.job_id,
                (index_keys(record)["gsi4sk"], {"jobId": record.job_id, "category": category}),
            )
        children = [child for _, child in sorted(by_job.values(), key=lambda kv: kv[0])]
        example_id = rollup.example_child(children)
        stored = self.get_latest(example_id) if example_id else None
        if stored is not None:
            return children, stored.record
        # Its write in this batch failed (SQS redelivers it): its record as normalised.
        fallback = written.get(example_id) if example_id else None
        return children, fallback.to_json_dict() if fallback is not None else None

    def rolled_up(
        self,
        parent: JobRecord,
        on_error: Callable[[Exception], None],
        known: Sequence[JobRecord] = (),
    ) -> JobRecord:
        """`parent` with its failure explained by its failed children in the history (and among
        `known`, records just written that the index may not show yet).

        Where they cannot be read, from the parent's own counts: the record is still stored and
        alerts. `on_error` hears why, for the caller to report its own way. Fitted for the store
        again: the roll-up's failure texts can make a record that fitted too large.
        """
        children: list[dict[str, Any]] = []
        example: dict[str, Any] | None = None
        try:
            children, example = self.failed_children(parent.job_id, known)
        except Exception as exc:  # any failure to read falls back the same way
            on_error(exc)
        return limits.fit_for_store(rollup.apply_rollup(parent, children, example))

    def query_latest(
        self,
        index_name: str,
        key_condition: str,
        values: Mapping[str, AttributeValueTypeDef],
        *,
        names: Mapping[str, str] | None = None,
        filter_expression: str | None = None,
        newest_first: bool = True,
        page_size: int | None = None,
        newest_by: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Latest items of one index query, as plain values with `record` decoded.

        Lazy: the next page is asked for only when the caller reads past the current one, so a
        caller that stops early issues no further Query calls. The indexes hold no records: each
        page's are read from the table (see `_with_records`).

        `newest_by` names a projected time attribute, for an index whose keys do not sort by time
        (byName): every entry is read first and ordered newest first by it, and only then are
        records read, as the caller reads on.
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": index_name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": dict(values),
            "ScanIndexForward": not newest_first,
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if filter_expression:
            request["FilterExpression"] = filter_expression
        if page_size:
            request["Limit"] = page_size
        pages = self._index_pages(request)
        if newest_by is None:
            for entries in pages:
                yield from self._with_records(entries)
            return
        entries = [entry for page in pages for entry in page]
        entries.sort(key=lambda entry: entry.get(newest_by, {}).get("S", ""), reverse=True)
        yield from self._with_records(entries)

    def _index_pages(
        self, request: dict[str, Any]
    ) -> Iterator[list[dict[str, AttributeValueTypeDef]]]:
        """The entries of an index query, a page at a time, asked for as the caller reads on."""
        while True:
            response = self._client.query(**request)
            yield response.get("Items", [])
            last_key = response.get("LastEvaluatedKey")
            if not last_key:
                return
            request["ExclusiveStartKey"] = last_key

    def stored_versions(self, job_ids: Iterable[str]) -> dict[str, str]:
        """The version of each job's latest item (jobs the table does not hold are absent).

        BatchGetItem, only the `version` attribute: far cheaper than a conditional write that
        fails, for callers that rewrite many jobs the table already has.
        """
        keys = [
            {"pk": _s(job_pk(job_id)), "sk": _s(LATEST_SK)} for job_id in dict.fromkeys(job_ids)
        ]
        items = self._batch_get(
            keys, {"ProjectionExpression": "pk, #v", "ExpressionAttributeNames": {"#v": "version"}}
        )
        return {_job_id(item["pk"]["S"]): item["version"]["S"] for item in items}

    def _with_records(
        self, entries: Sequence[Mapping[str, AttributeValueTypeDef]]
    ) -> Iterator[dict[str, Any]]:
        """The latest items behind one page of index entries, in the page's order.

        Read consistently, so the table is never behind the index: an entry whose version the
        table has moved past is left out (the job's newer entry sits where it now belongs), as
        is one whose job has expired since, deleted or not (the indexes hold no `expiresAt`).

        One BatchGetItem at a time, as the caller reads on: a filtered page holds up to 1 MB of
        entries (thousands), and a caller that wants the newest 50 must not pay for them all.
        """
        for start in range(0, len(entries), BATCH_GET_MAX):
            chunk = entries[start : start + BATCH_GET_MAX]
            pks = list(dict.fromkeys(entry["pk"]["S"] for entry in chunk))
            keys: list[Any] = [{"pk": _s(pk), "sk": _s(LATEST_SK)} for pk in pks]
            read = self._batch_get(keys, {"ConsistentRead": True})
            found = {item["pk"]["S"]: item for item in read}
            now = time.time()
            for entry in chunk:
                item = found.get(entry["pk"]["S"])
                if item is None or item.get("version") != entry.get("version"):
                    continue
                if expired(item, now):
                    continue
                plain = _plain_item(item)
                # None where it holds no JobRecord: the reader leaves that job out and says so,
                # rather than end the whole listing on one item.
                plain["record"] = decoded_record(item)
                yield plain

    def _batch_get(
        self, keys: Sequence[Any], options: Mapping[str, Any]
    ) -> list[dict[str, AttributeValueTypeDef]]:
        """BatchGetItem of `keys`, 100 a call, backing off on UnprocessedKeys (throttling)."""
        items: list[dict[str, AttributeValueTypeDef]] = []
        for start in range(0, len(keys), BATCH_GET_MAX):
            pending = list(keys[start : start + BATCH_GET_MAX])
            for attempt in range(8):
                _back_off(attempt)
                request: Any = {self.table_name: {"Keys": pending, **options}}
                response = self._client.batch_get_item(RequestItems=request)
                items.extend(response.get("Responses", {}).get(self.table_name, []))
                unprocessed: dict[str, Any] = dict(response.get("UnprocessedKeys", {}))
                pending = list(unprocessed.get(self.table_name, {}).get("Keys", []))
                if not pending:
                    break
            else:
                raise ReadThrottled(f"BatchGetItem left {len(pending)} keys unprocessed")
        return items

    def _query(self, **kwargs: Any) -> Iterable[dict[str, AttributeValueTypeDef]]:
        paginator = self._client.get_paginator("query")
        for page in paginator.paginate(TableName=self.table_name, **kwargs):
            yield from page.get("Items", [])


def _plain_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain JSON values (only the types this module writes)."""
    plain: dict[str, Any] = {}
    for key, value in item.items():
        if "S" in value:
            plain[key] = value["S"]
        elif "N" in value:
            number = float(value["N"])
            plain[key] = int(number) if number.is_integer() else number
        elif "BOOL" in value:
            plain[key] = value["BOOL"]
        elif "NULL" in value:
            plain[key] = None
    if isinstance(plain.get("latestAttempt"), str):
        plain["latestAttempt"] = json.loads(plain["latestAttempt"])
    return plain
