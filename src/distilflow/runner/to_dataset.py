"""Runs that end in a dataset: rows streamed to a path or `s3://` as batches finish, published whole.

What `python flows/<name>.py` and `pipeline.main()` share: the output is checked before any
request; finished batches are written as they come; the dataset appears at its place only when the
run completed (rows that failed alone included, with their errors), and a run that stopped leaves
what was there before. The state a flow returns says how it went, for the exit status and the UI.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, Union

from distilflow.storage import DatasetWriter, check_writable
from distilflow.errors import BatchesFailedError, DistilflowUserError
from distilflow.runner.pipeline import run_tasks
from distilflow.runner.result import RunResult

__all__ = ["run_pipeline_to_dataset", "run_steps", "user_error_state"]


def user_error_state(error: DistilflowUserError):
    """How a flow ends on bad input or configuration: Failed, with the message and nothing else.

    Raising instead would have Prefect log the whole traceback first, burying the one line that
    says what to fix. Python callers still get the error raised by `state.result()` (or by calling
    the flow without `return_state`), and a deployment's run is Failed with the message.
    """
    from prefect.states import Failed

    return Failed(message=str(error), data=error)


def run_steps(
    steps: Any,
    rows: list[dict[str, Any]],
    params: Any,
    logger: Any,
    flow_name: str,
    transform: Union[Callable[[list[dict[str, Any]]], list[dict[str, Any]]], None] = None,
):
    """Run the steps and stream each finished batch to `params.output`; return the final state.

    The output location is checked before any request. Batches are written as they finish and
    the dataset appears at `params.output` only when the run completed (rows that failed alone
    included, with their errors); a run that stopped leaves what was there before. With
    `dry_run`, three rows run without the cache and are printed instead.
    """
    from prefect.states import Completed

    if params.dry_run:
        result = run_tasks(steps, rows[:3], params.run.options(cache=False, artifacts=False))
        shown = transform(result.rows) if transform else result.rows
        for row in shown:
            print(json.dumps(row, indent=2, ensure_ascii=False, default=str)[:2000])
        return Completed(message=f"dry run: {result.summary_line()}")
    check_writable(params.output, role="output")
    pushing = getattr(params, "push_to_hub", None)
    if pushing:
        from distilflow.utils.hub import hub_token

        hub_token()  # refused now, before any request, when there is none
    with DatasetWriter(params.output) as writer:
        sink = writer if transform is None else _Transformed(writer, transform)
        result = run_tasks(steps, rows, params.run.options(), sink=sink, keep_rows=False)
        if not result.complete:
            return _not_published(result, params.output)
        written = writer.commit()
    state = _report(result, params.output, written, logger, flow_name)
    if pushing:
        return _push({"default": params.output}, {"default": written}, pushing, bool(getattr(params, "private", False)),
                     state, logger)
    return state


def _not_published(result: RunResult, output: str):
    """The run's failed state, saying that the output was left as it was."""
    from prefect.states import Failed

    state = result.final_state()
    error = state.result(raise_on_failure=False)
    message = f"{state.message} Nothing was written: {output} is as it was before the run."
    if isinstance(error, BatchesFailedError):
        error = BatchesFailedError(message)
    return Failed(message=message, data=error)


class _Transformed:
    def __init__(self, writer: Any, transform: Callable) -> None:
        self.writer, self.transform = writer, transform

    def write_part(self, index: int, rows: list[dict[str, Any]]) -> None:
        self.writer.write_part(index, self.transform(rows))


def _report(result: RunResult, output: str, written: int, logger: Any, flow_name: str):
    from prefect.artifacts import create_markdown_artifact

    where = output if "://" in output else str(Path(output).resolve())
    line = f"Wrote {written} rows to {where}. {result.summary_line()}"
    logger.info(line)
    print(line)
    create_markdown_artifact(
        key=f"{flow_name}-output",
        markdown=f"## Output\n\n{written} rows written to `{where}`\n\n{result.summary_line()}\n",
        description="Where this run's rows are",
    )
    return result.final_state(data={"output": where, "rows": written, "summary": result.summary_line()})


