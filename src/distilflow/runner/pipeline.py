"""`run_tasks`: rows through a chain of tasks, one Prefect task run per batch and step.

The rows are cut into batches of the first task's `input_batch_size`. New first-step batches
start while its model client has idle request slots (see `pace.py`): requests set the pace, so a
batch held by one slow answer does not hold back the rest; `max_rows_in_flight` caps the rows
held in memory, `max_concurrent_batches` (off by default) the batches. Batch i of step k+1 is
submitted once batch i of step k is done (and, so that repeated inputs are numbered in input
order, once batches before it were submitted), so a judge starts on the first answers while the
generator is still working on later batches. Outside a flow the same call runs the batches
in-process, without Prefect; the answer cache works the same in both.

A run stops starting batches when a configuration error comes back (bad key, unknown model),
when a batch fails with a non-transient error (`fail_fast`), or when more than
`max_failed_fraction` of a step's rows failed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, Union

from prefect.context import FlowRunContext
from prefect.states import State

from distilflow.answers import input_fingerprints
from distilflow.steps.tasks.base import _Task
from distilflow.errors import DistilflowUserError, ModelRequestError
from distilflow.runner.batch import AnswerSettings, BatchOutput, Opaque, batch_task_for, execute_batch
from distilflow.runner.global_limits import check_rate_limit
from distilflow.runner.options import RunOptions
from distilflow.runner.pace import Pace
from distilflow.runner.progress import RunReporter
from distilflow.runner.report import StepSummary, clip, failure_message
from distilflow.runner.result import RunResult
from distilflow.runner.stopping import stopping_cancels_requests

__all__ = ["RunResult", "run_tasks"]

_log = logging.getLogger("distilflow.runner")

#: A step's share of failed rows is judged once it has at least this many rows.
MIN_ROWS_JUDGED = 20
#: Request slots assumed for a model client that does not say (a sync client's `generate`).
DEFAULT_REQUEST_SLOTS = 64


class RowSink(Protocol):
    """Where finished batches go as they finish (e.g. `storage.DatasetWriter`)."""

    def write_part(self, index: int, rows: list[dict[str, Any]]) -> None: ...


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

    Inside a Prefect flow every batch of every step is a task run with retries; outside one,
    batches run in-process. Either way answers go through the answer cache (`options.cache`).
    Input problems raise `DistilflowUserError` before any model request is sent. Each finished
    batch's final rows go to `sink.write_part(batch index, rows)` as soon as they exist; with
    `keep_rows=False` they are not also kept in memory.
    """
    steps = [tasks] if isinstance(tasks, _Task) else list(tasks)
    options = RunOptions.model_validate({**(options or RunOptions()).model_dump(), **option_overrides})
    rows = list(rows)
    _check_chain(steps, rows)
    for step in steps:
        step.load()
    steps[0].validate_rows(rows, mapped=True)  # after load(): tasks build their templates there
    answers = _answer_settings(options)
    size = steps[0].input_batch_size
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    summaries = [
        StepSummary(step=s.name, grouped=s.group_generations, num_generations=s.num_generations, batches=len(chunks))
        for s in steps
    ]
    in_flow = FlowRunContext.get() is not None
    if not in_flow and threading.current_thread() is not threading.main_thread():
        _log.warning(
            "run_tasks: no Prefect flow run in this thread, so the batches run in-process, without task runs. "
            "If this thread was started inside a flow, start it with contextvars.copy_context().run(...) to "
            "run them as task runs of that flow run."
        )
    collected = _Collector(len(chunks), sink, keep_rows)
    run = _Run(steps, options, answers, summaries)
    with RunReporter(steps, summaries, options, in_flow=in_flow) as reporter:
        (run.in_flow if in_flow else run.in_process)(chunks, reporter, collected)
        for summary in summaries:
            summary.not_run = summary.batches - summary.completed - len(summary.failed)
        result = RunResult(
            rows=collected.rows(), steps=summaries, errors=run.errors, rows_out=collected.count,
            stopped=run.stopped, user_error=run.user_error, max_fallback_share=options.max_fallback_share,
        )
        reporter.finish(result)
    return result


def _answer_settings(options: RunOptions) -> Union[AnswerSettings, None]:
    if not options.cache:
        return None
    from distilflow.storage import check_answer_store

    location = options.resolved_result_storage()
    check_answer_store(location)  # a missing bucket or bad credentials fail now, before any request
    return AnswerSettings(location=location, version=options.cache_version, refresh=options.refresh_cache)


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


