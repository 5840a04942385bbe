"""Text model clients (`distilabel.models.llms`)."""

from distilflow.models.llms.base import LLM, AsyncLLM
from distilflow.models.llms.huggingface import InferenceEndpointsLLM
from distilflow.models.llms.openai import OpenAILLM

__all__ = ["LLM", "AsyncLLM", "InferenceEndpointsLLM", "OpenAILLM"]