def _push(outputs: dict[str, str], counts: dict[str, int], repo_id: str, private: bool, state: Any, logger: Any,
          run: Any = None):
    """Push the written dataset (configuration -> output) to the Hub; a failure says the rows are kept where they are.

    `run` (a pipeline run's PipelineOutput) gives the card its pipeline.yaml, log and counts.
    """
    import tempfile

    from prefect.artifacts import create_link_artifact
    from prefect.states import Failed

    from distilflow.distiset import Distiset
    from distilflow.runner.graph import PipelineOutput, _distiset
    from distilflow.storage import read_rows
    from distilflow.utils.hub import quiet_progress_bars

    try:
        local = all("://" not in uri for uri in outputs.values())  # local files are memory-mapped, not read in
        files = {name: (Path(uri), counts.get(name, 0)) for name, uri in outputs.items()} if local else None
        leaves = {} if local else {name: list(read_rows(uri)) for name, uri in outputs.items()}
        if run is not None:
            distiset = _distiset(PipelineOutput(run.result, leaves, run.folder, run.flow_run_url, files))
        elif files:  # a run of tasks has no run folder: its output is opened from a cache of its own
            distiset = Distiset.from_files(files, cache_dir=Path(tempfile.mkdtemp(prefix="distilflow-push-")))
        else:
            distiset = Distiset.from_leaves(leaves)
        with quiet_progress_bars():  # a flow's output is its log lines, not upload bars
            distiset.push_to_hub(repo_id, private=private, keep_on_failure=False)
    except Exception as error:  # noqa: BLE001 - the rows are written: say so, and how to push again
        where = ", ".join(outputs.values())
        message = (f"The rows are written ({where}), but pushing them to the Hub dataset {repo_id} failed: "
                   f"{' '.join(str(error).split())[:400]}. Run the same command again to push them: every answer "
                   "comes from the answer cache.")
        logger.error(message)
        return Failed(message=message, data=error)
    from huggingface_hub import constants

    link = f"{constants.ENDPOINT.rstrip('/')}/datasets/{repo_id}"
    logger.info("Pushed the dataset to %s", link)
    print(f"Pushed the dataset to {link}")
    create_link_artifact(link=link, link_text=repo_id, description="The dataset on the Hub")
    return state


def run_pipeline_to_dataset(
    pipeline: Any, outputs: dict[str, str], options: Any, logger: Any, *, dry_run: bool = False,
    dataset: Union[list[dict[str, Any]], None] = None, dataset_batch_size: int = 50,
    push_to_hub: Union[str, None] = None, private: bool = False,
):
    """`run_steps` for a pipeline: each leaf step's rows streamed to `outputs[leaf]`; the flow's final state.

    With `dry_run`, one batch of three rows from each loader runs through every step without the
    cache, and the leaves' rows are printed instead of written.
    """
    import contextlib

    from prefect.states import Completed

    from distilflow.runner.graph import run_pipeline

    if dry_run:
        sizes = {name: step.batch_size for name, step in pipeline.steps.items() if step.is_generator}
        try:
            for name in sizes:
                pipeline.steps[name].batch_size = 3
            output = run_pipeline(pipeline, options=options.model_copy(update={"cache": False, "artifacts": False}),
                                  max_batches=1, dataset=dataset[:3] if dataset else dataset, dataset_batch_size=3)
        finally:
            for name, size in sizes.items():
                pipeline.steps[name].batch_size = size
        for leaf, rows in output.leaves.items():
            for row in rows:
                print(f"{leaf}: " + json.dumps(row, indent=2, ensure_ascii=False, default=str)[:2000])
        return Completed(message=f"dry run: {output.result.summary_line()}")
    for uri in outputs.values():
        check_writable(uri, role="output")
    if push_to_hub:
        from distilflow.utils.hub import hub_token

        hub_token()  # refused now, before any request, when there is none
    with contextlib.ExitStack() as stack:
        writers = {leaf: stack.enter_context(DatasetWriter(uri)) for leaf, uri in outputs.items()}
        output = run_pipeline(pipeline, options=options, sinks=writers, keep_rows=False, dataset=dataset,
                              dataset_batch_size=dataset_batch_size)
        result = output.result
        if not result.complete:
            return _not_published(result, ", ".join(outputs.values()))
        written = {leaf: writer.commit() for leaf, writer in writers.items()}
    for leaf, uri in outputs.items():
        state = _report(result, uri, written[leaf], logger, f"{pipeline.name}-{leaf}" if len(outputs) > 1 else pipeline.name)
    if push_to_hub:
        return _push(outputs, written, push_to_hub, private, state, logger, run=output)
    return state

