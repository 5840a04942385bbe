"""Model clients: the bases, OpenAI-compatible clients, and test doubles."""

from tasks.models.base import LLM, AsyncImageGenerationModel, AsyncLLM, ImageGenerationModel
from tasks.models.huggingface import InferenceEndpointsLLM
from tasks.models.openai import OpenAILLM
from tasks.models.openai_image import OpenAIImageGeneration
from tasks.models.testing import DummyAsyncLLM, DummyImageGenerationModel, DummyLLM

__all__ = [
    "LLM",
    "AsyncImageGenerationModel",
    "AsyncLLM",
    "DummyAsyncLLM",
    "DummyImageGenerationModel",
    "DummyLLM",
    "ImageGenerationModel",
    "InferenceEndpointsLLM",
    "OpenAIImageGeneration",
    "OpenAILLM",
]
