"""`EvolInstruct`: make instructions harder by rewriting them several times (WizardLM's Evol-Instruct)."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import Field, PositiveInt, field_validator

from tasks.answers import RowFailure, answer, occurrences
from tasks.base import DISTILABEL_METADATA_KEY, EMPTY_OUTPUT_REASON, FAILURE_KEY_PREFIX, Task
from tasks.errors import DistilflowUserError
from tasks.typing import ChatType, StepColumns

__all__ = ["MUTATION_TEMPLATES", "EvolInstruct"]

_logger = logging.getLogger("distilflow.tasks")

_REWRITE = (
    "You rewrite prompts so that well-known AI assistants (ChatGPT, GPT-4 and the like) find them "
    "harder to answer, while people can still understand and answer them. Keep every non-text part "
    "of the given prompt (tables, code, input data) as it is, and do not drop its input.\n"
    "{how}\n"
    "Make the rewritten prompt at most 10 to 20 words longer than the given one, and reply with "
    "the rewritten prompt only: never mention the given prompt or the rewriting.\n\n"
    "#Given Prompt#:\n<PROMPT>\n\n#Rewritten Prompt#:\n"
)

MUTATION_TEMPLATES: dict[str, str] = {
    "CONSTRAINTS": _REWRITE.format(how="Rewrite it by adding exactly one extra constraint or requirement."),
    "DEEPEN": _REWRITE.format(
        how="Where the prompt asks about a particular issue, rewrite it so it asks about that issue "
        "in more depth and from more angles."
    ),
    "CONCRETIZING": _REWRITE.format(
        how="Rewrite it by replacing general concepts with more specific, concrete ones."
    ),
    "INCREASED_REASONING_STEPS": _REWRITE.format(
        how="If a few simple thinking steps are enough to answer it, rewrite it so that answering "
        "explicitly requires reasoning in several steps."
    ),
    "BREADTH": (
        "You invent new prompts. Taking the given prompt as inspiration, write a brand-new prompt "
        "in the same domain but on a rarer topic, of about the same length and difficulty, that "
        "people can understand and answer. Reply with the new prompt only: never mention the "
        "given prompt or that the new one was created from it.\n\n"
        "#Given Prompt#:\n<PROMPT>\n\n#Created Prompt#:\n"
    ),
}


@dataclass
class _Evolution:
    """One row's journey: every request made for it, and where it stopped if it did."""

    original: str
    instructions: list[str] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    raw_inputs: list[ChatType] = field(default_factory=list)
    raw_outputs: list[Union[str, None]] = field(default_factory=list)
    statistics: list[dict[str, Any]] = field(default_factory=list)
    failure: Union[str, None] = None  # why the row keeps raw outputs (a fallback)
    error: Union[RowFailure, None] = None  # a request of the row failed
    repeat: int = 0  # earlier rows of the step with the same instruction (see tasks.answers)

    @property
    def latest(self) -> str:
        return self.instructions[-1] if self.instructions else self.original


