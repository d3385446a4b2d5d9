"""Batch I/O: describe every job of a batch in as few calls as the API allows.

DescribeJobs takes at most 100 ids per call; DescribeServiceJob takes one id, so service jobs are
described concurrently. A job the API no longer knows (Batch keeps jobs about 7 days; a very new id
may not be visible yet) is simply absent from the result: the caller falls back to the event. A
call that fails after boto3's retries fails only its own ids (`errors`), never the answers of the
other calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_batch import BatchClient

DESCRIBE_JOBS_MAX_IDS = 100

# Error codes that mean "this service job does not exist (any more)", not "try again".
_NOT_FOUND_CODES = frozenset({"ClientException", "ResourceNotFoundException", "NotFound"})


@dataclass(slots=True)
class Descriptions:
    """What the Batch API said about a set of jobs, keyed by job id (camelCase API dicts)."""

    jobs: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    #: ids the API answered for, but did not know.
    not_found: set[str] = field(default_factory=set)
    #: ids whose description failed for a reason other than "not found" (kept for the caller
    #: to decide: retry the records, or fall back to the event).
    errors: dict[str, str] = field(default_factory=dict)
    calls: int = 0


def chunks(ids: Iterable[str], size: int = DESCRIBE_JOBS_MAX_IDS) -> Iterator[list[str]]:
    """Distinct ids in first-seen order, in lists of at most `size` (never an empty list)."""
    distinct = list(dict.fromkeys(job_id for job_id in ids if job_id))
    for start in range(0, len(distinct), size):
        yield distinct[start : start + size]


def _plain(value: Any) -> Any:
    """boto3 returns datetimes for some timestamp shapes; Batch uses epoch-ms longs. Keep JSON."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _why(exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ClientError):
        return f"{exc.response.get('Error', {}).get('Code', '')}: {exc}"
    return f"{type(exc).__name__}: {exc}"


def describe_jobs(client: BatchClient, job_ids: Iterable[str]) -> Descriptions:
    """DescribeJobs for every distinct id, at most 100 per call."""
    result = Descriptions()
    for chunk in chunks(job_ids):
        result.calls += 1
        try:
            response = client.describe_jobs(jobs=chunk)
        except (ClientError, BotoCoreError) as exc:  # after retries; the other chunks still count
            result.errors.update(dict.fromkeys(chunk, _why(exc)))
            continue
        for job in response.get("jobs", []):
            result.jobs[job["jobId"]] = _plain(dict(job))
        result.not_found.update(job_id for job_id in chunk if job_id not in result.jobs)
    return result


def describe_service_jobs(
    client: BatchClient, job_ids: Iterable[str], *, concurrency: int = 8
) -> Descriptions:
    """DescribeServiceJob for every distinct id, `concurrency` calls at a time."""
    distinct = list(dict.fromkeys(job_id for job_id in job_ids if job_id))
    result = Descriptions()
    if not distinct:
        return result

    def one(job_id: str) -> tuple[str, Mapping[str, Any] | None, str | None]:
        try:
            response = client.describe_service_job(jobId=job_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in _NOT_FOUND_CODES:
                return job_id, None, None
            return job_id, None, _why(exc)
        except BotoCoreError as exc:  # a timeout or lost connection, after retries
            return job_id, None, _why(exc)
        body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
        return job_id, _plain(body), None

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(distinct)))) as pool:
        for job_id, body, error in pool.map(one, distinct):
            result.calls += 1
            if body is not None:
                result.jobs[job_id] = body
            elif error is not None:
                result.errors[job_id] = error
            else:
                result.not_found.add(job_id)
    return result
