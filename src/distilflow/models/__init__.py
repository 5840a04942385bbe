"""Model clients: the bases, the OpenAI-compatible clients, and test doubles (`distilabel.models`).

    from distilflow.models import OpenAILLM

An OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, TGI, a gateway) is `OpenAILLM` with
its `base_url`; a new provider is one file under `llms/` or `image_generation/`.
"""

from distilflow.models.image_generation import AsyncImageGenerationModel, ImageGenerationModel, OpenAIImageGeneration
from distilflow.models.llms import LLM, AsyncLLM, InferenceEndpointsLLM, OpenAILLM
from distilflow.models.mixins import MagpieChatTemplateMixin
from distilflow.models.testing import DummyAsyncLLM, DummyImageGenerationModel, DummyLLM

__all__ = [
    "LLM",
    "AsyncImageGenerationModel",
    "AsyncLLM",
    "DummyAsyncLLM",
    "DummyImageGenerationModel",
    "DummyLLM",
    "ImageGenerationModel",
    "InferenceEndpointsLLM",
    "MagpieChatTemplateMixin",
    "OpenAIImageGeneration",
    "OpenAILLM",
]
