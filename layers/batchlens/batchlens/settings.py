"""The one settings model: every environment variable batchlens reads, parsed once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from batchlens.events import RETENTION_DAYS_MAX, SERVICE_JOB_STATUSES


def _split_csv(value: object) -> object:
    # CloudFormation passes CommaDelimitedList parameters joined with commas.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _upper_all(value: object) -> object:
    value = _split_csv(value)
    if isinstance(value, list):
        return [str(part).upper() for part in value]
    return value


CsvList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]
UpperCsvList = Annotated[tuple[str, ...], BeforeValidator(_upper_all)]

#: The most DescribeServiceJob calls one batch may have in flight (BATCHLENS_DESCRIBE_CONCURRENCY).
MAX_DESCRIBE_CONCURRENCY = 32

#: The longest connect or read timeout (BATCHLENS_*_TIMEOUT): Lambda's longest run, in seconds.
MAX_TIMEOUT_SECONDS = 900

#: What `ALERT_ON` may name: a job status, or a queue-blocked event.
ALERTABLE = frozenset({*SERVICE_JOB_STATUSES, "QUEUE_BLOCKED"})


class Settings(BaseModel):
    """Environment of the enricher (and of the CLI where it shares a setting)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field(default="", alias="TABLE_NAME")
    topic_arn: str = Field(default="", alias="TOPIC_ARN")
    retention_days: int = Field(default=90, ge=1, le=RETENTION_DAYS_MAX, alias="RETENTION_DAYS")
    alert_on: UpperCsvList = Field(default=("FAILED", "QUEUE_BLOCKED"), alias="ALERT_ON")
    alert_on_retried_attempts: bool = Field(default=False, alias="ALERT_ON_RETRIED_ATTEMPTS")
    alert_on_dependency_failures: bool = Field(default=False, alias="ALERT_ON_DEPENDENCY_FAILURES")
    log_tail_lines: int = Field(default=20, ge=0, le=200, alias="LOG_TAIL_LINES")
    # The log groups the role may read (the stack's JobLogGroupPrefix); empty: any.
    job_log_group_prefix: str = Field(default="", alias="JOB_LOG_GROUP_PREFIX")
    # Whether the role may find and read SageMaker training jobs' logs (the stack's
    # TrainingJobLogs); off, service jobs' alerts only link them.
    training_job_logs: bool = Field(default=True, alias="TRAINING_JOB_LOGS")
    redact_allowlist: CsvList = Field(default=(), alias="REDACT_ALLOWLIST")
    # Connect/read timeouts stay far below the 60 s function timeout so a slow call is retried
    # by boto3 (standard mode) instead of timing the whole batch out.
    # At most Lambda's longest timeout: a socket cannot hold "inf" or 1e12 s, and every AWS call
    # would fail with "timestamp out of range for platform time_t".
    aws_connect_timeout: float = Field(
        default=3.0, gt=0, le=MAX_TIMEOUT_SECONDS, alias="BATCHLENS_CONNECT_TIMEOUT"
    )
    aws_read_timeout: float = Field(
        default=10.0, gt=0, le=MAX_TIMEOUT_SECONDS, alias="BATCHLENS_READ_TIMEOUT"
    )
    aws_max_attempts: int = Field(default=5, ge=1, le=10, alias="BATCHLENS_MAX_ATTEMPTS")
    describe_concurrency: int = Field(
        default=8, ge=1, le=MAX_DESCRIBE_CONCURRENCY, alias="BATCHLENS_DESCRIBE_CONCURRENCY"
    )
    endpoint_url: str | None = Field(default=None, alias="BATCHLENS_ENDPOINT_URL")
    # The Slack notifier: the secret holding the incoming-webhook URL, and how long to cache it.
    slack_webhook_secret_arn: str = Field(default="", alias="SLACK_WEBHOOK_SECRET_ARN")
    slack_secret_max_age: int = Field(default=300, ge=0, le=86400, alias="SLACK_SECRET_MAX_AGE")

    def model_post_init(self, __context: object) -> None:
        unknown = sorted(set(self.alert_on) - ALERTABLE)
        if unknown:
            raise ValueError(
                f"ALERT_ON names unknown statuses {unknown}; allowed: {sorted(ALERTABLE)}"
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default: the process environment)."""
        env = os.environ if environ is None else environ
        # Only the variables this model knows, so unrelated ones can never fail validation.
        known = {field.alias for field in cls.model_fields.values() if field.alias}
        return cls.model_validate({key: value for key, value in env.items() if key in known})
