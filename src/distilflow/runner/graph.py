"""`run_pipeline`: a pipeline's graph of steps, every batch of every step a Prefect task run.

Batches are cut where rows enter the graph (a loader's `batch_size`, or the first steps'
`input_batch_size` for `run(dataset=...)`) and keep their number on the way: batch i of a step
is made from batch i of each of its predecessors, so a merge gets matching batches and a step
starts on batch i as soon as its inputs for batch i exist, while other branches work on theirs.
A routed batch goes to the successors the routing chose; the others skip it. A global step gets
everything its predecessors made, once they are done, and makes one batch.

Loaders are read lazily, as room frees up: at most `max_rows_in_flight` rows are held in batches
that have started and not finished (or wait for a slower branch). Each task run carries the
task runs of its input batches as its dependencies (`wait_for`), so the run's graph in the UI has
the pipeline's shape. Steps' batches are submitted in batch order, so repeated inputs of a task
are numbered the same way on every run and a re-run finds every answer in the answer cache.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from distilflow.local_server import private_home
from distilflow.steps.tasks.base import _Task
from distilflow.errors import DistilflowUserError
from distilflow.distiset import Distiset
from distilflow.pipeline.graph import Pipeline
from distilflow.pipeline.serialization import pipeline_yaml
from distilflow.runner.batch import Opaque, batch_task_for
from distilflow.runner.options import RunOptions
from distilflow.runner.pace import Pace
from distilflow.runner.pipeline import RowSink, _answer_settings, _request_slots, _Run
from distilflow.runner.progress import RunReporter, _flow_name
from distilflow.runner.report import StepSummary
from distilflow.runner.result import RunResult
from distilflow.runner.row_merge import RowMerge
from distilflow.runner.step_batch import step_task_for
from distilflow.runner.stopping import stopping_cancels_requests, supervised

__all__ = ["PipelineOutput", "run_pipeline", "run_pipeline_as_flow"]

# Threads for batch task runs: a running batch mostly waits for its answers, and requests set the
# pace (a batch held by one slow answer leaves its slots to the next), so many may run at once.
BATCH_THREADS = 256

DATASET = "<dataset>"  # the predecessor of the first steps when rows come from `run(dataset=...)`
_SKIPPED = "skipped"  # a batch the routing sent to other successors


@dataclass
class PipelineOutput:
    """What a pipeline run made: each leaf step's rows in batch order, and how the run went."""

    result: RunResult
    leaves: dict[str, list[dict[str, Any]]]
    folder: Union[Path, None] = None  # pipeline.yaml, pipeline.log, artifacts/ (see _run_folder)
    flow_run_url: Union[str, None] = None  # the flow run in the Prefect UI
    leaf_files: Union[dict[str, tuple[Path, int]], None] = None  # leaf -> (its Parquet file, rows), with to_files


@dataclass
class _Node:
    name: str
    k: int
    predecessors: list[str]
    successors: list[str]
    waiting: dict[int, dict[str, tuple[Any, Any]]] = field(default_factory=dict)  # i -> pred -> (rows, future)
    next_index: int = 0
    delivered: int = 0  # batch indices passed on (done, failed, skipped or not run)
    expected: Union[int, None] = None  # how many batch indices it will see (known once its inputs end)
    global_inputs: dict[str, dict[int, list]] = field(default_factory=dict)  # pred -> batch index -> rows
    row_merge: Union[RowMerge, None] = None  # branches paired by row position (see row_merge.py)
    outputs: dict[int, list] = field(default_factory=dict)  # a leaf's rows per batch index


