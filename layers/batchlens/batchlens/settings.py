"""The one settings model: every environment variable batchlens reads, parsed once.

A frozen dataclass rather than a pydantic model: building a pydantic validator for it cost about
a sixth of the enricher's cold start (see bench/), for a dozen flat values that each need one
conversion and one range check.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from batchlens.events import SERVICE_JOB_STATUSES

#: What `ALERT_ON` may name: a job status, or a queue-blocked event.
ALERTABLE = frozenset({*SERVICE_JOB_STATUSES, "QUEUE_BLOCKED"})

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


class InvalidSettings(ValueError):
    """An environment variable batchlens reads has a value it cannot use; the message names it."""


def _csv(raw: str) -> tuple[str, ...]:
    # CloudFormation passes CommaDelimitedList parameters joined with commas.
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _upper_csv(raw: str) -> tuple[str, ...]:
    return tuple(part.upper() for part in _csv(raw))


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError("must be true or false")


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"must be an integer from {low} to {high}") from None
        if not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}")
        return value

    return parse


def _seconds(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("must be a number of seconds above 0") from None
    if not value > 0:  # also refuses NaN
        raise ValueError("must be a number of seconds above 0")
    return value


def _var(name: str, default: Any, parse: Callable[[str], Any] = str) -> Any:
    """A field read from the environment variable `name`, converted (and checked) by `parse`."""
    return field(default=default, metadata={"env": name, "parse": parse})


@dataclass(frozen=True, slots=True)
class Settings:
    """Environment of the enricher (and of the CLI where it shares a setting)."""

    table_name: str = _var("TABLE_NAME", "")
    topic_arn: str = _var("TOPIC_ARN", "")
    retention_days: int = _var("RETENTION_DAYS", 90, _int_between(1, 3650))
    alert_on: tuple[str, ...] = _var("ALERT_ON", ("FAILED", "QUEUE_BLOCKED"), _upper_csv)
    alert_on_retried_attempts: bool = _var("ALERT_ON_RETRIED_ATTEMPTS", False, _bool)
    alert_on_dependency_failures: bool = _var("ALERT_ON_DEPENDENCY_FAILURES", False, _bool)
    log_tail_lines: int = _var("LOG_TAIL_LINES", 20, _int_between(0, 200))
    redact_allowlist: tuple[str, ...] = _var("REDACT_ALLOWLIST", (), _csv)
    # Connect/read timeouts stay far below the 60 s function timeout so a slow call is retried
    # by boto3 (standard mode) instead of timing the whole batch out.
    aws_connect_timeout: float = _var("BATCHLENS_CONNECT_TIMEOUT", 3.0, _seconds)
    aws_read_timeout: float = _var("BATCHLENS_READ_TIMEOUT", 10.0, _seconds)
    aws_max_attempts: int = _var("BATCHLENS_MAX_ATTEMPTS", 5, _int_between(1, 10))
    describe_concurrency: int = _var("BATCHLENS_DESCRIBE_CONCURRENCY", 8, _int_between(1, 32))
    endpoint_url: str | None = _var("BATCHLENS_ENDPOINT_URL", None)
    # The Slack notifier: the secret holding the incoming-webhook URL, and how long to cache it.
    slack_webhook_secret_arn: str = _var("SLACK_WEBHOOK_SECRET_ARN", "")
    slack_secret_max_age: int = _var("SLACK_SECRET_MAX_AGE", 300, _int_between(0, 86400))

    def __post_init__(self) -> None:
        unknown = sorted(set(self.alert_on) - ALERTABLE)
        if unknown:
            raise InvalidSettings(
                f"ALERT_ON names unknown statuses {unknown}; allowed: {sorted(ALERTABLE)}"
            )

    @classmethod
    def variables(cls) -> frozenset[str]:
        """The name of every environment variable the settings read."""
        return frozenset(f.metadata["env"] for f in fields(cls))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default: the process environment).

        Only the variables this model knows are read, so unrelated ones can never fail it; a
        bad value raises `InvalidSettings` naming the variable and what it must be.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in fields(cls):
            name = spec.metadata["env"]
            if name not in env:
                continue
            try:
                values[spec.name] = spec.metadata["parse"](env[name])
            except ValueError as exc:
                raise InvalidSettings(f"{name}={env[name]!r}: {exc}") from None
        return cls(**values)
