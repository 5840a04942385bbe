"""`TextGenerationWithImage`: text generation from a template and one image (vision models)."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any, Literal

from distilflow.errors import DistilflowUserError
from distilflow.models.image_generation.utils import image_to_str
from distilflow.steps.tasks.text_generation import TextGeneration
from distilflow.typing import ChatType, FormattedInput, StepColumns

__all__ = ["TextGenerationWithImage"]



class TextGenerationWithImage(TextGeneration):
    """`TextGeneration` whose user message also carries the row's `image`.

    `image_type` says what the `image` column holds:

    * `"url"`: a URL (http(s), or a `data:` URI) sent as is (like distilabel, not checked further);
    * `"base64"`: base64 image bytes, sent as a `data:image/<format>;base64,...` URI whose format
      (png, jpeg, webp, gif) is read from the bytes themselves, jpeg when unrecognised;
    * `"PIL"`: a `PIL.Image.Image`, sent as JPEG (as distilabel sends it).

    The user message is OpenAI's content-parts form: the rendered template as a text part, then
    the image as an `image_url` part. Output columns: `generation`, `model_name`.
    """

    image_type: Literal["url", "base64", "PIL"] = "url"

    def model_post_init(self, __context: Any) -> None:
        if "image" in self.columns:
            raise DistilflowUserError(
                "TextGenerationWithImage: 'image' is the image column and cannot also be a template "
                "column; rename it in the template and `columns`."
            )
        super().model_post_init(__context)

    @property
    def inputs(self) -> StepColumns:
        return {**super().inputs, "image": True}

    def format_input(self, input: dict[str, Any]) -> ChatType:
        messages = super().format_input(input)
        url = self._image_url(input.get("image"))
        messages[-1] = {
            "role": "user",
            "content": [
                {"type": "text", "text": messages[-1]["content"]},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
        return messages

    def _image_url(self, image: Any) -> str:
        if self.image_type == "url":
            if not isinstance(image, str) or not image.strip():
                raise DistilflowUserError(
                    f"column 'image' must be a URL string (https://... or data:image/...) with "
                    f"image_type='url', got {_describe(image)}; set image_type='base64' or 'PIL' to match your data."
                )
            return image
        if self.image_type == "base64":
            return _data_uri(image)
        return _pil_data_uri(image)

    def _sample_input(self) -> FormattedInput:
        from distilflow.models.testing import tiny_png

        if self.image_type == "url":
            image: Any = "https://example.com/<PLACEHOLDER_IMAGE>.jpg"
        elif self.image_type == "base64":
            image = tiny_png("sample")
        else:
            from PIL import Image

            image = Image.open(io.BytesIO(base64.b64decode(tiny_png("sample"))))
        row = {c: f"<PLACEHOLDER_{c.upper()}>" for c in self.columns}
        return self.format_input({**row, "image": image})


def _data_uri(image: Any) -> str:
    if not isinstance(image, str):
        raise DistilflowUserError(
            f"column 'image' must be a base64 string with image_type='base64', got {_describe(image)}"
        )
    encoded = "".join(image.split())
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as e:
        raise DistilflowUserError(
            f"column 'image' is not valid base64 ({e}); with image_type='base64' it must hold the "
            f"image bytes base64-encoded, got {image!r:.60}"
        ) from e
    if not data:
        raise DistilflowUserError("column 'image' is empty; with image_type='base64' it must hold base64 image bytes.")
    return f"data:image/{_image_format(data)};base64,{encoded}"


def _pil_data_uri(image: Any) -> str:
    """A PIL image as a JPEG data URI, as distilabel sends it (JPEG has no alpha: RGB first)."""
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise DistilflowUserError(
            f"column 'image' must be a PIL.Image.Image with image_type='PIL', got {_describe(image)}"
        )
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    return f"data:image/jpeg;base64,{image_to_str(image, 'JPEG')}"


def _image_format(data: bytes) -> str:
    """The image format from its magic number; jpeg, the most common, when unknown."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "jpeg"


def _describe(value: Any) -> str:
    return f"{type(value).__name__}: {value!r:.60}"
