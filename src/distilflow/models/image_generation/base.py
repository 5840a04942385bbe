"""Image model bases, with distilabel's names and output shapes (`distilabel.models.image_generation.base`).

`ImageGenerationModel.generate(inputs, num_generations)` -> one `[{"images": [b64]}, ...n]` per input;
an `AsyncImageGenerationModel` implements only `agenerate(input, ...)` for one prompt.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

from distilflow.answers import answer
from distilflow.models.base import _AsyncAdapter, _ModelClient
from distilflow.typing import ImageGenerateOutput

__all__ = ["ImageGenerationModel", "AsyncImageGenerationModel"]


class ImageGenerationModel(_ModelClient):
    """An image model. Implement `model_name` and `generate`."""

    @abstractmethod
    def generate(
        self, inputs: list[str], num_generations: int = 1, **kwargs: Any
    ) -> list[ImageGenerateOutput]:
        """Generate `num_generations` images for each prompt."""

    def generate_outputs(
        self, inputs: list[str], num_generations: int = 1, **kwargs: Any
    ) -> list[ImageGenerateOutput]:
        """`generate`, checked; inside a run, through the answer cache."""
        return answer(self, inputs, num_generations, kwargs)

    def generate_checked(
        self, inputs: list[str], num_generations: int = 1, **kwargs: Any
    ) -> list[ImageGenerateOutput]:
        outputs = self.generate(inputs=inputs, num_generations=num_generations, **kwargs)
        if len(outputs) != len(inputs) or not all(self.is_answer(o, num_generations) for o in outputs):
            raise RuntimeError(
                f"{type(self).__name__}.generate must return one list of {num_generations} "
                f"image dict(s) per input; got {outputs!r:.300} for {len(inputs)} inputs."
            )
        return outputs

    @staticmethod
    def is_answer(output: Any, num_generations: int) -> bool:
        return (
            isinstance(output, list)
            and len(output) == num_generations
            and all(isinstance(o, dict) and "images" in o for o in output)
        )


class AsyncImageGenerationModel(_AsyncAdapter, ImageGenerationModel):
    """An image model with an async client. Implement `model_name` and `agenerate`."""

    @abstractmethod
    async def agenerate(
        self, input: str, num_generations: int = 1, **kwargs: Any
    ) -> ImageGenerateOutput:
        """Generate `num_generations` images for one prompt: `[{"images": [b64]}, ...]`."""
