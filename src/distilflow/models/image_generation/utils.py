"""Images as base64 strings and back (distilabel's `image_to_str` / `image_from_str`)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["image_from_str", "image_to_str"]


def image_to_str(image: Image.Image, image_format: str = "JPEG") -> str:
    """A PIL image as base64 text of the given format (JPEG, as distilabel's default)."""
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return base64.b64encode(buffer.getvalue()).decode("utf-8")


def image_from_str(image_str: str) -> Image.Image:
    """The PIL image in base64 text."""
    from PIL import Image

    return Image.open(io.BytesIO(base64.b64decode(image_str)))
