"""distilabel's older path for the text model clients (`distilabel.llms`); their home is `distilflow.models.llms`."""

from distilflow.models.llms import LLM, AsyncLLM, InferenceEndpointsLLM, OpenAILLM
from distilflow.models.mixins import MagpieChatTemplateMixin

__all__ = ["LLM", "AsyncLLM", "InferenceEndpointsLLM", "MagpieChatTemplateMixin", "OpenAILLM"]
