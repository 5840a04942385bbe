"""`run_tasks`: rows through a chain of tasks, one Prefect task run per batch and step.

The rows are cut into batches of the first task's `input_batch_size`. Batch i of step k+1 is
submitted as soon as batch i of step k is done, so a judge starts on the first answers while the
generator is still working on later batches. At most `max_concurrent_batches` task runs are in
flight. Outside a flow the same call runs the batches in-process, without Prefect.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, Union

from prefect.context import FlowRunContext
from prefect.futures import as_completed
from prefect.states import Completed, Failed, State

from tasks.base import _Task
from tasks.errors import BatchesFailedError, DistilflowUserError, ModelRequestError
from tasks.runner.batch import FALLBACK_STATE_NAME, batch_task_for, process_rows
from tasks.runner.options import RunOptions
from tasks.runner.progress import RunReporter
from tasks.runner.report import StepSummary, clip, count_rows

__all__ = ["RunResult", "run_tasks"]

_log = logging.getLogger("distilflow.runner")


class RowSink(Protocol):
    """Where finished batches go as they finish (e.g. `storage.DatasetWriter`)."""

    def write_part(self, index: int, rows: list[dict[str, Any]]) -> None: ...


@dataclass
class RunResult:
    """The rows that made it through every step, in input order, and what happened on the way."""

    rows: list[dict[str, Any]]  # empty when the run was asked not to keep them (keep_rows=False)
    steps: list[StepSummary]
    errors: dict[str, str] = field(default_factory=dict)  # failed batch label -> error
    rows_out: int = 0  # rows that made it through every step, kept or not

    @property
    def failed_batches(self) -> list[str]:
        return list(self.errors)

    @property
    def fallbacks(self) -> int:
        return sum(s.counts.fallbacks for s in self.steps)

    def summary_line(self) -> str:
        parts = [f"{s.step}: {s.shape()}" for s in self.steps]
        line = "; ".join(parts)
        hits = sum(s.cache_hits for s in self.steps)
        total = sum(s.batches for s in self.steps)
        line += f" ({hits}/{total} batches from cache"
        if self.fallbacks:
            line += f", {self.fallbacks} generations kept raw output"
        if self.errors:
            line += f", {len(self.errors)} batches failed"
        return line + ")"

    def final_state(self, data: Any = None) -> State:
        """The state a flow returns: Failed, CompletedWithFallbacks or Completed, with a message."""
        if self.errors:
            labels = list(self.errors)
            shown = ", ".join(labels[:10]) + (f" and {len(labels) - 10} more" if len(labels) > 10 else "")
            first = next(iter(self.errors.values()))
            not_run = sum(s.not_run for s in self.steps)
            rest = f"; {not_run} batches not run" if not_run else ""
            kept = (
                "The other batches' rows are kept and cached; run again to re-send only what failed."
                if self.rows_out else "Run again once the cause is fixed."
            )
            message = f"{len(labels)} batches failed: {shown}{rest}. First error: {first}. {kept}"
            # an exception, not `data`: Prefect raises a failed state's result for a caller
            # that did not ask for the state, and cannot raise a dict
            return Failed(message=message, data=BatchesFailedError(message, data))
        if self.fallbacks:
            per_step = ", ".join(f"{s.step}: {s.counts.fallbacks}" for s in self.steps if s.counts.fallbacks)
            return Completed(
                name=FALLBACK_STATE_NAME,
                message=f"{self.fallbacks} generations kept raw output ({per_step}). {self.summary_line()}",
                data=data,
            )
        return Completed(message=self.summary_line(), data=data)


def run_tasks(
    tasks: Union[_Task, Sequence[_Task]],
    rows: Iterable[dict[str, Any]],
    options: Union[RunOptions, None] = None,
    *,
    sink: Union[RowSink, None] = None,
    keep_rows: bool = True,
    **option_overrides: Any,
) -> RunResult:
    """Run `rows` through `tasks` (one task, or a chain) and return the final rows.

    Inside a Prefect flow every batch of every step is a task run with retries and caching;
    outside one, batches run in-process. Input problems raise `DistilflowUserError` before any
    model request is sent. Each finished batch's final rows go to `sink.write_part(batch index,
    rows)` as soon as they exist; with `keep_rows=False` they are not also kept in memory.
    """
    steps = [tasks] if isinstance(tasks, _Task) else list(tasks)
    options = RunOptions.model_validate({**(options or RunOptions()).model_dump(), **option_overrides})
    rows = list(rows)
    _check_chain(steps, rows)
    for step in steps:
        step.load()
    size = steps[0].input_batch_size
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    summaries = [
        StepSummary(step=s.name, grouped=s.group_generations, num_generations=s.num_generations, batches=len(chunks))
        for s in steps
    ]
    in_flow = FlowRunContext.get() is not None
    collected = _Collector(len(chunks), sink, keep_rows)
    with RunReporter(steps, summaries, options, in_flow=in_flow) as reporter:
        runner = _run_in_flow if in_flow else _run_in_process
        errors = runner(steps, chunks, options, summaries, reporter, collected)
        result = RunResult(rows=collected.rows(), steps=summaries, errors=errors, rows_out=collected.count)
        reporter.finish(result)
    return result


class _Collector:
    """Final rows per batch index: handed to the sink at once, kept only if asked."""

    def __init__(self, batches: int, sink: Union[RowSink, None], keep: bool) -> None:
        self.outputs: list[Union[list, None]] = [None] * batches if keep else []
        self.sink, self.keep, self.count = sink, keep, 0

    def add(self, index: int, rows: list[dict[str, Any]]) -> None:
        if self.sink is not None:
            self.sink.write_part(index, rows)
        if self.keep:
            self.outputs[index] = rows
        self.count += len(rows)

    def rows(self) -> list[dict[str, Any]]:
        return [row for out in self.outputs if out is not None for row in out]


def _run_in_flow(steps, chunks, options, summaries, reporter, collected):
    batch_tasks = [batch_task_for(step, options) for step in steps]
    errors: dict[str, str] = {}
    waiting = deque(range(len(chunks)))
    in_flight: dict[Any, tuple[int, int]] = {}
    stopped = False

    def label(k: int, i: int) -> str:
        return _label(steps[k], i, len(chunks))

    while waiting or in_flight:
        while waiting and not stopped and len(in_flight) < options.max_concurrent_batches:
            i = waiting.popleft()
            future = batch_tasks[0].submit(steps[0], chunks[i], label(0, i), options.concurrency_limit)
            in_flight[future] = (i, 0)
            summaries[0].rows_in += len(chunks[i])
        if not in_flight:
            break
        done = next(as_completed(list(in_flight)))
        i, k = in_flight.pop(done)
        done.wait()  # takes the final state from the run itself, not from the API (which may lag)
        state = done.state
        if state.is_completed():
            out = done.result()
            _record(summaries[k], steps[k], out, state.name == "Cached", label(k, i), options.max_fallback_rows_shown)
            if k + 1 < len(steps):
                # plain values, not futures or `quote(...)`: both break on the way to Dask workers
                nxt = batch_tasks[k + 1].submit(steps[k + 1], out, label(k + 1, i), options.concurrency_limit)
                in_flight[nxt] = (i, k + 1)
                summaries[k + 1].rows_in += len(out)
            else:
                collected.add(i, out)
        else:
            try:
                error = state.result(raise_on_failure=False)
            except Exception as e:  # noqa: BLE001 - e.g. a run left PENDING by a crashed worker
                error = e
            stopped |= _record_failure(errors, summaries, k, label(k, i), error, state, options)
        reporter.batch_done()
    for _ in waiting:  # fail_fast stopped the run: these chains never started
        for summary in summaries:
            summary.not_run += 1
    return errors


def _run_in_process(steps, chunks, options, summaries, reporter, collected):
    errors: dict[str, str] = {}
    stopped = False
    for i, chunk in enumerate(chunks):
        if stopped:  # fail_fast: this chain never starts
            for summary in summaries:
                summary.not_run += 1
            continue
        current = chunk
        for k, step in enumerate(steps):
            summaries[k].rows_in += len(current)
            label = _label(step, i, len(chunks))
            try:
                current = process_rows(step, current)
            except (ModelRequestError, DistilflowUserError) as e:
                stopped |= _record_failure(errors, summaries, k, label, e, None, options)
                current = None
                reporter.batch_done()
                break
            _record(summaries[k], step, current, False, label, options.max_fallback_rows_shown)
            reporter.batch_done()
        if current is not None:
            collected.add(i, current)
    return errors


def _label(step: _Task, index: int, batches: int) -> str:
    return f"{step.name}[{index + 1}/{batches}]"


def _record_failure(errors, summaries, k, label, error, state, options) -> bool:
    """Note a failed batch of step k; True when the run should start no new batches."""
    errors[label] = _describe(error, state)
    summaries[k].failed.append(label)
    for later in summaries[k + 1 :]:
        later.not_run += 1
    return options.fail_fast and not (isinstance(error, ModelRequestError) and error.transient)


def _record(summary: StepSummary, step: _Task, out: list[dict[str, Any]], cached: bool, label: str, cap: int) -> None:
    summary.completed += 1
    summary.cache_hits += int(cached)
    counts = count_rows(step, out)
    summary.counts.add(counts)
    summary.rows_out += len(out)
    inputs = list(step.get_inputs())
    for index, reason in counts.fallback_rows:
        if len(summary.fallback_examples) >= cap:
            break
        row = out[index]
        shown = {c: clip(row.get(step.input_mappings.get(c, c))) for c in inputs if step.input_mappings.get(c, c) in row}
        summary.fallback_examples.append({"batch": label, "row in batch": index, "reason": clip(reason, 200), "input": shown})


def _describe(error: Any, state: Union[State, None]) -> str:
    if isinstance(error, BaseException):
        return f"{type(error).__name__}: {error}"
    return (state.message if state is not None else None) or repr(error)


def _check_chain(steps: list[_Task], rows: list[dict[str, Any]]) -> None:
    """Names unique, and every step's inputs present in the rows or made by an earlier step."""
    if not steps:
        raise DistilflowUserError("run_tasks needs at least one task.")
    names = [s.name for s in steps]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DistilflowUserError(
            f"Steps {duplicates} appear more than once; give each task its own `name=` so their "
            "distilabel_metadata keys do not collide."
        )
    if not rows:
        raise DistilflowUserError("There are no input rows; check the input path or filter.")
    steps[0].validate_rows(rows, mapped=True)
    available = set(rows[0])
    for step in steps:
        needed = [step.input_mappings.get(c, c) for c, required in step.get_inputs().items() if required]
        missing = [c for c in needed if c not in available]
        if missing:
            raise DistilflowUserError(
                f"Step '{step.name}' needs column(s) {missing}, which neither the input rows nor an "
                f"earlier step provide (available: {sorted(available)}); map them with input_mappings."
            )
        available |= {step.output_mappings.get(c, c) for c in step.get_outputs()}
