"""Images: prompts -> ImageGeneration -> image files named by content hash; rows hold their paths.

    python flows/image_generation.py
    python flows/image_generation.py --output out/images.jsonl --images-dir out/images --size 256x256
"""

from __future__ import annotations

import base64
import io
import threading
from typing import Any, Literal, Union

from distilflow.flows._common import (  # noqa: I001 - first: sets Prefect's environment before Prefect loads
    BATCH_THREADS, DATA, HubPublishing, ModelSettings, RunSettings, flow_body, load_rows, main, model_endpoint, run_steps,
)
from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.task_runners import ThreadPoolTaskRunner
from pydantic import Field

from distilflow.storage import check_writable, save_image
from distilflow.steps.tasks import ImageGeneration
from distilflow.models import OpenAIImageGeneration


class ImageGenerationParams(HubPublishing):
    """Generate images for a file of prompts."""

    input: str = Field(default=str(DATA / "image_prompts.jsonl"), description="JSONL or Parquet file with a `prompt` column.")
    output: str = Field(default="output/image_generation.jsonl", description="Where the rows go.")
    images_dir: str = Field(default="output/images", description="Directory or URI (e.g. s3://bucket/images) for the image files.")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N prompts.")
    model: ModelSettings = Field(default_factory=lambda: ModelSettings(model="dall-e-3", max_concurrent_requests=4))
    size: Literal["64x64", "256x256", "512x512", "1024x1024"] = Field(default="256x256", description="Image size.")
    num_generations: int = Field(default=1, ge=1, le=4, description="Images per prompt.")
    keep_base64: bool = Field(default=False, description="Also keep the image as base64 in the rows.")
    run: RunSettings = Field(default_factory=lambda: RunSettings(batch_size=2))
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


def with_image_files(rows: list[dict[str, Any]], images_dir: str, keep_base64: bool) -> list[dict[str, Any]]:
    """Rows whose `image` is the URI of a file named by the image's content hash."""
    out = []
    for row in rows:
        row = dict(row)
        image = row.get("image")
        if isinstance(image, str):
            row["image"] = save_image(image, images_dir)
            if keep_base64:
                row["image_base64"] = image
        out.append(row)
    return out


class Gallery:
    """The first few images of a run, as thumbnails in a markdown artifact."""

    def __init__(self, limit: int = 4, size: int = 128) -> None:
        self.limit, self.size, self.items = limit, size, []
        self._lock = threading.Lock()

    def add(self, generated: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
        with self._lock:
            for row, saved in zip(generated, stored):
                if len(self.items) < self.limit and isinstance(row.get("image"), str):
                    self.items.append((row.get("prompt", ""), _thumbnail(row["image"], self.size), saved["image"]))

    def publish(self) -> None:
        if not self.items:
            return
        lines = [f"| {prompt} | ![{prompt}](data:image/png;base64,{thumb}) | `{uri}` |" for prompt, thumb, uri in self.items]
        create_markdown_artifact(
            key="image-generation-gallery",
            markdown=f"## Generated images (first {len(lines)})\n\n| prompt | image | stored at |\n|---|---|---|\n" + "\n".join(lines) + "\n",
            description="A few of this run's images",
        )


def _thumbnail(image_b64: str, size: int) -> str:
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(image_b64)))
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@flow(name="image-generation", task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS))
def image_generation(params: ImageGenerationParams = ImageGenerationParams()):
    return flow_body(_image_generation, params)


def _image_generation(params: ImageGenerationParams, logger):
    rows = load_rows(params.input, params.limit, needs=["prompt"])
    gallery = Gallery()

    def store(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = with_image_files(batch, params.images_dir, params.keep_base64)
        gallery.add(batch, stored)
        return stored

    def shorten(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:  # a dry run stores nothing
        return [{**r, "image": str(r.get("image"))[:40] + "..."} for r in batch]

    with model_endpoint(params.model, logger) as endpoint:
        model = OpenAIImageGeneration(
            **endpoint, generation_kwargs={"size": params.size},
            **params.model.client_settings(),
        )
        # the raw output would hold the base64 image a second time
        task = ImageGeneration(
            image_generation_model=model, num_generations=params.num_generations,
            input_batch_size=params.run.rows_per_batch(len(rows)), add_raw_output=False,
        )
        if not params.dry_run:
            check_writable(params.images_dir, role="images folder")
        state = run_steps(task, rows, params, logger, "image-generation", transform=shorten if params.dry_run else store)
    gallery.publish()
    return state


if __name__ == "__main__":
    main(image_generation, ImageGenerationParams)