class _Run:
    """The bookkeeping of one run, shared by the in-flow and the in-process schedules."""

    def __init__(self, steps: list[_Task], options: RunOptions, answers, summaries: list[StepSummary]) -> None:
        self.steps, self.options, self.answers, self.summaries = steps, options, answers, summaries
        self.errors: dict[str, str] = {}
        self.stopped: Union[str, None] = None
        self.user_error: Union[DistilflowUserError, None] = None
        # per step: how often each task input was seen, so repeated inputs get answers of their own
        self._seen = [Counter() for _ in steps]
        self.rate_limit = check_rate_limit(options.rate_limit) if options.rate_limit else None

    def label(self, k: int, i: int) -> str:
        return f"{self.steps[k].name}[{i + 1}/{self.summaries[k].batches}]"

    def prior(self, k: int, rows: list[dict[str, Any]]) -> dict[int, int]:
        """For the inputs of step k's next batch (in input order), how often each was seen before."""
        if self.answers is None:
            return {}
        step, seen = self.steps[k], self._seen[k]
        fingerprints = input_fingerprints(step, [step._map_in(row)[0] for row in rows])
        prior = {f: seen[f] for f in set(fingerprints) if f in seen}
        seen.update(fingerprints)
        return prior

    def done(self, k: int, i: int, output: BatchOutput) -> None:
        summary, step = self.summaries[k], self.steps[k]
        summary.completed += 1
        summary.cache_hits += int(output.from_cache)
        summary.answers_cached += output.cached
        summary.answers_sent += output.sent
        summary.counts.add(output.counts)
        summary.rows_out += len(output.rows)
        cap, label = self.options.max_fallback_rows_shown, self.label(k, i)
        for examples, found in (
            (summary.fallback_examples, output.counts.fallback_rows),
            (summary.failure_examples, output.counts.failure_examples),
        ):
            for index, reason in found[: max(0, cap - len(examples))]:
                examples.append({"batch": label, "row in batch": index, "reason": clip(reason, 200),
                                 "input": _shown_input(step, output.rows[index])})
        counts = summary.counts
        if (  # a model's failures cost money and repeat: stop; a step without a model costs nothing
            self.stopped is None
            and isinstance(step, _Task)
            and counts.rows >= MIN_ROWS_JUDGED
            and counts.failed_rows > self.options.max_failed_fraction * counts.rows
        ):
            self.stopped = (
                f"{failure_message(counts)} in step '{step.name}', more than max_failed_fraction="
                f"{self.options.max_failed_fraction:g} allows. Fix the cause (the inputs, the model's settings or "
                "its server), or allow more failed rows (max_failed_fraction; --run.max-failed-fraction in the flows)."
            )

    def failed(self, k: int, i: int, error: Any, state: Union[State, None]) -> None:
        label = self.label(k, i)
        self.errors[label] = _describe(error, state)
        self.summaries[k].failed.append(label)
        if isinstance(error, DistilflowUserError) and self.user_error is None:
            self.user_error = error
            self.stopped = str(error)
        elif self.options.fail_fast and not (isinstance(error, ModelRequestError) and error.transient):
            self.stopped = self.stopped or f"batch {label} failed (fail_fast)"

    # -- schedules ------------------------------------------------------------------------------

    def in_flow(self, chunks: list, reporter: RunReporter, collected: _Collector) -> None:
        steps, options = self.steps, self.options
        batch_tasks = [batch_task_for(step, options) for step in steps]
        events: queue.SimpleQueue = queue.SimpleQueue()  # finished batch futures; None: request slots freed
        waiting = deque(range(len(chunks)))
        in_flight: dict[Any, tuple[int, int]] = {}
        ready: list[dict[int, Any]] = [{} for _ in steps]  # step k: batch index -> rows, None if skipped
        next_index = [0] * len(steps)
        first = {"batches": 0, "rows": 0}  # the first step's batches in flight, and their rows

        with Pace(_request_slots(steps[0]), wake=lambda: events.put(None)) as pace, stopping_cancels_requests():

            def submit(k: int, i: int, rows: list[dict[str, Any]]) -> None:
                label = self.label(k, i)
                if k == 0:
                    pace.reserve(label, len(rows))
                    first["batches"] += 1
                    first["rows"] += len(rows)
                # no futures or `quote(...)` (both break on the way to Dask workers); see Opaque
                future = batch_tasks[k].submit(
                    Opaque(steps[k]), Opaque(rows), label, self.answers, self.prior(k, rows), options.concurrency_limit,
                    pace.key if k == 0 else None, self.rate_limit,
                )
                in_flight[future] = (i, k)
                future.add_done_callback(events.put)
                self.summaries[k].rows_in += len(rows)

            def release(k: int) -> None:
                """Submit step k's batches whose turn has come, in input order."""
                while next_index[k] in ready[k]:
                    i = next_index[k]
                    rows = ready[k].pop(i)
                    next_index[k] += 1
                    if rows is not None and self.stopped is None:
                        submit(k, i, rows)
                    elif k + 1 < len(steps):
                        ready[k + 1][i] = None
                        release(k + 1)

            def room() -> bool:
                """Whether the first step may start another batch: requests set the pace, not batches."""
                if options.max_concurrent_batches is not None and first["batches"] >= options.max_concurrent_batches:
                    return False
                return first["rows"] < options.max_rows_in_flight and pace.has_room

            while waiting or in_flight:
                while waiting and self.stopped is None and room():
                    i = waiting.popleft()
                    submit(0, i, chunks[i])
                if not in_flight:
                    break
                done = events.get()
                if done is None or done not in in_flight:
                    continue  # request slots freed up (or an old wake-up): look at the room again
                i, k = in_flight.pop(done)
                if k == 0:
                    pace.release(self.label(0, i))
                    first["batches"] -= 1
                    first["rows"] -= len(chunks[i])
                done.wait()  # takes the final state from the run itself, not from the API (which may lag)
                state = done.state
                rows = None
                if state.is_completed():
                    output = done.result()
                    self.done(k, i, output)
                    rows = output.rows
                else:
                    try:
                        error = state.result(raise_on_failure=False)
                    except Exception as e:  # noqa: BLE001 - e.g. a run left PENDING by a crashed worker
                        error = e
                    self.failed(k, i, error, state)
                if k + 1 < len(steps):
                    ready[k + 1][i] = rows
                    release(k + 1)
                elif rows is not None:
                    collected.add(i, rows)
                    reporter.preview(steps[-1].name, i, rows)
                reporter.batch_done()

    def in_process(self, chunks: list, reporter: RunReporter, collected: _Collector) -> None:
        for i, chunk in enumerate(chunks):
            if self.stopped is not None:
                break
            current = chunk
            for k, step in enumerate(self.steps):
                if self.stopped is not None and k > 0:
                    current = None
                    break
                self.summaries[k].rows_in += len(current)
                try:
                    output = execute_batch(
                        step, current, self.answers, self.prior(k, current), rate_limit=self.rate_limit
                    )
                except (ModelRequestError, DistilflowUserError) as e:
                    self.failed(k, i, e, None)
                    current = None
                    reporter.batch_done()
                    break
                self.done(k, i, output)
                current = output.rows
                reporter.batch_done()
            if current is not None:
                collected.add(i, current)
                reporter.preview(self.steps[-1].name, i, current)


def _request_slots(step: _Task) -> int:
    """How many requests the step's model client keeps in flight at most (its request slots)."""
    return getattr(step.llm, "max_concurrent_requests", None) or DEFAULT_REQUEST_SLOTS


def _shown_input(step: _Task, row: dict[str, Any]) -> dict[str, str]:
    columns = list(step.get_inputs())
    return {c: clip(row[c]) for c in columns if c in row}


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
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise DistilflowUserError(f"Task '{steps[0].name}': row {index} is a {type(row).__name__}, not a dict of columns.")
    for step in steps:
        step.verify_inputs_mappings()
        step.verify_outputs_mappings()
    # the first step checks every row itself (validate_rows, after load); later steps read what
    # the first row and earlier steps provide
    available = set(rows[0]) | _made_by(steps[0])
    for step in steps[1:]:
        missing = [c for c in step._required_columns() if c not in available]
        if missing:
            raise DistilflowUserError(
                f"Step '{step.name}' needs column(s) {missing}, which neither the input rows nor an "
                f"earlier step provide (available: {sorted(available)}); map them with input_mappings."
            )
        available |= _made_by(step)


def _made_by(step: _Task) -> set[str]:
    return set(step.get_outputs())
