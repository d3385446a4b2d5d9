"""batchlens.failures: which category a failure falls in, and how it is explained."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batchlens.events import SERVICE_JOB_STATUSES
from batchlens.failures import (
    AttemptFacts,
    EvidenceField,
    ExitRule,
    Failure,
    FailureCategory,
    JobFacts,
    RetryStrategy,
    categorize,
    classify,
    is_failure,
    signal_name,
    will_batch_retry,
)
from tests.unit.failure_corpus import CASES, ESSENTIAL, OOM, REASONS, Case

C = FailureCategory


def failure_of(facts: JobFacts) -> Failure:
    failure = classify(facts)
    assert failure is not None, f"expected a failure for {facts}"
    return failure


def assert_presentable(failure: Failure) -> None:
    assert len(failure.summary) <= 200
    assert len(failure.summary.splitlines()) == 1
    assert failure.summary.strip() == failure.summary != ""
    assert failure.next_step
    assert ("Batch will retry: " in failure.detail) != ("Batch will not retry: " in failure.detail)


# --- the corpus ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_corpus_case_gets_its_category_and_retry_outlook(case: Case) -> None:
    # Given a real-shaped failure; when it is classified
    failure = failure_of(case.facts)
    # then category, retry-helps and Batch's own retry decision are the expected ones
    assert (failure.category, failure.retryable, failure.batch_will_retry) == (
        case.category,
        case.retryable,
        case.batch_will_retry,
    )


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_corpus_case_is_explained_with_its_evidence(case: Case) -> None:
    failure = failure_of(case.facts)

    assert_presentable(failure)
    for expected in case.summary_has:
        assert expected in failure.summary
    for expected in case.detail_has:
        assert expected in failure.detail
    for expected in case.next_step_has:
        assert expected in failure.next_step
    outlook = "Batch will retry: " if case.batch_will_retry else "Batch will not retry: "
    assert outlook in failure.detail


@pytest.mark.parametrize(
    "case",
    [case for case in CASES if case.facts.status == "FAILED"],
    ids=lambda case: case.id,
)
def test_a_failed_job_is_never_retried_and_will_batch_retry_agrees(case: Case) -> None:
    decision, reason = will_batch_retry(case.facts)

    assert decision is False
    assert reason in failure_of(case.facts).detail


def test_corpus_is_broad_enough() -> None:
    # Given the corpus; then it holds enough cases to cover every category and evidence shape
    assert len(CASES) >= 45
    assert {case.category for case in CASES} == set(FailureCategory)
    assert len({case.id for case in CASES}) == len(CASES)
    assert all(case.source for case in CASES)
    event_types = {case.facts.event_type for case in CASES}
    assert event_types == {
        "JOB_STATE_CHANGE",
        "SERVICE_JOB_STATE_CHANGE",
        "JOB_QUEUE_BLOCKED",
        "SERVICE_JOB_QUEUE_BLOCKED",
    }
    reasons = " ".join(REASONS)
    assert "Received status from SageMaker: " in reasons
    assert "Received status from SageMaker:I" in reasons  # the spelling without a space
    assert "\n" in reasons


# --- nothing wrong ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "facts",
    [
        JobFacts(event_type="JOB_STATE_CHANGE", status="SUCCEEDED", status_reason=ESSENTIAL),
        JobFacts(
            event_type="JOB_STATE_CHANGE",
            status="SUCCEEDED",
            attempts=(AttemptFacts(ESSENTIAL, OOM, 137), AttemptFacts(ESSENTIAL, None, 0)),
        ),
        JobFacts(event_type="JOB_STATE_CHANGE", status="SUBMITTED"),
        JobFacts(event_type="JOB_STATE_CHANGE", status="PENDING"),
        JobFacts(event_type="JOB_STATE_CHANGE", status="RUNNABLE"),
        JobFacts(event_type="JOB_STATE_CHANGE", status="STARTING"),
        JobFacts(event_type="JOB_STATE_CHANGE", status="RUNNING"),
        JobFacts(
            event_type="JOB_STATE_CHANGE",
            status="RUNNING",
            attempts=(AttemptFacts("Host EC2 (instance i-0abc) terminated."),),
        ),
        JobFacts(event_type="SERVICE_JOB_STATE_CHANGE", status="SCHEDULED", is_service_job=True),
        JobFacts(
            event_type="SERVICE_JOB_STATE_CHANGE",
            status="SUCCEEDED",
            status_reason="Received status from SageMaker: Training job completed",
            attempts=(AttemptFacts("Received status from SageMaker: Training job completed"),),
            is_service_job=True,
        ),
    ],
    ids=[
        "succeeded",
        "succeeded-after-a-failed-attempt",
        "submitted",
        "pending",
        "runnable",
        "starting",
        "running",
        "running-again-after-a-failed-attempt",
        "service-scheduled",
        "service-training-completed",
    ],
)
def test_success_and_normal_transitions_are_not_failures(facts: JobFacts) -> None:
    assert classify(facts) is None


def test_a_runnable_state_change_without_attempts_is_left_to_the_queue_blocked_event() -> None:
    # Given a plain state change whose statusReason already names the blocking reason
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNABLE",
        status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the "
        "capacity requested for instance type [p5.48xlarge]",
    )
    # then it is a normal transition; the Job Queue Blocked event carries the failure
    assert classify(facts) is None
    assert failure_of(replace(facts, event_type="JOB_QUEUE_BLOCKED")).category is C.CAPACITY


# --- the retried-attempt case ----------------------------------------------------------------


@pytest.mark.parametrize("status", ["RUNNABLE", "SUBMITTED", "PENDING"])
def test_a_job_back_in_the_queue_after_a_failed_attempt_reports_that_attempt(status: str) -> None:
    # Given the first of three attempts ended on a Spot reclaim and the job is queued again
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status=status,
        attempts=(AttemptFacts("Host EC2 (instance i-0a1b2c3d4e5f60718) terminated.", None, 143),),
        retry_strategy=RetryStrategy(attempts=3),
    )
    failure = failure_of(facts)

    assert failure.category is C.HOST_TERMINATED
    assert failure.batch_will_retry is True
    assert "attempt 1/3 failed" in failure.summary
    assert failure.summary.endswith("; Batch is retrying")
    assert "i-0a1b2c3d4e5f60718" in failure.summary


def test_a_job_back_in_the_queue_is_retrying_even_when_the_rules_predicted_exit() -> None:
    # Given rules that would say EXIT, but Batch put the job back in RUNNABLE anyway
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNABLE",
        attempts=(AttemptFacts(ESSENTIAL, None, 1),),
        retry_strategy=RetryStrategy(
            attempts=2, evaluate_on_exit=(ExitRule("EXIT", on_exit_code="1"),)
        ),
    )
    failure = failure_of(facts)

    # then what happened wins over the prediction
    assert failure.batch_will_retry is True
    assert "Batch will retry: the job is back in RUNNABLE after attempt 1/2" in failure.detail


def test_exit_rules_read_the_attempts_status_reason_not_the_jobs_newer_one() -> None:
    # Given a Spot reclaim ended attempt 1 of 3, the rules retry reclaims and exit on the rest,
    # and the job, back in RUNNABLE, now waits for capacity: Batch writes that into the job's
    # statusReason (AWS Batch user guide, "Jobs stuck in RUNNABLE due to capacity")
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNABLE",
        status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the "
        "capacity requested for instance type [c5.large]",
        attempts=(AttemptFacts("Host EC2 (instance i-0a1b2c3d4e5f60718) terminated.", None, 143),),
        retry_strategy=RetryStrategy(
            attempts=3,
            evaluate_on_exit=(
                ExitRule("RETRY", on_status_reason="Host EC2*"),
                ExitRule("EXIT", on_reason="*"),
            ),
        ),
    )

    # When classified
    failure = failure_of(facts)

    # Then the attempt's own reason met the RETRY rule, as Batch judged it when the attempt ended
    assert failure.category is C.HOST_TERMINATED
    assert "Batch will retry: exit rule `onStatusReason Host EC2*` matched (RETRY)" in (
        failure.detail
    )
    # and the step does not ask for the RETRY rule the job already has
    assert failure.next_step.startswith("Raise retryStrategy.attempts (now 3)")


def test_a_retried_attempt_keeps_a_long_summary_within_bounds() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNABLE",
        attempts=(
            AttemptFacts("Task failed to start", "CannotStartContainerError: " + "x " * 500),
        ),
        retry_strategy=RetryStrategy(attempts=10),
    )
    failure = failure_of(facts)

    assert_presentable(failure)
    assert failure.summary.startswith("Job attempt 1/10 failed")
    assert failure.summary.endswith("; Batch is retrying")


# --- which evidence decides ------------------------------------------------------------------


HOST = "Host EC2 (instance i-0a1b2c3d4e5f67890) terminated."
RETRY_RECLAIMS = ExitRule("RETRY", on_status_reason="Host EC2*")
EXIT_REST = ExitRule("EXIT", on_reason="*")


@pytest.mark.parametrize(
    ("attempts", "rules", "step"),
    [
        # A RETRY rule for reclaims, or none matching (Batch retries then): only more attempts help
        (2, (RETRY_RECLAIMS, EXIT_REST), "Raise retryStrategy.attempts (now 2)"),
        (3, (), "Raise retryStrategy.attempts (now 3)"),
        # An EXIT rule caught the reclaim: a RETRY rule must come before it
        (3, (ExitRule("EXIT", on_status_reason="*"),), "before the EXIT rule that caught it"),
        # One attempt: retries need more, with a rule so that only reclaims retry
        (1, (), "Set retryStrategy.attempts above 1 with a rule {onStatusReason: 'Host EC2*'"),
    ],
    ids=["retry rule", "no rule", "exit rule", "one attempt"],
)
def test_a_host_termination_step_fits_the_jobs_retry_strategy(
    attempts: int, rules: tuple[ExitRule, ...], step: str
) -> None:
    # Given a job whose every attempt ended with its host terminated
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason=HOST,
        attempts=tuple(AttemptFacts(HOST) for _ in range(attempts)),
        retry_strategy=RetryStrategy(attempts, rules),
    )

    # When classified; then the next step changes what Batch does, not what it already does
    assert step in failure_of(facts).next_step


@pytest.mark.parametrize(
    "rules", [(), (ExitRule("EXIT", on_status_reason="*"),)], ids=["one attempt", "exit rule"]
)
def test_a_host_termination_step_quotes_a_rule_as_it_would_be_written(
    rules: tuple[ExitRule, ...],
) -> None:
    # Given a reclaimed job whose step proposes an evaluateOnExit rule
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason=HOST,
        attempts=(AttemptFacts(HOST),),
        retry_strategy=RetryStrategy(1, rules),
    )
    step = failure_of(facts).next_step

    # Then the rule reads as one object, with no stray brace to copy into a job definition
    assert "{onStatusReason: 'Host EC2*', action: RETRY}" in step
    assert step.count("{") == step.count("}")


def test_the_latest_attempt_decides() -> None:
    # Given an OOM on attempt 1 and a Spot reclaim on attempt 2
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        attempts=(
            AttemptFacts(ESSENTIAL, OOM, 137),
            AttemptFacts("Host EC2 (instance i-0fedcba9876543210) terminated."),
        ),
        retry_strategy=RetryStrategy(attempts=2),
    )
    assert failure_of(facts).category is C.HOST_TERMINATED


def test_the_container_reason_outranks_the_status_reason() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason="Task failed to start",
        attempts=(
            AttemptFacts("Task failed to start", "CannotPullContainerError: pull access denied"),
        ),
    )
    assert failure_of(facts).category is C.IMAGE_PULL


def test_only_a_cancel_gives_way_to_a_status_reason_found_later() -> None:
    # Given a container reason and a timeout status reason, without a cancel
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        attempts=(AttemptFacts("Job attempt duration exceeded timeout", OOM, 137),),
    )
    # then the container reason still comes first; with a cancel flag the timeout wins
    assert failure_of(facts).category is C.OUT_OF_MEMORY
    assert failure_of(replace(facts, is_terminated=True)).category is C.TIMEOUT


def test_job_level_container_values_fill_what_the_latest_attempt_lacks() -> None:
    # Given an attempt without container details, and the job's own container.reason/exitCode
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        attempts=(AttemptFacts(ESSENTIAL),),
        container_reason=OOM,
        exit_code=137,
        memory_mib=8192,
    )
    failure = failure_of(facts)

    assert failure.category is C.OUT_OF_MEMORY
    assert "8192 MiB" in failure.summary
    assert "exit code 137 (SIGKILL)" in failure.detail


@pytest.mark.parametrize("exit_code", [137, 143, 1, None])
def test_a_reason_that_matched_outranks_the_exit_code(exit_code: int | None) -> None:
    # Spot reclaims come with 137, 143, 1 or no exit code at all
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        attempts=(AttemptFacts("Host EC2 (instance i-0123abcd) terminated.", None, exit_code),),
    )
    assert failure_of(facts).category is C.HOST_TERMINATED


def test_the_time_limit_reason_outranks_the_cancel_flag() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason="Canceled by JobStateTimeLimit action due to reason: "
        "MISCONFIGURATION:COMPUTE_ENVIRONMENT_MAX_RESOURCE",
        is_cancelled=True,
    )
    failure = failure_of(facts)

    assert failure.category is C.MISCONFIGURATION
    assert "maxvCpus" in failure.next_step
    assert "JobStateTimeLimit" in failure.summary


def test_a_time_limit_cancel_with_an_unknown_reason_is_a_cancel() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason="Canceled by JobStateTimeLimit action due to reason: SOMETHING:NEW",
        is_cancelled=True,
    )
    assert failure_of(facts).category is C.CANCELLED


# --- dependencies ----------------------------------------------------------------------------


def test_a_failed_dependency_is_named_with_its_category() -> None:
    # Given the history knows which dependency failed and why
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        status_reason="Dependent Job failed",
        depends_on=("job-a", "job-b"),
        dependency_job_id="job-b",
        dependency_category=C.IMAGE_PULL,
    )
    failure = failure_of(facts)

    assert failure.category is C.DEPENDENCY_FAILED
    assert "job-b (IMAGE_PULL)" in failure.summary
    assert failure.next_step == "Look at dependency job job-b (IMAGE_PULL)"
    assert "Batch will not retry: a job it depends on failed" in failure.detail


def test_a_known_failed_dependency_outranks_the_cancel_flag_without_any_reason_text() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="FAILED",
        is_cancelled=True,
        depends_on=("job-a",),
        dependency_job_id="job-a",
    )
    failure = failure_of(facts)

    assert failure.category is C.DEPENDENCY_FAILED
    assert failure.next_step == "Look at dependency job job-a"


@pytest.mark.parametrize(
    "reason",
    [
        "Dependent Job failed",
        "dependent job 8c1f failed",
        "Dependency job failed",
        "DEPENDENT JOB FAILED",
    ],
)
def test_dependency_failure_texts(reason: str) -> None:
    assert categorize(reason, EvidenceField.STATUS_REASON) is C.DEPENDENCY_FAILED


# --- one piece of evidence -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "field", "category"),
    [
        (
            "Received status from SageMaker:AlgorithmError: boom",
            EvidenceField.SERVICE_STATUS_REASON,
            C.APPLICATION_ERROR,
        ),
        (
            "Received status from SageMaker: AlgorithmError: boom",
            EvidenceField.SERVICE_STATUS_REASON,
            C.APPLICATION_ERROR,
        ),
        (
            "received STATUS from sagemaker :  CapacityError: x",
            EvidenceField.SERVICE_STATUS_REASON,
            C.CAPACITY,
        ),
        (
            "Received status from SageMaker:\nValidationException: x",
            EvidenceField.SERVICE_STATUS_REASON,
            C.MISCONFIGURATION,
        ),
        # service-only names mean nothing in a container job's evidence
        (
            "botocore.exceptions.ClientError: An error occurred",
            EvidenceField.CONTAINER_REASON,
            C.UNKNOWN,
        ),
        ("AlgorithmError: boom", EvidenceField.STATUS_REASON, C.UNKNOWN),
        # EKS
        ("OOMKilled", EvidenceField.CONTAINER_REASON, C.OUT_OF_MEMORY),
        ("Error", EvidenceField.CONTAINER_REASON, C.UNKNOWN),
        ("ImagePullBackOff", EvidenceField.CONTAINER_REASON, C.IMAGE_PULL),
        # an embedded time-limit reason
        (
            "Terminated by JobStateTimeLimit action due to reason: "
            "CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY",
            None,
            C.CAPACITY,
        ),
        ("Essential container in task exited", None, C.UNKNOWN),
        ("", None, C.UNKNOWN),
        (None, None, C.UNKNOWN),
    ],
)
def test_categorize_one_piece_of_evidence(
    reason: str | None, field: EvidenceField | None, category: FailureCategory
) -> None:
    assert categorize(reason, field) is category


@pytest.mark.parametrize(
    ("exit_code", "name"),
    [
        (137, "SIGKILL"),
        (143, "SIGTERM"),
        (139, "SIGSEGV"),
        (134, "SIGABRT"),
        (129, "SIGHUP"),
        (159, "SIGSYS"),
        (128, None),
        (160, None),
        (1, None),
        (0, None),
        (-9, None),
        (255 + 137, None),
    ],
)
def test_signal_name(exit_code: int, name: str | None) -> None:
    assert signal_name(exit_code) == name


def test_the_failure_serialises_with_camel_case_keys_and_is_frozen() -> None:
    failure = failure_of(JobFacts(event_type="JOB_STATE_CHANGE", status="FAILED", exit_code=2))

    assert set(failure.model_dump(mode="json", by_alias=True)) == {
        "category",
        "summary",
        "detail",
        "retryable",
        "batchWillRetry",
        "nextStep",
    }
    assert failure.model_dump(mode="json", by_alias=True)["category"] == "APPLICATION_ERROR"
    with pytest.raises(ValueError, match="frozen"):
        failure.summary = "changed"  # type: ignore[misc]


def test_a_huge_multiline_reason_still_gives_a_one_line_summary() -> None:
    reason = "CannotStartContainerError: " + ("line\r\nwith\u2028breaks " * 20_000)
    failure = failure_of(
        JobFacts(
            event_type="JOB_STATE_CHANGE",
            status="FAILED",
            attempts=(AttemptFacts("Task failed to start", reason, 128),),
        )
    )

    assert failure.category is C.CONTAINER_START
    assert_presentable(failure)
    assert len(failure.detail) < 5_000


# --- properties ------------------------------------------------------------------------------

reasons = st.one_of(
    st.none(),
    st.text(max_size=300),
    st.sampled_from(REASONS),
    st.builds(lambda seed, noise: seed + noise, st.sampled_from(REASONS), st.text(max_size=50)),
    st.builds(lambda noise, seed: noise + seed, st.text(max_size=20), st.sampled_from(REASONS)),
)
exit_codes = st.one_of(
    st.none(),
    st.integers(min_value=-(2**31), max_value=2**31),
    st.sampled_from([0, 1, 2, 137, 139, 143]),
)
attempts = st.builds(
    AttemptFacts,
    status_reason=reasons,
    container_reason=reasons,
    exit_code=exit_codes,
    instance_id=st.one_of(st.none(), st.text(max_size=30)),
)
actions = st.sampled_from(["RETRY", "EXIT", "retry", "exit", "", "IGNORE"])
patterns = st.one_of(
    st.none(), st.text(max_size=20), st.sampled_from(["*", "Host EC2*", "13*", "137", "*Spot*"])
)
rules = st.builds(
    ExitRule, action=actions, on_status_reason=patterns, on_reason=patterns, on_exit_code=patterns
)
strategies = st.one_of(
    st.none(),
    st.builds(
        RetryStrategy,
        attempts=st.one_of(st.none(), st.integers(min_value=-3, max_value=12)),
        evaluate_on_exit=st.lists(rules, max_size=5).map(tuple),
    ),
)


def job_facts(
    status: st.SearchStrategy[str], event_type: st.SearchStrategy[str]
) -> st.SearchStrategy[JobFacts]:
    return st.builds(
        JobFacts,
        event_type=event_type,
        status=status,
        status_reason=reasons,
        attempts=st.lists(attempts, max_size=20).map(tuple),
        container_reason=reasons,
        exit_code=exit_codes,
        is_cancelled=st.booleans(),
        is_terminated=st.booleans(),
        is_service_job=st.booleans(),
        retry_strategy=strategies,
        memory_mib=st.one_of(st.none(), st.integers()),
        image=st.one_of(st.none(), st.text(max_size=200)),
        timeout_seconds=st.one_of(st.none(), st.integers()),
        depends_on=st.lists(st.text(max_size=40), max_size=8).map(tuple),
        dependency_category=st.one_of(st.none(), st.sampled_from(FailureCategory)),
        dependency_job_id=st.one_of(st.none(), st.text(max_size=60)),
    )


STATUSES = list(SERVICE_JOB_STATUSES)
EVENT_TYPES = [
    "JOB_STATE_CHANGE",
    "SERVICE_JOB_STATE_CHANGE",
    "JOB_QUEUE_BLOCKED",
    "SERVICE_JOB_QUEUE_BLOCKED",
]


@settings(max_examples=300, deadline=None)
@given(job_facts(st.just("FAILED"), st.sampled_from(EVENT_TYPES[:2])))
def test_every_failed_job_gets_a_presentable_failure(facts: JobFacts) -> None:
    failure = classify(facts)

    assert failure is not None
    assert failure.category in set(FailureCategory)
    assert failure.batch_will_retry is False
    assert_presentable(failure)


@settings(max_examples=300, deadline=None)
@given(
    job_facts(
        st.one_of(st.sampled_from(STATUSES), st.text(max_size=12)),
        st.one_of(st.sampled_from(EVENT_TYPES), st.text(max_size=30)),
    )
)
def test_any_facts_give_none_or_a_presentable_failure_and_a_retry_outlook(facts: JobFacts) -> None:
    failure = classify(facts)
    decision, reason = will_batch_retry(facts)

    if failure is not None:
        assert_presentable(failure)
    assert isinstance(decision, bool)
    assert reason


@settings(max_examples=200, deadline=None)
@given(
    case=st.sampled_from([c for c in CASES if c.facts.status == "FAILED"]),
    upper=st.booleans(),
    separator=st.sampled_from([" ", "\n", "\r\n  ", "\t", "   "]),
)
def test_case_and_line_breaks_do_not_change_the_category(
    case: Case, upper: bool, separator: str
) -> None:
    def mangle(text: str | None) -> str | None:
        if text is None:
            return None
        return (text.upper() if upper else text.lower()).replace(" ", separator)

    facts = replace(
        case.facts,
        status_reason=mangle(case.facts.status_reason),
        container_reason=mangle(case.facts.container_reason),
        attempts=tuple(
            replace(
                a,
                status_reason=mangle(a.status_reason),
                container_reason=mangle(a.container_reason),
            )
            for a in case.facts.attempts
        ),
    )
    failure = failure_of(facts)

    assert (failure.category, failure.retryable) == (case.category, case.retryable)


@given(st.integers())
def test_signal_names_exist_exactly_for_exit_codes_129_to_159(exit_code: int) -> None:
    name = signal_name(exit_code)

    assert (name is not None) == (129 <= exit_code <= 159)
    assert name is None or name.startswith("SIG")


# --- is_failure: classify's first check, asked before the facts are gathered ----------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_is_failure_agrees_with_classify_on_the_corpus(case: Case) -> None:
    facts = case.facts
    assert is_failure(facts.event_type, facts.status, attempted=bool(facts.attempts))
    assert classify(facts) is not None


#: Every status of container and service jobs, and forms a hand-made event could carry.
ANY_STATUS = (
    *("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SCHEDULED", "SUCCEEDED"),
    *("FAILED", "failed", "runnable", ""),
)


@settings(max_examples=300, deadline=None)
@given(
    event_type=st.sampled_from(
        [
            "JOB_STATE_CHANGE",
            "SERVICE_JOB_STATE_CHANGE",
            "JOB_QUEUE_BLOCKED",
            "SERVICE_JOB_QUEUE_BLOCKED",
            "job_queue_blocked",
            "",
        ]
    ),
    status=st.sampled_from(ANY_STATUS),
    attempts=st.lists(
        st.builds(
            AttemptFacts,
            status_reason=st.sampled_from([None, "Host EC2 terminated", "Essential container"]),
            exit_code=st.sampled_from([None, 0, 1, 137]),
        ),
        max_size=2,
    ),
)
def test_is_failure_agrees_with_classify_on_any_status(
    event_type: str, status: str, attempts: list[AttemptFacts]
) -> None:
    # Given any event type, status and finished attempts: normalise gathers a job's failure
    # facts only where `is_failure` says so, so it must never miss a failure `classify` finds
    facts = JobFacts(event_type=event_type, status=status, attempts=tuple(attempts))
    assert is_failure(event_type, status, attempted=bool(attempts)) == (classify(facts) is not None)
