"""`Task` and `ImageTask`: the distilabel programming model.

A task turns input rows into output rows through a model: `format_input(row)` builds the prompt,
the model answers `num_generations` times, `format_output(answer, row)` turns each answer into
output columns. The framework adds `model_name` and `distilabel_metadata` (raw output, raw input,
token statistics) and, when formatting fails or the model gave no text, emits the row anyway with
`None` outputs and the reason (the raw-output fallback).

This module knows nothing about Prefect or storage: it is plain, synchronous-looking Python that
runs in a notebook as well as inside a Prefect task run.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Union

from pydantic import Field, PositiveInt

from distilflow.constants import DISTILABEL_METADATA_KEY
from distilflow.answers import RowFailure, answer, occurrences
from distilflow.errors import DistilflowUserError
from distilflow.models.image_generation.base import ImageGenerationModel
from distilflow.models.llms.base import LLM
from distilflow.steps.base import Step
from distilflow.typing import ChatType, FormattedInput

__all__ = ["DISTILABEL_METADATA_KEY", "FAILURE_KEY_PREFIX", "ImageTask", "Task", "group_dicts"]

EMPTY_OUTPUT_REASON = "EmptyOutput: the model returned no text"
#: `distilabel_metadata["error_<task name>"]`: on a row whose request failed (status, code, message).
FAILURE_KEY_PREFIX = "error_"

_logger = logging.getLogger("distilflow.steps.tasks")



class _Task(Step):
    """What `Task` and `ImageTask` share: columns, mappings, generations, metadata, fallback."""

    llm: Any = None
    num_generations: PositiveInt = 1
    group_generations: bool = False
    add_raw_output: bool = True
    add_raw_input: bool = True
    use_default_structured_output: bool = Field(
        default=False,
        description="distilabel's: ask the model for the JSON the task describes in `get_structured_output()`.",
    )

    _kind: ClassVar[str] = "Task"

    # -- what a task declares ------------------------------------------------------------------

    @abstractmethod
    def format_input(self, input: dict[str, Any]) -> FormattedInput:
        """Build the prompt for one row."""

    def _request(self, row: dict[str, Any]) -> FormattedInput:
        """What the model is sent for `row`."""
        return self.format_input(row)

    @abstractmethod
    def format_output(self, output: Any, input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """Turn one answer of the model into the task's output columns."""

    def _declared_outputs(self) -> dict[str, bool]:
        columns = super()._declared_outputs()
        columns.setdefault("model_name", True)
        return columns

    # -- lifecycle -----------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model client. Called for you by `process` when you forget."""
        if self.llm is None:
            raise DistilflowUserError(f"Task '{self.name}' has no model: pass `llm=`.")
        if not getattr(self.llm, "is_loaded", False):
            self.llm.load()
        self._set_default_structured_output()
        super().load()

    def get_structured_output(self) -> Union[dict[str, Any], None]:
        """The JSON schema of this task's answer, for `use_default_structured_output` (None: it has none)."""
        return None

    def _set_default_structured_output(self) -> None:
        """With `use_default_structured_output`, the model is asked for `get_structured_output()`'s JSON.

        As in distilabel, a structured output already set on the model by hand wins.
        """
        schema = self.get_structured_output() if self.use_default_structured_output else None
        if schema is None or getattr(self.llm, "structured_output", None):
            return
        if "structured_output" not in type(self.llm).model_fields:
            raise DistilflowUserError(
                f"Task '{self.name}': use_default_structured_output=True, but {type(self.llm).__name__} cannot be "
                "asked for structured output; use a client that can (OpenAILLM, InferenceEndpointsLLM) or turn it off."
            )
        self.llm.structured_output = {"format": "json", "schema": schema}

    def _default_structured_output_in_use(self) -> bool:
        """The model asks for `get_structured_output()`'s JSON because of `use_default_structured_output`
        (not for a structured output set on it by hand)."""
        return (
            self.use_default_structured_output and self.llm is not None
            and getattr(self.llm, "structured_output", None) == {"format": "json", "schema": self.get_structured_output()}
        )

    def fallback_reason(self, output: Any, input: dict[str, Any], columns: dict[str, Any]) -> Union[str, None]:
        """Why `columns`, what `format_output` made of `output` for the row `input`, hold no result, if so.

        distilabel's tasks answer an unparsable output with `None` columns instead of raising;
        naming the reason here marks such a row as a fallback (`fallback_reason_<name>`, counted
        and shown like the rest) without changing what `format_output` returns.
        """
        return None

    def unload(self) -> None:
        if self.llm is not None:
            self.llm.unload()
        super().unload()

    # -- processing ----------------------------------------------------------------------------

    def process(self, inputs: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """Yield the output rows of each batch of `input_batch_size` input rows."""
        rows = list(inputs)
        self.validate_rows(rows)
        yield from self._process_checked(rows)

    def process_applying_mappings(
        self, inputs: Iterable[dict[str, Any]], *, validated: bool = False, whole: bool = False
    ) -> Iterator[list[dict[str, Any]]]:
        """`process`, reading inputs through `input_mappings` and writing `output_mappings`.

        `validated=True` skips the per-row checks (the runner made them once, before any request).
        `whole=True` asks for every row at once instead of `input_batch_size` rows after another:
        the runner's batch is the unit, and its requests share the model's slots (one slow answer
        must not hold back the rows of the next chunk).
        """
        rows = list(inputs)
        if not validated:
            self.validate_rows(rows, mapped=True)
        size = max(1, len(rows)) if whole else self.input_batch_size
        if not (self.input_mappings or self.output_mappings):
            yield from self._process_checked(rows, size)
            return
        for start in range(0, len(rows), size):
            views, hidden = zip(*(self._map_in(row) for row in rows[start : start + size]))
            for batch in self._process_checked(list(views), size):
                # every input yields the same number of rows (n ungrouped, 1 grouped)
                per_input = max(1, len(batch) // len(views))
                yield [self._map_out(row, hidden[j // per_input]) for j, row in enumerate(batch)]

    def _process_checked(self, rows: list[dict[str, Any]], size: Union[int, None] = None) -> Iterator[list[dict[str, Any]]]:
        if type(self).process is not _Task.process:  # a subclass's own `process` (distilabel style)
            yield from self.process(rows)
            return
        if not self._loaded:
            self.load()
        size = size or self.input_batch_size
        for start in range(0, len(rows), size):
            yield self.process_batch(rows[start : start + size])

    @abstractmethod
    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows for one batch of input rows."""

    def validate_rows(self, rows: list[dict[str, Any]], *, mapped: bool = False) -> None:
        """Fail before any request when a row lacks a required column or cannot be formatted."""
        required = [c for c, req in self._declared_inputs().items() if req]
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise DistilflowUserError(
                    f"Task '{self.name}': row {index} is a {type(row).__name__}, not a dict of columns."
                )
            view = self._map_in(row)[0] if mapped else row
            missing = [c for c in required if c not in view]
            if missing:
                hint = ""
                if not mapped or not self.input_mappings:
                    hint = f" Rename the column(s) or map them, e.g. input_mappings={{'{missing[0]}': '<your column>'}}."
                named = [f"{c} (from column '{self.input_mappings[c]}')" if c in self.input_mappings else c for c in missing]
                raise DistilflowUserError(
                    f"Task '{self.name}' needs column(s) {named} but row {index} has only "
                    f"{sorted(row)}.{hint}"
                )
            try:
                self.format_input(view)
            except DistilflowUserError as e:
                raise DistilflowUserError(f"Task '{self.name}', row {index}: {e}") from e
            except Exception as e:
                raise DistilflowUserError(
                    f"Task '{self.name}' could not format row {index}: {type(e).__name__}: {e}"
                ) from e

    # -- rows ----------------------------------------------------------------------------------

    def _generation(
        self, input: dict[str, Any], raw_output: Any, formatted_input: FormattedInput, statistics: dict
    ) -> dict[str, Any]:
        """What one generation adds to its row: output columns and metadata, or the fallback."""
        try:
            if _is_empty(raw_output):
                raise _EmptyOutput()
            columns = dict(self.format_output(raw_output, input))
            reason = self.fallback_reason(raw_output, input, columns)
        except Exception as e:  # noqa: BLE001 - any formatting failure becomes a fallback row
            reason = EMPTY_OUTPUT_REASON if isinstance(e, _EmptyOutput) else f"{type(e).__name__}: {e}"
            _logger.warning("Task '%s' failed to format output: %s. Saving raw response.", self.name, reason)
            columns = {c: None for c in self._declared_outputs() if c != "model_name"}
        metadata = dict(columns.pop(DISTILABEL_METADATA_KEY, None) or {})
        if self.add_raw_output:
            metadata[f"raw_output_{self.name}"] = raw_output
        if self.add_raw_input:
            metadata[f"raw_input_{self.name}"] = _chat_of(formatted_input)
        if statistics:
            metadata[f"statistics_{self.name}"] = statistics
        if reason is not None:
            metadata[f"fallback_reason_{self.name}"] = reason
        if metadata:
            columns[DISTILABEL_METADATA_KEY] = metadata
        return columns

    def _failed_generation(self, formatted_input: FormattedInput, failure: RowFailure) -> dict[str, Any]:
        """A generation whose request failed: no outputs, the raw input, and the error."""
        columns: dict[str, Any] = {c: None for c in self._declared_outputs() if c != "model_name"}
        metadata: dict[str, Any] = {}
        if self.add_raw_output:
            metadata[f"raw_output_{self.name}"] = None
        if self.add_raw_input:
            metadata[f"raw_input_{self.name}"] = _chat_of(formatted_input)
        metadata[f"{FAILURE_KEY_PREFIX}{self.name}"] = failure.metadata()
        columns[DISTILABEL_METADATA_KEY] = metadata
        return columns

    def _answers(self, rows: list[dict[str, Any]], formatted: list[FormattedInput]) -> list[Any]:
        """The model's answer for each formatted input, or a `RowFailure` where its request failed.

        Inside a run, answers come from the answer cache when it has them (see `distilflow.answers`).
        """
        return answer(
            self.llm, formatted, self.num_generations, self.llm.get_generation_kwargs(),
            occurrences=occurrences(self, rows), row_failures=True,
        )

    def _rows_for_input(self, input: dict[str, Any], generations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Ungrouped: one row per generation. Grouped: one row whose outputs are lists."""
        model_name = self.llm.model_name
        prior = input.get(DISTILABEL_METADATA_KEY)
        if isinstance(prior, dict):  # an upstream step's metadata: keep it next to this step's
            generations = [
                {**g, DISTILABEL_METADATA_KEY: {**prior, **(g.get(DISTILABEL_METADATA_KEY) or {})}} for g in generations
            ]
        if not self.group_generations:
            return [{**input, **generation, "model_name": model_name} for generation in generations]
        grouped = group_dicts(*generations)
        if DISTILABEL_METADATA_KEY in grouped:
            grouped[DISTILABEL_METADATA_KEY] = [m or {} for m in grouped[DISTILABEL_METADATA_KEY]]
        return [{**input, **grouped, "model_name": model_name}]

    # -- printing ------------------------------------------------------------------------------

    def _sample_input(self) -> FormattedInput:
        """A formatted prompt for display; override when inputs are not plain strings."""
        required = [c for c, req in self._declared_inputs().items() if req]
        return self._request({c: f"<PLACEHOLDER_{c.upper()}>" for c in required})

    def print(self, sample_input: Union[FormattedInput, None] = None) -> None:
        """Render the formatted prompt of a sample (or the given) input with rich."""
        from distilflow.steps.tasks._printing import print_prompt

        model_name = getattr(self.llm, "model_name", None) if self.llm is not None else None
        print_prompt(
            type(self).__name__,
            model_name,
            sample_input if sample_input is not None else self._sample_input(),
        )


class Task(_Task):
    """A task whose model is an `LLM` and whose prompt is an OpenAI-format conversation.

    Subclasses define `inputs`, `outputs`, `format_input(row) -> ChatType` and
    `format_output(text, row) -> dict`.
    """

    llm: LLM

    @abstractmethod
    def format_input(self, input: dict[str, Any]) -> ChatType:
        """Build the conversation for one row."""

    def row_structured_output(self, input: dict[str, Any]) -> Union[dict[str, Any], None]:
        """The structured output the request for this row asks for in place of the model's, or None.

        The judges narrow their default schema to the row (one score per item, within the scale) this
        way, so `format_input` keeps distilabel's shape: a plain conversation.
        """
        return None

    def _request(self, row: dict[str, Any]) -> FormattedInput:
        """The row's conversation, with the row's structured output when it has one of its own."""
        prompt = self.format_input(row)
        structured = None if isinstance(prompt, tuple) else self.row_structured_output(row)
        return prompt if structured is None else (prompt, structured)

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        formatted = [self._request(row) for row in rows]
        result: list[dict[str, Any]] = []
        for row, prompt, output in zip(rows, formatted, self._answers(rows, formatted)):
            if isinstance(output, RowFailure):
                generation_rows = [self._failed_generation(prompt, output) for _ in range(self.num_generations)]
            else:
                stats = output.get("statistics") or {}
                generation_rows = [
                    self._generation(row, text, prompt, _statistics_at(stats, i))
                    for i, text in enumerate(output["generations"])
                ]
            result.extend(self._rows_for_input(row, generation_rows))
        return result


class ImageTask(_Task):
    """A task whose model is an `ImageGenerationModel` and whose prompt is a string.

    `llm` is set from `image_generation_model` and may not be given.
    """

    image_generation_model: ImageGenerationModel

    def model_post_init(self, __context: Any) -> None:
        if self.llm is not None:
            raise DistilflowUserError(
                f"{type(self).__name__} takes its model as `image_generation_model=`, not `llm=`."
            )
        self.llm = self.image_generation_model
        super().model_post_init(__context)

    @abstractmethod
    def format_input(self, input: dict[str, Any]) -> str:
        """Build the prompt string for one row."""

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prompts = [self._request(row) for row in rows]
        result: list[dict[str, Any]] = []
        for row, prompt, generations in zip(rows, prompts, self._answers(rows, prompts)):
            if isinstance(generations, RowFailure):
                generation_rows = [self._failed_generation(prompt, generations) for _ in range(self.num_generations)]
            else:
                generation_rows = [self._generation(row, raw, prompt, {}) for raw in generations]
            result.extend(self._rows_for_input(row, generation_rows))
        return result


def group_dicts(*dicts: dict[str, Any]) -> dict[str, list[Any]]:
    """Combine dicts key by key into lists; a key missing from a dict contributes `None`."""
    keys: dict[str, None] = {}
    for d in dicts:
        keys.update(dict.fromkeys(d))
    return {k: [d.get(k) for d in dicts] for k in keys}


class _EmptyOutput(Exception):
    pass


def _is_empty(raw_output: Any) -> bool:
    if raw_output is None:
        return True
    if isinstance(raw_output, str):
        return not raw_output.strip()
    if isinstance(raw_output, dict) and "images" in raw_output:
        return not raw_output["images"]
    return False


def _chat_of(formatted_input: FormattedInput) -> Any:
    """The prompt without a structured-output request attached to it."""
    if isinstance(formatted_input, tuple):
        return formatted_input[0]
    return formatted_input


def _statistics_at(statistics: dict[str, list], index: int) -> dict[str, Any]:
    return {k: v[index] for k, v in statistics.items() if isinstance(v, list) and index < len(v) and v[index] is not None}
