"""`EvolInstruct`: make instructions harder by rewriting them several times (WizardLM's Evol-Instruct)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import Field, PositiveInt, field_validator

from distilflow.answers import RowFailure, answer, occurrences
from distilflow.steps.tasks.base import DISTILABEL_METADATA_KEY, EMPTY_OUTPUT_REASON, FAILURE_KEY_PREFIX, Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, StepColumns
from distilflow.steps.tasks.evol_instruct.utils import MUTATION_TEMPLATES

__all__ = ["EvolInstruct"]

_logger = logging.getLogger("distilflow.steps.tasks")


#: Models often repeat the template's closing label ("#Rewritten Prompt#:") before the new prompt.
_LABEL_END = "Prompt#:"


@dataclass
class _Evolution:
    """One row's journey: every request made for it, and where it stopped if it did."""

    original: str
    repeat: int = 0  # earlier rows of the step with the same instruction (see distilflow.answers)
    instructions: list[str] = field(default_factory=list)  # one per round, cleaned
    answers: list[str] = field(default_factory=list)
    raw_inputs: list[ChatType] = field(default_factory=list)  # every request, rounds then answers
    raw_outputs: list[Union[str, None]] = field(default_factory=list)
    round_statistics: list[dict[str, Any]] = field(default_factory=list)  # one per answered round
    answer_statistics: list[dict[str, Any]] = field(default_factory=list)  # one per answer received
    stopped: Union[str, None] = None  # why the row has no outputs (fallback or failed request)
    error: Union[RowFailure, None] = None  # the request that failed, when one did

    @property
    def latest(self) -> str:
        return self.instructions[-1] if self.instructions else self.original


