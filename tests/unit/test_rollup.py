"""The roll-up from byParent entries: which child it names, and what it says without its record."""

from __future__ import annotations

from typing import Any

from batchlens.events import parse_event
from batchlens.failures import Failure, FailureCategory
from batchlens.records import JobRecord, normalise
from batchlens.rollup import example_child, needs_rollup, rollup_failure
from tests.conftest import read_event


def failed_parent() -> JobRecord:
    return normalise(parse_event(read_event("array-parent-failed.json")))


def entry(index: int, category: str | None) -> dict[str, str | None]:
    return {"jobId": f"parent:{index}", "status": "FAILED", "category": category}


def test_the_example_is_the_first_child_of_the_most_common_category() -> None:
    # Given byParent entries in index order: one OOM first, then two application errors
    entries = [
        entry(3, "OUT_OF_MEMORY"),
        entry(7, "APPLICATION_ERROR"),
        entry(9, "APPLICATION_ERROR"),
    ]
    # Then the child to read whole is the first application error, not the first entry
    assert example_child(entries) == "parent:7"
    # And a parent without failed children in the history has no example
    assert example_child([]) is None


def test_an_unknown_or_missing_category_counts_as_unknown() -> None:
    entries = [entry(1, None), entry(2, "NOT_A_CATEGORY"), entry(3, "TIMEOUT")]
    failure = rollup_failure(failed_parent(), entries)
    assert failure.category.value == "UNKNOWN"
    assert "UNKNOWN 2, TIMEOUT 1" in failure.summary


def test_without_the_example_record_the_summary_still_counts_and_names_the_child() -> None:
    # Given three failed children counted from the index, whose example could not be read
    entries = [entry(4, "TIMEOUT"), entry(5, "TIMEOUT"), entry(6, "OUT_OF_MEMORY")]
    # When the parent's failure is rolled up without it
    failure = rollup_failure(failed_parent(), entries, example=None)
    # Then the counts hold and the example is named by its job id
    assert failure.category.value == "TIMEOUT"
    assert "TIMEOUT 2, OUT_OF_MEMORY 1" in failure.summary
    assert "Example, job parent:4 (parent:4)" in failure.detail
    # And the detail says why it gives no summary of it
    assert failure.detail.endswith("(parent:4): its record is no longer in the history")


def child_record(index: int, summary: str, **failure: Any) -> dict[str, Any]:
    """The JobRecord JSON of failed child `index`, as the history returns the example's."""
    return {
        "jobId": f"parent:{index}",
        "arrayIndex": index,
        "failure": {"category": "APPLICATION_ERROR", "summary": summary, **failure},
        "links": {"logs": f"https://logs.example/{index}"},
    }


def test_the_summary_counts_the_failures_batch_reports_not_only_those_in_the_history() -> None:
    # Given a parent whose summary says 3 of its 1000 children failed, two of them in the history
    entries = [entry(4, "TIMEOUT"), entry(5, "TIMEOUT")]
    # When rolled up
    failure = rollup_failure(failed_parent(), entries, child_record(4, "Timed out"))
    # Then it says 3 failed, as Batch counted, by the categories of those it could read
    assert failure.summary == "3/1000 children failed: TIMEOUT 2"
    # And the detail gives Batch's counts by status, leaving out the empty ones
    assert failure.detail == (
        "Children by status: FAILED 3, SUCCEEDED 997. Example, child 4 (parent:4): Timed out"
    )


def test_a_batch_count_behind_the_children_known_to_have_failed_is_not_believed() -> None:
    # Given a parent whose summary says 3 of its 1000 children failed, and 5 failed children known
    entries = [entry(n, "TIMEOUT") for n in range(5)]

    # When rolled up; then the headline counts at least the children it then breaks down
    failure = rollup_failure(failed_parent(), entries, child_record(0, "Timed out"))
    assert failure.summary == "5/1000 children failed: TIMEOUT 5"


