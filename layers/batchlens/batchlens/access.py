"""Where the CLI's AWS calls go, and what it says when they cannot.

The session (`--profile`, `--region`), the endpoint (`--endpoint-url`, for the local stack of
`make demo-up`), the history table (`--table`, `--stack`, or `BATCHLENS_TABLE`), and one line a
person can act on for each way that can fail. CLI-only; the Lambda never imports this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlparse

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from batchlens import aws
from batchlens.history import ReadThrottled

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_batch import BatchClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient

#: The region of the local stack of `make demo` (batchlens.local.REGION).
LOCAL_REGION = "us-east-1"
#: Credentials for an endpoint on this machine, which never checks them.
LOCAL_CREDENTIALS = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
TABLE_VARIABLE = "BATCHLENS_TABLE"
ENDPOINT_VARIABLE = "BATCHLENS_ENDPOINT_URL"
_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
    }
)
_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


class AccessError(Exception):
    """AWS could not be reached or refused: one line saying what to do."""


def is_loopback(endpoint_url: str | None) -> bool:
    """An endpoint on this machine (the demo's stand-in): no credentials, its own region."""
    from batchlens.webhook import is_loopback_host

    if not endpoint_url:
        return False
    return is_loopback_host(urlparse(endpoint_url).hostname)


def boto3_session(profile: str | None, region: str | None) -> boto3.Session:
    """The session every client of a command comes from (tests replace it to watch calls)."""
    import boto3

    return boto3.Session(profile_name=profile, region_name=region)


@dataclass(frozen=True, slots=True)
class Connection:
    """A session, an endpoint override and a region: how to build this command's clients."""

    session: boto3.Session
    endpoint_url: str | None
    region: str | None
    #: Set only for an endpoint on this machine when no credentials are configured.
    credentials: Mapping[str, str] | None = None

    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["batch"]) -> BatchClient: ...
    @overload
    def client(self, service: Literal["cloudformation"]) -> CloudFormationClient: ...
    def client(self, service: str) -> Any:
        config = Config(
            retries={"mode": "standard", "max_attempts": 4},
            connect_timeout=3,
            read_timeout=20,
            max_pool_connections=16,
        )
        built = self.session.client(  # type: ignore[call-overload]
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            config=config,
            **(self.credentials or {}),
        )
        if service == "dynamodb":
            aws.count_failed_conditions_as_answers(built)
        return built

    def where(self) -> str:
        place = f"region {self.region or self.session.region_name or '?'}"
        return f"{place} at {self.endpoint_url}" if self.endpoint_url else place


def connect(
    *,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    environ: Mapping[str, str],
) -> Connection:
    """The connection of one command; a local endpoint needs neither credentials nor a region."""
    _given("--profile", profile)
    _given("--region", region)
    _given("--endpoint-url", endpoint_url)
    endpoint = _checked_endpoint(endpoint_url or environ.get(ENDPOINT_VARIABLE) or None)
    with translated("AWS"):
        session = boto3_session(profile, region)
        local = is_loopback(endpoint)
        # AWS_REGION too, as the AWS CLI and SDKs honour it: before AWS_DEFAULT_REGION and the
        # profile's region (session.region_name), as there (boto3 reads only those two).
        chosen_region = (
            region
            or (LOCAL_REGION if local else None)
            or environ.get("AWS_REGION")
            or session.region_name
        )
        if not chosen_region:
            raise AccessError(
                "no AWS region: pass --region, or set AWS_DEFAULT_REGION (or a region in your "
                "profile)"
            )
        credentials = None
        if local and session.get_credentials() is None:
            credentials = LOCAL_CREDENTIALS
    return Connection(
        session=session, endpoint_url=endpoint, region=chosen_region, credentials=credentials
    )


