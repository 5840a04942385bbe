"""What a run produced and how it ended: `RunResult` and the state a flow returns from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from prefect.states import Completed, Failed, State

from distilflow.errors import BatchesFailedError, DistilflowUserError
from distilflow.runner.batch import FAILED_ROWS_STATE_NAME, FALLBACK_STATE_NAME
from distilflow.runner.report import StepSummary, failure_message, fallback_message

__all__ = ["RunResult"]

#: generations a step must have made before its share of fallbacks is judged
MIN_GENERATIONS_JUDGED = 20


@dataclass
class RunResult:
    """The rows that made it through every step, in input order, and what happened on the way."""

    rows: list[dict[str, Any]]  # empty when the run was asked not to keep them (keep_rows=False)
    steps: list[StepSummary]
    errors: dict[str, str] = field(default_factory=dict)  # failed batch label -> error
    rows_out: int = 0  # rows that made it through every step, kept or not
    stopped: Union[str, None] = None  # why the run started no more batches, when it stopped early
    user_error: Union[DistilflowUserError, None] = None  # a configuration error that stopped it
    max_fallback_share: float = 1.0  # RunOptions.max_fallback_share of the run

    @property
    def failed_batches(self) -> list[str]:
        return list(self.errors)

    @property
    def fallbacks(self) -> int:
        return sum(s.counts.fallbacks for s in self.steps)

    @property
    def failed_rows(self) -> int:
        return sum(s.counts.failed_rows for s in self.steps)

    @property
    def complete(self) -> bool:
        """Every batch of every step ran (rows may have fallen back or failed alone)."""
        return not self.errors and self.stopped is None

    def summary_line(self) -> str:
        line = "; ".join(f"{s.step}: {s.shape()}" for s in self.steps)
        hits = sum(s.cache_hits for s in self.steps)
        total = sum(s.batches for s in self.steps)
        line += f" ({hits}/{total} batches from cache"
        cached, sent = sum(s.answers_cached for s in self.steps), sum(s.answers_sent for s in self.steps)
        if cached and sent:
            line += f", {cached} of {cached + sent} answers from cache"
        if self.fallbacks:
            per_step = ", ".join(f"{s.step}: {s.counts.fallbacks}" for s in self.steps if s.counts.fallbacks)
            line += f", {self.fallbacks} generations kept raw output ({per_step})"
        if self.failed_rows:
            line += f", {self.failed_rows} row{'s' if self.failed_rows > 1 else ''} failed"
        if self.errors:
            line += f", {len(self.errors)} batches failed"
        return line + ")"

    def final_state(self, data: Any = None) -> State:
        """The state a flow returns: Failed, CompletedWithFailedRows, CompletedWithFallbacks or Completed."""
        if self.user_error is not None:
            # the configuration is wrong: its one-line message names the fix
            return Failed(message=str(self.user_error), data=self.user_error)
        if not self.complete:
            message = self._failure()
            # an exception, not `data`: Prefect raises a failed state's result for a caller
            # that did not ask for the state, and cannot raise a dict
            return Failed(message=message, data=BatchesFailedError(message, data))
        too_many_fallbacks = self._too_many_fallbacks()
        if self.failed_rows or too_many_fallbacks:
            per_step = "; ".join(f"{s.step}: {failure_message(s.counts)}" for s in self.steps if s.counts.failed_rows)
            retry = f"{per_step}. Run again to retry only the failed rows. " if per_step else ""
            return Completed(
                name=FAILED_ROWS_STATE_NAME, message=f"{retry}{too_many_fallbacks}{self.summary_line()}", data=data,
            )
        if self.fallbacks:
            per_step = ", ".join(f"{s.step}: {s.counts.fallbacks}" for s in self.steps if s.counts.fallbacks)
            return Completed(
                name=FALLBACK_STATE_NAME,
                message=f"{self.fallbacks} generations kept raw output ({per_step}). {self.summary_line()}",
                data=data,
            )
        return Completed(message=self.summary_line(), data=data)

    def _too_many_fallbacks(self) -> str:
        """What passed max_fallback_share, naming the steps, their shares and the commonest reason; or ""."""
        over = [
            s for s in self.steps
            if s.counts.generations >= MIN_GENERATIONS_JUDGED
            and s.counts.fallbacks > self.max_fallback_share * s.counts.generations
        ]
        if not over:
            return ""
        per_step = "; ".join(
            f"step '{s.step}': {fallback_message(s.counts)} "
            f"({s.counts.fallbacks / s.counts.generations:.0%})" for s in over
        )
        return (
            f"{per_step}, more than max_fallback_share={self.max_fallback_share:g} allows: the dataset is written, "
            "but those rows hold no parsed output. Fix the step's prompt or model (its answers are cached: "
            "refresh_cache / --run.refresh-cache asks again), or allow more (--run.max-fallback-share). "
        )

    def _failure(self) -> str:
        not_run = sum(s.not_run for s in self.steps)
        rest = f"; {not_run} batches not run" if not_run else ""
        if self.errors:
            labels = list(self.errors)
            shown = ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")
            first = next(iter(self.errors.values()))
            head = f"{len(labels)} batches failed: {shown}{rest}. First error: {first}."
        else:
            head = f"Stopped{rest}: {self.stopped}"
        return f"{head} Every answer received is kept in the answer cache: a re-run sends only the rest."
