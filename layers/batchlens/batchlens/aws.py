"""Building boto3 clients: standard retries, short timeouts, one place for the endpoint override."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import botocore
import botocore.session
from botocore.config import Config
from botocore.retries import quota, standard

from batchlens.settings import MAX_DESCRIBE_CONCURRENCY, Settings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


#: What `client` builds from: botocore's session (the functions') or boto3's (the CLI, tests).
Session: TypeAlias = "botocore.session.Session | boto3.Session"

# DescribeJobs runs beside the most concurrent DescribeServiceJob calls; a smaller pool opens the
# extra connection anyway, then throws it away with a warning ("Connection pool is full").
POOL_CONNECTIONS = MAX_DESCRIBE_CONCURRENCY + 1


def client_config(settings: Settings) -> Config:
    return Config(
        # botocore's `max_attempts` counts retries only; `total_max_attempts` is the setting's
        # meaning (attempts in all, the first included), as AWS_MAX_ATTEMPTS means it.
        retries={"mode": "standard", "total_max_attempts": settings.aws_max_attempts},
        connect_timeout=settings.aws_connect_timeout,
        read_timeout=settings.aws_read_timeout,
        max_pool_connections=POOL_CONNECTIONS,
    )


@overload
def client(
    service: Literal["batch"], settings: Settings, session: Session | None = ...
) -> BatchClient: ...
@overload
def client(
    service: Literal["dynamodb"], settings: Settings, session: Session | None = ...
) -> DynamoDBClient: ...
@overload
def client(
    service: Literal["sns"], settings: Settings, session: Session | None = ...
) -> SNSClient: ...
@overload
def client(
    service: Literal["sqs"], settings: Settings, session: Session | None = ...
) -> SQSClient: ...
@overload
def client(
    service: Literal["logs"], settings: Settings, session: Session | None = ...
) -> CloudWatchLogsClient: ...
@overload
def client(
    service: Literal["secretsmanager"], settings: Settings, session: Session | None = ...
) -> SecretsManagerClient: ...
def client(service: str, settings: Settings, session: Session | None = None) -> Any:
    """A client for `service` with batchlens's retry and timeout policy, from `session` (a
    botocore or a boto3 session) or a new boto3 session."""
    config, endpoint_url = client_config(settings), settings.endpoint_url
    if isinstance(session, botocore.session.Session):
        built = session.create_client(service, config=config, endpoint_url=endpoint_url)
    else:
        import boto3

        factory = session or boto3.session.Session()
        built = factory.client(service, config=config, endpoint_url=endpoint_url)  # type: ignore[call-overload]
    if service == "dynamodb":
        count_failed_conditions_as_answers(built)
    return built


CONDITION_FAILED = "ConditionalCheckFailedException"


class _ConditionAwareQuota(standard.RetryQuotaChecker):
    """botocore's retry quota, where a ConditionalCheckFailedException counts as an answer.

    Standard mode lends a retry quota (5 of 500 for a throttled attempt, 14 for any other) and
    takes it back only from a 2xx answer. For a conditional write, a failed condition is DynamoDB
    answering normally: batchlens's writes fail theirs for every stale or duplicate event and for
    a retry of a write that had applied before its answer was lost. Left as botocore counts it,
    each such retry is quota lost for good, and a long spell of faults runs the quota dry (the
    soak saw every DynamoDB error after that raised unretried). Real failures still cost quota.
    """

    def __init__(
        self, bucket: quota.RetryQuota, throttling_detector: standard.ThrottlingErrorDetector
    ) -> None:
        super().__init__(bucket, throttling_detector)
        self._bucket = bucket

    def release_retry_quota(
        self, context: Any, http_response: Any, parsed: Any = None, **kwargs: Any
    ) -> None:
        error = parsed.get("Error", {}) if isinstance(parsed, dict) else {}
        if http_response is not None and error.get("Code") == CONDITION_FAILED:
            # As for a 2xx: give back what the last retry borrowed, or 1 after a first attempt.
            self._bucket.release(context.get("retry_quota_capacity", 1))
            return
        super().release_retry_quota(context, http_response, parsed=parsed, **kwargs)


def count_failed_conditions_as_answers(client: Any) -> None:
    """Swap the standard retry handler botocore registered for one built on `_ConditionAwareQuota`.

    For every DynamoDB client batchlens builds (the functions' and the CLI's, which backfills with
    the same conditional writes). Its config must set standard retries and their attempts. The
    same parts as `botocore.retries.standard.register_retry_handler` of botocore 1.44 (the
    `amz-sdk-request` header's seeder it registered stays); only the quota differs. A botocore
    whose parts take other arguments (the CLI installed beside a newer one) keeps its own handler,
    with a warning: its retries work, only its quota counts as botocore's does.
    """
    retries = client.meta.config.retries
    if retries.get("mode") != "standard" or "total_max_attempts" not in retries:
        raise ValueError(f"expected standard retries with their attempts set, not {retries}")
    max_attempts = retries["total_max_attempts"]
    service = client.meta.service_model.service_id.hyphenize()
    try:
        adapter = standard.RetryEventAdapter()
        throttling = standard.ThrottlingErrorDetector(adapter)
        checker = _ConditionAwareQuota(quota.RetryQuota(), throttling)
        handler = standard.RetryHandler(
            retry_policy=standard.RetryPolicy(
                retry_checker=standard.StandardRetryConditions(max_attempts=max_attempts),
                retry_backoff=standard.ExponentialBackoff(
                    service_name=service, throttling_detector=throttling
                ),
            ),
            retry_event_adapter=adapter,
            # botocore-stubs type this as the bucket; botocore passes (and uses) the checker.
            retry_quota=checker,  # type: ignore[arg-type]
            service_name=service,
        )
    except (TypeError, AttributeError) as exc:
        logging.getLogger(__name__).warning(
            "botocore %s builds its retry handler differently (%s): %s keeps botocore's retry "
            "quota, which a failed condition does not pay back",
            botocore.__version__,
            exc,
            service,
        )
        return
    events, unique_id = client.meta.events, f"retry-config-{service}"
    events.unregister(f"needs-retry.{service}", unique_id=unique_id)
    # First, so that if a botocore ever names its handler otherwise (and the unregister misses
    # it), this one still decides: the quota tests then fail instead of passing on its quota.
    events.register_first(f"needs-retry.{service}", handler.needs_retry, unique_id=unique_id)
    # botocore's own release handler stays registered, filling a quota nothing reads any more.
    events.register(f"after-call.{service}", checker.release_retry_quota)


def lambda_session() -> botocore.session.Session:
    """The session a function builds its clients from: botocore's own.

    A boto3 client is a botocore client; `import boto3` adds s3transfer and boto3's resource
    layer, which nothing here uses, to every cold start (about 30 ms of CPU on this project's
    bench machine, several times that at Lambda's smaller memory sizes).
    """
    return botocore.session.get_session()
