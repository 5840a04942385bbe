"""Model clients: the bases, OpenAI-compatible clients, and test doubles."""

from distilflow.tasks.models.base import LLM, AsyncImageGenerationModel, AsyncLLM, ImageGenerationModel
from distilflow.tasks.models.huggingface import InferenceEndpointsLLM
from distilflow.tasks.models.magpie import MagpieChatTemplateMixin
from distilflow.tasks.models.openai import OpenAILLM
from distilflow.tasks.models.openai_image import OpenAIImageGeneration
from distilflow.tasks.models.testing import DummyAsyncLLM, DummyImageGenerationModel, DummyLLM

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
