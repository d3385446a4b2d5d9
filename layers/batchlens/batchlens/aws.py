"""Building boto3 clients: standard retries, short timeouts, one place for the endpoint override."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, TypeAlias, overload

import botocore.session
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
        return session.create_client(service, config=config, endpoint_url=endpoint_url)
    import boto3

    factory = session or boto3.session.Session()
    return factory.client(service, config=config, endpoint_url=endpoint_url)  # type: ignore[call-overload]


def lambda_session() -> botocore.session.Session:
    """The session a function builds its clients from: botocore's own.

    A boto3 client is a botocore client; `import boto3` adds s3transfer and boto3's resource
    layer, which nothing here uses, to every cold start (about 30 ms of CPU on this project's
    bench machine, several times that at Lambda's smaller memory sizes).
    """
    return botocore.session.get_session()
