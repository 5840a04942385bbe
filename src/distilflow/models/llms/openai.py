"""`OpenAILLM`: any OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Optional, Union

import httpx
from pydantic import BaseModel, Field, PrivateAttr, field_validator

from distilflow.errors import DistilflowUserError, ModelConfigurationError, ModelRequestError
from distilflow._chat import chat_texts
from distilflow.models._openai_compat import MalformedAnswer, OpenAICompatible, clip, say_once
from distilflow.models._rate_limits import estimate_tokens
from distilflow.models.llms.base import AsyncLLM
from distilflow.typing import RUNTIME_PARAMETER, FormattedInput, GenerateOutput

__all__ = ["OpenAILLM"]

# How llama.cpp-style servers word their refusal of `n` > 1.
_N_REJECTED = re.compile(r"\bn\b|choice", re.IGNORECASE)


class OpenAILLM(OpenAICompatible, AsyncLLM):
    """Chat completions from OpenAI or any server that speaks its API.

    `num_generations` is sent as `n`; a server that refuses `n` (or answers fewer choices) is
    asked one generation per request from then on. Token statistics are per generation: the
    prompt's size, and that generation's share of the completion tokens the server reported.
    """

    structured_output: Optional[Annotated[dict[str, Any], RUNTIME_PARAMETER]] = Field(
        default=None,
        description="Ask for JSON of a schema in every request: {'format': 'json', 'schema': <JSON schema dict or "
        "pydantic class>} (distilabel's instructor form {'schema': ..., 'mode': ...} is read the same way). A "
        "structured output the task puts in its formatted input wins.",
    )

    _n_supported: Union[bool, None] = PrivateAttr(default=None)

    @field_validator("structured_output")
    @classmethod
    def _json_only(cls, value: Union[dict[str, Any], None]) -> Union[dict[str, Any], None]:
        if value is not None:
            _response_format(value)  # an unsupported format or a bad schema fails now, not at the first request
        return value

    async def agenerate(
        self,
        input: FormattedInput,
        num_generations: int = 1,
        max_new_tokens: Union[int, None] = 128,
        temperature: Union[float, None] = None,
        top_p: Union[float, None] = None,
        frequency_penalty: Union[float, None] = None,
        presence_penalty: Union[float, None] = None,
        stop: Union[str, list[str], None] = None,
        seed: Union[int, None] = None,
        response_format: Union[dict[str, Any], None] = None,
        extra_body: Union[dict[str, Any], None] = None,
        logprobs: bool = False,
        top_logprobs: Union[int, None] = None,
        echo: bool = False,
    ) -> GenerateOutput:
        if echo:
            say_once(self, "echo", "echo=True applies to text completions, not to the chat endpoint; it is ignored")
        if logprobs:  # asked of the server; answers keep them (`logprobs` next to `generations`), rows do not
            extra_body = {**(extra_body or {}), "logprobs": True, **({"top_logprobs": top_logprobs} if top_logprobs else {})}
        messages, structured = (input if isinstance(input, tuple) else (input, self.structured_output))
        if structured is not None and response_format is None:
            response_format = _response_format(structured)
        params = {
            k: v
            for k, v in {
                "max_tokens": max_new_tokens,
                "temperature": temperature,
                "top_p": top_p,
                "frequency_penalty": frequency_penalty,
                "presence_penalty": presence_penalty,
                "stop": stop,
                "seed": seed,
                "response_format": response_format,
                "extra_body": extra_body,
            }.items()
            if v is not None
        }
        answers: list[tuple[Union[str, None], int, int]] = []  # (text, input tokens, output tokens)
        if num_generations > 1 and self._n_supported is not False:
            answers = await self._ask_with_n(messages, num_generations, params)
        while len(answers) < num_generations:
            answers.extend(await self._ask(messages, 1, params))
        texts = [a[0] for a in answers]
        output: GenerateOutput = {"generations": texts, "statistics": {}}
        if all(a[1] is not None for a in answers):
            output["statistics"] = {
                "input_tokens": [a[1] for a in answers],
                "output_tokens": [a[2] for a in answers],
            }
        return output

    async def _ask_with_n(self, messages, n: int, params: dict) -> list:
        try:
            answers = await self._ask(messages, n, params)
        except ModelRequestError as e:
            if e.status_code == 400 and _N_REJECTED.search(str(e)):
                self._n_supported = False
                return []
            raise
        self._n_supported = len(answers) >= n
        return answers[:n]

    async def _ask(self, messages, n: int, params: dict) -> list:
        client = self.client()
        extra = params.get("extra_body") or {}
        body = {"model": self.model, "messages": messages, "n": n, **{k: v for k, v in params.items() if k != "extra_body"}, **extra}

        async def ask() -> tuple[list, Union[dict, None]]:
            # The SDK's own HTTP call, without its per-request typing of the body and the answer:
            # those cost about a quarter of the client's CPU per request, and a run of many
            # thousands of requests on one core is bound by exactly that (benchmarks/throughput.py).
            response = await client.post("/chat/completions", body=body, cast_to=httpx.Response)
            self.rate_limits().update(response.headers)
            return _chat_answer(json.loads(response.content))

        cost = estimate_tokens(chat_texts(messages), params.get("max_tokens"), n)
        try:
            texts, usage = await self.call_with_retries(
                f"{type(self).__name__}(model={self.model!r}) chat request", ask, tokens=cost
            )
        except ModelRequestError as e:
            if e.status_code == 404:
                raise self._unknown_model(e) from e
            raise
        if not usage or not isinstance(usage.get("prompt_tokens"), int):
            return [(t, None, None) for t in texts]
        shares = split_tokens(usage.get("completion_tokens") or 0, texts)
        return [(t, usage["prompt_tokens"], s) for t, s in zip(texts, shares)]

    def _unknown_model(self, error: ModelRequestError) -> ModelConfigurationError:
        """A 404 on the chat route: the server does not serve this model, or this is not its API root.

        Which one cannot be told from here without another request, so the message names both.
        """
        url = self.resolved_base_url()
        return ModelConfigurationError(
            f"{str(error).rstrip('.')}. Check the model name (`model=`, or --model.model in the flows; "
            f"GET {url}/models lists the models this server serves) and that the base URL is the API root "
            "(usually ending in /v1).",
            status_code=404,
            transient=False,
        )


def _chat_answer(answer: Any) -> tuple[list[Union[str, None]], Union[dict, None]]:
    """The texts and usage of a chat completion, or MalformedAnswer when it is not one (retried)."""
    if not isinstance(answer, dict):
        raise MalformedAnswer(f"the server answered with {clip(answer)} instead of a JSON object")
    choices = answer.get("choices")
    if not isinstance(choices, list) or not choices:
        raise MalformedAnswer(f"the answer has no choices: {clip(answer)}")
    if not all(isinstance(c, dict) and isinstance(c.get("message"), dict) for c in choices):
        raise MalformedAnswer(f"an answer choice is not a choice: {clip(answer)}")
    texts = [c["message"].get("content") for c in choices]
    if not all(t is None or isinstance(t, str) for t in texts):
        raise MalformedAnswer(f"an answer's content is not text: {clip(answer)}")
    usage = answer.get("usage")
    return texts, usage if isinstance(usage, dict) else None


def split_tokens(total: int, texts: list[Union[str, None]]) -> list[int]:
    """Share `total` completion tokens among `texts` by their word counts, summing to `total`.

    A request with `n` choices reports one completion total; each generation gets its own
    share (largest remainder), so per-row statistics add up to what the server billed.
    """
    if len(texts) == 1:
        return [total]
    weights = [len(t.split()) if t else 0 for t in texts]
    if sum(weights) == 0:
        weights = [1] * len(texts)
    exact = [total * w / sum(weights) for w in weights]
    shares = [int(x) for x in exact]
    by_remainder = sorted(range(len(texts)), key=lambda i: exact[i] - shares[i], reverse=True)
    for i in by_remainder[: total - sum(shares)]:
        shares[i] += 1
    return shares


def _response_format(structured: dict[str, Any]) -> dict[str, Any]:
    schema = _json_schema(structured.get("schema"))
    if structured.get("format", "json") != "json":
        raise DistilflowUserError(
            f"Structured output format {structured.get('format')!r} is not supported; use 'json'."
        )
    if not schema:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": structured.get("name", "output"), "schema": schema}}


def _json_schema(schema: Any) -> Any:
    """A structured-output schema as JSON Schema: given as a dict, a JSON string or a pydantic class."""
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_json_schema()
    if isinstance(schema, str):
        try:
            return json.loads(schema)
        except json.JSONDecodeError as e:
            raise DistilflowUserError(f"The structured-output schema is a string but not JSON ({e}); pass a dict or a pydantic class.") from None
    return schema
