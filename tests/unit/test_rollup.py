"""The roll-up from byParent entries: which child it names, and what it says without its record."""

from __future__ import annotations

from batchlens.events import parse_event
from batchlens.records import JobRecord, normalise
from batchlens.rollup import example_child, rollup_failure
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
