"""Type aliases shared by steps, tasks and model clients, with distilabel's names (`distilabel.typing`)."""

from __future__ import annotations

from typing import Annotated, Any, Dict, Iterator, List, Literal, Tuple, TypedDict, TypeVar, Union

from pydantic import Field

__all__ = [
    "ChatItem",
    "ChatType",
    "FormattedInput",
    "GenerateOutput",
    "GeneratorStepOutput",
    "HiddenState",
    "ImageContent",
    "ImageGenerateOutput",
    "ImageUrl",
    "LLMOutput",
    "LLMStatistics",
    "RuntimeParameter",
    "StandardInput",
    "StepColumns",
    "StepOutput",
    "StructuredInput",
    "StructuredOutputType",
    "TextContent",
    "TokenCount",
]


class TextContent(TypedDict):
    type: Literal["text"]
    text: str


class ImageUrl(TypedDict):
    url: str  # an http(s) URL or a `data:image/...;base64,` URI


class ImageContent(TypedDict):
    type: Literal["image_url"]
    image_url: ImageUrl


class ChatItem(TypedDict):
    role: str
    content: Any  # a string, or a list of OpenAI content parts (text, image_url)


ChatType = List[ChatItem]
"""An OpenAI-format conversation: `[{"role": "user", "content": "..."}]`."""

StructuredOutputType = Dict[str, Any]
"""`{"format": "json", "schema": {...JSON schema...}}`: asks the model for JSON of that shape."""

StandardInput = ChatType
"""What `format_input` returns for a chat model."""

StructuredInput = Tuple[StandardInput, Union[StructuredOutputType, None]]
"""A conversation with the structured output its answer must follow."""

FormattedInput = Union[StandardInput, StructuredInput, str]
"""What `format_input` returns: a conversation, a conversation with a structured-output request,
or (for image tasks) a prompt string."""

StepColumns = Union[List[str], Dict[str, bool]]
"""Column names, or a mapping of column name -> required."""


class TokenCount(TypedDict):
    input_tokens: List[int]
    output_tokens: List[int]


class LLMStatistics(TypedDict, total=False):
    input_tokens: List[int]
    output_tokens: List[int]


LLMOutput = List[Union[str, None]]
"""An LLM's `n` generations for one input (`None` where the model returned no text)."""

HiddenState = Any
"""A model's hidden state for one input (an array; distilflow runs no local models that produce one)."""

StepOutput = Iterator[List[Dict[str, Any]]]
"""What `Step.process` yields: one list of rows per batch."""

GeneratorStepOutput = Iterator[Tuple[List[Dict[str, Any]], bool]]
"""What `GeneratorStep.process` yields: `(rows, is_last_batch)`."""


class GenerateOutput(TypedDict, total=False):
    """What an LLM returns for one input: `n` generations and their token statistics."""

    generations: LLMOutput
    statistics: LLMStatistics


ImageGenerateOutput = List[Dict[str, Any]]
"""What an image model returns for one input: one `{"images": [base64, ...]}` per generation."""

_T = TypeVar("_T")

#: The mark of a run-time parameter in a field's annotation (see distilflow.mixins.runtime_parameters).
RUNTIME_PARAMETER = "distilflow_runtime_parameter"

RuntimeParameter = Annotated[Union[_T, None], Field(default=None), RUNTIME_PARAMETER]
"""A setting that may be left unset when a step is built and given when it runs (`RuntimeParameter[int]`)."""