class EvolInstruct(Task):
    """Evolve each `instruction` `num_evolutions` times, each round rewriting the previous result.

    Each round applies one of `mutation_templates` (its `<PROMPT>` replaced by the current
    instruction), chosen from the original instruction, `seed` and the round number, so a row
    evolves the same way whatever batch it is in and cached batches stay valid. Every round is
    one `generate` call for the whole batch; answers, when asked for, are one more call.

    Output columns: `evolved_instruction` (the last one), or `evolved_instructions` (every round,
    preceded by the original when `include_original_instruction`) with `store_evolutions`;
    with `generate_answers`, `answer` (to the last instruction) or `answers` (one per evolved
    instruction, none for the original); and `model_name`.

    `distilabel_metadata` holds lists with one entry per request made for the row, in order
    (rounds, then answers): `raw_input_<name>`, `raw_output_<name>`, and `statistics_<name>` as
    `{"input_tokens": [...], "output_tokens": [...]}`. A row whose round or answer came back empty
    stops there and falls back: outputs `None`, `fallback_reason_<name>` set, nothing dropped.

    `num_generations` must be 1; `group_generations` has no effect (one row per input).
    """

    num_evolutions: PositiveInt = 1
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
        columns = ["evolved_instructions" if self.store_evolutions else "evolved_instruction"]
        if self.generate_answers:
            columns.append("answers" if self.store_evolutions else "answer")
        return [*columns, "model_name"]

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

    def format_output(self, output: dict[str, Any], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """Output columns from `{"instructions": [one per round], "answers": [...] or None}`."""
        instructions, answers = output["instructions"], output.get("answers")
        if self.store_evolutions:
            original = [input["instruction"]] if self.include_original_instruction and input else []
            columns: dict[str, Any] = {"evolved_instructions": original + list(instructions)}
            if self.generate_answers:
                columns["answers"] = list(answers)
        else:
            columns = {"evolved_instruction": instructions[-1]}
            if self.generate_answers:
                columns["answer"] = answers[-1]
        return columns

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        evolutions = [_Evolution(row["instruction"]) for row in rows]
        for evolution, repeat in zip(evolutions, occurrences(self, rows) or []):
            evolution.repeat = repeat
        for round in range(self.num_evolutions):
            alive = [e for e in evolutions if e.failure is None]
            prompts = [self._mutation(e.original, e.latest, round) for e in alive]
            for evolution, text in zip(alive, self._ask(alive, prompts, f"evolution round {round + 1}")):
                if evolution.failure is None:
                    evolution.instructions.append(text)
        if self.generate_answers:
            # with store_evolutions every evolved instruction is answered, as distilabel does
            pairs = [
                (e, instruction)
                for e in evolutions
                if e.failure is None
                for instruction in (e.instructions if self.store_evolutions else e.instructions[-1:])
            ]
            prompts = [self.format_input(instruction) for _, instruction in pairs]
            askers = [e for e, _ in pairs]
            for evolution, text in zip(askers, self._ask(askers, prompts, "answer")):
                if evolution.failure is None:
                    evolution.answers.append(text)
        return [self._row(row, evolution) for row, evolution in zip(rows, evolutions)]

    def _mutation(self, original: str, current: str, round: int) -> ChatType:
        # seeded by the original instruction, not the batch, so results are cacheable per row
        name = random.Random(f"{self.seed}:{original}:{round}").choice(list(self.mutation_templates))
        return [{"role": "user", "content": self.mutation_templates[name].replace("<PROMPT>", current)}]

    def _ask(self, evolutions: list[_Evolution], prompts: list[ChatType], stage: str) -> list[Union[str, None]]:
        """One `generate` call for the batch; each request is recorded on its row."""
        if not prompts:
            return []
        outputs = answer(
            self.llm, prompts, 1, self.llm.get_generation_kwargs(),
            occurrences=[e.repeat for e in evolutions], row_failures=True,
        )
        texts = []
        for evolution, prompt, output in zip(evolutions, prompts, outputs):
            if isinstance(output, RowFailure):
                evolution.raw_inputs.append(prompt)
                evolution.raw_outputs.append(None)
                evolution.statistics.append({})
                evolution.error = evolution.error or output
                evolution.failure = evolution.failure or output.reason()
                texts.append(None)
                continue
            text = output["generations"][0]
            stats = output.get("statistics") or {}
            evolution.raw_inputs.append(prompt)
            evolution.raw_outputs.append(text)
            evolution.statistics.append(
                {k: v[0] for k, v in stats.items() if isinstance(v, list) and v and v[0] is not None}
            )
            if (text is None or not text.strip()) and evolution.failure is None:
                evolution.failure = EMPTY_OUTPUT_REASON
                _logger.warning(
                    "Task '%s': %s (%s) for instruction %.60r; the row keeps its raw outputs.",
                    self.name, EMPTY_OUTPUT_REASON, stage, evolution.original,
                )
            texts.append(text)
        return texts

    def _row(self, row: dict[str, Any], evolution: _Evolution) -> dict[str, Any]:
        reason = evolution.failure
        columns: dict[str, Any] = {}
        if reason is None:
            try:
                columns = self.format_output(
                    {"instructions": evolution.instructions, "answers": evolution.answers}, row
                )
            except Exception as e:  # noqa: BLE001 - a formatting failure becomes a fallback row
                reason = f"{type(e).__name__}: {e}"
                _logger.warning("Task '%s' failed to format output: %s. Saving raw response.", self.name, reason)
        if reason is not None:
            columns = {c: None for c in self.get_outputs() if c != "model_name"}
        metadata: dict[str, Any] = {}
        if self.add_raw_output:
            metadata[f"raw_output_{self.name}"] = evolution.raw_outputs
        if self.add_raw_input:
            metadata[f"raw_input_{self.name}"] = evolution.raw_inputs
        if any(evolution.statistics):
            metadata[f"statistics_{self.name}"] = {
                key: [s.get(key) for s in evolution.statistics] for key in ("input_tokens", "output_tokens")
            }
        if evolution.error is not None:
            metadata[f"{FAILURE_KEY_PREFIX}{self.name}"] = evolution.error.metadata()
        elif reason is not None:
            metadata[f"fallback_reason_{self.name}"] = reason
        if metadata:
            columns[DISTILABEL_METADATA_KEY] = metadata
        return {**row, **columns, "model_name": self.llm.model_name}
