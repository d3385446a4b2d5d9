"""Building boto3 clients: standard retries, short timeouts, one place for the endpoint override."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, overload

from botocore.config import Config

from batchlens.settings import MAX_DESCRIBE_CONCURRENCY, Settings

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient


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
    service: Literal["batch"], settings: Settings, session: boto3.Session | None = ...
) -> BatchClient: ...
@overload
def client(
    service: Literal["dynamodb"], settings: Settings, session: boto3.Session | None = ...
) -> DynamoDBClient: ...
@overload
def client(
    service: Literal["sns"], settings: Settings, session: boto3.Session | None = ...
) -> SNSClient: ...
@overload
def client(
    service: Literal["sqs"], settings: Settings, session: boto3.Session | None = ...
) -> SQSClient: ...
@overload
def client(
    service: Literal["logs"], settings: Settings, session: boto3.Session | None = ...
) -> CloudWatchLogsClient: ...
@overload
def client(
    service: Literal["secretsmanager"], settings: Settings, session: boto3.Session | None = ...
) -> SecretsManagerClient: ...
def client(service: str, settings: Settings, session: boto3.Session | None = None) -> Any:
    """A client for `service` with batchlens's retry and timeout policy."""
    import boto3

    factory = session or boto3.session.Session()
    return factory.client(  # type: ignore[call-overload]
        service, config=client_config(settings), endpoint_url=settings.endpoint_url
    )
