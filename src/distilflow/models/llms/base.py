"""Text model bases, with distilabel's names and output shapes (`distilabel.models.llms.base`).

`LLM.generate(inputs, num_generations)` -> one `{"generations": [...n], "statistics": {...}}` per input.
An `AsyncLLM` implements only `agenerate(input, ...)` for one input; its `generate` runs a batch
concurrently on distilflow's shared event loop.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from distilflow.answers import answer
from distilflow.models.base import _AsyncAdapter, _ModelClient
from distilflow.typing import FormattedInput, GenerateOutput

__all__ = ["LLM", "AsyncLLM"]


class LLM(_ModelClient):
    """A text model. Implement `model_name` and `generate`."""

    @abstractmethod
    def generate(
        self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any
    ) -> list[GenerateOutput]:
        """Generate `num_generations` answers for each input."""

    def generate_outputs(
        self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any
    ) -> list[GenerateOutput]:
        """distilabel's entry point: `generate`, checked; inside a run, through the answer cache."""
        return answer(self, inputs, num_generations, kwargs)

    def generate_checked(
        self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any
    ) -> list[GenerateOutput]:
        """`generate`, with its answer checked so a broken client fails loudly, not as odd rows."""
        outputs = self.generate(inputs=inputs, num_generations=num_generations, **kwargs)
        _check_llm_outputs(type(self).__name__, outputs, len(inputs), num_generations)
        return outputs

    @staticmethod
    def is_answer(output: Any, num_generations: int) -> bool:
        """Whether `output` has the shape of one input's answer (a stored answer is checked too)."""
        return (
            isinstance(output, dict)
            and isinstance(output.get("generations"), list)
            and len(output["generations"]) == num_generations
        )


class AsyncLLM(_AsyncAdapter, LLM):
    """A text model with an async client. Implement `model_name` and `agenerate`."""

    @abstractmethod
    async def agenerate(
        self, input: FormattedInput, num_generations: int = 1, **kwargs: Any
    ) -> GenerateOutput:
        """Generate `num_generations` answers for one input."""


def _check_llm_outputs(owner: str, outputs: Any, n_inputs: int, n: int) -> None:
    ok = isinstance(outputs, list) and len(outputs) == n_inputs
    ok = ok and all(
        isinstance(o, dict) and isinstance(o.get("generations"), list) and len(o["generations"]) == n
        for o in outputs
    )
    if not ok:
        raise RuntimeError(
            f"{owner}.generate must return one {{'generations': [...{n}], 'statistics': {{...}}}} "
            f"per input ({n_inputs} inputs); got {outputs!r:.300}"
        )
