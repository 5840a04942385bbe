"""`EvolQuality`: make responses better by rewriting them several times (DEITA's Evol-Quality).

Arguments, columns and row shapes follow distilabel 1.5.3's `EvolQuality`, so its code runs
unchanged; the rewriting prompts are distilflow's own wording of the DEITA paper's
(https://arxiv.org/abs/2312.15685), under distilabel's template names.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import Field, PositiveInt, field_validator

from distilflow.answers import RowFailure, answer, occurrences
from distilflow.steps.tasks.base import DISTILABEL_METADATA_KEY, EMPTY_OUTPUT_REASON, FAILURE_KEY_PREFIX, Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, RuntimeParameter, StepColumns
from distilflow.steps.tasks.evol_quality.utils import MUTATION_TEMPLATES

__all__ = ["EvolQuality"]

_logger = logging.getLogger("distilflow.steps.tasks")


#: Models often repeat the template's closing label before the new response.
_LABEL = "#Rewritten Response#:"


@dataclass
class _Rewrites:
    """One row's journey: every request made for it, and where it stopped if it did."""

    instruction: str
    original: str
    repeat: int = 0  # earlier rows of the step with the same input (see distilflow.answers)
    responses: list[str] = field(default_factory=list)  # one per round, cleaned
    raw_inputs: list[ChatType] = field(default_factory=list)
    raw_outputs: list[Union[str, None]] = field(default_factory=list)
    statistics: list[dict[str, Any]] = field(default_factory=list)  # one per round answered with statistics
    stopped: Union[str, None] = None  # why the row has no outputs (fallback or failed request)
    error: Union[RowFailure, None] = None  # the request that failed, when one did

    @property
    def latest(self) -> str:
        return self.responses[-1] if self.responses else self.original


