"""`FormatTextGenerationDPO`, `FormatChatGenerationDPO`: preference pairs from rated generations.

A row with several `generations` and their `ratings` (from a judge such as `UltraFeedback`) gets
`prompt`, `prompt_id` (SHA-256 of the prompt), and the best and worst rated generations as
`chosen` / `rejected` conversations with their `*_rating` (and `*_model` when the row has
`generation_models`), the layout of axolotl and alignment-handbook datasets. As in distilabel, the
first best and the first worst rating win ties, so equal ratings make chosen == rejected.

A generation the judge did not rate (a None rating, or none at all) is left out of the choice; a row
with no rating (its judge failed) keeps its columns with chosen/rejected None, so the failure stays
visible.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, Union

from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.steps.formatting.prompt import first_user_message, instruction_messages, prompt_id
from distilflow.typing import ChatType, StepColumns

__all__ = ["FormatChatGenerationDPO", "FormatTextGenerationDPO"]

_logger = logging.getLogger("distilflow.steps.tasks")

#: `chosen_model` and `rejected_model` are written only for rows with `generation_models`
_OUTPUTS = {
    "prompt": True, "prompt_id": True, "chosen": True, "chosen_model": False, "chosen_rating": True,
    "rejected": True, "rejected_model": False, "rejected_rating": True,
}


class _FormatDPO(Step):
    """What both DPO formats share: choosing the pair and writing its columns."""

    @property
    def outputs(self) -> StepColumns:
        return dict(_OUTPUTS)

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            formatted = [self._format(row) for row in rows]
            unrated = sum(row["chosen"] is None for row in formatted)
            if unrated:
                _logger.warning(
                    "%s '%s': %d row(s) have no ratings (their judge failed); their chosen/rejected are None.",
                    type(self).__name__, self.name, unrated,
                )
            yield formatted

    @abstractmethod
    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        """The row's prompt, and the messages the chosen and rejected answers follow."""

    def _format(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt, messages = self._prompt_and_messages(row)
        out = {**row, "prompt": prompt, "prompt_id": prompt_id(self, prompt)}
        models = row.get("generation_models")
        for side, index in zip(("chosen", "rejected"), self._pair(row) or (None, None)):
            rated = index is not None
            out[side] = [*messages, {"role": "assistant", "content": row["generations"][index]}] if rated else None
            if "generation_models" in row:
                out[f"{side}_model"] = models[index] if rated and models is not None else None
            out[f"{side}_rating"] = row["ratings"][index] if rated else None
        return out

    def _pair(self, row: dict[str, Any]) -> Union[tuple[int, int], None]:
        """Indices of the first best and the first worst rated generation (None: nothing is rated).

        Only generations with a rating count: a judge's answer may rate fewer than it was given
        (that row carries the judge's fallback reason), and a rating past the last generation has
        nothing to choose.
        """
        generations, ratings = row["generations"] or [], row["ratings"] or []
        rated = [(index, rating) for index, (_, rating) in enumerate(zip(generations, ratings)) if rating is not None]
        if not rated:
            return None
        chosen = max(rated, key=lambda pair: pair[1])[0]
        rejected = min(rated, key=lambda pair: pair[1])[0]
        return chosen, rejected


class FormatTextGenerationDPO(_FormatDPO):
    """DPO rows from `TextGeneration`s rated by a judge; the prompt is the `instruction`.

    Input columns: `system_prompt` (optional), `instruction`, `generations`, `generation_models`
    (optional), `ratings`.
    Output columns: `prompt`, `prompt_id`, `chosen`, `chosen_model` (with `generation_models`),
    `chosen_rating`, `rejected`, `rejected_model` (with `generation_models`), `rejected_rating`.
    """

    @property
    def inputs(self) -> StepColumns:
        return {"system_prompt": False, "instruction": True, "generations": True, "generation_models": False,
                "ratings": True}

    @property
    def optional_inputs(self) -> list[str]:
        return ["system_prompt", "generation_models"]

    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        return row["instruction"], instruction_messages(row)


class FormatChatGenerationDPO(_FormatDPO):
    """DPO rows from `ChatGeneration`s rated by a judge; the prompt is the first user message.

    Input columns: `messages`, `generations`, `generation_models` (optional), `ratings`.
    Output columns: as `FormatTextGenerationDPO`, `chosen`/`rejected` being `messages` plus the answer.
    """

    @property
    def inputs(self) -> StepColumns:
        return {"messages": True, "generations": True, "generation_models": False, "ratings": True}

    @property
    def optional_inputs(self) -> list[str]:
        return ["generation_models"]

    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        return first_user_message(self, row["messages"]), list(row["messages"])
