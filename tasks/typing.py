"""Type aliases shared by tasks and model clients (names as in distilabel)."""

from __future__ import annotations

from typing import Annotated, Any, Dict, List, Tuple, TypedDict, TypeVar, Union

from pydantic import Field

__all__ = [
    "ChatItem",
    "ChatType",
    "FormattedInput",
    "GenerateOutput",
    "ImageGenerateOutput",
    "LLMStatistics",
    "RuntimeParameter",
    "StepColumns",
    "StructuredOutputType",
]


class ChatItem(TypedDict):
    role: str
    content: Any  # a string, or a list of OpenAI content parts (text, image_url)


ChatType = List[ChatItem]
"""An OpenAI-format conversation: `[{"role": "user", "content": "..."}]`."""

StructuredOutputType = Dict[str, Any]
"""`{"format": "json", "schema": {...JSON schema...}}`: asks the model for JSON of that shape."""

FormattedInput = Union[ChatType, Tuple[ChatType, StructuredOutputType], str]
"""What `format_input` returns: a conversation, a conversation with a structured-output request,
or (for image tasks) a prompt string."""

StepColumns = Union[List[str], Dict[str, bool]]
"""Column names, or a mapping of column name -> required."""


class LLMStatistics(TypedDict, total=False):
    input_tokens: List[int]
    output_tokens: List[int]


class GenerateOutput(TypedDict, total=False):
    """What an LLM returns for one input: `n` generations and their token statistics."""

    generations: List[Union[str, None]]
    statistics: LLMStatistics


ImageGenerateOutput = List[Dict[str, Any]]
"""What an image model returns for one input: one `{"images": [base64, ...]}` per generation."""

_T = TypeVar("_T")

#: The mark of a run-time parameter in a field's annotation (see distilflow.tasks.runtime_parameters).
RUNTIME_PARAMETER = "distilflow_runtime_parameter"

RuntimeParameter = Annotated[Union[_T, None], Field(default=None), RUNTIME_PARAMETER]
"""A setting that may be left unset when a step is built and given when it runs (`RuntimeParameter[int]`)."""
