"""`ConversationTemplate`: an `instruction` and its `response` as a two-turn chat conversation.

The `conversation` column is the OpenAI-format list a chat task or an SFT dataset takes:
`[{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]`.
"""

from __future__ import annotations

from distilflow.steps.base import Step, StepInput, StepOutput
from distilflow.typing import StepColumns

__all__ = ["ConversationTemplate"]


class ConversationTemplate(Step):
    """Add the `conversation` of each row's `instruction` (user) and `response` (assistant).

    Input columns: `instruction`, `response`. Output columns: `conversation`.
    """

    @property
    def inputs(self) -> StepColumns:
        return ["instruction", "response"]

    @property
    def outputs(self) -> StepColumns:
        return ["conversation"]

    def process(self, inputs: StepInput) -> StepOutput:  # type: ignore[override]
        yield [
            {**row, "conversation": [
                {"role": "user", "content": row["instruction"]},
                {"role": "assistant", "content": row["response"]},
            ]}
            for row in inputs
        ]
