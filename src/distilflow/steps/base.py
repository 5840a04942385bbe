"""Steps: what every node of a pipeline is (distilabel's `Step`, `GlobalStep`, `GeneratorStep`).

A step declares `inputs` and `outputs` (column names, or name -> required) and turns rows into rows:
- `Step.process(*inputs)` gets one list of rows per predecessor (one for a straight chain) and
  yields lists of output rows;
- `GlobalStep` is a `Step` that is given all of its input at once (filters, deduplication);
- `GeneratorStep.process(offset=0)` makes rows from nothing (loaders), yielding
  `(rows, last_batch)` pairs of at most `batch_size` rows.
Tasks (`distilflow.steps.tasks.base`) are steps whose rows come from a model.

A step created inside `with Pipeline(...)` belongs to it (`step.pipeline`); `a >> b` connects two
steps of one pipeline. Outside a pipeline a step still processes rows (notebooks, tests).
Like the rest of `distilflow.steps.tasks`, nothing here knows Prefect or storage.
"""

from __future__ import annotations

import logging
import re
from abc import ABC, abstractmethod
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError

from distilflow._state import fresh_private_state
from distilflow.steps._artifacts import ArtifactsMixin
from distilflow.errors import DistilflowUserError, InvalidSettingsError
from distilflow.mixins.runtime_parameters import RuntimeParametersMixin
from distilflow.typing import RUNTIME_PARAMETER, GeneratorStepOutput, RuntimeParameter, StepColumns, StepOutput

if TYPE_CHECKING:
    from distilflow.pipeline.graph import Pipeline

__all__ = [
    "GeneratorStep", "GeneratorStepOutput", "GlobalStep", "Step", "StepInput", "StepOutput", "StepResources",
]

_logger = logging.getLogger("distilflow.steps.tasks")

STEP_INPUT = "distilflow_step_input"
StepInput = Annotated[list[dict[str, Any]], STEP_INPUT]
"""The rows a step's `process` receives from one predecessor (the annotation `@step` looks for)."""

#: the pipeline whose `with` block is running: steps created there join it
current_pipeline: ContextVar[Union[Pipeline, None]] = ContextVar("distilflow_pipeline", default=None)


class StepResources(RuntimeParametersMixin, BaseModel):
    """distilabel's resources of a step (replicas, CPUs, GPUs on Ray), accepted so its code runs.

    distilflow runs a step's batches as Prefect task runs on the flow's task runner, which decides
    where they run; these values are not used, and a step given any of them says so when it loads.
    """

    model_config = ConfigDict(extra="forbid")

    replicas: RuntimeParameter[PositiveInt] = 1
    cpus: RuntimeParameter[PositiveInt] = None
    gpus: RuntimeParameter[PositiveInt] = None
    memory: RuntimeParameter[PositiveInt] = None
    resources: RuntimeParameter[dict[str, int]] = None

    @property
    def runtime_parameters_names(self) -> dict[str, Any]:
        return dict.fromkeys(type(self).model_fields, True)  # each may be left unset

    def is_default(self) -> bool:
        return self.replicas in (None, 1) and not (self.cpus or self.gpus or self.memory or self.resources)


