"""The benchmark workload: a deterministic stream of AWS Batch events, as EventBridge delivers them.

Jobs run in overlapping waves (as array jobs and pipelines do), each job emitting RUNNABLE,
STARTING, RUNNING and a final state. The mix covers all four event types: container jobs (90 % of
the jobs), array children with their parents, SageMaker service jobs, and queue-blocked events.
10 % of the jobs fail, with the failure reasons of the sample events.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS = Path(__file__).resolve().parents[1] / "events"
FAILURE_TEMPLATES = (
    "job-failed-oom.json",
    "job-failed-spot.json",
    "job-failed-image-pull.json",
    "job-failed-app-error.json",
    "job-failed-timeout.json",
)
LIFECYCLE = ("RUNNABLE", "STARTING", "RUNNING")
WAVE = 40  # jobs progressing together


@dataclass(frozen=True, slots=True)
class Workload:
    events: list[dict[str, Any]]
    jobs: int
    failed_jobs: int
    mix: dict[str, int]


def _load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


def _with_job(
    base: dict[str, Any], job_id: str, status: str, at_ms: int, rng: random.Random
) -> dict[str, Any]:
    event = copy.deepcopy(base)
    event["id"] = str(uuid.UUID(int=rng.getrandbits(128)))
    detail = event["detail"]
    arn_prefix = detail["jobArn"].rsplit("/", 1)[0]
    detail["jobId"] = job_id
    detail["jobArn"] = f"{arn_prefix}/{job_id}"
    event["resources"] = [detail["jobArn"], *event["resources"][1:]]
    if status != detail["status"]:
        detail["status"] = status
        detail["attempts"] = []
        detail.pop("stoppedAt", None)
        if status in ("RUNNABLE", "STARTING"):
            detail.pop("startedAt", None)
        container = detail.get("container")
        if isinstance(container, dict):
            container.pop("exitCode", None)
            container.pop("reason", None)
        detail.pop("statusReason", None)
    seconds = at_ms // 1000
    event["time"] = f"{_iso(seconds)}"
    return event


def _iso(epoch_seconds: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build(total_events: int = 10_000, failure_rate: float = 0.10, seed: int = 7) -> Workload:
    rng = random.Random(seed)
    succeeded = _load("job-succeeded.json")
    failures = [_load(name) for name in FAILURE_TEMPLATES]
    child_ok = _load("array-child-failed.json")
    parent = _load("array-parent-failed.json")
    service_ok = _load("service-job-succeeded.json")
    service_failed = _load("service-job-failed.json")
    blocked = _load("job-queue-blocked-capacity.json")
    service_blocked = _load("service-queue-blocked.json")

    events: list[dict[str, Any]] = []
    mix = dict.fromkeys(
        (
            "JOB_STATE_CHANGE",
            "SERVICE_JOB_STATE_CHANGE",
            "JOB_QUEUE_BLOCKED",
            "SERVICE_JOB_QUEUE_BLOCKED",
        ),
        0,
    )
    jobs = failed_jobs = 0
    clock = 1_763_700_000_000
    wave = 0
    while len(events) < total_events:
        wave += 1
        clock += 60_000
        # One wave: WAVE jobs go through their lifecycle together, events interleaved by time.
        kind = "array" if wave % 5 == 0 else "service" if wave % 11 == 0 else "container"
        parent_id = str(uuid.UUID(int=rng.getrandbits(128)))
        wave_events: list[tuple[int, dict[str, Any]]] = []
        for index in range(WAVE if kind != "service" else 3):
            jobs += 1
            fails = rng.random() < failure_rate
            failed_jobs += fails
            if kind == "array":
                job_id = f"{parent_id}:{index}"
                final_base = child_ok
                final_status = "FAILED" if fails else "SUCCEEDED"
                lifecycle_base = child_ok
            elif kind == "service":
                job_id = str(uuid.UUID(int=rng.getrandbits(128)))
                final_base = service_failed if fails else service_ok
                final_status = final_base["detail"]["status"]
                lifecycle_base = service_ok
            else:
                job_id = str(uuid.UUID(int=rng.getrandbits(128)))
                final_base = rng.choice(failures) if fails else succeeded
                final_status = final_base["detail"]["status"]
                lifecycle_base = succeeded
            start = clock + rng.randint(0, 20_000)
            for step, status in enumerate(LIFECYCLE):
                at = start + step * 5_000 + rng.randint(0, 2_000)
                wave_events.append((at, _with_job(lifecycle_base, job_id, status, at, rng)))
            if kind == "service" and index == 0:
                at = start + 2_500
                wave_events.append((at, _with_job(service_blocked, job_id, "RUNNABLE", at, rng)))
            if fails and kind == "container" and rng.random() < 0.2:
                at = start + 2_500
                wave_events.append((at, _with_job(blocked, job_id, "RUNNABLE", at, rng)))
            at = start + 30_000 + rng.randint(0, 10_000)
            final = _with_job(final_base, job_id, final_status, at, rng)
            if kind == "array":
                final["detail"]["arrayProperties"] = {"index": index}
            wave_events.append((at, final))
        if kind == "array":
            jobs += 1
            at = clock + 60_000
            wave_events.append((at, _with_job(parent, parent_id, "FAILED", at, rng)))
        wave_events.sort(key=lambda pair: pair[0])
        events.extend(event for _, event in wave_events)
    events = events[:total_events]
    for event in events:
        detail_type = event["detail-type"]
        service = "Service" in detail_type
        blocked_queue = "Blocked" in detail_type
        key = ("SERVICE_" if service else "") + (
            "JOB_QUEUE_BLOCKED" if blocked_queue else "JOB_STATE_CHANGE"
        )
        mix[key] += 1
    return Workload(events=events, jobs=jobs, failed_jobs=failed_jobs, mix=mix)
