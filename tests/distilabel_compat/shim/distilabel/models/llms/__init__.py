from distilflow.tasks.models import LLM, AsyncLLM, InferenceEndpointsLLM, OpenAILLM  # noqa: F401
