"""Images: prompts -> ImageGeneration -> image files named by content hash; rows hold their paths.

    python flows/image_generation.py
    python flows/image_generation.py --output out/images.jsonl --images-dir out/images --size 256x256
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Literal, Union

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flows._common import (  # noqa: E402
    DATA, ModelSettings, RunSettings, cli, conclude, load_rows, model_endpoint, run_steps,
)
from prefect import flow, get_run_logger  # noqa: E402
from prefect.artifacts import create_markdown_artifact  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

from storage import save_image  # noqa: E402
from tasks import ImageGeneration  # noqa: E402
from tasks.models import OpenAIImageGeneration  # noqa: E402


class ImageGenerationParams(BaseModel):
    """Generate images for a file of prompts."""

    input: str = Field(default=str(DATA / "image_prompts.jsonl"), description="JSONL or Parquet file with a `prompt` column.")
    output: str = Field(default="output/image_generation.jsonl", description="Where the rows go.")
    images_dir: str = Field(default="output/images", description="Directory (or URI) for the image files.")
    limit: Union[int, None] = Field(default=None, ge=1, description="Use only the first N prompts.")
    model: ModelSettings = Field(default_factory=lambda: ModelSettings(model="dall-e-3", max_concurrent_requests=4))
    size: Literal["64x64", "256x256", "512x512", "1024x1024"] = Field(default="256x256", description="Image size.")
    num_generations: int = Field(default=1, ge=1, le=4, description="Images per prompt.")
    keep_base64: bool = Field(default=False, description="Also keep the image as base64 in the rows.")
    run: RunSettings = Field(default_factory=lambda: RunSettings(batch_size=2))
    dry_run: bool = Field(default=False, description="Run one small batch without the cache and print the rows.")


def with_image_files(rows: list[dict[str, Any]], images_dir: str, keep_base64: bool) -> list[dict[str, Any]]:
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


@flow(name="image-generation", task_runner=ThreadPoolTaskRunner(max_workers=8))
def image_generation(params: ImageGenerationParams = ImageGenerationParams()):
    logger = get_run_logger()
    rows = load_rows(params.input, params.limit)
    with model_endpoint(params.model, logger) as endpoint:
        model = OpenAIImageGeneration(
            **endpoint, generation_kwargs={"size": params.size},
            max_concurrent_requests=params.model.max_concurrent_requests,
        )
        # the raw output would hold the base64 image a second time
        task = ImageGeneration(
            image_generation_model=model, num_generations=params.num_generations,
            input_batch_size=params.run.batch_size, add_raw_output=False,
        )
        result = run_steps(task, rows, params)
    if params.dry_run:  # no files for a dry run: show the rows with their images shortened
        return conclude(result, params, logger, "image-generation", [{**r, "image": str(r.get("image"))[:40] + "..."} for r in result.rows])
    rows_out = with_image_files(result.rows, params.images_dir, params.keep_base64)
    shown = [r for r in result.rows if isinstance(r.get("image"), str)][:4]
    if shown:
        gallery = "\n".join(
            f"| {r['prompt']} | ![{r['prompt']}](data:image/png;base64,{r['image']}) | `{p['image']}` |"
            for r, p in zip(shown, rows_out)
        )
        create_markdown_artifact(
            key="image-generation-gallery",
            markdown=f"## Generated images (first {len(shown)})\n\n| prompt | image | file |\n|---|---|---|\n{gallery}\n",
            description="A few of this run's images",
        )
    return conclude(result, params, logger, "image-generation", rows_out)


if __name__ == "__main__":
    image_generation(cli(ImageGenerationParams))