def run_pipeline(
    pipeline: Pipeline,
    dataset: Union[list[dict[str, Any]], None] = None,
    options: Union[RunOptions, None] = None,
    *,
    dataset_batch_size: int = 50,
    max_batches: Union[int, None] = None,
    sinks: Union[dict[str, RowSink], None] = None,
    keep_rows: bool = True,
    to_files: bool = False,
) -> PipelineOutput:
    """Run `pipeline` inside the current Prefect flow run; see the module docstring.

    Each leaf step's finished batches go to `sinks[leaf].write_part(batch index, rows)` as soon as
    they exist; with `keep_rows=False` they are not also kept (memory stays flat). With `to_files`,
    the leaves' rows are written to Parquet files in the run's folder instead of kept in memory
    (`PipelineOutput.leaf_files`), for a Distiset that memory-maps them.
    """
    options = options or RunOptions()
    if options.artifact_prefix is None:  # several pipelines in one flow keep artifacts of their own
        flow_name = _flow_name()
        prefix = pipeline.name if flow_name in (None, pipeline.name) else f"{flow_name}-{pipeline.name}"
        options = options.model_copy(update={"artifact_prefix": prefix})
    _validate(pipeline, dataset)
    names = list(pipeline.in_order())
    steps = [pipeline.steps[name] for name in names]
    folder = _run_folder(pipeline)
    artifacts = folder / "artifacts"
    for step in steps:
        step.set_pipeline_artifacts_path(artifacts)
        step.load()
    _check_dataset_rows(pipeline, dataset)
    answers = _answer_settings(options)
    summaries = [
        StepSummary(step=s.name, grouped=getattr(s, "group_generations", False), num_generations=getattr(s, "num_generations", 1))
        for s in steps
    ]
    writers = {}
    if to_files:
        from distilflow.storage import DatasetWriter

        writers = {leaf: DatasetWriter(str(folder / "rows" / f"{leaf}.parquet")) for leaf in pipeline.leaves}
        sinks, keep_rows = {**(sinks or {}), **writers}, False
    run = _Run(steps, options, answers, summaries)
    run.label = lambda k, i: f"{steps[k].name}[{i + 1}]"
    scheduler = _Scheduler(pipeline, names, run, options, dataset, dataset_batch_size, max_batches)
    scheduler.sinks, scheduler.keep_rows = sinks or {}, keep_rows
    with RunReporter(steps, summaries, options, in_flow=True) as reporter, _run_log(folder):
        scheduler.reporter = reporter
        scheduler.run()
        for summary in summaries:
            summary.not_run = summary.batches - summary.completed - len(summary.failed)
        leaves = {name: [row for i in sorted(scheduler.nodes[name].outputs) for row in scheduler.nodes[name].outputs[i]]
                  for name in pipeline.leaves}
        result = RunResult(
            rows=[], steps=summaries, errors=run.errors, rows_out=scheduler.leaf_rows,
            stopped=run.stopped, user_error=run.user_error, max_fallback_share=options.max_fallback_share,
        )
        reporter.finish(result)
    leaf_files = {leaf: (folder / "rows" / f"{leaf}.parquet", writer.commit()) for leaf, writer in writers.items()}
    return PipelineOutput(result, leaves, folder, _flow_run_url(), leaf_files or None)


def _run_folder(pipeline: Pipeline) -> Path:
    """This run's folder (one per pipeline and flow run, in the user's home): its pipeline.yaml, its
    pipeline.log and the artifacts its steps save; the Distiset (and its card) point at them."""
    from prefect.runtime import flow_run

    folder = private_home() / "pipelines" / pipeline.name / str(flow_run.id or "no-flow-run")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.yaml").write_text(pipeline_yaml(pipeline), encoding="utf-8")
    return folder


def _flow_run_url() -> Union[str, None]:
    """The current flow run in the Prefect UI (the address its log's "View at" gives)."""
    from prefect.runtime import flow_run
    from prefect.utilities.urls import url_for

    return url_for("flow-run", obj_id=flow_run.id) if flow_run.id else None


