"""The soak's workload: jobs with their full event history (the truth), as AWS Batch emits it.

Container jobs (with retries, queue blocks that clear or stay, and jobs failed by a dependency),
array jobs (a parent and its children) and SageMaker service jobs. Each job's events are in the
order Batch emitted them; their versions (batchlens's order of job states) strictly increase, so
the truth of a job is its last event. What the Batch API answers now is the last event's detail
(or nothing, for a job whose record Batch no longer keeps).
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from batchlens.records import DEFAULT_LOG_GROUP, SAGEMAKER_LOG_GROUP, training_log_stream

Json = dict[str, Any]

ACCOUNT = "123456789012"
REGION = "us-east-1"
QUEUES = ("genomics-queue", "media-queue", "etl-queue", "gpu-training-queue")
SERVICE_QUEUE = "sagemaker-training-queue"
START_MS = 1_763_700_000_000  # 2025-11-21T04:40:00Z

# Planted in job details and logs: the soak checks none reaches the table, the topic or the logs.
PLANTED_SECRETS = (
    "AKIAIOSFODNN7SOAKTST",
    "hunter2-soak-Zx9",
    "ghp_SOAKt0kenF0rRedacti0nTest5NotReal00",
    "xoxb-000000000000-0000000000000-SOAKsoakSOAKsoak",
)
AWS_KEY_ID, DB_PASSWORD, GITHUB_TOKEN, SLACK_TOKEN = PLANTED_SECRETS

ESSENTIAL = "Essential container in task exited"
# (container reason, exit code, attempt status reason); the first three are retried by Batch.
ATTEMPT_FAILURES = (
    ("OutOfMemoryError: Container killed due to memory usage", 137, ESSENTIAL),
    (None, 1, ESSENTIAL),
    (None, None, "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated."),
    (None, 137, "Job attempt duration exceeded timeout"),
)
BLOCKED_REASONS = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested for "
    "instance type [p4d.24xlarge]",
    "MISCONFIGURATION:JOB_RESOURCE_REQUIREMENT - The job resource requirement (vCPU/memory/GPU) is "
    "higher than that can be met by the CE(s) attached to the job queue.",
)
SAGEMAKER_FAILURES = (
    "Received status from SageMaker:AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
    'ErrorMessage "ValueError: Input contains NaN"',
    "Received status from SageMaker:InternalServerError: We encountered an internal error.",
)


@dataclass(slots=True)
class Job:
    job_id: str
    kind: str
    events: list[Json] = field(default_factory=list)
    expired: bool = False  # Batch no longer describes it (DescribeJobs leaves it out)
    log_stream: str | None = None  # a failed attempt's stream, seeded with log lines
    log_group: str = DEFAULT_LOG_GROUP

    @property
    def final(self) -> Json:
        return self.events[-1]

    @property
    def service(self) -> bool:
        return self.kind == "SERVICE"

    def described(self) -> Json | None:
        """What DescribeJobs / DescribeServiceJob answers for the job now."""
        return None if self.expired else copy.deepcopy(self.final["detail"])


class _Clock:
    """A job's own clock: every event strictly later than the one before (EventBridge `time` has
    one-second precision, and batchlens orders a job's states by it)."""

    def __init__(self, rng: random.Random, start_ms: int) -> None:
        self._rng = rng
        self.ms = start_ms

    def tick(self, low: int = 2, high: int = 300) -> int:
        self.ms += 1000 * self._rng.randint(low, high) + self._rng.randint(0, 999)
        return self.ms


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _envelope(detail_type: str, detail: Json, at_ms: int, resources: list[str]) -> Json:
    return {
        "version": "0",
        "id": str(uuid.UUID(int=random.getrandbits(128), version=4)),
        "detail-type": detail_type,
        "source": "aws.batch",
        "account": ACCOUNT,
        "time": _iso(at_ms),
        "region": REGION,
        "resources": resources,
        "detail": copy.deepcopy(detail),
    }


def _queue_arn(name: str) -> str:
    return f"arn:aws:batch:{REGION}:{ACCOUNT}:job-queue/{name}"


