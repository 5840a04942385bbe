"""`Pipeline`: distilabel's graph of steps, and its checks.

    with Pipeline(name="preferences") as pipeline:
        load = LoadDataFromDicts(data=[{"instruction": "..."}])
        generate = [TextGeneration(llm=a), TextGeneration(llm=b)]
        group = GroupColumns(columns=["generation", "model_name"])
        load >> generate >> group

Steps created inside the `with` block belong to the pipeline; `>>` adds edges. `validate()` refuses
a bad graph before any request, with one message naming the step and the fix. Running it
(`run()`, `dry_run()`) is the runner's business: this module knows nothing about Prefect.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextvars import Token
from typing import TYPE_CHECKING, Any, Union

from distilflow.errors import DistilflowUserError
from distilflow.distiset import Distiset
from distilflow.steps.base import _Step, current_pipeline

if TYPE_CHECKING:
    from distilflow.pipeline.routing_batch_function import RoutingBatchFunction

__all__ = ["Pipeline"]

_log = logging.getLogger("distilflow.pipeline")


class Pipeline:
    """A named graph of steps (distilabel's `Pipeline`): build it in a `with` block, connect with `>>`."""

    def __init__(
        self,
        name: Union[str, None] = None,
        description: Union[str, None] = None,
        cache_dir: Union[str, os.PathLike, None] = None,
        enable_metadata: bool = False,
        requirements: Union[list[str], None] = None,
    ) -> None:
        """`name` names the Prefect flow run (none given: `pipeline_<step names>`, as distilabel names it);
        `cache_dir` is where answers are kept (local or `s3://`; default `$DISTILFLOW_HOME/results`);
        `requirements` are packages the pipeline needs, checked before it runs (see `requirements_to_install`).
        """
        if name is not None and not isinstance(name, str):
            raise DistilflowUserError(f"Pipeline(name={name!r}): the name is a string (it names the Prefect flow run).")
        self._named = bool(name and name.strip())
        self.name = name if self._named else "pipeline"
        self.description, self.enable_metadata = description, enable_metadata
        self.cache_dir = os.fspath(cache_dir) if cache_dir is not None else None
        self._requirements = [str(r) for r in (requirements or [])]
        self._steps: dict[str, _Step] = {}
        self._successors: dict[str, list[str]] = {}
        self._predecessors: dict[str, list[str]] = {}
        self._routing: dict[str, RoutingBatchFunction] = {}
        self._tokens: list[Token] = []

    # -- building ------------------------------------------------------------------------------

    def __enter__(self) -> Pipeline:
        self._tokens.append(current_pipeline.set(self))
        return self

    def __exit__(self, *exc: Any) -> None:
        current_pipeline.reset(self._tokens.pop())
        if not self._named and self._steps:
            self.name = f"pipeline_{'_'.join(self._steps)}"

    @property
    def requirements(self) -> list[str]:
        """The packages the pipeline and its steps (`@requirements`) need, sorted, each once."""
        wanted = [*self._requirements, *(r for step in self._steps.values() for r in getattr(step, "requirements", []))]
        return sorted(set(wanted))

    def requirements_to_install(self) -> list[str]:
        """The requirements this environment does not satisfy."""
        from distilflow.utils.requirements import missing_requirements

        return missing_requirements(self.requirements)

    def _step_names(self) -> set[str]:
        return set(self._steps)

    def _add_step(self, step: _Step) -> None:
        if step.name in self._steps and self._steps[step.name] is not step:
            raise DistilflowUserError(
                f"Pipeline '{self.name}' already has a step named '{step.name}' "
                f"({type(self._steps[step.name]).__name__}); give each step its own `name=`."
            )
        self._steps[step.name] = step
        self._successors.setdefault(step.name, [])
        self._predecessors.setdefault(step.name, [])

    def _add_edge(self, source: _Step, target: _Step) -> None:
        for step in (source, target):
            if step.pipeline is not self:
                where = "no pipeline" if step.pipeline is None else f"pipeline '{step.pipeline.name}'"
                raise DistilflowUserError(
                    f"Step '{step.name}' belongs to {where}, not to pipeline '{self.name}': create every step "
                    f"of a graph inside `with Pipeline(name='{self.name}'):`."
                )
        if target.name not in self._successors[source.name]:
            self._successors[source.name].append(target.name)
            self._predecessors[target.name].append(source.name)

    def _set_routing(self, step: _Step, routing: RoutingBatchFunction) -> None:
        self._routing[step.name] = routing

    # -- reading -------------------------------------------------------------------------------

    @property
    def steps(self) -> dict[str, _Step]:
        return dict(self._steps)

    def successors(self, name: str) -> list[str]:
        return list(self._successors[name])

    def predecessors(self, name: str) -> list[str]:
        return list(self._predecessors[name])

    def routing(self, name: str) -> Union[RoutingBatchFunction, None]:
        return self._routing.get(name)

    @property
    def roots(self) -> list[str]:
        return [name for name, before in self._predecessors.items() if not before]

    @property
    def leaves(self) -> list[str]:
        return [name for name, after in self._successors.items() if not after]

    def in_order(self) -> Iterator[str]:
        """Step names so that every step comes after its predecessors (creation order otherwise)."""
        placed: set[str] = set()
        pending = list(self._steps)
        while pending:
            ready = [name for name in pending if all(p in placed for p in self._predecessors[name])]
            if not ready:
                raise DistilflowUserError(_cycle_message(self, pending))
            for name in ready:
                placed.add(name)
                yield name
            pending = [name for name in pending if name not in placed]

    # -- running -------------------------------------------------------------------------------

    def run(
        self,
        parameters: Union[dict[str, dict[str, Any]], None] = None,
        use_cache: bool = True,
        dataset: Any = None,
        dataset_batch_size: int = 50,
        *,
        options: Any = None,
        **distilabel_only: Any,
    ) -> Distiset:
        """Run every step as Prefect task runs in one flow run named after the pipeline; return a `Distiset`.

        `parameters` sets steps' run-time parameters by step name (`{"gen": {"llm": {"generation_kwargs":
        {...}}}}`); `use_cache=False` asks the models again and replaces the cached answers; `dataset`
        feeds rows to the first steps instead of a loader. `options` (a `RunOptions`) sets concurrency,
        retries and where answers are cached. Inside a running flow, the steps run in that flow run.
        """
        from distilflow.runner.graph import run_pipeline_as_flow  # Prefect only when running

        if distilabel_only:
            _log.warning("Pipeline '%s': %s are distilabel's settings and are not used by distilflow.",
                         self.name, sorted(distilabel_only))
        self._check_requirements()
        self._set_parameters(parameters or {})
        return run_pipeline_as_flow(
            self, dataset=rows_of(dataset), options=self._with_cache_dir(options), use_cache=use_cache,
            dataset_batch_size=dataset_batch_size,
        )

    def _check_requirements(self) -> None:
        missing = self.requirements_to_install()
        if missing:
            raise DistilflowUserError(
                f"Pipeline '{self.name}' needs {missing}, which are not installed here: "
                f"pip install {' '.join(repr(r) if any(c in r for c in '<>=!~; ') else r for r in missing)}"
            )

    def _with_cache_dir(self, options: Any) -> Any:
        """`Pipeline(cache_dir=...)` keeps the answers there, unless the run's options name a place."""
        if self.cache_dir is None or (options is not None and options.result_storage is not None):
            return options
        from distilflow.runner.options import RunOptions

        return (options or RunOptions()).model_copy(update={"result_storage": self.cache_dir})

    def dry_run(
        self, parameters: Union[dict[str, dict[str, Any]], None] = None, batch_size: int = 1,
        dataset: Any = None, *, options: Any = None,
    ) -> Distiset:
        """Run one batch of `batch_size` rows through every step, without the answer cache."""
        from distilflow.runner.graph import run_pipeline_as_flow

        self._check_requirements()
        self._set_parameters(parameters or {})
        dataset, options = rows_of(dataset), self._with_cache_dir(options)
        saved = {name: step.batch_size for name, step in self._steps.items() if step.is_generator}
        try:
            for name in saved:
                self._steps[name].batch_size = batch_size
            return run_pipeline_as_flow(
                self, dataset=dataset[:batch_size] if dataset else dataset, options=options, use_cache=True,
                dataset_batch_size=batch_size, dry_run=True,
            )
        finally:
            for name, size in saved.items():
                self._steps[name].batch_size = size

    def main(self, argv: Union[list[str], None] = None) -> None:
        """Run as a command (`python my_pipeline.py --output rows.jsonl --gen.input-batch-size 20`) and exit.

        Flags for every step's run-time parameters, `--dry-run`, `--run.*`; the rows stream to
        `--output`; the exit status says how it went (see `distilflow.runner.pipeline_cli`).
        """
        from distilflow.runner.pipeline_cli import pipeline_main

        pipeline_main(self, argv)

    def as_flow(self) -> Any:
        """A Prefect flow of this pipeline, to deploy (`prefect.yaml` entrypoint `my_pipeline.py:flow`): its
        parameter form holds the output, `run` settings and every step's run-time parameters."""
        from distilflow.runner.pipeline_cli import pipeline_flow

        return pipeline_flow(self)

    def _set_parameters(self, parameters: dict[str, dict[str, Any]]) -> None:
        unknown = sorted(set(parameters) - set(self._steps))
        if unknown:
            raise DistilflowUserError(
                f"Pipeline '{self.name}': parameters for {unknown}, which are not its steps {sorted(self._steps)}; "
                "key the parameters by step name."
            )
        for name, values in parameters.items():
            self._steps[name].set_runtime_parameters(values)

    # -- checks --------------------------------------------------------------------------------

    def validate(self, *, with_dataset: Union[list[str], None] = None) -> None:
        """Refuse a graph that cannot run, before any request: one message naming the step and the fix.

        `with_dataset`: the columns of the rows given to `run(dataset=...)`, which feed the root steps.
        """
        if not self._steps:
            raise DistilflowUserError(f"Pipeline '{self.name}' has no steps: create them inside its `with` block.")
        order = list(self.in_order())  # a cycle is refused here
        for name in self.roots:
            step = self._steps[name]
            if not step.is_generator and with_dataset is None:
                raise DistilflowUserError(
                    f"Step '{name}' has no predecessor and makes no rows: start the pipeline with a loader "
                    f"(e.g. `LoadDataFromDicts(data=[...]) >> {name}`), or pass rows with `run(dataset=...)`."
                )
        for name in order:
            step = self._steps[name]
            before = self._predecessors[name]
            step.verify_inputs_mappings()
            step.verify_outputs_mappings()
            if step.is_generator and before:
                raise DistilflowUserError(
                    f"Step '{name}' is a generator (it makes rows from nothing), but {before} feed it: "
                    f"start the graph with it instead (`{name} >> ...`)."
                )
            self._check_inputs(name, with_dataset)
            if len(before) > 1:
                self._check_merge(name, before)
        for name, routing in self._routing.items():
            after = self._successors[name]
            if not routing.successors or (routing.n is not None and routing.n > len(routing.successors)):
                raise DistilflowUserError(
                    f"Step '{name}' routes each batch to {routing.n or 'some'} of {routing.successors or 'no'} "
                    f"successors ({routing.description}): connect at least that many steps after it "
                    f"(`{name} >> routing >> [a, b, ...]`) or route to fewer."
                )
            for successor in routing.successors:
                if len(self._predecessors[successor]) > 1:
                    raise DistilflowUserError(
                        f"Step '{successor}' gets routed batches from '{name}' and also batches from "
                        f"{[p for p in self._predecessors[successor] if p != name]}: a step that batches are routed "
                        "to has that one predecessor; merge the branches in a step after it."
                    )
            extra = [s for s in after if s not in routing.successors]
            if extra:
                raise DistilflowUserError(
                    f"Step '{name}' routes its batches among {routing.successors}, but {extra} also follow it: "
                    "connect every successor through the routing (`step >> routing >> [all of them]`)."
                )

    def _columns_available(self, name: str, with_dataset: Union[list[str], None]) -> Union[set[str], None]:
        """The columns rows reaching step `name` may carry (None: not known before running)."""
        if not self._predecessors[name]:
            return set(with_dataset) if with_dataset is not None else set()
        columns: set[str] = set()
        for current in self._upstream(name):
            outputs = _produced(self._steps[current])
            if outputs is None:
                return None
            columns |= outputs
            if not self._predecessors[current] and with_dataset is not None:
                columns |= set(with_dataset)
        return columns

    def _check_inputs(self, name: str, with_dataset: Union[list[str], None]) -> None:
        step = self._steps[name]
        available = self._columns_available(name, with_dataset)
        if available is None or step.is_generator:
            return
        missing = [c for c in step._required_columns() if c not in available]
        if missing:
            raise DistilflowUserError(
                f"Step '{name}' needs column(s) {missing}, which no step before it makes (they make "
                f"{sorted(available)}): map them with input_mappings={{'{missing[0]}': '<a column above>'}}, "
                "or add a step that makes them."
            )

    def _check_merge(self, name: str, before: list[str]) -> None:
        """A step fed by several branches gets batch i of each, or (see `merges_by_rows`) rows paired by position."""
        routers = {p: self._router_of(p) for p in before}
        if any(routers.values()) and len(set(routers.values())) > 1:
            raise DistilflowUserError(
                f"Step '{name}' merges branches that do not all get their batches routed by the same step "
                f"({ {p: r or 'not routed' for p, r in routers.items()} }): merge only the steps one routing feeds."
            )

    def merges_by_rows(self, name: str) -> bool:
        """Whether step `name` gets its branches' rows paired by position (distilabel's way), not batch i of
        each: its branches are not routed and do not cut the same batches (loaders with different batch
        sizes, or a branch through a global step)."""
        before = self._predecessors.get(name, [])
        if len(before) < 2 or self._steps[name].is_global or any(self._router_of(p) for p in before):
            return False
        return self._cut_differently(before)

    def _cut_differently(self, before: list[str]) -> bool:
        globals_before = {self._has_global_upstream(p) for p in before}
        return len(set(self._root_batch_sizes(before).values())) > 1 or len(globals_before) > 1

    def _root_batch_sizes(self, before: list[str]) -> dict[str, int]:
        return {root: _batch_size(self._steps[root]) for p in before for root in self._roots_of(p)}

    def _roots_of(self, name: str) -> set[str]:
        return {step for step in self._upstream(name, itself=True) if not self._predecessors[step]}

    def _upstream(self, name: str, *, itself: bool = False) -> Iterator[str]:
        """Every step whose rows reach step `name` (and `name` itself with `itself`), each once."""
        stack, seen = [name] if itself else list(self._predecessors[name]), set()
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                yield current
                stack.extend(self._predecessors[current])

    def _router_of(self, name: str) -> Union[str, None]:
        """The step whose routing sends batches to step `name` (None: it gets every batch)."""
        before = self._predecessors[name]
        return before[0] if len(before) == 1 and before[0] in self._routing else None

    def _has_global_upstream(self, name: str) -> bool:
        return any(self._steps[step].is_global for step in self._upstream(name, itself=True))

    def __repr__(self) -> str:
        return f"Pipeline(name={self.name!r}, steps={list(self._steps)})"


def _produced(step: _Step) -> Union[set[str], None]:
    """The columns a step adds to its rows (None: known only once it runs, like a file loader's)."""
    columns = set(step.get_outputs())
    if step.is_generator and not columns:
        return None
    if hasattr(step, "llm"):  # a task also writes its metadata
        columns.add("distilabel_metadata")
    return columns


def _batch_size(step: _Step) -> int:
    return getattr(step, "batch_size", None) if step.is_generator else step.input_batch_size


def _cycle_message(pipeline: Pipeline, pending: list[str]) -> str:
    # follow predecessors inside the unplaced steps until one repeats: that loop is the cycle
    path, current = [], pending[0]
    while current not in path:
        path.append(current)
        current = next(p for p in pipeline._predecessors[current] if p in pending)
    loop = path[path.index(current):][::-1]
    order = list(pipeline._steps)
    start = min(range(len(loop)), key=lambda i: order.index(loop[i]))  # from the step created first
    loop = loop[start:] + loop[:start]
    return (
        f"Pipeline '{pipeline.name}' has a cycle: {' >> '.join([*loop, loop[0]])}. Batches flow one way; "
        "remove one of these connections."
    )


def rows_of(dataset: Any) -> Union[list[dict[str, Any]], None]:
    """`run(dataset=...)`'s rows: a list of dicts, a Hugging Face `datasets.Dataset` or a pandas DataFrame."""
    if dataset is None or isinstance(dataset, list):
        return dataset
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns") and hasattr(dataset, "iloc"):  # pandas
        return dataset.to_dict(orient="records")
    if hasattr(dataset, "to_list") and hasattr(dataset, "column_names"):  # datasets.Dataset
        return dataset.to_list()
    raise DistilflowUserError(
        f"run(dataset=...) got a {type(dataset).__name__}; give a list of dicts, a Hugging Face `datasets.Dataset` "
        "or a pandas DataFrame."
    )
