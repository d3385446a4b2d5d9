"""retryStrategy semantics: will Batch start another attempt after the latest one?

`will_batch_retry` predicts Batch's decision for an attempt that has just ended, so these
facts describe a job whose latest attempt stopped while the job was RUNNING.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchlens.failures import AttemptFacts, ExitRule, JobFacts, RetryStrategy, will_batch_retry

HOST = "Host EC2 (instance i-0a1b2c3d4e5f60718) terminated."
PULL = "CannotPullContainerError: Error response from daemon: pull access denied for app"
OOM = "OutOfMemoryError: Container killed due to memory usage"
ESSENTIAL = "Essential container in task exited"


def attempt_ended(
    *rules: ExitRule,
    status_reason: str | None = ESSENTIAL,
    reason: str | None = None,
    exit_code: int | None = 1,
    attempts: int | None = 3,
    used: int = 1,
    status: str = "RUNNING",
    is_cancelled: bool = False,
    is_terminated: bool = False,
) -> JobFacts:
    """A container job whose attempt number `used` just ended with this evidence."""
    earlier = tuple(AttemptFacts(ESSENTIAL, None, 1) for _ in range(used - 1))
    return JobFacts(
        event_type="JOB_STATE_CHANGE",
        status=status,
        status_reason=status_reason,
        attempts=(*earlier, AttemptFacts(status_reason, reason, exit_code)),
        retry_strategy=RetryStrategy(attempts=attempts, evaluate_on_exit=rules),
        is_cancelled=is_cancelled,
        is_terminated=is_terminated,
    )


def service_attempt_ended(*rules: ExitRule, status_reason: str, attempts: int = 3) -> JobFacts:
    return JobFacts(
        event_type="SERVICE_JOB_STATE_CHANGE",
        status="RUNNING",
        status_reason=status_reason,
        attempts=(AttemptFacts(status_reason),),
        is_service_job=True,
        retry_strategy=RetryStrategy(attempts=attempts, evaluate_on_exit=rules),
    )


# --- no rule -----------------------------------------------------------------------------------


def test_no_rules_means_retry_while_attempts_remain() -> None:
    assert will_batch_retry(attempt_ended()) == (
        True,
        "no evaluateOnExit rule matched (attempt 1/3)",
    )


def test_no_matching_rule_means_retry() -> None:
    facts = attempt_ended(ExitRule("EXIT", on_reason="OutOfMemoryError*"), reason=PULL)

    assert will_batch_retry(facts) == (True, "no evaluateOnExit rule matched (attempt 1/3)")


# --- rule order and conditions -----------------------------------------------------------------


def test_the_first_matching_rule_wins() -> None:
    rules = (
        ExitRule("RETRY", on_status_reason="Host EC2*"),
        ExitRule("EXIT", on_reason="*"),
    )
    # Given a Spot reclaim: the RETRY rule comes first
    assert will_batch_retry(attempt_ended(*rules, status_reason=HOST)) == (
        True,
        "exit rule `onStatusReason Host EC2*` matched (RETRY)",
    )
    # Given an OOM: only the catch-all matches
    assert will_batch_retry(attempt_ended(*rules, reason=OOM, exit_code=137)) == (
        False,
        "exit rule `onReason *` matched (EXIT)",
    )
    # Given the same rules reversed: the catch-all now wins for the Spot reclaim too
    assert will_batch_retry(attempt_ended(*reversed(rules), status_reason=HOST))[0] is False


def test_every_given_condition_must_match() -> None:
    rule = ExitRule("EXIT", on_status_reason="Host EC2*", on_exit_code="137")

    assert will_batch_retry(attempt_ended(rule, status_reason=HOST, exit_code=143))[0] is True
    assert will_batch_retry(attempt_ended(rule, status_reason=HOST, exit_code=137)) == (
        False,
        "exit rule `onStatusReason Host EC2*, onExitCode 137` matched (EXIT)",
    )


def test_a_rule_with_no_condition_matches_everything() -> None:
    assert will_batch_retry(attempt_ended(ExitRule("EXIT")))[0] is False


@pytest.mark.parametrize("action", ["", "IGNORE", "retry please"])
def test_a_rule_with_an_unknown_action_is_skipped(action: str) -> None:
    facts = attempt_ended(ExitRule(action, on_reason="*"), ExitRule("EXIT", on_exit_code="1"))

    assert will_batch_retry(facts) == (False, "exit rule `onExitCode 1` matched (EXIT)")


# --- pattern matching --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "reason", "matches"),
    [
        ("CannotPull*", PULL, True),
        ("CannotPullContainerError*", PULL, True),
        ("CannotPullContainerError", PULL, False),  # no '*': the whole value must be equal
        (PULL, PULL, True),
        ("*", PULL, True),
        ("*", None, True),  # a missing reason is the empty string
        ("cannotpull*", PULL, True),  # case-insensitive
        ("CANNOTPULLCONTAINERERROR: ERROR RESPONSE*", PULL, True),
        ("Cannot*Error*", PULL, False),  # only a trailing '*' is a wildcard
        ("*Pull*", PULL, False),  # a leading '*' is literal
        ("Cannot*Error", "Cannot*Error", True),  # … and so is one in the middle
        ("OutOfMemoryError*", PULL, False),
    ],
)
def test_on_reason_patterns(pattern: str, reason: str | None, matches: bool) -> None:
    facts = attempt_ended(ExitRule("EXIT", on_reason=pattern), reason=reason)

    assert will_batch_retry(facts)[0] is not matches


@pytest.mark.parametrize(
    ("pattern", "status_reason", "matches"),
    [
        ("Host EC2*", HOST, True),
        ("host ec2*", HOST, True),
        ("HOST EC2 (INSTANCE*", HOST, True),
        ("Host*terminated.", HOST, False),
        ("Host*terminated.", "Host*terminated.", True),
        ("Your Spot Task was interrupted*", "Your Spot Task was interrupted.", True),
        ("*Spot*", "Your Spot Task was interrupted.", False),
        ("Essential container in task exited", ESSENTIAL, True),
        ("Essential container in task exited", ESSENTIAL + " ", False),
    ],
)
def test_on_status_reason_patterns(pattern: str, status_reason: str, matches: bool) -> None:
    facts = attempt_ended(ExitRule("exit", on_status_reason=pattern), status_reason=status_reason)

    assert will_batch_retry(facts)[0] is not matches


@pytest.mark.parametrize(
    ("pattern", "exit_code", "matches"),
    [
        ("137", 137, True),
        ("137", 1, False),
        ("1", 137, False),
        ("13*", 137, True),
        ("13*", 130, True),
        ("13*", 13, True),
        ("13*", 3, False),
        ("13*", 113, False),
        ("*", 0, True),
        ("*", None, True),
        ("137", None, False),
        ("0", 0, True),
        ("-1", -1, True),
        ("-*", -9, True),
    ],
)
def test_on_exit_code_is_a_string_comparison(
    pattern: str, exit_code: int | None, matches: bool
) -> None:
    facts = attempt_ended(ExitRule("EXIT", on_exit_code=pattern), exit_code=exit_code)

    assert will_batch_retry(facts)[0] is not matches


@given(exit_code=st.integers(), prefix=st.integers(min_value=0, max_value=999))
def test_on_exit_code_prefix_matches_exactly_the_codes_starting_with_it(
    exit_code: int, prefix: int
) -> None:
    facts = attempt_ended(ExitRule("EXIT", on_exit_code=f"{prefix}*"), exit_code=exit_code)

    assert will_batch_retry(facts)[0] is not str(exit_code).startswith(str(prefix))


@given(exit_code=st.integers())
def test_on_exit_code_without_a_star_matches_only_that_code(exit_code: int) -> None:
    exact = attempt_ended(ExitRule("EXIT", on_exit_code=str(exit_code)), exit_code=exit_code)
    other = attempt_ended(ExitRule("EXIT", on_exit_code=str(exit_code)), exit_code=exit_code + 1)

    assert will_batch_retry(exact)[0] is False
    assert will_batch_retry(other)[0] is True


def test_rules_read_the_latest_attempt() -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNING",
        attempts=(AttemptFacts(HOST, None, None), AttemptFacts(ESSENTIAL, None, 1)),
        retry_strategy=RetryStrategy(
            attempts=3, evaluate_on_exit=(ExitRule("EXIT", on_status_reason="Host EC2*"),)
        ),
    )
    assert will_batch_retry(facts) == (True, "no evaluateOnExit rule matched (attempt 2/3)")


# --- never retried -----------------------------------------------------------------------------


def test_attempts_exhausted_is_final_even_when_a_rule_says_retry() -> None:
    facts = attempt_ended(ExitRule("RETRY", on_reason="*"), used=3, attempts=3)

    assert will_batch_retry(facts) == (False, "attempts exhausted 3/3")


@pytest.mark.parametrize("strategy", [None, RetryStrategy(), RetryStrategy(attempts=0)])
def test_no_attempts_setting_means_one_attempt(strategy: RetryStrategy | None) -> None:
    facts = JobFacts(
        event_type="JOB_STATE_CHANGE",
        status="RUNNING",
        attempts=(AttemptFacts(ESSENTIAL, None, 1),),
        retry_strategy=strategy,
    )
    assert will_batch_retry(facts) == (False, "attempts exhausted 1/1")


def test_a_timeout_is_never_retried_whatever_the_rules_say() -> None:
    facts = attempt_ended(
        ExitRule("RETRY", on_status_reason="Job attempt*"),
        status_reason="Job attempt duration exceeded timeout",
        exit_code=137,
    )
    assert will_batch_retry(facts) == (False, "timeouts are never retried")


@pytest.mark.parametrize(("cancelled", "terminated"), [(True, False), (False, True)])
def test_a_cancelled_or_terminated_job_is_never_retried(cancelled: bool, terminated: bool) -> None:
    facts = attempt_ended(
        ExitRule("RETRY", on_reason="*"), is_cancelled=cancelled, is_terminated=terminated
    )

    assert will_batch_retry(facts) == (False, "cancelled jobs are never retried")


def test_a_failed_job_explains_why_it_was_final() -> None:
    exhausted = attempt_ended(status="FAILED", used=2, attempts=2)
    by_rule = attempt_ended(ExitRule("EXIT", on_exit_code="1"), status="FAILED")

    assert will_batch_retry(exhausted) == (False, "attempts exhausted 2/2")
    assert will_batch_retry(by_rule) == (False, "exit rule `onExitCode 1` matched (EXIT)")


def test_a_queue_blocked_job_has_not_started() -> None:
    facts = JobFacts(
        event_type="JOB_QUEUE_BLOCKED",
        status="RUNNABLE",
        status_reason="CAPACITY:INSUFFICIENT_INSTANCE_CAPACITY - Service cannot fulfill the "
        "capacity requested for instance type [g5.48xlarge]",
    )
    assert will_batch_retry(facts) == (False, "the job has not started; it is blocked in the queue")


# --- service jobs ------------------------------------------------------------------------------

ALGORITHM_ERROR = "Received status from SageMaker:AlgorithmError: ExecuteUserScriptError"


def test_service_jobs_match_on_status_reason_against_the_prefixed_text() -> None:
    prefixed = ExitRule("EXIT", on_status_reason="Received status from SageMaker:AlgorithmError*")
    unprefixed = ExitRule("EXIT", on_status_reason="AlgorithmError*")

    assert (
        will_batch_retry(service_attempt_ended(prefixed, status_reason=ALGORITHM_ERROR))[0] is False
    )
    assert will_batch_retry(service_attempt_ended(unprefixed, status_reason=ALGORITHM_ERROR)) == (
        True,
        "no evaluateOnExit rule matched (attempt 1/3)",
    )


def test_service_jobs_ignore_on_reason_and_on_exit_code() -> None:
    # onReason/onExitCode alone: the rule does not apply to a service job
    only_others = ExitRule("EXIT", on_reason="*", on_exit_code="*")
    assert will_batch_retry(service_attempt_ended(only_others, status_reason=ALGORITHM_ERROR))[0]

    # with onStatusReason too, only onStatusReason is read
    mixed = ExitRule(
        "EXIT", on_status_reason="received status from sagemaker:*", on_exit_code="999"
    )
    assert will_batch_retry(service_attempt_ended(mixed, status_reason=ALGORITHM_ERROR)) == (
        False,
        "exit rule `onStatusReason received status from sagemaker:*` matched (EXIT)",
    )


def test_service_capacity_errors_are_retried_without_spending_an_attempt() -> None:
    facts = service_attempt_ended(
        status_reason="Received status from SageMaker: CapacityError: Unable to provision "
        "requested ML compute capacity.",
        attempts=1,
    )
    assert will_batch_retry(facts) == (
        True,
        "Batch retries SageMaker capacity errors without spending an attempt",
    )