@contextlib.contextmanager
def _run_log(folder: Path) -> Iterator[None]:
    """The run's log lines (distilflow's and its Prefect flow and task runs') also go to `pipeline.log`."""
    import logging

    handler = logging.FileHandler(folder / "pipeline.log", encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("distilflow", "prefect.flow_runs", "prefect.task_runs")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


class _Scheduler:
    def __init__(self, pipeline, names, run, options, dataset, dataset_batch_size, max_batches) -> None:
        self.pipeline, self.run_, self.options = pipeline, run, options
        self.steps = pipeline.steps
        self.nodes = {
            name: _Node(name, k, pipeline.predecessors(name) or ([DATASET] if dataset is not None else []),
                        pipeline.successors(name))
            for k, name in enumerate(names)
        }
        for name, node in self.nodes.items():
            if pipeline.merges_by_rows(name):
                node.row_merge = RowMerge(node.predecessors, self.steps[name].input_batch_size,
                                          wait_for_all=any(pipeline._has_global_upstream(p) for p in node.predecessors))
        self.tasks = {
            name: batch_task_for(step, options) if isinstance(step, _Task) else step_task_for(step)
            for name, step in self.steps.items()
        }
        self.sources: list[tuple[str, Iterator]] = []
        if dataset is not None:
            self.sources.append((DATASET, _chunks(dataset, dataset_batch_size)))
        self.sources += [(name, _batches(self.steps[name])) for name in names if self.steps[name].is_generator]
        self.source_counts = dict.fromkeys((name for name, _ in self.sources), 0)
        self.max_batches = max_batches
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.in_flight: dict[Any, tuple[str, int, int]] = {}  # future -> (step, batch index, rows held)
        self.rows_held = 0
        self.loading: set[Any] = set()  # loader batches in flight (one at a time, see _room)
        self.reporter: Any = None
        self.paces = {
            name: Pace(_request_slots(step), wake=lambda: self.events.put(None))
            for name, step in self.steps.items() if isinstance(step, _Task)
        }
        self.sinks: dict[str, RowSink] = {}
        self.keep_rows = True
        self.leaf_rows = 0

    # -- the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        with contextlib.ExitStack() as stack, stopping_cancels_requests():
            for pace in self.paces.values():
                stack.enter_context(pace)
            while True:
                self._admit()
                if not self.in_flight:
                    break
                future = self.events.get()
                if future is None or future not in self.in_flight:
                    continue  # request slots freed up (or an old wake-up): look at the room again
                name, i, rows = self.in_flight.pop(future)
                self.rows_held -= rows
                self.loading.discard(future)
                if name in self.paces:
                    self.paces[name].release(self.run_.label(self.nodes[name].k, i))
                self._finished(name, i, future)
                self.reporter.batch_done()

    def _room(self) -> bool:
        """Whether to read another batch: rows held under the cap, and every model has idle request slots
        (requests set the pace: a batch held by one slow answer holds one slot, not the next batches)."""
        if self.loading:  # its rows are not yet reserved on the models' slots: wait for them to be
            return False
        return self.rows_held < self.options.max_rows_in_flight and all(p.has_room for p in self.paces.values())

    def _admit(self) -> None:
        """Read loaders' next batches while there is room, in turns."""
        while self.sources and self.run_.stopped is None and self._room():
            name, batches = self.sources.pop(0)
            i = self.source_counts[name]
            item = next(batches, None) if self.max_batches is None or i < self.max_batches else None
            if item is None:
                self._close_source(name, i)
                continue
            self.sources.append((name, batches))
            self.source_counts[name] = i + 1
            if name == DATASET:
                self._deliver(DATASET, i, item, None)
            else:
                self.loading.add(self._submit(name, i, [item], []))
        if self.run_.stopped is not None:
            for name, _ in self.sources:
                self._close_source(name, self.source_counts[name])
            self.sources.clear()

    def _close_source(self, name: str, count: int) -> None:
        if name == DATASET:
            for successor in self._successors(DATASET):
                self._set_expected(successor, count)
        else:
            self._set_expected(name, count)

    # -- batches -------------------------------------------------------------------------------

    def _submit(self, name: str, i: int, inputs: list[list[dict[str, Any]]], upstream: list[Any]) -> Any:
        node, step, run = self.nodes[name], self.steps[name], self.run_
        label = run.label(node.k, i)
        held = sum(len(rows) for rows in inputs)
        run.summaries[node.k].batches += 1
        run.summaries[node.k].rows_in += held
        if isinstance(step, _Task):
            rows = [row for part in inputs for row in part]
            try:
                if node.predecessors != [DATASET]:  # the dataset's rows were all checked before the run
                    step.validate_rows(rows, mapped=True)  # before this batch's requests
            except DistilflowUserError as error:
                run.failed(node.k, i, error, None)
                self._deliver(name, i, None, None)
                return
            pace = self.paces[name]
            pace.reserve(label, len(rows))  # the batch tells its answers under its label (batch.py)
            future = self.tasks[name].submit(
                Opaque(step), Opaque(rows), label, run.answers, run.prior(node.k, rows), self.options.concurrency_limit,
                pace.key, run.rate_limit, wait_for=upstream,
            )
        else:
            future = self.tasks[name].submit(Opaque(step), Opaque(inputs), label, run.answers, wait_for=upstream)
        self.in_flight[future] = (name, i, held)
        self.rows_held += held
        future.add_done_callback(self.events.put)
        return future

    def _finished(self, name: str, i: int, future: Any) -> None:
        node, run = self.nodes[name], self.run_
        future.wait()
        state = future.state
        if state.is_completed():
            output = future.result()
            run.done(node.k, i, output)
            self._deliver(name, i, output.rows, future)
        else:
            try:
                error = state.result(raise_on_failure=False)
            except Exception as e:  # noqa: BLE001 - e.g. a run left PENDING by a crashed worker
                error = e
            run.failed(node.k, i, error, state)
            self._deliver(name, i, None, None)

    def _deliver(self, source: str, i: int, rows: Any, future: Any) -> None:
        """Hand batch i of `source` (rows, None when it failed or did not run, or skipped) to what follows."""
        if source != DATASET:
            node = self.nodes[source]
            node.delivered += 1
            if not node.successors and isinstance(rows, list):
                self.reporter.preview(source, i, rows)
                if source in self.sinks:
                    self.sinks[source].write_part(i, rows)
                if self.keep_rows:
                    node.outputs[i] = rows
                self.leaf_rows += len(rows)
        routing = self.pipeline.routing(source) if source != DATASET else None
        chosen = None
        if routing is not None and isinstance(rows, list):
            chosen = routing.route(f"{self.pipeline.name}/{source}/{i}")
        for successor in self._successors(source):
            value = _SKIPPED if chosen is not None and successor not in chosen else rows
            target = self.nodes[successor]
            if self.steps[successor].is_global:
                if isinstance(value, list):
                    target.global_inputs.setdefault(source, {})[i] = value
                continue
            if target.row_merge is not None:
                target.row_merge.add(source, i, value)
                self._release_rows(successor, ended=False)
                continue
            target.waiting.setdefault(i, {})[source] = (value, future)
            self._release(successor)
        if source != DATASET:
            self._maybe_close(source)

    def _release(self, name: str) -> None:
        """Start (or pass over) the step's batches whose inputs are all there, in batch order."""
        node = self.nodes[name]
        while node.next_index in node.waiting and len(node.waiting[node.next_index]) == len(node.predecessors):
            i = node.next_index
            entries = node.waiting.pop(i)
            node.next_index += 1
            values = [entries[p][0] for p in node.predecessors]
            if all(v is _SKIPPED for v in values):
                self._deliver(name, i, _SKIPPED, None)
            elif any(v is None for v in values) or self.run_.stopped is not None:
                if self.run_.stopped is not None and all(v is not None for v in values):
                    self.run_.summaries[node.k].batches += 1  # counted as not run
                self._deliver(name, i, None, None)
            else:
                inputs = [v for v in values if v is not _SKIPPED]
                upstream = [entries[p][1] for p in node.predecessors if entries[p][1] is not None]
                self._submit(name, i, inputs, upstream)

    def _release_rows(self, name: str, ended: bool) -> None:
        """Start the batches a row-position merge can make now (all that is left, once `ended`)."""
        node, merge = self.nodes[name], self.nodes[name].row_merge
        broken_before, first = merge.broken, merge.made
        for j, inputs in enumerate(merge.ready(ended), start=first):
            if self.run_.stopped is not None:
                self.run_.summaries[node.k].batches += 1  # counted as not run
                self._deliver(name, j, None, None)
            else:
                self._submit(name, j, inputs, [])
        if merge.broken is not None and broken_before is None:
            index, merge.made = merge.made, merge.made + 1
            self.run_.summaries[node.k].batches += 1
            self.run_.failed(node.k, index, DistilflowUserError(f"Step '{name}': {merge.broken}."), None)
            self._deliver(name, index, None, None)

    # -- the end of a step's batches -----------------------------------------------------------

    def _set_expected(self, name: str, count: int) -> None:
        node = self.nodes[name]
        if node.expected is None:
            node.expected = count
            self._maybe_close(name)

    def _maybe_close(self, name: str) -> None:
        node = self.nodes[name]
        if node.expected is None or node.delivered < node.expected:
            return
        node.expected = -1  # closed once
        for successor in node.successors:
            target = self.nodes[successor]
            if not all(self._closed(p) for p in target.predecessors):
                continue
            if self.steps[successor].is_global:
                self._start_global(successor)
                continue
            if target.row_merge is not None:
                self._release_rows(successor, ended=True)
                self._set_expected(successor, target.row_merge.made)
                continue
            # branches from loaders of different lengths: the shorter ones have no batch there
            count = max(self.nodes[p].delivered for p in target.predecessors)
            for i in range(target.next_index, count):
                for p in target.predecessors:
                    target.waiting.setdefault(i, {}).setdefault(p, (_SKIPPED, None))
            self._release(successor)
            self._set_expected(successor, count)

    def _closed(self, name: str) -> bool:
        return name == DATASET or self.nodes[name].expected == -1

    def _start_global(self, name: str) -> None:
        node = self.nodes[name]
        # in batch order, whatever order the batches finished in: a global step sees the same rows alike
        parts = [node.global_inputs.pop(p, {}) for p in node.predecessors]
        inputs = [[row for i in sorted(batches) for row in batches[i]] for batches in parts]
        node.expected = 1
        if self.run_.stopped is not None or not any(inputs):
            self.run_.summaries[node.k].batches += int(self.run_.stopped is not None)
            self._deliver(name, 0, None, None)
        else:
            self._submit(name, 0, inputs, [])

    def _successors(self, source: str) -> list[str]:
        if source == DATASET:
            return [name for name, node in self.nodes.items() if node.predecessors == [DATASET]]
        return self.nodes[source].successors


def _validate(pipeline: Pipeline, dataset: Union[list[dict[str, Any]], None]) -> None:
    """The graph's checks, with the columns of `run(dataset=...)`'s first row feeding the first steps."""
    if dataset is not None and not dataset:
        raise DistilflowUserError(f"Pipeline '{pipeline.name}': run(dataset=...) got no rows.")
    pipeline.validate(with_dataset=sorted(dataset[0]) if dataset else None)


def _check_dataset_rows(pipeline: Pipeline, dataset: Union[list[dict[str, Any]], None]) -> None:
    """Every row of `run(dataset=...)` against the tasks it feeds, before any request (rows that
    steps make are checked batch by batch, as they come)."""
    for name in pipeline.roots if dataset is not None else ():
        step = pipeline.steps[name]
        if isinstance(step, _Task):
            step.validate_rows(dataset, mapped=True)


def _batches(step: Any) -> Iterator[list[dict[str, Any]]]:
    for rows, _last in step.process_applying_mappings(offset=0):
        if rows:
            yield rows


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def run_pipeline_as_flow(
    pipeline: Pipeline,
    *,
    dataset: Union[list[dict[str, Any]], None] = None,
    options: Union[RunOptions, None] = None,
    use_cache: bool = True,
    dataset_batch_size: int = 50,
    dry_run: bool = False,
) -> Distiset:
    """`Pipeline.run()`: in the current flow run, or in a flow run of its own named after the pipeline.

    A bad graph is refused before a flow run starts. A configuration error, or batches that failed,
    raise once the rows that could be made are made (the flow run ends Failed with the same message).
    """
    from prefect import flow
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_API_URL
    from prefect.task_runners import ThreadPoolTaskRunner

    from distilflow.local_server import prefect_api_for_a_run

    options = options or RunOptions()
    if not use_cache:
        options = options.model_copy(update={"refresh_cache": True})
    if dry_run:
        options = options.model_copy(update={"cache": False})
    _validate(pipeline, dataset)  # before a flow run starts
    kwargs = {"dataset": dataset, "options": options, "dataset_batch_size": dataset_batch_size,
              "max_batches": 1 if dry_run else None, "to_files": not dry_run}
    if FlowRunContext.get() is not None:
        output = run_pipeline(pipeline, **kwargs)
        error = output.result.final_state().result(raise_on_failure=False) if not output.result.complete else None
        if output.result.user_error is not None:
            raise output.result.user_error
        if isinstance(error, BaseException):
            raise error
        return _distiset(output)

    def body() -> Any:
        output = run_pipeline(pipeline, **kwargs)
        return output.result.final_state(data=output)

    pipeline_flow = flow(
        body, name=pipeline.name, description=pipeline.description, persist_result=False, log_prints=False,
        task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS), validate_parameters=False,
    )
    with prefect_api_for_a_run():  # the server distilflow keeps, as `python flows/x.py` uses
        # a lost API is named in seconds, not retried for minutes; the script's signals stay its own
        with supervised(PREFECT_API_URL.value(), signals=False):
            state = pipeline_flow(return_state=True)
    output = state.result()  # raises the configuration error or BatchesFailedError of a failed run
    return _distiset(output)


def _distiset(output: PipelineOutput) -> Distiset:
    """The run's Distiset, pointing at its pipeline.yaml, pipeline.log and artifacts, and knowing how it went."""
    if output.leaf_files:
        distiset = Distiset.from_files(output.leaf_files, cache_dir=output.folder / "cache")
    else:
        distiset = Distiset.from_leaves(output.leaves)
    if output.folder is not None:
        for attribute, name in (("pipeline_path", "pipeline.yaml"), ("log_filename_path", "pipeline.log"),
                                ("artifacts_path", "artifacts")):
            if (output.folder / name).exists():
                setattr(distiset, attribute, output.folder / name)
    distiset.run_summary = {
        "flow_run": output.flow_run_url,
        "steps": [{"step": s.step, "rows": s.rows_out, "input_tokens": s.counts.input_tokens,
                   "output_tokens": s.counts.output_tokens} for s in output.result.steps],
    }
    return distiset
