"""`OpenAIImageGeneration`: `images.generate` on any OpenAI-compatible endpoint."""

from __future__ import annotations

import base64
from typing import Any, Union

import httpx
from pydantic import BaseModel, PrivateAttr

from distilflow._loop import PerLoop
from distilflow.models._openai_compat import MalformedAnswer, OpenAICompatible, clip
from distilflow.models.image_generation.base import AsyncImageGenerationModel
from distilflow.typing import ImageGenerateOutput

__all__ = ["OpenAIImageGeneration"]


class OpenAIImageGeneration(OpenAICompatible, AsyncImageGenerationModel):
    """Images as base64 PNG/JPEG strings; URL answers are downloaded and encoded."""

    _downloads: PerLoop = PrivateAttr(default_factory=PerLoop)

    def unload(self) -> None:
        self._downloads.clear()
        super().unload()

    async def agenerate(
        self,
        input: str,
        num_generations: int = 1,
        size: Union[str, None] = None,
        quality: Union[str, None] = None,
        style: Union[str, None] = None,
        response_format: Union[str, None] = None,
    ) -> ImageGenerateOutput:
        params = {
            k: v
            for k, v in {"size": size, "quality": quality, "style": style, "response_format": response_format}.items()
            if v is not None
        }
        images = await self._images(input, num_generations, params)
        # some models (dall-e-3) make one image per request whatever `n` says
        while len(images) < num_generations:
            images.extend(await self._images(input, 1, params))
        return [{"images": [image]} for image in images[:num_generations]]

    async def _images(self, prompt: str, n: int, params: dict[str, Any]) -> list[str]:
        client = self.client()
        what = f"{type(self).__name__}(model={self.model!r}) image request"

        async def generate() -> Any:
            return _images_answer(await client.images.generate(model=self.model, prompt=prompt, n=n, **params))

        answer = await self.call_with_retries(what, generate)
        images = []
        for item in answer.data:
            if item.b64_json:
                images.append(item.b64_json)
            elif item.url:
                images.append(await self._download(what, item.url))
        return images

    async def _download(self, what: str, url: str) -> str:
        http = self._downloads.get(lambda: httpx.AsyncClient(timeout=self.timeout))

        async def fetch() -> bytes:
            response = await http.get(url)
            response.raise_for_status()
            return response.content

        return base64.b64encode(await self.call_with_retries(f"{what} (download)", fetch)).decode()


def _images_answer(answer: Any) -> Any:
    """An images answer, or MalformedAnswer when it is not one (retried; see _openai_compat)."""
    if answer is None or isinstance(answer, (str, list, int, float, bool)):  # JSON that is not an object
        raise MalformedAnswer(f"the server answered with {clip(answer)} instead of a JSON object")
    if not isinstance(getattr(answer, "data", None), list) or not answer.data:
        shown = answer.model_dump(exclude_unset=True, warnings=False) if isinstance(answer, BaseModel) else answer
        raise MalformedAnswer(f"the answer has no data: {clip(shown)}")
    return answer
