"""`ImageGeneration`: a prompt in, an image (base64) out."""

from __future__ import annotations

from typing import Any, Union

from tasks.base import ImageTask
from tasks.errors import DistilflowUserError
from tasks.typing import StepColumns

__all__ = ["ImageGeneration"]


class ImageGeneration(ImageTask):
    """Generate an image from the `prompt` column.

    Output columns: `image` (a base64-encoded image), `model_name`.
    """

    @property
    def inputs(self) -> StepColumns:
        return ["prompt"]

    @property
    def outputs(self) -> StepColumns:
        return ["image", "model_name"]

    def format_input(self, input: dict[str, Any]) -> str:
        prompt = input.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DistilflowUserError(f"column 'prompt' must be a non-empty string, got {prompt!r:.80}")
        return prompt

    def format_output(self, output: dict[str, Any], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        images = output.get("images") or []
        return {"image": images[0] if images else None}