class EvolQuality(Task):
    """Rewrite each row's `response` to its `instruction` `num_evolutions` times, each round improving the last.

    Each round applies one of `mutation_templates` (`<PROMPT>` replaced by the instruction,
    `<RESPONSE>` by the current response), chosen from the row's instruction and original
    response, `seed` and the round number: a row evolves the same way whatever batch it is in,
    so cached batches stay valid (distilabel draws from numpy's global random state instead).
    Every round is one `generate` call for the batch. The answer, stripped (and cut after a
    repeated `#Rewritten Response#:` label), is the evolved response.

    Output columns, as in distilabel: `evolved_response` (the last one), or with
    `store_evolutions` `evolved_responses` (every round, preceded by the original response when
    `include_original_response`); and `model_name`.

    `distilabel_metadata["statistics_<name>"]` holds `{"input_tokens": [...], "output_tokens":
    [...]}`, one entry per round of the row. No raw inputs or outputs are kept for a row that
    completes. A row whose round came back empty stops there and falls back (outputs `None`,
    `fallback_reason_<name>`); one whose request failed gets `error_<name>`; both keep
    `raw_input_<name>` / `raw_output_<name>` of each request made for them. A row whose
    `instruction` or `response` is None (a step before failed for it) sends no request and falls
    back. No row is dropped.

    `num_generations` must be 1; `group_generations` has no effect (one row per input).
    """

    num_evolutions: PositiveInt
    store_evolutions: bool = False
    include_original_response: bool = False
    mutation_templates: dict[str, str] = Field(default_factory=lambda: dict(MUTATION_TEMPLATES))
    seed: RuntimeParameter[int] = Field(
        default=42, description="Seeds the choice of a mutation template for each row and round."
    )

    @field_validator("num_generations")
    @classmethod
    def _one_generation(cls, value: int) -> int:
        if value != 1:
            raise DistilflowUserError(
                f"EvolQuality evolves each response along one path, so num_generations must be 1 (got {value}); "
                "to get several evolutions of a response, repeat the row."
            )
        return value

    @field_validator("mutation_templates")
    @classmethod
    def _templates_take_response(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise DistilflowUserError("EvolQuality needs at least one mutation template.")
        missing = sorted(name for name, template in value.items() if "<RESPONSE>" not in template)
        if missing:
            raise DistilflowUserError(
                f"EvolQuality: mutation template(s) {missing} lack the <RESPONSE> placeholder where the response "
                "to rewrite is inserted (and <PROMPT> for its instruction)."
            )
        return value

    @property
    def inputs(self) -> StepColumns:
        return ["instruction", "response"]

    @property
    def outputs(self) -> StepColumns:
        return ["evolved_responses" if self.store_evolutions else "evolved_response", "model_name"]

    @property
    def mutation_templates_names(self) -> list[str]:
        """The names (keys) of `mutation_templates`, as in distilabel."""
        return list(self.mutation_templates)

    def format_input(self, input: Union[dict[str, Any], str]) -> ChatType:
        """A row gives its first-round rewriting prompt; a string (distilabel's call) is sent as is."""
        if isinstance(input, str):
            return [{"role": "user", "content": input}]
        instruction, response = input.get("instruction"), input.get("response")
        if instruction is None or response is None:
            raise DistilflowUserError(
                "columns 'instruction' and 'response' must both be given for EvolQuality (rows where a step before "
                "failed and left them None pass it as fallbacks without a request)"
            )
        for column, value in (("instruction", instruction), ("response", response)):
            if not isinstance(value, str):
                raise DistilflowUserError(
                    f"column '{column}' must be a string for EvolQuality, got {type(value).__name__}: {value!r:.80}"
                )
        return self.format_input(self._apply_random_mutation(instruction, response))

    def format_output(  # type: ignore[override]  # distilabel's signature
        self, responses: Union[str, list[str]]
    ) -> dict[str, Any]:
        """distilabel's: the output columns from a row's responses (without `store_evolutions`, the last)."""
        responses = [responses] if isinstance(responses, str) else list(responses)
        columns: dict[str, Any] = (
            {"evolved_responses": responses} if self.store_evolutions else {"evolved_response": responses[-1]}
        )
        columns["model_name"] = self.llm.model_name
        return columns

    def _apply_random_mutation(
        self, instruction: str, response: str, round: int = 0, original: Union[str, None] = None
    ) -> str:
        """The rewriting prompt for `response` in `round`, its template chosen from the row (see the class)."""
        # seeded by the row's original response, not the batch, so results are cacheable per row
        key = f"{self.seed}:{instruction}:{response if original is None else original}:{round}"
        name = random.Random(key).choice(self.mutation_templates_names)
        return self.mutation_templates[name].replace("<PROMPT>", instruction).replace("<RESPONSE>", response)

    # -- processing ------------------------------------------------------------------------------

    def validate_rows(self, rows: list[dict[str, Any]], *, mapped: bool = False) -> None:
        """As every task's, leaving out rows a step before failed for (they pass through, see `process_batch`)."""
        super().validate_rows([row for row in rows if not self._upstream_failed(row, mapped)], mapped=mapped)

    def _upstream_failed(self, row: dict[str, Any], mapped: bool = False) -> bool:
        view = self._map_in(row)[0] if mapped else row
        return isinstance(view, dict) and any(c in view and view[c] is None for c in ("instruction", "response"))

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        live = [row for row in rows if not self._upstream_failed(row)]
        repeats = occurrences(self, live)
        rewrites = [
            _Rewrites(row["instruction"], row["response"], repeat=repeats[i] if repeats else 0) for i, row in enumerate(live)
        ]
        for round in range(self.num_evolutions):
            going = [r for r in rewrites if r.stopped is None]
            if going:
                self._round(going, round)
        done = iter(self._row(live[i], rewrite) for i, rewrite in enumerate(rewrites))
        return [self._passed_through(row) if self._upstream_failed(row) else next(done) for row in rows]

    def _round(self, rewrites: list[_Rewrites], round: int) -> None:
        """One `generate` call for the batch's rows still going; each answer recorded on its row."""
        prompts = [
            self.format_input(self._apply_random_mutation(r.instruction, r.latest, round, r.original)) for r in rewrites
        ]
        outputs = answer(
            self.llm, prompts, 1, self.llm.get_generation_kwargs(),
            occurrences=[r.repeat for r in rewrites], row_failures=True,
        )
        for rewrite, prompt, output in ((r, prompts[i], outputs[i]) for i, r in enumerate(rewrites)):
            rewrite.raw_inputs.append(prompt)
            if isinstance(output, RowFailure):
                rewrite.raw_outputs.append(None)
                rewrite.error, rewrite.stopped = output, output.reason()
                continue
            raw = output["generations"][0]
            rewrite.raw_outputs.append(raw)
            stats = {k: v[0] if isinstance(v, list) and v else v for k, v in (output.get("statistics") or {}).items()}
            if stats:
                rewrite.statistics.append(stats)
            text = raw.split(_LABEL)[-1].strip() if isinstance(raw, str) else ""
            if not text:
                rewrite.stopped = EMPTY_OUTPUT_REASON
                _logger.warning(
                    "Task '%s': %s (round %d) for response %.60r; the row keeps its raw outputs.",
                    self.name, EMPTY_OUTPUT_REASON, round + 1, rewrite.original,
                )
                continue
            rewrite.responses.append(text)

    def _shown(self, rewrite: _Rewrites) -> list[str]:
        """The responses a row shows: distilabel's choice."""
        if not self.store_evolutions:
            return rewrite.responses[-1:]
        return ([rewrite.original] if self.include_original_response else []) + rewrite.responses

    def _row(self, row: dict[str, Any], rewrite: _Rewrites) -> dict[str, Any]:
        reason = rewrite.stopped
        columns: dict[str, Any] = {}
        if reason is None:
            try:
                columns = dict(self.format_output(self._shown(rewrite)))
            except Exception as e:  # noqa: BLE001 - a formatting failure becomes a fallback row
                reason = f"{type(e).__name__}: {e}"
                _logger.warning("Task '%s' failed to format output: %s. Saving raw response.", self.name, reason)
        metadata: dict[str, Any] = {}
        if reason is not None:
            columns = {c: None for c in self._declared_outputs() if c != "model_name"}
            if self.add_raw_output:
                metadata[f"raw_output_{self.name}"] = rewrite.raw_outputs
            if self.add_raw_input:
                metadata[f"raw_input_{self.name}"] = rewrite.raw_inputs
        if rewrite.statistics:
            keys = list(dict.fromkeys(k for stats in rewrite.statistics for k in stats))
            metadata[f"statistics_{self.name}"] = {k: [stats.get(k) for stats in rewrite.statistics] for k in keys}
        if rewrite.error is not None:
            metadata[f"{FAILURE_KEY_PREFIX}{self.name}"] = rewrite.error.metadata()
        elif reason is not None:
            metadata[f"fallback_reason_{self.name}"] = reason
        return self._with_metadata(row, columns, metadata)

    def _passed_through(self, row: dict[str, Any]) -> dict[str, Any]:
        reason = (
            "NothingToRewrite: 'instruction' or 'response' is None (a step before failed for this row); "
            "no request was sent"
        )
        _logger.warning("Task '%s': %s.", self.name, reason)
        columns = {c: None for c in self._declared_outputs() if c != "model_name"}
        return self._with_metadata(row, columns, {f"fallback_reason_{self.name}": reason})

    def _with_metadata(self, row: dict[str, Any], columns: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
        prior = row.get(DISTILABEL_METADATA_KEY)
        if isinstance(prior, dict):  # an upstream step's metadata: keep it next to this step's
            metadata = {**prior, **metadata}
        if metadata:
            columns[DISTILABEL_METADATA_KEY] = metadata
        return {**row, **columns, "model_name": self.llm.model_name}

    def _sample_input(self) -> ChatType:
        return self.format_input({"instruction": "<PLACEHOLDER_INSTRUCTION>", "response": "<PLACEHOLDER_RESPONSE>"})