class _Step(ArtifactsMixin, RuntimeParametersMixin, BaseModel, ABC):
    """What every step shares: a name, its pipeline, columns, mappings, batch size, `>>`."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", validate_assignment=True, protected_namespaces=()
    )

    name: Union[str, None] = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Step name, unique in its pipeline. Default: snake_case class name + '_<n>'.",
    )
    # distilabel's: the pipeline the step belongs to (set by `with Pipeline(...)` or passed)
    pipeline: Any = Field(default=None, exclude=True, repr=False)
    input_mappings: dict[str, str] = Field(
        default_factory=dict, description="step input name -> column it is read from"
    )
    output_mappings: dict[str, str] = Field(
        default_factory=dict, description="step output name -> column it is written to"
    )
    resources: StepResources = Field(default_factory=StepResources)
    use_cache: bool = Field(
        default=True,
        description="False: the step's model is asked again on every run, replacing the answers kept for it.",
    )

    #: how error messages name this kind of step
    _kind: ClassVar[str] = "Step"
    #: set on classes made by `@step`: `process` also gets the run-time parameters as keywords
    _built_from_decorator: ClassVar[bool] = False
    #: on classes made by `@step`: the decorated function
    _step_function: ClassVar[Any] = None

    _loaded: bool = PrivateAttr(default=False)

    def __init__(self, **data: Any) -> None:
        # One line naming each refused argument, like every other configuration error, instead
        # of pydantic's multi-line report.
        try:
            super().__init__(**data)
        except ValidationError as e:
            for error in e.errors():  # a check of ours said what to fix: say just that
                cause = (error.get("ctx") or {}).get("error")
                if isinstance(cause, DistilflowUserError):
                    raise cause from None
            if any(error["loc"] == ("name",) for error in e.errors()):
                raise  # pydantic's own error for a bad name, as distilabel raises
            raise InvalidSettingsError.from_validation(type(self).__name__, e) from None

    def model_post_init(self, __context: Any) -> None:
        pipeline = self.pipeline if self.pipeline is not None else current_pipeline.get()
        if self.name is None:
            self.name = _default_name(type(self).__name__, pipeline)
        if pipeline is not None:
            self.pipeline = pipeline
            pipeline._add_step(self)

    # Private state (a compiled template, the loaded flag) is rebuilt after unpickling.
    def __getstate__(self) -> dict[str, Any]:
        return {**super().__getstate__(), "__pydantic_private__": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "__pydantic_private__", fresh_private_state(self))

    # -- what a step declares ------------------------------------------------------------------

    @property
    def inputs(self) -> StepColumns:
        """Input column names, or name -> required."""
        return []

    @property
    def outputs(self) -> StepColumns:
        """Output column names, or name -> required."""
        return []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Columns declared as class attributes (`inputs: list[str] = ["instruction"]`, as some
        # distilabel code does) become read-only properties before pydantic would make them fields.
        for name in ("inputs", "outputs"):
            value = cls.__dict__.get(name)
            if isinstance(value, (list, tuple, dict)):
                setattr(cls, name, property(lambda self, columns=value: columns))
                if "__annotations__" not in cls.__dict__:
                    cls.__annotations__ = {}
                cls.__annotations__[name] = ClassVar[Any]  # a class-level declaration, not a field
        super().__init_subclass__(**kwargs)

    def get_inputs(self) -> dict[str, bool]:
        """The columns the step reads, as named in the rows (through `input_mappings`) -> required."""
        return {self.input_mappings.get(c, c): required for c, required in self._declared_inputs().items()}

    def get_outputs(self) -> dict[str, bool]:
        """The columns the step writes, as named in the rows (through `output_mappings`) -> required."""
        return {self.output_mappings.get(c, c): required for c, required in self._declared_outputs().items()}

    def _declared_inputs(self) -> dict[str, bool]:
        """The step's own input names (before mappings) -> required."""
        return _columns(self.inputs)

    def _declared_outputs(self) -> dict[str, bool]:
        """The step's own output names (before mappings) -> required."""
        return _columns(self.outputs)

    def _required_columns(self) -> list[str]:
        """The columns a row must have for this step: its required inputs, under their mapped names."""
        return [c for c, required in self.get_inputs().items() if required]

    @property
    def is_generator(self) -> bool:
        return False

    @property
    def is_global(self) -> bool:
        return False

    @property
    def _runtime_parameters(self) -> dict[str, Any]:
        """This step's own run-time parameters that have a value (what `@step` functions get as keywords)."""
        values = {name: getattr(self, name) for name in _own_runtime_parameters(self)}
        return {name: value for name, value in values.items() if value is not None}

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self) -> None:
        """Get ready to process (open files, load a model). Called for you before the first batch."""
        if not self.resources.is_default():
            _logger.warning(
                "%s '%s': `resources` (%s) are distilabel's Ray settings and are not used; batches run as Prefect "
                "task runs on the flow's task runner.", self._kind, self.name, self.resources.model_dump(exclude_none=True)
            )
        self._loaded = True

    def unload(self) -> None:
        self._loaded = False

    # -- the graph -----------------------------------------------------------------------------

    def connect(self, *steps: _Step, routing_batch_function: Any = None) -> None:
        """Make `steps` successors of this step (what `>>` does)."""
        pipeline = self._own_pipeline("connect it to other steps")
        for other in steps:
            if not isinstance(other, _Step):
                raise DistilflowUserError(
                    f"{self._kind} '{self.name}' >> {type(other).__name__}: only steps (or lists of steps) can follow a step."
                )
            pipeline._add_edge(self, other)
        if routing_batch_function is not None:
            bound = routing_batch_function if routing_batch_function.step is self else routing_batch_function._from(self)
            bound._set_step(self, steps)

    def __rshift__(self, other: Any) -> Any:
        """`a >> b`, `a >> [b, c]`, `a >> sample_n_steps(2) >> [b, c, d]`; returns the right-hand side."""
        if isinstance(other, list):
            self.connect(*other)
            return other
        if hasattr(other, "_set_step") and not isinstance(other, _Step):  # a routing batch function
            self._own_pipeline("route its batches")
            return other._from(self)
        self.connect(other)
        return other

    def __rrshift__(self, other: Any) -> _Step:
        """`[a, b] >> c`: c gets the batches of a and b (batch i of each, together)."""
        if not isinstance(other, list):
            return NotImplemented
        for step in other:
            if not isinstance(step, _Step):
                raise DistilflowUserError(
                    f"[...] >> {self._kind} '{self.name}': the list holds a {type(step).__name__}, not a step."
                )
            step.connect(self)
        return self

    def _own_pipeline(self, doing: str) -> Pipeline:
        if self.pipeline is None:
            raise DistilflowUserError(
                f"{self._kind} '{self.name}' is not in a pipeline, so nothing can {doing}: create it inside "
                "`with Pipeline(name=...) as pipeline:` (or pass `pipeline=`)."
            )
        return self.pipeline

    # -- mappings ------------------------------------------------------------------------------

    def verify_inputs_mappings(self) -> None:
        """Refuse `input_mappings` keys that are not inputs of the step (checked when the pipeline runs,
        once run-time parameters have set what the step reads)."""
        self._verify_mappings("input", self.input_mappings, self._declared_inputs(), "your columns")

    def verify_outputs_mappings(self) -> None:
        """Refuse `output_mappings` keys that are not outputs of the step."""
        self._verify_mappings("output", self.output_mappings, self._declared_outputs(), "new column names")

    def _verify_mappings(self, kind: str, mappings: dict[str, str], declared: dict[str, bool], values: str) -> None:
        for name in mappings:
            if name not in declared:
                raise DistilflowUserError(
                    f"The {kind} column '{name}' doesn't exist in the {kind}s of the step '{self.name}'. "
                    f"{kind.capitalize()}s of the step are: {list(declared)}. {kind}_mappings keys are the step's "
                    f"{kind} names, values {values}."
                )

    def _map_in(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The row as the step sees it (mapped columns renamed to the step's names), and the
        values those names had in the row, which the renaming covered (restored on the way out)."""
        if not self.input_mappings:
            return row, {}
        step_name_of = {column: name for name, column in self.input_mappings.items()}
        view, hidden = {}, {}
        for key, value in row.items():
            name = step_name_of.get(key, key)
            if name != key:
                view[name] = value
                if name in row:
                    hidden[name] = row[name]
            elif name not in view:
                view[name] = value
        return view, hidden

    def _apply_input_mappings(
        self, inputs: tuple[list[dict[str, Any]], ...]
    ) -> tuple[tuple[list[dict[str, Any]], ...], list[dict[str, Any]]]:
        """Every input's rows as the step sees them, and per row of the first input the values its
        renaming covered (distilabel's `_apply_input_mappings`)."""
        views = [[self._map_in(row) for row in rows] for rows in inputs]
        mapped = tuple([view for view, _ in pairs] for pairs in views)
        hidden = [covered if len(inputs) == 1 else {} for _, covered in views[0]] if views else []
        return mapped, hidden

    def _map_out(self, row: dict[str, Any], hidden: dict[str, Any]) -> dict[str, Any]:
        """Output names through `output_mappings`, mapped inputs back to their columns, covered values back."""
        out = {}
        for key, value in row.items():
            out[self.output_mappings.get(key) or self.input_mappings.get(key) or key] = value
        for key, value in hidden.items():
            out.setdefault(key, value)
        return out


class Step(_Step):
    """A step that turns the rows of its predecessors into rows: override `process(*inputs)`.

    `process` gets one list of rows per predecessor (in the order they were connected) and
    yields one or more lists of output rows.
    """

    input_batch_size: Annotated[PositiveInt, RUNTIME_PARAMETER] = 50

    @abstractmethod
    def process(self, *inputs: StepInput) -> StepOutput:
        """Yield lists of output rows made from `inputs` (one list of rows per predecessor)."""

    def process_applying_mappings(self, *inputs: list[dict[str, Any]], **runtime_parameters: Any) -> StepOutput:
        """`process`, reading inputs through `input_mappings` and writing `output_mappings`.

        A `@step` function also gets its run-time parameters, `runtime_parameters` overriding them.

        Output row j is restored from input row j (modulo the number of inputs: a step that makes
        several rows per input makes them input after input, as tasks do).
        """
        if not self._loaded:
            self.load()
        mapped, hidden = self._apply_input_mappings(inputs) if self.input_mappings else (inputs, [])
        keywords = {**self._runtime_parameters, **runtime_parameters} if self._built_from_decorator else {}
        for rows in self.process(*mapped, **keywords):
            if not (self.input_mappings or self.output_mappings):
                yield rows
                continue
            yield [self._map_out(row, hidden[j % len(hidden)] if hidden else {}) for j, row in enumerate(rows)]


class GlobalStep(Step):
    """A step given all of its input at once, in one call of `process` (filters, deduplication)."""

    @property
    def is_global(self) -> bool:
        return True


class GeneratorStep(_Step):
    """A step that makes rows from nothing: override `process(offset=0)`.

    `process` yields `(rows, last_batch)` pairs of at most `batch_size` rows, starting at row
    `offset` (a resumed run starts after the rows it already has).
    """

    batch_size: Annotated[PositiveInt, RUNTIME_PARAMETER] = 50

    @property
    def is_generator(self) -> bool:
        return True

    @abstractmethod
    def process(self, offset: int = 0) -> GeneratorStepOutput:
        """Yield `(rows, last_batch)` pairs, starting at row `offset`."""

    def process_applying_mappings(self, offset: int = 0) -> GeneratorStepOutput:
        """`process`, writing `output_mappings`."""
        if not self._loaded:
            self.load()
        keywords = self._runtime_parameters if self._built_from_decorator else {}
        for rows, last_batch in self.process(offset=offset, **keywords):
            if self.output_mappings:
                rows = [{self.output_mappings.get(k, k): v for k, v in row.items()} for row in rows]
            yield rows, last_batch


def _own_runtime_parameters(step: _Step) -> list[str]:
    """The step's own run-time parameters: those a `@step` function declared (not the framework's)."""
    framework = set(_Step.model_fields) | {"input_batch_size", "batch_size"}
    return [name for name, optional in step.runtime_parameters_names.items()
            if name not in framework and not isinstance(optional, dict)]


def _default_name(class_name: str, pipeline: Any) -> str:
    """distilabel's default: the class name in snake_case and the first free `_<n>` in the pipeline."""
    base = _snake_case(class_name)
    taken = pipeline._step_names() if pipeline is not None else set()
    index = 0
    while f"{base}_{index}" in taken:
        index += 1
    return f"{base}_{index}"


def _columns(columns: StepColumns) -> dict[str, bool]:
    if isinstance(columns, dict):
        return dict(columns)
    return dict.fromkeys(columns, True)


def _snake_case(name: str) -> str:
    """distilabel's default step names: an underscore before every capital but the first
    (`APIGenGenerator` -> `a_p_i_gen_generator`), so `distilabel_metadata` keys match."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