class EvolInstruct(Task):
    """Evolve each `instruction` `num_evolutions` times, each round rewriting the previous result.

    Each round applies one of `mutation_templates` (its `<PROMPT>` replaced by the current
    instruction), chosen from the original instruction, `seed` and the round number, so a row
    evolves the same way whatever batch it is in and cached batches stay valid. Every round is
    one `generate` call for the whole batch; answers, when asked for, are one more call. The text
    after the last `Prompt#:` of an answer (all of it when there is none), stripped, is the
    evolved instruction.

    Output columns, as in distilabel: `evolved_instruction` (the last one), or with
    `store_evolutions` `evolved_instructions` (every round, preceded by the original when
    `include_original_instruction`); with `generate_answers`, `answer` (to the last instruction)
    or with `store_evolutions` `answers` (one per entry of `evolved_instructions`, the original
    included); and `model_name`.

    `distilabel_metadata` holds, as in distilabel, `statistics_instruction_<name>` (without
    `generate_answers`) or `statistics_answer_<name>` (with it): `{"input_tokens": [...],
    "output_tokens": [...]}` with one entry per request of the row (its rounds, or its answers).
    No raw inputs or outputs are kept for a row that completes.

    A row whose round or answer came back empty stops there and falls back: outputs `None`,
    `fallback_reason_<name>` set; a row whose request failed gets `error_<name>` instead. Such a
    row also keeps, for each request made for it (rounds, then answers), `raw_input_<name>` and
    `raw_output_<name>` (as `add_raw_input`/`add_raw_output` allow), and the statistics of both
    stages. No row is dropped.

    `num_generations` must be 1; `group_generations` has no effect (one row per input).
    """

    num_evolutions: PositiveInt
    store_evolutions: bool = False
    generate_answers: bool = False
    include_original_instruction: bool = False
    mutation_templates: dict[str, str] = Field(default_factory=lambda: dict(MUTATION_TEMPLATES))
    seed: int = 42

    @field_validator("num_generations")
    @classmethod
    def _one_generation(cls, value: int) -> int:
        if value != 1:
            raise DistilflowUserError(
                f"EvolInstruct evolves each instruction along one path, so num_generations must be 1 "
                f"(got {value}); to get several evolutions of an instruction, repeat the row."
            )
        return value

    @field_validator("mutation_templates")
    @classmethod
    def _templates_take_prompt(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise DistilflowUserError("EvolInstruct needs at least one mutation template.")
        missing = sorted(name for name, template in value.items() if "<PROMPT>" not in template)
        if missing:
            raise DistilflowUserError(
                f"EvolInstruct: mutation template(s) {missing} lack the <PROMPT> placeholder where the "
                "instruction to evolve is inserted."
            )
        return value

    @property
    def inputs(self) -> StepColumns:
        return ["instruction"]

    @property
    def outputs(self) -> StepColumns:
        columns = ["evolved_instructions" if self.store_evolutions else "evolved_instruction", "model_name"]
        if self.generate_answers:
            columns.append("answers" if self.store_evolutions else "answer")
        return columns

    @property
    def mutation_templates_names(self) -> list[str]:
        """The names (keys) of `mutation_templates`, as in distilabel."""
        return list(self.mutation_templates)

    def format_input(self, input: Union[dict[str, Any], str]) -> ChatType:
        """A row gives its first-round mutation prompt; a string (distilabel's call) is sent as is."""
        if isinstance(input, str):
            return [{"role": "user", "content": input}]
        instruction = input.get("instruction")
        if not isinstance(instruction, str):
            raise DistilflowUserError(
                f"column 'instruction' must be a string for EvolInstruct, got "
                f"{type(instruction).__name__}: {instruction!r:.80}"
            )
        return self._mutation(instruction, instruction, 0)

    def format_output(  # type: ignore[override]  # distilabel's signature
        self, instructions: Union[str, list[str]], answers: Union[list[str], None] = None
    ) -> dict[str, Any]:
        """distilabel's: the output columns from a row's instructions and answers.

        `instructions` is what `evolved_instructions` shows (with `store_evolutions`), of which
        only the last is kept otherwise; `answers` are theirs, one each.
        """
        instructions = [instructions] if isinstance(instructions, str) else list(instructions)
        columns: dict[str, Any] = (
            {"evolved_instructions": instructions} if self.store_evolutions else {"evolved_instruction": instructions[-1]}
        )
        if self.generate_answers and answers:
            if self.store_evolutions:
                columns["answers"] = list(answers)
            else:
                columns["answer"] = answers[-1]
        columns["model_name"] = self.llm.model_name
        return columns

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        evolutions = [_Evolution(row["instruction"]) for row in rows]
        for evolution, repeat in zip(evolutions, occurrences(self, rows) or []):
            evolution.repeat = repeat
        for round in range(self.num_evolutions):
            alive = [e for e in evolutions if e.stopped is None]
            prompts = [self._mutation(e.original, e.latest, round) for e in alive]
            texts = self._ask(alive, prompts, f"evolution round {round + 1}", answers=False)
            for evolution, text in zip(alive, texts):
                if evolution.stopped is None:
                    evolution.instructions.append(text)
        if self.generate_answers:
            # one answer per instruction the row shows, so answers line up with them one to one
            pairs = [(e, instruction) for e in evolutions if e.stopped is None for instruction in self._shown(e)]
            askers = [e for e, _ in pairs]
            prompts = [self.format_input(instruction) for _, instruction in pairs]
            for evolution, text in zip(askers, self._ask(askers, prompts, "answer", answers=True)):
                if evolution.stopped is None:
                    evolution.answers.append(text)
        return [self._row(row, evolution) for row, evolution in zip(rows, evolutions)]

    def _shown(self, evolution: _Evolution) -> list[str]:
        """The instructions a row shows (and, with `generate_answers`, answers): distilabel's choice."""
        if not self.store_evolutions:
            return evolution.instructions[-1:]
        original = [evolution.original] if self.include_original_instruction else []
        return original + evolution.instructions

    def _mutation(self, original: str, current: str, round: int) -> ChatType:
        # seeded by the original instruction, not the batch, so results are cacheable per row
        name = random.Random(f"{self.seed}:{original}:{round}").choice(self.mutation_templates_names)
        return [{"role": "user", "content": self.mutation_templates[name].replace("<PROMPT>", current)}]

    def _ask(
        self, evolutions: list[_Evolution], prompts: list[ChatType], stage: str, *, answers: bool
    ) -> list[Union[str, None]]:
        """One `generate` call for the batch; each request is recorded on its row.

        Returns each request's usable text (an evolved instruction, cleaned, or an answer), or
        None where the request failed or came back empty, which stops its row.
        """
        if not prompts:
            return []
        outputs = answer(
            self.llm, prompts, 1, self.llm.get_generation_kwargs(),
            occurrences=[e.repeat for e in evolutions], row_failures=True,
        )
        texts: list[Union[str, None]] = []
        for evolution, prompt, output in zip(evolutions, prompts, outputs):
            evolution.raw_inputs.append(prompt)
            if isinstance(output, RowFailure):
                evolution.raw_outputs.append(None)
                if evolution.stopped is None:
                    evolution.error, evolution.stopped = output, output.reason()
                texts.append(None)
                continue
            raw = output["generations"][0]
            evolution.raw_outputs.append(raw)
            stats = output.get("statistics") or {}
            stats = {k: v[0] if isinstance(v, list) and v else v for k, v in stats.items()}
            if stats:
                (evolution.answer_statistics if answers else evolution.round_statistics).append(stats)
            text = raw if answers or raw is None else raw.split(_LABEL_END)[-1].strip()
            if text is None or not text.strip():
                if evolution.stopped is None:
                    evolution.stopped = EMPTY_OUTPUT_REASON
                    _logger.warning(
                        "Task '%s': %s (%s) for instruction %.60r; the row keeps its raw outputs.",
                        self.name, EMPTY_OUTPUT_REASON, stage, evolution.original,
                    )
                text = None
            texts.append(text)
        return texts

    def _row(self, row: dict[str, Any], evolution: _Evolution) -> dict[str, Any]:
        reason = evolution.stopped
        columns: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        if reason is None:
            try:
                columns = dict(
                    self.format_output(self._shown(evolution), evolution.answers if self.generate_answers else None)
                )
            except Exception as e:  # noqa: BLE001 - a formatting failure becomes a fallback row
                reason = f"{type(e).__name__}: {e}"
                _logger.warning("Task '%s' failed to format output: %s. Saving raw response.", self.name, reason)
        if reason is None:
            stage, statistics = (
                ("answer", evolution.answer_statistics)
                if self.generate_answers
                else ("instruction", evolution.round_statistics)
            )
            if statistics:
                metadata[f"statistics_{stage}_{self.name}"] = _by_key(statistics)
        else:
            columns = {c: None for c in self._declared_outputs() if c != "model_name"}
            if self.add_raw_output:
                metadata[f"raw_output_{self.name}"] = evolution.raw_outputs
            if self.add_raw_input:
                metadata[f"raw_input_{self.name}"] = evolution.raw_inputs
            for stage, statistics in (
                ("instruction", evolution.round_statistics),
                ("answer", evolution.answer_statistics),
            ):
                if statistics:
                    metadata[f"statistics_{stage}_{self.name}"] = _by_key(statistics)
            if evolution.error is not None:
                metadata[f"{FAILURE_KEY_PREFIX}{self.name}"] = evolution.error.metadata()
            else:
                metadata[f"fallback_reason_{self.name}"] = reason
        prior = row.get(DISTILABEL_METADATA_KEY)
        if isinstance(prior, dict):  # an upstream step's metadata: keep it next to this step's
            metadata = {**prior, **metadata}
        if metadata:
            columns[DISTILABEL_METADATA_KEY] = metadata
        return {**row, **columns, "model_name": self.llm.model_name}


def _by_key(statistics: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Per-request statistics as one list per key (`{"input_tokens": [...], ...}`), in request order."""
    keys = list(dict.fromkeys(key for stats in statistics for key in stats))
    return {key: [stats.get(key) for stats in statistics] for key in keys}
