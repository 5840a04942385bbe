"""distilabel's older path for the task type aliases (`distilabel.steps.tasks.typing`); their home is `distilflow.typing`."""

from distilflow.typing import ChatItem, ChatType, FormattedInput, GenerateOutput, StandardInput, StructuredInput, StructuredOutputType

__all__ = [
    "ChatItem", "ChatType", "FormattedInput", "GenerateOutput", "StandardInput", "StructuredInput", "StructuredOutputType",
]
