from distilflow.tasks.models import LLM, AsyncLLM

__all__ = ["LLM", "AsyncLLM"]
