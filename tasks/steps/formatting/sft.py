"""`FormatTextGenerationSFT`, `FormatChatGenerationSFT`: rows in the chat format SFT trainers read.

Each row gets `prompt`, `prompt_id` (SHA-256 of the prompt) and `messages`, the conversation that
ends with the generation as the assistant's answer (the layout of axolotl and alignment-handbook
datasets). The input rows are left as they are; new rows are yielded.
"""

from __future__ import annotations

from typing import Any

from distilflow.tasks.steps.base import Step, StepInput, StepOutput
from distilflow.tasks.steps.formatting.prompt import first_user_message, instruction_messages, prompt_id
from distilflow.tasks.typing import StepColumns

__all__ = ["FormatChatGenerationSFT", "FormatTextGenerationSFT"]

_OUTPUTS = ["prompt", "prompt_id", "messages"]


class FormatTextGenerationSFT(Step):
    """SFT rows from a `TextGeneration`: `instruction` (after `system_prompt`, if any) then `generation`.

    Input columns: `system_prompt` (optional), `instruction`, `generation`.
    Output columns: `prompt`, `prompt_id`, `messages`.
    """

    @property
    def inputs(self) -> StepColumns:
        return {"system_prompt": False, "instruction": True, "generation": True}

    @property
    def optional_inputs(self) -> list[str]:
        return ["system_prompt"]

    @property
    def outputs(self) -> StepColumns:
        return list(_OUTPUTS)

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            yield [self._format(row) for row in rows]

    def _format(self, row: dict[str, Any]) -> dict[str, Any]:
        messages = [*instruction_messages(row), {"role": "assistant", "content": row["generation"]}]
        return {**row, "prompt": row["instruction"], "prompt_id": prompt_id(self, row["instruction"]), "messages": messages}


class FormatChatGenerationSFT(Step):
    """SFT rows from a `ChatGeneration`: the row's `messages` followed by the `generation`.

    Input columns: `messages`, `generation`.
    Output columns: `prompt` (the first user message), `prompt_id`, `messages` (extended).
    """

    @property
    def inputs(self) -> StepColumns:
        return ["messages", "generation"]

    @property
    def outputs(self) -> StepColumns:
        return list(_OUTPUTS)

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            yield [self._format(row) for row in rows]

    def _format(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt = first_user_message(self, row["messages"])
        messages = [*row["messages"], {"role": "assistant", "content": row["generation"]}]
        return {**row, "prompt": prompt, "prompt_id": prompt_id(self, prompt), "messages": messages}
