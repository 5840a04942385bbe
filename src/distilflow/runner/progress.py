"""What a run shows while and after it runs: a rich progress bar locally, Prefect artifacts.

Artifacts (keys from the flow name, or `artifact_prefix`):
* `<prefix>-progress`: a progress artifact updated as batches finish;
* `<prefix>-summary`: one table row per step (batches, cache hits, failures, rows, shape,
  fallbacks, tokens);
* `<prefix>-fallbacks`: the first rows that kept raw output, with their reasons (capped);
* `<prefix>-failed-rows`: the first rows whose request failed, with the server's reason (capped);
* `<prefix>-failures`: batches that failed, with their errors;
* `<prefix>-preview-<step>`: the first rows of each leaf step (long values cut short), so what
  the run made can be looked at in the UI.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import threading
import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from distilflow.runner.report import artifact_key

_log = logging.getLogger("distilflow.runner")

#: The progress artifact is updated at most this often (and when the run ends).
PROGRESS_SECONDS = 2.0


class RunReporter:
    def __init__(self, steps, summaries, options, *, in_flow: bool) -> None:
        self.summaries = summaries
        self.options = options
        self.in_flow = in_flow
        self.total = sum(s.batches for s in summaries)
        self.done = 0
        self._bar: Progress | None = None
        self._poster: _ProgressPoster | None = None
        self._previews: dict[str, dict[int, list[dict[str, Any]]]] = {}
        self.prefix = _own_prefix(options.artifact_prefix or _flow_name() or "distilflow", in_flow)

    def __enter__(self) -> RunReporter:
        show = self.options.progress if self.options.progress is not None else sys.stderr.isatty()
        if show and self.total != 1:
            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                transient=False,
            )
            self._bar.start()
            self._bar_task = self._bar.add_task(" -> ".join(s.step for s in self.summaries), total=self.total)
        if self.in_flow:
            from distilflow.runner.flow_run_records import record_current_flow_run

            record_current_flow_run()  # so that it is marked Crashed if this process dies
        if self.in_flow and self.options.artifacts:
            from prefect.artifacts import create_progress_artifact

            self._poster = _ProgressPoster(create_progress_artifact(
                progress=0.0, key=artifact_key(self.prefix, "progress"),
                description=f"Batches done of {self.total} ({' -> '.join(s.step for s in self.summaries)})",
            ))
        return self

    def batch_done(self) -> None:
        self.done += 1
        # a pipeline's loaders are read as it runs: its batches are counted as they start
        self.total = max(self.total, self.done, sum(s.batches for s in self.summaries))
        if self._bar is not None:
            self._bar.update(self._bar_task, completed=self.done, total=self.total)
        if self._poster is not None:
            self._poster.post(100.0 * self.done / max(1, self.total))

    def preview(self, leaf: str, i: int, rows: list[dict[str, Any]]) -> None:
        """Batch i of a leaf step finished: keep its first rows if they may be among the leaf's first ones."""
        kept = self._previews.setdefault(leaf, {})
        if len(kept) < PREVIEW_ROWS or i < max(kept):
            kept[i] = rows[:PREVIEW_ROWS]
            while len(kept) > PREVIEW_ROWS:
                kept.pop(max(kept))

    def _publish_previews(self) -> None:
        from prefect.artifacts import create_table_artifact

        for leaf, batches in self._previews.items():
            rows = [row for i in sorted(batches) for row in batches[i]][:PREVIEW_ROWS]
            if rows:
                create_table_artifact(
                    table=[{key: _shown(value) for key, value in row.items()} for row in rows],
                    key=artifact_key(self.prefix, "preview", leaf),
                    description=f"The first {len(rows)} rows of step '{leaf}' (long values cut short)",
                )

    def finish(self, result) -> None:
        if self._poster is not None:
            self._poster.close(100.0 * self.done / max(1, self.total))
            self._poster = None
        logger = _run_logger()
        logger.info("distilflow: %s", result.summary_line())
        for label, error in result.errors.items():
            logger.error("distilflow: batch %s failed: %s", label, error)
        if not (self.in_flow and self.options.artifacts):
            return
        from prefect.artifacts import create_markdown_artifact, create_table_artifact

        create_table_artifact(
            table=[s.table_row() for s in self.summaries],
            key=artifact_key(self.prefix, "summary"),
            description=f"distilflow steps: {result.summary_line()}",
        )
        examples = [{"step": s.step, **e, "input": str(e["input"])} for s in self.summaries for e in s.fallback_examples]
        examples = examples[: self.options.max_fallback_rows_shown]
        if examples:
            create_table_artifact(
                table=examples, key=artifact_key(self.prefix, "fallbacks"),
                description=f"Rows that kept raw output ({result.fallbacks} in all; first {len(examples)} shown)",
            )
        failed = [{"step": s.step, **e, "input": str(e["input"])} for s in self.summaries for e in s.failure_examples]
        failed = failed[: self.options.max_fallback_rows_shown]
        if failed:
            create_table_artifact(
                table=failed, key=artifact_key(self.prefix, "failed-rows"),
                description=f"Rows whose request failed ({result.failed_rows} in all; first {len(failed)} shown). "
                "They are in the output with None outputs and distilabel_metadata['error_<step>']; "
                "a re-run asks for them again.",
            )
        self._publish_previews()
        if result.errors:
            lines = "\n".join(f"- `{label}`: {error}" for label, error in result.errors.items())
            create_markdown_artifact(markdown=f"## Failed batches\n\n{lines}\n", key=artifact_key(self.prefix, "failures"))

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
        if self._poster is not None:
            self._poster.close(None)


