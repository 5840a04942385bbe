"""Deterministic model doubles that ship with distilflow, for tests and `Task.print`.

They send no request and need no key. Answers are either given (`responses`, cycled, or a
function of the input and the generation index) or derived from the input, so the same input
always gets the same answers. `calls` counts `generate`/`agenerate` calls.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Callable, Union

from pydantic import BaseModel, PrivateAttr

from distilflow._chat import chat_texts
from distilflow._png import encode_rgb_png
from distilflow.models.image_generation.base import AsyncImageGenerationModel
from distilflow.models.llms.base import LLM, AsyncLLM
from distilflow.typing import FormattedInput, GenerateOutput, ImageGenerateOutput

__all__ = ["DummyAsyncLLM", "DummyImageGenerationModel", "DummyLLM"]

Responses = Union[list[Union[str, None]], Callable[[Any, int], Union[str, None]], None]


class _Counted(BaseModel):
    model: str = "dummy"
    _calls: int = PrivateAttr(default=0)

    @property
    def model_name(self) -> str:
        return self.model

    @property
    def calls(self) -> int:
        """How many times the model was asked (one per `generate` or `agenerate` call)."""
        return self._calls


class _DummyText(_Counted):
    responses: Responses = None
    report_statistics: bool = True
    _served: int = PrivateAttr(default=0)

    def _answer(self, input: FormattedInput, num_generations: int) -> GenerateOutput:
        texts = []
        for i in range(num_generations):
            if callable(self.responses):
                texts.append(self.responses(input, i))
            elif self.responses:
                texts.append(self.responses[(self._served + i) % len(self.responses)])
            else:
                texts.append(f"output {i} for {_digest(input)}")
        self._served += num_generations
        output: GenerateOutput = {"generations": texts, "statistics": {}}
        if self.report_statistics:
            prompt_tokens = len(_prompt_text(input).split())
            output["statistics"] = {
                "input_tokens": [prompt_tokens] * num_generations,
                "output_tokens": [len(t.split()) if t else 0 for t in texts],
            }
        return output


class DummyLLM(_DummyText, LLM):
    """A sync LLM double."""

    model: str = "dummy-llm"

    def generate(self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any) -> list[GenerateOutput]:
        self._calls += 1
        return [self._answer(i, num_generations) for i in inputs]


class DummyAsyncLLM(_DummyText, AsyncLLM):
    """An async LLM double (exercises the sync adapter)."""

    model: str = "dummy-async-llm"

    async def agenerate(self, input: FormattedInput, num_generations: int = 1, **kwargs: Any) -> GenerateOutput:
        self._calls += 1
        return self._answer(input, num_generations)


class DummyImageGenerationModel(_Counted, AsyncImageGenerationModel):
    """An image model double: a small PNG per generation, its colour derived from the prompt."""

    model: str = "dummy-image-model"
    size: int = 8

    async def agenerate(self, input: str, num_generations: int = 1, **kwargs: Any) -> ImageGenerateOutput:
        self._calls += 1
        return [{"images": [tiny_png(f"{input}:{i}", self.size)]} for i in range(num_generations)]


def tiny_png(seed: str, size: int = 8) -> str:
    """A base64 PNG of one colour derived from `seed`."""
    colour = hashlib.sha256(seed.encode()).digest()[:3]
    return base64.b64encode(encode_rgb_png(size, size, [colour * size] * size)).decode()


def _prompt_text(input: FormattedInput) -> str:
    if isinstance(input, tuple):
        input = input[0]
    if isinstance(input, str):
        return input
    return " ".join(chat_texts(input))


def _digest(input: FormattedInput) -> str:
    return hashlib.sha256(json.dumps(input, sort_keys=True, default=str).encode()).hexdigest()[:8]