class WorkloadBuilder:
    """Builds jobs from a seed (the same seed, the same workload)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        random.seed(seed)  # event ids come from the module generator, seeded here too
        self.jobs: list[Job] = []
        self.failed_container_ids: list[str] = []

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # --- container jobs ---------------------------------------------------------------------

    def _container_detail(self, job_id: str, name: str, queue: str, attempts_allowed: int) -> Json:
        rng = self.rng
        return {
            "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:job/{job_id}",
            "jobName": name,
            "jobId": job_id,
            "jobQueue": _queue_arn(queue),
            "status": "SUBMITTED",
            "attempts": [],
            "createdAt": None,
            "retryStrategy": {"attempts": attempts_allowed, "evaluateOnExit": []},
            "dependsOn": [],
            "jobDefinition": f"arn:aws:batch:{REGION}:{ACCOUNT}:job-definition/{queue}-def:3",
            "parameters": {"sample": f"S{rng.randint(1, 9999)}", "dbPassword": DB_PASSWORD},
            "container": {
                "image": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{queue}:1.{rng.randint(0, 9)}",
                "command": ["run.py", "--password", DB_PASSWORD, f"--token={GITHUB_TOKEN}"],
                "environment": [
                    {"name": "SAMPLE_ID", "value": f"NA{rng.randint(10000, 99999)}"},
                    {"name": "DB_PASSWORD", "value": DB_PASSWORD},
                    {"name": "NOTES", "value": f"uploader key {AWS_KEY_ID}"},
                ],
                "resourceRequirements": [
                    {"type": "VCPU", "value": "2"},
                    {"type": "MEMORY", "value": str(rng.choice([2048, 4096, 8192]))},
                ],
                "logConfiguration": {"logDriver": "awslogs", "options": {}},
                "networkInterfaces": [],
                "secrets": [],
            },
            "tags": {},
            "platformCapabilities": ["EC2"],
            "eksAttempts": [],
        }

    def _emit(self, job: Job, detail_type: str, detail: Json, at_ms: int) -> None:
        resources = [detail["jobArn"]]
        if "Blocked" in detail_type:
            resources.append(detail["jobQueue"])
        job.events.append(_envelope(detail_type, detail, at_ms, resources))

    def _attempt(self, clock: _Clock, failure: tuple[Any, ...] | None) -> Json:
        started = clock.tick()
        stopped = clock.tick(30, 3000)
        task = self.rng.getrandbits(64)
        reason, exit_code, status_reason = failure or (
            None,
            0,
            "Essential container in task exited",
        )
        container: Json = {
            "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/AWSBatch-ce/{task:016x}",
            "exitCode": exit_code,
            "logStreamName": f"soak/default/{task:016x}",
            "networkInterfaces": [],
        }
        if reason:
            container["reason"] = reason
        if failure is not None and self.rng.random() < 0.2:
            status_reason = f"{status_reason} (credentials {AWS_KEY_ID} rejected)"
        return {
            "container": container,
            "startedAt": started,
            "stoppedAt": stopped,
            "statusReason": status_reason,
        }

    def container_job(
        self,
        *,
        queue: str | None = None,
        job_id: str | None = None,
        name: str | None = None,
        array_index: int | None = None,
        fail: bool | None = None,
        block: str = "none",  # none | clears | stays
    ) -> Job:
        rng = self.rng
        queue = queue or rng.choice(QUEUES)
        job_id = job_id or self._uuid()
        kind = "ARRAY_CHILD" if array_index is not None else "CONTAINER"
        job = Job(job_id, kind, expired=rng.random() < 0.1)
        allowed = rng.choice([1, 1, 2, 3]) if array_index is None else 1
        detail = self._container_detail(job_id, name or f"{queue}-job-{job_id[:8]}", queue, allowed)
        if array_index is not None:
            detail["arrayProperties"] = {"index": array_index}  # its ARN ends in `<parent>:<index>`
        clock = _Clock(rng, START_MS + rng.randint(0, 3_600_000))
        detail["createdAt"] = clock.ms
        for status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            detail["status"] = status
            self._emit(job, "Batch Job State Change", detail, clock.tick())
        if block != "none":
            blocked = copy.deepcopy(detail)
            blocked["statusReason"] = rng.choice(BLOCKED_REASONS)
            self._emit(job, "Batch Job Queue Blocked", blocked, clock.tick())
            if block == "stays":
                return job
        fail = rng.random() < 0.35 if fail is None else fail
        for number in range(1, allowed + 1):
            last = number == allowed
            if number > 1:
                detail["status"] = "RUNNABLE"
                self._emit(job, "Batch Job State Change", detail, clock.tick())
            detail["status"] = "STARTING"
            self._emit(job, "Batch Job State Change", detail, clock.tick())
            retried = not last and (fail or rng.random() < 0.3)
            failure = None
            if retried:
                failure = rng.choice(ATTEMPT_FAILURES[:3])
            elif fail:
                failure = rng.choice(ATTEMPT_FAILURES)
            attempt = self._attempt(clock, failure)
            detail["status"] = "RUNNING"
            detail["startedAt"] = attempt["startedAt"]
            detail.pop("stoppedAt", None)
            detail.pop("statusReason", None)
            detail["container"]["logStreamName"] = attempt["container"]["logStreamName"]
            self._emit(job, "Batch Job State Change", detail, attempt["startedAt"])
            detail["attempts"] = [*detail["attempts"], attempt]
            detail["container"]["exitCode"] = attempt["container"]["exitCode"]
            if attempt["container"].get("reason"):
                detail["container"]["reason"] = attempt["container"]["reason"]
            if retried:
                continue  # Batch moves the job back to RUNNABLE for its next attempt
            detail["status"] = "FAILED" if fail else "SUCCEEDED"
            detail["statusReason"] = attempt["statusReason"]
            detail["stoppedAt"] = attempt["stoppedAt"]
            self._emit(job, "Batch Job State Change", detail, clock.tick(1, 5))
            if fail:
                job.log_stream = attempt["container"]["logStreamName"]
            break
        return job

    def dependent_job(self, dependency: str) -> Job:
        """A job that Batch fails because the job it depends on failed."""
        rng = self.rng
        job_id = self._uuid()
        queue = rng.choice(QUEUES)
        job = Job(job_id, "CONTAINER", expired=rng.random() < 0.1)
        detail = self._container_detail(job_id, f"merge-{job_id[:8]}", queue, 1)
        detail["dependsOn"] = [{"jobId": dependency, "type": "SEQUENTIAL"}]
        clock = _Clock(rng, START_MS + rng.randint(0, 3_600_000))
        detail["createdAt"] = clock.ms
        for status in ("SUBMITTED", "PENDING"):
            detail["status"] = status
            self._emit(job, "Batch Job State Change", detail, clock.tick())
        detail["status"] = "FAILED"
        detail["statusReason"] = "Dependent Job failed"
        detail["stoppedAt"] = clock.tick()
        self._emit(job, "Batch Job State Change", detail, detail["stoppedAt"])
        return job

    # --- array jobs -------------------------------------------------------------------------

    def array_job(self, size: int) -> list[Job]:
        rng = self.rng
        parent_id = self._uuid()
        queue = rng.choice(QUEUES)
        name = f"render-{parent_id[:8]}"
        children = [
            self.container_job(
                queue=queue,
                job_id=f"{parent_id}:{index}",
                name=name,
                array_index=index,
                fail=rng.random() < 0.25,
            )
            for index in range(size)
        ]
        for child in children:
            child.events = [e for e in child.events if "Blocked" not in e["detail-type"]]
        parent = Job(parent_id, "ARRAY_PARENT", expired=rng.random() < 0.1)
        detail = self._container_detail(parent_id, name, queue, 1)
        detail.pop("eksAttempts")
        clock = _Clock(rng, START_MS + rng.randint(0, 3_600_000))
        detail["createdAt"] = clock.ms
        summary = dict.fromkeys(
            ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED"), 0
        )
        detail["arrayProperties"] = {"statusSummary": summary, "size": size}
        for status in ("SUBMITTED", "PENDING", "RUNNING"):
            detail["status"] = status
            if status == "RUNNING":
                detail["startedAt"] = clock.ms
                summary["RUNNING"] = size
            self._emit(parent, "Batch Job State Change", detail, clock.tick())
        finals = [child.final["detail"]["status"] for child in children]
        summary["RUNNING"] = 0
        summary["SUCCEEDED"] = finals.count("SUCCEEDED")
        summary["FAILED"] = finals.count("FAILED")
        detail["status"] = "FAILED" if summary["FAILED"] else "SUCCEEDED"
        if summary["FAILED"]:
            detail["statusReason"] = "Array Child Job failed"
        detail["stoppedAt"] = clock.tick(3000, 6000)
        self._emit(parent, "Batch Job State Change", detail, detail["stoppedAt"])
        return [parent, *children]

    # --- service jobs -----------------------------------------------------------------------

    def service_job(self, *, block: str = "none") -> Job:
        rng = self.rng
        job_id = self._uuid()
        job = Job(job_id, "SERVICE", expired=rng.random() < 0.1)
        allowed = rng.choice([1, 2])
        clock = _Clock(rng, START_MS + rng.randint(0, 3_600_000))
        detail: Json = {
            "attempts": [],
            "createdAt": clock.ms,
            "isTerminated": False,
            "jobArn": f"arn:aws:batch:{REGION}:{ACCOUNT}:service-job/{job_id}",
            "jobId": job_id,
            "jobName": f"llm-sft-{job_id[:8]}",
            "jobQueue": _queue_arn(SERVICE_QUEUE),
            "retryStrategy": {"attempts": allowed, "evaluateOnExit": []},
            "schedulingPriority": 0,
            "serviceJobType": "SAGEMAKER_TRAINING",
            "status": "SUBMITTED",
            "timeoutConfig": {"attemptDurationSeconds": 172800},
        }
        for status in ("SUBMITTED", "PENDING", "RUNNABLE"):
            detail["status"] = status
            self._emit(job, "Batch Service Job State Change", detail, clock.tick())
        if block != "none":
            blocked = copy.deepcopy(detail)
            blocked["statusReason"] = BLOCKED_REASONS[0].replace("p4d.24xlarge", "ml.p4d.24xlarge")
            self._emit(job, "Batch Service Job Queue Blocked", blocked, clock.tick())
            if block == "stays":
                return job
        fail = rng.random() < 0.4
        for number in range(1, allowed + 1):
            last = number == allowed
            if number > 1:
                detail["status"] = "RUNNABLE"
                self._emit(job, "Batch Service Job State Change", detail, clock.tick())
            detail["scheduledAt"] = clock.tick()
            for status in ("SCHEDULED", "STARTING"):
                detail["status"] = status
                self._emit(job, "Batch Service Job State Change", detail, clock.tick())
            training_job = f"AWSBatch{job_id[:8]}{number}"
            training = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/{training_job}"
            resource = {"name": "TrainingJobArn", "value": training}
            started = clock.tick()
            detail["status"] = "RUNNING"
            detail["startedAt"] = started
            detail["latestAttempt"] = {"serviceResourceId": resource}
            detail.pop("statusReason", None)
            detail.pop("stoppedAt", None)
            self._emit(job, "Batch Service Job State Change", detail, started)
            retried = not last and (fail or rng.random() < 0.3)
            failed_attempt = retried or fail
            reason = (
                (SAGEMAKER_FAILURES[1] if retried else rng.choice(SAGEMAKER_FAILURES))
                if failed_attempt
                else "Received status from SageMaker:Training job completed"
            )
            stopped = clock.tick(60, 6000)
            detail["attempts"] = [
                *detail["attempts"],
                {
                    "serviceResourceId": resource,
                    "startedAt": started,
                    "stoppedAt": stopped,
                    "statusReason": reason,
                },
            ]
            if retried:
                continue
            detail["status"] = "FAILED" if fail else "SUCCEEDED"
            detail["statusReason"] = reason
            detail["stoppedAt"] = stopped
            detail["isTerminated"] = False
            if fail:  # what its training job's one host wrote, which the alert quotes
                job.log_group = SAGEMAKER_LOG_GROUP
                job.log_stream = training_log_stream(training_job, 1, started // 1000)
            self._emit(job, "Batch Service Job State Change", detail, stopped + 1000)
            break
        return job

    # --- the whole workload -------------------------------------------------------------------

    def build(self, target_events: int, target_jobs: int) -> list[Job]:
        """At least `target_jobs` jobs with at least `target_events` events in all."""
        rng = self.rng
        while len(self.jobs) < target_jobs or sum(len(j.events) for j in self.jobs) < target_events:
            roll = rng.random()
            if roll < 0.08:
                self.jobs += self.array_job(rng.randint(2, 6))
            elif roll < 0.20:
                self.jobs.append(
                    self.service_job(block=rng.choice(["none"] * 6 + ["clears", "stays"]))
                )
            elif roll < 0.25 and self.failed_container_ids:
                self.jobs.append(self.dependent_job(rng.choice(self.failed_container_ids)))
            else:
                block = rng.choice(["none"] * 7 + ["clears", "stays"])
                job = self.container_job(block=block)
                if job.final["detail"]["status"] == "FAILED":
                    self.failed_container_ids.append(job.job_id)
                self.jobs.append(job)
        return self.jobs


#: Inputs no Batch event looks like: each must fail alone, and end in the dead-letter queue.
def poison_bodies(rng: random.Random) -> list[str]:
    valid: Json = {
        "version": "0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "detail-type": "Batch Job State Change",
        "source": "aws.batch",
        "account": ACCOUNT,
        "time": _iso(START_MS),
        "region": REGION,
        "resources": [],
        "detail": {"jobId": "poison", "jobName": "p", "jobQueue": "q", "status": "FAILED"},
    }
    return [
        "{this is not json",
        json.dumps({**valid, "detail-type": "Batch Job Mood Change"}),
        json.dumps({**valid, "detail": {**valid["detail"], "jobId": None}}),
        json.dumps({**valid, "detail-type": f"Batch Job {AWS_KEY_ID}"}),  # echoes a secret
        "[" * 50_000 + "]" * 50_000,
    ]


def deliveries(jobs: list[Job], duplicate_share: float, rng: random.Random) -> Iterator[str]:
    """Every event once, plus redeliveries making up `duplicate_share` of all, shuffled."""
    bodies = [json.dumps(event) for job in jobs for event in job.events]
    again = rng.sample(bodies, round(len(bodies) * duplicate_share / (1 - duplicate_share)))
    everything = bodies + again
    rng.shuffle(everything)
    yield from everything