def test_the_summary_names_the_top_three_categories_and_counts_the_rest() -> None:
    # Given failed children in four categories
    entries = [
        entry(1, "TIMEOUT"),
        entry(2, "TIMEOUT"),
        entry(3, "OUT_OF_MEMORY"),
        entry(4, "IMAGE_PULL"),
        entry(5, "CANCELLED"),
    ]
    # When rolled up, then the three most common are named (ties in index order), the rest counted
    # (and the five known count, though Batch's summary says 3)
    failure = rollup_failure(failed_parent(), entries, child_record(1, "Timed out"))
    assert failure.summary == (
        "5/1000 children failed: TIMEOUT 2, OUT_OF_MEMORY 1, IMAGE_PULL 1, +1 more categories"
    )
    # And with three categories or fewer, nothing is said of more
    failure = rollup_failure(failed_parent(), entries[:4], child_record(1, "Timed out"))
    assert failure.summary == "4/1000 children failed: TIMEOUT 2, OUT_OF_MEMORY 1, IMAGE_PULL 1"


def test_the_example_child_gives_its_next_step_and_whether_a_retry_helps() -> None:
    # Given the example child's record: a failure a retry may fix, with its own next step
    example = child_record(7, "Spot host lost", retryable=True, nextStep="Retry it")
    # When the parent is rolled up with it
    failure = rollup_failure(failed_parent(), [entry(7, "HOST_TERMINATED")], example)
    # Then the parent's failure carries the child's next step, its logs, and its retry outlook
    assert failure.next_step == "Retry it (example: child 7, logs: https://logs.example/7)"
    assert failure.retryable is True
    assert failure.batch_will_retry is False


def test_without_the_example_record_the_child_named_is_of_the_most_common_category() -> None:
    # Given an out-of-memory child first in index order, then two timeouts, none readable
    entries = [entry(1, "OUT_OF_MEMORY"), entry(2, "TIMEOUT"), entry(3, "TIMEOUT")]
    # When rolled up without the example's record
    failure = rollup_failure(failed_parent(), entries, example=None)
    # Then the child named is the first timeout, the one the roll-up chose, not the first entry
    assert "Example, job parent:2 (parent:2): its record is no longer" in failure.detail


def test_without_children_in_the_history_the_parent_keeps_its_own_explanation() -> None:
    # Given a failed parent whose own failure Batch would not retry, and no children readable
    parent = failed_parent()
    own = Failure(
        category=FailureCategory.CANCELLED,
        summary="Cancelled",
        detail="Terminated by user.",
        retryable=True,
        batch_will_retry=True,
        next_step="Resubmit",
    )
    # When rolled up from its own counts
    failure = rollup_failure(parent.model_copy(update={"failure": own}), [])
    # Then its category, detail and retry outlook stay its own, and Batch retries nothing more
    assert failure.category is FailureCategory.CANCELLED
    assert failure.detail == "Terminated by user. Children failed: 3/1000."
    assert failure.retryable is True
    assert failure.batch_will_retry is False


def multinode_rollup() -> tuple[JobRecord, JobRecord, Failure]:
    """The multi-node sample's parent (no array summary) rolled up from its failed node 2."""
    parent = normalise(parse_event(read_event("multinode-failed")))
    node = normalise(parse_event(read_event("multinode-node-failed")))
    assert node.failure is not None
    entries = [{"jobId": node.job_id, "category": node.failure.category.value}]
    return parent, node, rollup_failure(parent, entries, node.to_json_dict())


def test_a_multinode_parent_is_rolled_up_from_its_nodes() -> None:
    # Given a failed multi-node parent and its failed node 2 in the history; when rolled up
    parent, _, failure = multinode_rollup()
    # Then it needed the roll-up, and its summary counts nodes (the record has no node count)
    assert needs_rollup(parent)
    assert failure.summary == "1 node failed: APPLICATION_ERROR 1"


def test_a_parent_without_status_counts_claims_none() -> None:
    # Given a multi-node parent: its record carries no status summary; when rolled up
    _, node, failure = multinode_rollup()
    # Then the detail goes straight to the example, with no empty "Nodes by status: ."
    assert node.failure is not None
    assert failure.detail == f"Example, job {node.job_id} ({node.job_id}): {node.failure.summary}"


def test_a_multinode_parent_without_nodes_in_the_history_keeps_its_own_summary() -> None:
    # Given a failed multi-node parent (no node counts of its own) and none of its nodes stored
    parent = normalise(parse_event(read_event("multinode-failed")))
    assert parent.failure is not None

    # When rolled up
    failure = rollup_failure(parent, [])

    # Then it claims no count ("0 nodes failed" would be false) and keeps its own explanation
    assert failure.summary == parent.failure.summary
    assert failure.detail == parent.failure.detail
    assert failure.category is parent.failure.category
    assert failure.next_step.startswith("Open a failed node in the Batch console: ")
    assert failure.batch_will_retry is False
