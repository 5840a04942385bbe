"""`InferenceEndpointsLLM`: Hugging Face Inference Endpoints through their OpenAI-compatible route."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Union

from pydantic import Field, model_validator

from tasks.errors import DistilflowUserError
from tasks.models.openai import OpenAILLM

__all__ = ["InferenceEndpointsLLM"]

_SERVERLESS_URL = "https://router.huggingface.co/v1"


class InferenceEndpointsLLM(OpenAILLM):
    """A Hugging Face model (serverless `model_id`) or dedicated endpoint (`base_url`).

    Takes distilabel's arguments (`model_id`, `tokenizer_id`, `endpoint_name`, `base_url`), so
    distilabel code runs with only the import changed. The key comes from `HF_TOKEN`;
    `HF_INFERENCE_ENDPOINT` overrides the serverless URL (a gateway, or the simulator in tests).
    """

    base_url_env: ClassVar[str] = "HF_INFERENCE_ENDPOINT"
    api_key_env: ClassVar[str] = "HF_TOKEN"
    default_base_url: ClassVar[str] = _SERVERLESS_URL

    model: str = Field(default="", description="Set from model_id / endpoint_name; 'tgi' for a bare endpoint.")
    model_id: Union[str, None] = None
    tokenizer_id: Union[str, None] = Field(
        default=None, description="Accepted for distilabel compatibility; the server applies its chat template."
    )
    endpoint_name: Union[str, None] = None
    endpoint_namespace: Union[str, None] = None

    @model_validator(mode="before")
    @classmethod
    def _model_from_ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            data = dict(data)
            data["model"] = data.get("model_id") or data.get("endpoint_name") or "tgi"
        return data

    def check_settings(self) -> None:
        if self.endpoint_name and not self.base_url:
            raise DistilflowUserError(
                f"InferenceEndpointsLLM(endpoint_name={self.endpoint_name!r}) needs the endpoint's URL: "
                "pass base_url='https://<your-endpoint>.endpoints.huggingface.cloud/v1'."
            )
        if not (self.model_id or self.base_url or os.environ.get(self.base_url_env)):
            raise DistilflowUserError(
                "InferenceEndpointsLLM needs `model_id` (serverless) or `base_url` (a dedicated endpoint)."
            )
        super().check_settings()
