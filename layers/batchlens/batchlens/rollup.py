"""Roll-up of an array (or multi-node) job's children into its parent's one alert.

Pure code. Children never alert one by one; when the parent reaches its final state, its `failure`
says how many children failed out of how many, the top failure categories among them (counted from
the history's byParent entries), and names one failed child, whose record is read, as an example.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from batchlens.failures import Failure, FailureCategory
from batchlens.records import JobKind, JobRecord

PARENT_KINDS = frozenset({JobKind.ARRAY_PARENT, JobKind.MULTINODE_PARENT})
TOP_CATEGORIES = 3


def needs_rollup(record: JobRecord) -> bool:
    """A parent in its final state whose children may explain it."""
    return record.job_kind in PARENT_KINDS and record.is_terminal and record.status == "FAILED"


def _category(child: Mapping[str, Any]) -> FailureCategory:
    try:
        return FailureCategory(child.get("category") or "UNKNOWN")
    except ValueError:
        return FailureCategory.UNKNOWN


def example_child(failed_children: Sequence[Mapping[str, Any]]) -> str | None:
    """The job id of the child the roll-up names: the first one of the most common category."""
    counts = Counter(_category(child) for child in failed_children)
    if not counts:
        return None
    category = counts.most_common(1)[0][0]
    return str(next(c["jobId"] for c in failed_children if _category(c) is category))


def rollup_failure(
    record: JobRecord,
    failed_children: Iterable[Mapping[str, Any]],
    example: Mapping[str, Any] | None = None,
) -> Failure:
    """The parent's failure, explained by its failed children.

    `failed_children` are byParent entries (`jobId`, `category`), in index order; `example` is
    the JobRecord JSON of the child `example_child` names, or None where it could not be read.
    """
    children = list(failed_children)
    summary_counts = record.array_status_summary or {}
    total = record.array_size or sum(summary_counts.values()) or None
    # Batch's own count, unless it lags behind the children already known to have failed.
    failed = max(summary_counts.get("FAILED") or 0, len(children))
    one, unit = (
        ("child", "children") if record.job_kind is JobKind.ARRAY_PARENT else ("node", "nodes")
    )
    of_total = f"{failed}/{total}" if total else f"{failed}"
    # "3/1000 children failed", "2 nodes failed", but "1 node failed" (no total to read it against)
    failed_unit = one if failed == 1 and not total else unit

    counts = Counter(_category(child) for child in children)
    if not counts:
        category = record.failure.category if record.failure else FailureCategory.UNKNOWN
        own = record.failure.summary if record.failure else f"Its failed {unit} are not known yet"
        return Failure(
            category=category,
            # A multi-node parent carries no node counts: with no node in the history, there is
            # no number to give ("0 nodes failed" would be false), so it keeps its own summary.
            summary=(
                f"{of_total} {failed_unit} failed (their records are not in the history yet)"
                if failed
                else own
            ),
            detail=(record.failure.detail if record.failure else "")
            + (f" {unit.capitalize()} failed: {of_total}." if failed else ""),
            retryable=record.failure.retryable if record.failure else False,
            batch_will_retry=False,
            next_step=f"Open a failed {one} in the Batch console: {record.links.console}",
        )
    top = counts.most_common(TOP_CATEGORIES)
    category = top[0][0]
    if example is None:  # its record could not be read (it expired): name it from its entry
        example = {
            "jobId": example_child(children),
            "failure": {"summary": "its record is no longer in the history"},
        }
    example_failure = example.get("failure") or {}
    label = (
        f"child {example.get('arrayIndex')}"
        if example.get("arrayIndex") is not None
        else f"job {example.get('jobId')}"
    )
    breakdown = ", ".join(f"{cat.value} {n}" for cat, n in top)
    others = len(counts) - len(top)
    if others > 0:
        breakdown += f", +{others} more categories"
    summary = f"{of_total} {failed_unit} failed: {breakdown}"
    # Multi-node parents (and events without one) carry no status summary: say nothing of it.
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(summary_counts.items()) if v)
    detail = (f"{unit.capitalize()} by status: {by_status}. " if by_status else "") + (
        f"Example, {label} ({example.get('jobId')}): {example_failure.get('summary', '')}"
    )
    return Failure(
        category=category,
        summary=summary[:200],
        detail=detail,
        retryable=bool(example_failure.get("retryable", False)),
        batch_will_retry=False,
        next_step=(
            f"{example_failure.get('nextStep', f'Look at the failed {unit}.')} "
            f"(example: {label}, logs: {(example.get('links') or {}).get('logs') or 'n/a'})"
        ),
    )


def apply_rollup(
    record: JobRecord,
    failed_children: Iterable[Mapping[str, Any]],
    example: Mapping[str, Any] | None = None,
) -> JobRecord:
    failure = rollup_failure(record, failed_children, example)
    return record.model_copy(update={"failure": failure})
