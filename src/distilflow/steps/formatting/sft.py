"""`FormatTextGenerationSFT`, `FormatChatGenerationSFT`: rows in the chat format SFT trainers read.

Each row gets `prompt`, `prompt_id` (SHA-256 of the prompt) and `messages`, the conversation that
ends with the generation as the assistant's answer (the layout of axolotl and alignment-handbook
datasets). The input rows are left as they are; new rows are yielded.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.steps.formatting.prompt import first_user_message, instruction_messages, prompt_id
from distilflow.typing import ChatType, StepColumns

__all__ = ["FormatChatGenerationSFT", "FormatTextGenerationSFT"]


class _FormatSFT(Step):
    """What both SFT formats share: the conversation ends with the generation as the answer."""

    @property
    def outputs(self) -> StepColumns:
        return ["prompt", "prompt_id", "messages"]

    def process(self, *inputs: StepInput) -> StepOutput:
        for rows in inputs:
            yield [self._format(row) for row in rows]

    @abstractmethod
    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        """The row's prompt, and the messages the generation answers."""

    def _format(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt, messages = self._prompt_and_messages(row)
        answer = {"role": "assistant", "content": row["generation"]}
        return {**row, "prompt": prompt, "prompt_id": prompt_id(self, prompt), "messages": [*messages, answer]}


class FormatTextGenerationSFT(_FormatSFT):
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

    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        return row["instruction"], instruction_messages(row)


class FormatChatGenerationSFT(_FormatSFT):
    """SFT rows from a `ChatGeneration`: the row's `messages` followed by the `generation`.

    Input columns: `messages`, `generation`.
    Output columns: `prompt` (the first user message), `prompt_id`, `messages` (extended).
    """

    @property
    def inputs(self) -> StepColumns:
        return ["messages", "generation"]

    def _prompt_and_messages(self, row: dict[str, Any]) -> tuple[str, ChatType]:
        return first_user_message(self, row["messages"]), row["messages"]
