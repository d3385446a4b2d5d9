"""Which evidence decides: an attempt's own failure over a requeued job's waiting reason,
SageMaker's leading error type over names its message quotes, and a reason no pattern knows
over an exit code."""

from __future__ import annotations

import pytest

from batchlens.events import parse_event
from batchlens.failures import AttemptFacts, FailureCategory, JobFacts, RetryStrategy, classify
from batchlens.records import normalise
from tests.conftest import EventLoader, variant

C = FailureCategory
ESSENTIAL = "Essential container in task exited"
WAITING_FOR_CAPACITY = (
    "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the capacity requested "
    "for instance type [c5.large]"
)


# --- 1: a requeued job's *current* statusReason is not evidence about the attempt that failed --


def test_a_requeued_jobs_waiting_reason_does_not_recategorise_its_failed_attempt() -> None:
    # Given attempt 1 of 3 exited 1 (the app failed), and the job, back in RUNNABLE, now waits
    # for capacity: Batch writes that into the job's statusReason
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNABLE",
        status_reason=WAITING_FOR_CAPACITY,
        attempts=(AttemptFacts(ESSENTIAL, None, 1),),
        retry_strategy=RetryStrategy(attempts=3),
    )
    failure = classify(facts)

    # Then the attempt is reported as what ended it: an application error, not capacity
    assert failure is not None
    assert failure.category is C.APPLICATION_ERROR
    assert "Exited with code 1" in failure.summary
    assert failure.retryable is False


# --- 2: SageMaker's leading error type decides, not a name quoted in the script's error --------


@pytest.mark.parametrize(
    "quoted",
    [
        "botocore.errorfactory.ResourceLimitExceeded: An error occurred (ResourceLimitExceeded) "
        "when calling the CreateEndpoint operation",
        "botocore.errorfactory.InternalServerError: An error occurred (InternalServerError) "
        "when calling the PutItem operation",
        "RuntimeError: CapacityError while allocating the data loader pool",
    ],
)
def test_an_algorithm_error_quoting_another_sagemaker_error_name_is_an_application_error(
    quoted: str,
) -> None:
    reason = (
        "Received status from SageMaker:AlgorithmError: ExecuteUserScriptError:\nExitCode 1\n"
        f'ErrorMessage "{quoted}"'
    )
    facts = JobFacts(
        event_type="SERVICE_JOB_STATE_CHANGE",
        status="FAILED",
        status_reason=reason,
        attempts=(AttemptFacts(reason),),
        is_service_job=True,
        retry_strategy=RetryStrategy(attempts=1),
    )
    failure = classify(facts)

    assert failure is not None
    assert failure.category is C.APPLICATION_ERROR
    assert failure.retryable is False


# --- 3: never from the exit code alone when an (unrecognised) reason exists ----------------------


def test_an_unrecognised_reason_with_a_sigterm_exit_is_not_blamed_on_the_application() -> None:
    # Given a job stopped with a reason no pattern knows, and the SIGTERM that stop sent
    reason = "Superseded by rerun with corrected manifest (ticket DATA-4182)"
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason=reason,
        attempts=(AttemptFacts(reason, None, 143),),
        retry_strategy=RetryStrategy(attempts=1),
    )
    failure = classify(facts)

    # Then it is unrecognised (quoting the reason), not "fix the code"
    assert failure is not None
    assert failure.category is C.UNKNOWN
    assert "Superseded by rerun" in failure.summary


def test_a_requeued_jobs_record_reports_the_attempts_own_failure(load_event: EventLoader) -> None:
    # Given the sample requeued job, whose attempt 1 instead exited 1, now waiting for capacity
    event = load_event("job-retried-runnable")
    attempt = {
        **event["detail"]["attempts"][0],
        "statusReason": ESSENTIAL,
        "container": {**event["detail"]["attempts"][0]["container"], "exitCode": 1},
    }
    event = variant(event, statusReason=WAITING_FOR_CAPACITY, attempts=[attempt])

    # When normalised, then the record blames the application, as the attempt did
    failure = normalise(parse_event(event)).to_json_dict()["failure"]
    assert failure["category"] == "APPLICATION_ERROR"
    assert failure["summary"].startswith("Job attempt 1/3 failed — Exited with code 1")
