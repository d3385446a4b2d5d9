"""SNS I/O: publish alerts in as few calls as SNS allows, each (job, status, attempt) once.

Exactly-once across redeliveries, concurrent invocations and a crash between publish and the SQS
acknowledgement comes from Powertools Idempotency's persistence layer on the history table: an alert
is claimed (IN_PROGRESS, expiring with the invocation), published, then marked COMPLETED for
`ALERT_DEDUPE_HOURS`. The key is the alert's (job, status, attempt), never the SQS message id, which
changes on every redelivery.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from batchlens.alerts import SNS_MAX_BYTES, Alert
from batchlens.history import ALERT_PK, TTL_ATTRIBUTE

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import PublishBatchRequestEntryTypeDef

PUBLISH_BATCH_MAX = 10
#: Tries of an entry SNS failed on its side (`SenderFault: false`, e.g. InternalError) within one
#: invocation, as for DynamoDB's UnprocessedItems; entries failed for the sender's fault are not
#: retried. Each retry is a PublishBatch of the failed entries only.
PUBLISH_ATTEMPTS = 3
#: EventBridge retries delivery for up to 24 h; keep alert marks longer than that.
ALERT_DEDUPE_HOURS = 36


class Claim(StrEnum):
    CLAIMED = "CLAIMED"  # this invocation owns the alert: publish it
    DONE = "DONE"  # already published: skip
    BUSY = "BUSY"  # another invocation is publishing it right now: retry the record later


@dataclass(slots=True)
class PublishResult:
    published: list[Alert] = field(default_factory=list)
    failed: list[tuple[Alert, str]] = field(default_factory=list)
    calls: int = 0


class AlertLedger:
    """Which alerts have been published (Powertools Idempotency records in the history table)."""

    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        # Imported here: only invocations that publish pay for Powertools Idempotency.
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig
        from aws_lambda_powertools.utilities.idempotency.persistence.dynamodb import (
            DynamoDBPersistenceLayer,
        )

        self._store = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr="pk",
            sort_key_attr="sk",
            static_pk_value=ALERT_PK,
            expiry_attr=TTL_ATTRIBUTE,
            status_attr="alertStatus",
            data_attr="alertData",
            boto3_client=client,
        )
        self._store.configure(
            IdempotencyConfig(
                event_key_jmespath="[jobId, status, attempt]",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=ALERT_DEDUPE_HOURS * 3600,
            ),
            key_prefix="alert",
        )

    def claim(self, alert: Alert, remaining_time_in_millis: int | None) -> Claim:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemAlreadyExistsError,
            IdempotencyItemNotFoundError,
        )

        try:
            self._store.save_inprogress(
                data=dict(alert.key), remaining_time_in_millis=remaining_time_in_millis or 60_000
            )
        except IdempotencyItemAlreadyExistsError as exc:
            old: DataRecord | None = exc.old_data_record
            if old is None:
                # The answer did not carry the stored item (ReturnValuesOnConditionCheckFailure
                # unsupported): read it to tell DONE from BUSY.
                try:
                    old = self._store.get_record(data=dict(alert.key))
                except IdempotencyItemNotFoundError:
                    return Claim.BUSY  # gone between the two calls: let the retry claim it
            if old is not None and old.status == "COMPLETED":
                return Claim.DONE
            return Claim.BUSY
        return Claim.CLAIMED

    def complete(self, alert: Alert, message_id: str) -> None:
        self._store.save_success(data=dict(alert.key), result={"messageId": message_id})

    def release(self, alert: Alert, error: Exception) -> None:
        self._store.delete_record(data=dict(alert.key), exception=error)


def _entry_size(entry: PublishBatchRequestEntryTypeDef) -> int:
    size = len(entry["Message"].encode()) + len(entry.get("Subject", "").encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value.get("DataType", "").encode())
        size += len(str(value.get("StringValue", "")).encode())
    return size


def _entry(index: int, alert: Alert) -> PublishBatchRequestEntryTypeDef:
    return {
        "Id": str(index),
        "Message": alert.message,
        "Subject": alert.subject,
        "MessageStructure": "json",
        "MessageAttributes": {
            name: {"DataType": "String", "StringValue": value}
            for name, value in alert.attributes.items()
        },
    }


def publish_alerts(
    client: SNSClient,
    topic_arn: str,
    alerts: Sequence[Alert],
    on_published: Callable[[Alert, str], Any] | None = None,
) -> PublishResult:
    """PublishBatch in groups of at most 10 entries and 256 KiB together."""
    result = PublishResult()
    entries = [(_entry(index, alert), alert) for index, alert in enumerate(alerts)]
    groups: list[list[tuple[PublishBatchRequestEntryTypeDef, Alert]]] = []
    size = 0
    for entry, alert in entries:
        entry_size = _entry_size(entry)
        if not groups or len(groups[-1]) >= PUBLISH_BATCH_MAX or size + entry_size > SNS_MAX_BYTES:
            groups.append([])
            size = 0
        groups[-1].append((entry, alert))
        size += entry_size
    for group in groups:
        pending = list(group)
        reasons: dict[str, str] = {}
        for attempt in range(PUBLISH_ATTEMPTS):
            if attempt:
                time.sleep(0.1 * 2 ** (attempt - 1))  # SNS failed them on its side: back off
            pending = _publish_group(
                client, topic_arn, pending, result, on_published=on_published, reasons=reasons
            )
            if not pending:
                break
        result.failed.extend((alert, reasons[entry["Id"]]) for entry, alert in pending)
    return result


def _publish_group(
    client: SNSClient,
    topic_arn: str,
    group: Sequence[tuple[PublishBatchRequestEntryTypeDef, Alert]],
    result: PublishResult,
    *,
    on_published: Callable[[Alert, str], Any] | None,
    reasons: dict[str, str],
) -> list[tuple[PublishBatchRequestEntryTypeDef, Alert]]:
    """One PublishBatch; returns the entries worth another try (their reasons in `reasons`)."""
    by_id = {entry["Id"]: (entry, alert) for entry, alert in group}
    response = client.publish_batch(
        TopicArn=topic_arn, PublishBatchRequestEntries=[entry for entry, _ in group]
    )
    result.calls += 1
    for success in response.get("Successful", []):
        _, alert = by_id.pop(success["Id"])
        result.published.append(alert)
        if on_published is not None:
            on_published(alert, success.get("MessageId", ""))
    retry = []
    for failure in response.get("Failed", []):
        entry, alert = by_id.pop(failure["Id"])
        reasons[entry["Id"]] = f"{failure.get('Code')}: {failure.get('Message', '')}"
        if failure.get("SenderFault"):
            result.failed.append((alert, reasons[entry["Id"]]))
        else:
            retry.append((entry, alert))
    # An entry SNS neither confirmed nor rejected may have gone out: never sent again here.
    result.failed.extend((alert, "no result from SNS") for _, alert in by_id.values())
    return retry
