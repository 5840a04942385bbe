"""`InferenceEndpointsLLM`: Hugging Face Inference Endpoints through their OpenAI-compatible route."""

from __future__ import annotations

import os
from typing import Any, ClassVar, Union

from pydantic import Field, model_validator

from distilflow.errors import DistilflowUserError
from distilflow.models._openai_compat import say_once
from distilflow.models.mixins.magpie import MagpieChatTemplateMixin
from distilflow.models.llms.openai import OpenAILLM
from distilflow.typing import FormattedInput, GenerateOutput

__all__ = ["InferenceEndpointsLLM"]

_SERVERLESS_URL = "https://router.huggingface.co/v1"


class InferenceEndpointsLLM(OpenAILLM, MagpieChatTemplateMixin):
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
    model_display_name: Union[str, None] = Field(
        default=None, description="What rows' `model_name` says instead of the model id (distilabel's)."
    )

    transport_fields = OpenAILLM.transport_fields | {"model_display_name", "tokenizer_id"}

    @property
    def model_name(self) -> str:
        return self.model_display_name or self.model

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

    async def agenerate(  # distilabel's generation settings for Inference Endpoints
        self,
        input: FormattedInput,
        num_generations: int = 1,
        max_new_tokens: int = 128,
        frequency_penalty: Union[float, None] = None,
        logit_bias: Union[list[float], None] = None,
        logprobs: bool = False,
        presence_penalty: Union[float, None] = None,
        seed: Union[int, None] = None,
        stop_sequences: Union[list[str], None] = None,
        temperature: float = 1.0,
        tool_choice: Union[dict[str, str], str, None] = None,
        tool_prompt: Union[str, None] = None,
        tools: Union[list[dict[str, Any]], None] = None,
        top_logprobs: Union[int, None] = None,
        top_n_tokens: Union[int, None] = None,
        top_p: Union[float, None] = None,
        do_sample: bool = False,
        repetition_penalty: Union[float, None] = None,
        return_full_text: bool = False,
        top_k: Union[int, None] = None,
        typical_p: Union[float, None] = None,
        watermark: bool = False,
    ) -> GenerateOutput:
        # The OpenAI-compatible route takes the chat settings; the text-generation ones do not apply.
        for name, value in (
            ("logit_bias", logit_bias), ("tool_prompt", tool_prompt), ("top_n_tokens", top_n_tokens),
            ("do_sample", do_sample or None), ("repetition_penalty", repetition_penalty),
            ("return_full_text", return_full_text or None), ("top_k", top_k), ("typical_p", typical_p),
            ("watermark", watermark or None),
        ):
            if value is not None:
                say_once(self, name, f"{name} is a text-generation setting the chat route does not take; it is ignored")
        extra = {k: v for k, v in {"tools": tools, "tool_choice": tool_choice}.items() if v is not None}
        return await super().agenerate(
            input, num_generations, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p,
            frequency_penalty=frequency_penalty, presence_penalty=presence_penalty, stop=stop_sequences, seed=seed,
            extra_body=extra or None, logprobs=logprobs, top_logprobs=top_logprobs,
        )
