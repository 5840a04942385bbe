"""`ImageGeneration`: a prompt in, an image (base64) out."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Union

from pydantic import Field, field_validator

from distilflow.steps.tasks.base import ImageTask
from distilflow.errors import DistilflowUserError
from distilflow.models.image_generation.utils import image_from_str
from distilflow.typing import StepColumns

__all__ = ["ImageGeneration"]

_log = logging.getLogger("distilflow.steps.tasks")


class ImageGeneration(ImageTask):
    """Generate an image from the `prompt` column.

    Output columns: `image` (a base64-encoded image), `model_name`, and with `save_artifacts`
    (distilabel's) `image_path`: each image is also saved as a file in `image_format`, at
    `artifacts/<step name>/images/<md5 of the prompt>.<format>` under the working directory, the
    path distilabel gives it. (The flows store images by content hash instead; see
    `distilflow.storage.save_image`.)
    """

    save_artifacts: bool = Field(default=False, description="Also save each image as a file; its path goes to `image_path`.")
    image_format: str = Field(default="JPEG", description="Format of the saved files (any format PIL writes).")

    @field_validator("image_format")
    @classmethod
    def _pil_writes_it(cls, value: str) -> str:
        from PIL import Image

        Image.init()
        if value.upper() not in Image.SAVE:
            raise ValueError(f"PIL cannot write {value!r}; use one of {sorted(Image.SAVE)[:12]}...")
        return value

    @property
    def inputs(self) -> StepColumns:
        return ["prompt"]

    @property
    def outputs(self) -> StepColumns:
        return {"image": True, "image_path": False, "model_name": True}

    def format_input(self, input: dict[str, Any]) -> str:
        prompt = input.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise DistilflowUserError(f"column 'prompt' must be a non-empty string, got {prompt!r:.80}")
        return prompt

    def format_output(self, output: dict[str, Any], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        images = output.get("images") or []
        return {"image": images[0] if images else None}

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = super().process_batch(rows)
        if self.save_artifacts:
            for row in out:
                if isinstance(row.get("image"), str):
                    row["image_path"] = self._save(row["prompt"], row["image"])
        return out

    def _save(self, prompt: str, image: str) -> str:
        suffix = self.image_format.lower()
        path = Path("artifacts") / self.name / "images" / f"{hashlib.md5(prompt.encode()).hexdigest()}.{suffix}"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture = image_from_str(image)
        if self.image_format.upper() == "JPEG" and picture.mode not in ("RGB", "L"):
            picture = picture.convert("RGB")
        picture.save(path, format=self.image_format)
        return path.as_posix()