class _ProgressPoster:
    """Posts the latest progress to its artifact from a thread of its own, at most every
    PROGRESS_SECONDS: an API call can take a while when the server is busy (it records every
    batch too), and the thread that starts batches must not wait for it."""

    def __init__(self, artifact_id: Any) -> None:
        self._id = artifact_id
        self._latest: float | None = None
        self._posted: float | None = None
        self._closing = threading.Event()
        self._wake = threading.Event()
        # the copy carries Prefect's settings and client context into the thread
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._post_forever,), name="distilflow-progress", daemon=True
        )
        self._thread.start()

    def post(self, progress: float) -> None:
        self._latest = progress
        self._wake.set()

    def close(self, final: float | None) -> None:
        """Post `final` (if any), then stop; waits for that last post."""
        if final is not None:
            self._latest = final
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=15)

    def _post_forever(self) -> None:
        from prefect.artifacts import update_progress_artifact

        last = 0.0
        while True:
            self._wake.wait()
            # at most every PROGRESS_SECONDS; closing cuts the wait short. Seen before the value is
            # read, closing means the value is the final one.
            closing = self._closing.wait(max(0.0, last + PROGRESS_SECONDS - time.monotonic()))
            self._wake.clear()
            value = self._latest
            if value is not None and value != self._posted:
                try:
                    update_progress_artifact(artifact_id=self._id, progress=value)
                    self._posted = value
                except Exception as e:  # noqa: BLE001 - progress is for watching; the run goes on
                    _log.debug("progress artifact not updated: %s", e)
                last = time.monotonic()
            if closing:
                return


# prefix -> runs that used it, per flow run: a second run in the same flow run gets "<prefix>-2"
_PREFIXES_USED: dict[tuple[Any, str], int] = {}
_PREFIXES_LOCK = threading.Lock()


def _own_prefix(prefix: str, in_flow: bool) -> str:
    """`prefix`, or `prefix-<n>` for the n-th run (pipeline or `run_tasks` call) of one flow run using it."""
    if not in_flow:
        return prefix
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow_run = context.flow_run.id if context is not None and context.flow_run is not None else None
    with _PREFIXES_LOCK:
        count = _PREFIXES_USED.get((flow_run, prefix), 0) + 1
        _PREFIXES_USED[(flow_run, prefix)] = count
    return prefix if count == 1 else f"{prefix}-{count}"


def _flow_name() -> str | None:
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    return ctx.flow.name if ctx is not None and ctx.flow is not None else None


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    try:
        from prefect import get_run_logger

        return get_run_logger()
    except Exception:  # noqa: BLE001 - outside a run: the module logger
        return _log


PREVIEW_ROWS = 5
_PREVIEW_CHARS = 200


def _shown(value: Any) -> str:
    """A cell of the preview: text cut short (a base64 image, a long answer), anything else as JSON."""
    import json

    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + f"... ({len(text)} chars)"