def _given(option: str, value: str | None) -> None:
    """An option given only blanks (`--stack "$STACK"`, the variable unset) is a mistake: read as
    "not given", it would fall back to another table, or from a stand-in to real AWS."""
    if value is not None and not value.strip():
        raise AccessError(f"{option} needs a value; leave it out for its default")


def _checked_endpoint(url: str | None) -> str | None:
    """`url` if botocore can send to it: a scheme, a host and a port that is a port."""
    if url is None:
        return None
    try:
        # botocore's own checks of the scheme and host; a port out of range or not a number it
        # finds only at the first call, with a traceback, as `.port` does here
        _ = urlparse(url).port
        valid = is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)
    except ValueError:
        valid = False
    if not valid:
        raise AccessError(
            f"bad endpoint URL {url!r}: expected http://HOST:PORT or https://HOST "
            "(the local stack's is printed by make demo-up)"
        )
    return url


def table_name(
    connection: Connection, *, table: str | None, stack: str | None, environ: Mapping[str, str]
) -> str:
    """`--table`, else the `HistoryTableName` output of `--stack`, else `BATCHLENS_TABLE`."""
    _given("--table", table)
    _given("--stack", stack)
    if table:
        return table
    if stack:
        from batchlens.query import table_from_stack

        with translated(f"stack {stack!r}", stack=stack):
            return table_from_stack(connection.client("cloudformation"), stack)
    from_env = environ.get(TABLE_VARIABLE)
    if from_env:
        return from_env
    raise AccessError(
        "which history table? pass --table NAME or --stack STACK_NAME, or set BATCHLENS_TABLE"
    )


#: The most of an AWS error message an error line quotes.
_MESSAGE_MAX = 300


@contextlib.contextmanager
def translated(
    what: str,
    *,
    connection: Connection | None = None,
    table: str | None = None,
    stack: str | None = None,
) -> Iterator[None]:
    """Turn AWS's exceptions into one `AccessError` line naming what failed and what to do."""
    where = f" ({connection.where()})" if connection else ""
    try:
        yield
    except ProfileNotFound as exc:
        raise AccessError(f"AWS profile {exc.kwargs.get('profile')!r} not found") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise AccessError(
            "no AWS credentials: pass --profile, run `aws configure` or `aws sso login`, "
            "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ) from exc
    except NoRegionError as exc:
        raise AccessError("no AWS region: pass --region, or set AWS_DEFAULT_REGION") from exc
    except EndpointConnectionError as exc:
        hint = (
            " — is the local stack running (make demo-up)?"
            if connection and is_loopback(connection.endpoint_url)
            else ""
        )
        raise AccessError(f"cannot reach {exc.kwargs.get('endpoint_url')}{hint}") from exc
    except (ConnectTimeoutError, ReadTimeoutError) as exc:
        raise AccessError(f"{what}: timed out talking to AWS{where}") from exc
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), error.get("Message", "")
        if code == "ResourceNotFoundException" and table:
            raise AccessError(f"history table {table!r} not found{where}") from exc
        if code == "ValidationError" and stack:
            raise AccessError(f"stack {stack!r} not found{where}: {message}") from exc
        if code in _CREDENTIAL_CODES:
            raise AccessError(f"AWS rejected the credentials ({code}): {message}") from exc
        if code in _DENIED_CODES:
            raise AccessError(f"{what}: access denied{where}: {message}") from exc
        operation = exc.operation_name
        if message.lstrip().startswith("<"):
            # A web page, not an AWS error: a stand-in without this API (moto has no SQS move
            # tasks) or a proxy. Its HTML would fill the screen and say nothing.
            message = f"the endpoint answered with a web page; does it implement {operation}?"
        message = " ".join(message.split())[:_MESSAGE_MAX]
        raise AccessError(f"{what}: {operation} failed{where}: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise AccessError(f"{what}: {exc}") from exc
    except ReadThrottled as exc:
        raise AccessError(
            f"{what}: DynamoDB throttled the reads{where} ({exc}); try again in a moment"
        ) from exc
