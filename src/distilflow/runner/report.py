"""Counting what a step produced, from the rows themselves, and saying it in states and artifacts.

Counts never come from state names: on a cache hit Prefect renames a batch's state `Cached` and
drops its message, so fallbacks and tokens are recounted from the rows every time.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from distilflow.answers import RowFailure
from distilflow.steps.tasks.base import DISTILABEL_METADATA_KEY, FAILURE_KEY_PREFIX, _Task

_EXAMPLES_KEPT = 20

__all__ = ["RowCounts", "StepSummary", "count_rows", "failure_message", "fallback_message", "shape_message"]


@dataclass
class RowCounts:
    """What a list of output rows says about itself."""

    generations: int = 0
    fallbacks: int = 0
    reasons: Counter = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0
    fallback_rows: list[tuple[int, str]] = field(default_factory=list)  # (row index, reason)
    rows: int = 0
    failed_rows: int = 0  # rows with a failed request (each counted once, grouped or not)
    failure_reasons: Counter = field(default_factory=Counter)
    failure_examples: list[tuple[int, str]] = field(default_factory=list)  # (row index, reason)

    def add(self, other: RowCounts) -> None:
        self.generations += other.generations
        self.fallbacks += other.fallbacks
        self.reasons.update(other.reasons)
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens  # per-row details stay with the batch
        self.rows += other.rows
        self.failed_rows += other.failed_rows
        self.failure_reasons.update(other.failure_reasons)
        # a few examples of each kind for messages (row indexes are the batch's)
        for mine, theirs in ((self.fallback_rows, other.fallback_rows), (self.failure_examples, other.failure_examples)):
            mine.extend(theirs[: max(0, _EXAMPLES_KEPT - len(mine))])


def count_rows(task: _Task, rows: list[dict[str, Any]]) -> RowCounts:
    counts = RowCounts(rows=len(rows))
    reason_key, stats_key = f"fallback_reason_{task.name}", f"statistics_{task.name}"
    failure_key = f"{FAILURE_KEY_PREFIX}{task.name}"
    for index, row in enumerate(rows):
        metadata = row.get(DISTILABEL_METADATA_KEY)
        entries = metadata if isinstance(metadata, list) else [metadata or {}]
        grouped_outputs = task.group_generations and isinstance(metadata, list)
        counts.generations += len(entries) if grouped_outputs else 1
        failure = None
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get(failure_key), dict):
                failure = failure or _failure_reason(entry[failure_key])
                continue
            reason = entry.get(reason_key)
            if reason:
                counts.fallbacks += 1
                counts.reasons[_reason_kind(reason)] += 1
                counts.fallback_rows.append((index, reason))
            # `statistics_<step>`, and a task's per-stage ones such as EvolInstruct's
            # `statistics_instruction_<step>` / `statistics_answer_<step>`
            for key, stats in entry.items():
                if key.startswith("statistics_") and (key == stats_key or key.endswith(f"_{task.name}")):
                    if isinstance(stats, dict):
                        counts.input_tokens += _total(stats.get("input_tokens"))
                        counts.output_tokens += _total(stats.get("output_tokens"))
        if failure is not None:
            counts.failed_rows += 1
            counts.failure_reasons[_reason_kind(failure)] += 1
            counts.failure_examples.append((index, failure))
    return counts


def _failure_reason(entry: dict[str, Any]) -> str:
    return RowFailure(entry.get("status_code"), entry.get("code"), str(entry.get("message"))).reason()


def shape_message(task: _Task, inputs: int, outputs: int) -> str:
    """"50 inputs -> 150 rows" or "50 inputs -> 50 rows x 3 generations"."""
    return _shape(inputs, outputs, task.group_generations, task.num_generations)


def _shape(inputs: int, outputs: int, grouped: bool, n: int) -> str:
    text = f"{_plural(inputs, 'input')} -> {_plural(outputs, 'row')}"
    return f"{text} x {n} generations" if grouped and n > 1 else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def fallback_message(counts: RowCounts) -> str:
    if not counts.fallbacks:
        return ""
    return (
        f"{counts.fallbacks}/{counts.generations} generations kept raw output; "
        f"most common reason {_most_common(counts.reasons, counts.fallback_rows)}"
    )


def failure_message(counts: RowCounts) -> str:
    """"3 of 50 rows failed: HTTP 400 context_length_exceeded: ..." (the most common reason first)."""
    if not counts.failed_rows:
        return ""
    (kind, times), *others = counts.failure_reasons.most_common()
    example = next((r for _, r in counts.failure_examples if _reason_kind(r) == kind), kind)
    text = f"{counts.failed_rows} of {_plural(counts.rows, 'row')} failed: {clip(example, 160)}"
    if others:
        text += f" ({times} of them; {len(others)} other reason{'s' if len(others) > 1 else ''})"
    return text


def _most_common(reasons: Counter, examples: list[tuple[int, str]]) -> str:
    (kind, times), *_ = reasons.most_common(1)
    example = next((r for _, r in examples if _reason_kind(r) == kind), kind)
    return f"({times}x): {clip(example, 160)}"


@dataclass
class StepSummary:
    """One step of a run, as the summary artifact and the flow's final message show it."""

    step: str
    grouped: bool
    num_generations: int
    batches: int = 0
    completed: int = 0
    cache_hits: int = 0
    failed: list[str] = field(default_factory=list)
    not_run: int = 0
    rows_in: int = 0
    rows_out: int = 0
    counts: RowCounts = field(default_factory=RowCounts)
    fallback_examples: list[dict[str, Any]] = field(default_factory=list)
    failure_examples: list[dict[str, Any]] = field(default_factory=list)
    answers_cached: int = 0  # inputs answered from the answer cache
    answers_sent: int = 0  # inputs asked of the model

    def shape(self) -> str:
        return _shape(self.rows_in, self.rows_out, self.grouped, self.num_generations)

    def table_row(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "batches": self.batches,
            "completed": self.completed,
            "cache hits": self.cache_hits,
            "failed": len(self.failed),
            "not run": self.not_run,
            "rows in": self.rows_in,
            "rows out": self.rows_out,
            "shape": self.shape(),
            "grouped": self.grouped,
            "fallbacks": self.counts.fallbacks,
            "failed rows": self.counts.failed_rows,
            "answers from cache": self.answers_cached,
            "requests": self.answers_sent,
            "input tokens": self.counts.input_tokens,
            "output tokens": self.counts.output_tokens,
        }


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", "-".join(parts).lower())).strip("-")


def _reason_kind(reason: str) -> str:
    return reason.split(":", 1)[0]


def _total(value: Any) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return sum(v for v in value if isinstance(v, int))
    return 0


def clip(value: Any, limit: int = 80) -> str:
    """`value` as text of at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
