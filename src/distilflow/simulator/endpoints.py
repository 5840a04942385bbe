"""Request validation and answer payloads of the model endpoints.

Pure functions of (parsed body, config snapshot, fault decision, context): the
HTTP layer in app.py handles latency, scripted statuses and bookkeeping.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distilflow._chat import chat_texts

from .config import SimulatorConfig, parse_image_size
from .content import (
    MALFORMED_TEXT,
    MAX_ANSWER_WORDS,
    answer_digest,
    answer_text,
    count_tokens,
    json_object_answer,
    json_schema_answer,
    malformed_json,
    truncate_words,
)
from .errors import (
    CONTEXT_LENGTH,
    ApiError,
    content_policy_violation,
    context_length_exceeded,
    invalid_field,
    missing_field,
)
from .images import image_key, image_name, render_png

#: Fixed so that identical requests get byte-identical answers.
CREATED = 1_700_000_000
DEFAULT_MODEL = "distilflow-sim"
MAX_CHOICES = 128
MAX_IMAGES = 10


@dataclass(frozen=True)
class RequestContext:
    request_id: str  # derived from the raw body, so also deterministic
    base_url: str  # "http://host:port/" as seen by the client, for image URLs


@dataclass
class Outcome:
    payload: dict[str, Any]
    choices: int
    prompt_tokens: int = 0
    completion_tokens: int = 0


Renderer = Callable[[bytes], str]


def chat_completion(
    body: dict, config: SimulatorConfig, fault: str, ctx: RequestContext
) -> Outcome:
    model = _model(body, config)
    messages = body.get("messages")
    if messages is None:
        raise missing_field("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise invalid_field("messages", "expected a non-empty array of message objects.")
    _refuse_streaming(body)
    n = _choice_count(body, config)
    max_words = _max_words(body, "max_completion_tokens") or _max_words(body, "max_tokens")
    render, json_mode = _renderer(body.get("response_format"))
    seed = body.get("seed")

    choices = []
    for index in range(n):
        digest = answer_digest(model, messages, index, seed)
        content, finish = _choice_content(digest, render, json_mode, fault, max_words)
        choices.append(
            {
                "index": index,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
                "logprobs": None,
            }
        )
    prompt_tokens = sum(count_tokens(text) for text in chat_texts(messages))
    completion_tokens = sum(count_tokens(c["message"]["content"]) for c in choices)
    return _completion(f"chatcmpl-{ctx.request_id}", "chat.completion", model, choices, prompt_tokens, completion_tokens)


def text_completion(
    body: dict, config: SimulatorConfig, fault: str, ctx: RequestContext
) -> Outcome:
    model = _model(body, config)
    prompt = body.get("prompt")
    if prompt is None:
        raise missing_field("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise invalid_field("prompt", "expected a string or a non-empty array of strings.")
    _refuse_streaming(body)
    n = _choice_count(body, config)
    max_words = _max_words(body, "max_tokens")
    seed = body.get("seed")

    choices = []
    # OpenAI orders choices prompt-major: prompt j, choice i -> index j * n + i.
    for prompt_index, text_prompt in enumerate(prompts):
        for index in range(n):
            digest = answer_digest(model, text_prompt, index, seed)
            text, finish = _choice_content(digest, answer_text, False, fault, max_words)
            choices.append(
                {"text": text, "index": prompt_index * n + index, "logprobs": None, "finish_reason": finish}
            )
    prompt_tokens = sum(count_tokens(p) for p in prompts)
    completion_tokens = sum(count_tokens(c["text"]) for c in choices)
    return _completion(f"cmpl-{ctx.request_id}", "text_completion", model, choices, prompt_tokens, completion_tokens)


def _completion(id_: str, kind: str, model: str, choices: list, prompt_tokens: int, completion_tokens: int) -> Outcome:
    payload = {
        "id": id_,
        "object": kind,
        "created": CREATED,
        "model": model,
        "choices": choices,
        "usage": _usage(prompt_tokens, completion_tokens),
    }
    return Outcome(payload, len(choices), prompt_tokens, completion_tokens)


def image_generation(
    body: dict, config: SimulatorConfig, fault: str, ctx: RequestContext
) -> Outcome:
    # Like OpenAI, the model is optional here; if given it must be allowed.
    if body.get("model") is not None:
        _model(body, config)
    prompt = body.get("prompt")
    if prompt is None:
        raise missing_field("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise invalid_field("prompt", "expected a non-empty string.")
    n = _int_field(body, "n", default=1, low=1, high=MAX_IMAGES)
    size = body.get("size") or "auto"
    if size == "auto":
        size = config.image_size
    try:
        width, height = parse_image_size(str(size))
    except ValueError as error:
        raise invalid_field("size", str(error)) from None
    response_format = body.get("response_format") or "b64_json"
    if response_format not in ("b64_json", "url"):
        raise invalid_field("response_format", "must be 'b64_json' or 'url'.")

    data = []
    for index in range(n):
        key = image_key(prompt, index)
        if fault == "empty":
            data.append({response_format: ""})
        elif response_format == "url":
            name = "malformed" if fault == "malformed" else image_name(key, width, height)
            data.append({"url": f"{ctx.base_url}_sim/images/{name}.png"})
        else:
            png = render_png(key, width, height)
            if fault == "malformed":
                png = png[: len(png) // 2]
            data.append({"b64_json": base64.b64encode(png).decode("ascii")})
    return Outcome({"created": CREATED, "data": data}, choices=n)


def refusal(endpoint: str, body: dict, config: SimulatorConfig) -> ApiError | None:
    """The error for a request whose prompt text contains a `refuse_containing` substring, or None.

    Decided from the prompt alone, before any other validation: a property of the prompt, so the
    same request is refused every time.
    """
    if endpoint == "chat.completions":
        messages = body.get("messages")
        messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        texts, param = chat_texts(messages), "messages"
    else:
        prompt = body.get("prompt")
        texts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []
        texts, param = [t for t in texts if isinstance(t, str)], "prompt"
    if not any(needle in text for text in texts for needle in config.refuse_containing):
        return None
    if endpoint == "images.generations":
        return content_policy_violation(config.refusal_status)
    # deterministic and always over the limit: grows with the simulator's own token count
    tokens = CONTEXT_LENGTH + 1000 * max(1, sum(count_tokens(text) for text in texts))
    return context_length_exceeded(config.refusal_status, tokens, param)


def admission_tokens(endpoint: str, body: dict, config: SimulatorConfig) -> int:
    """The tokens a request costs against tokens_per_minute, estimated before answering it, as
    OpenAI does: its prompt tokens plus max_tokens (max_completion_tokens for chat) for every
    choice it asks for; without a cap, the longest plain answer the simulator writes. Images
    cost their prompt tokens. Malformed fields count as absent (the answer is then a 400)."""
    if endpoint == "chat.completions":
        messages = body.get("messages")
        messages = [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
        prompts = [" ".join(chat_texts(messages))]
        cap = _valid_int(body.get("max_completion_tokens")) or _valid_int(body.get("max_tokens"))
    else:
        prompt = body.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else prompt if isinstance(prompt, list) else []
        prompts = [p for p in prompts if isinstance(p, str)] or [""]
        if endpoint == "images.generations":
            return count_tokens(prompts[0])
        cap = _valid_int(body.get("max_tokens"))
    n = _valid_int(body.get("n"), MAX_CHOICES) or 1
    choices = len(prompts) * (1 if config.ignore_n else n)
    return sum(count_tokens(p) for p in prompts) + choices * (cap or MAX_ANSWER_WORDS)


def request_model(body: dict) -> str:
    """The model a request names, for messages about it."""
    model = body.get("model")
    return model if isinstance(model, str) and model else DEFAULT_MODEL


def _valid_int(value: Any, high: int | None = None) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high and value > high):
        return None
    return value


def _model(body: dict, config: SimulatorConfig) -> str:
    model = body.get("model")
    if model is None:
        raise missing_field("model")
    if not isinstance(model, str) or not model:
        raise invalid_field("model", "expected a non-empty string.")
    if config.models is not None and model not in config.models:
        raise ApiError(
            404, f"The model '{model}' does not exist", param="model", code="model_not_found"
        )
    return model


def _refuse_streaming(body: dict) -> None:
    if body.get("stream"):
        raise ApiError(400, "streaming is not supported by the simulator", param="stream")


def _int_field(body: dict, name: str, *, default: int | None, low: int, high: int | None = None) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
        bound = f"between {low} and {high}" if high else f"at least {low}"
        raise invalid_field(name, f"expected an integer {bound}, got {value!r}.")
    return value


def _choice_count(body: dict, config: SimulatorConfig) -> int:
    n = _int_field(body, "n", default=1, low=1, high=MAX_CHOICES)
    if n > 1 and config.reject_n:  # like llama.cpp's server
        raise ApiError(400, "Only one completion choice is allowed: n must be 1", param="n")
    if n > 1 and config.ignore_n:  # like Ollama
        return 1
    return n


def _max_words(body: dict, name: str) -> int | None:
    return _int_field(body, name, default=None, low=1)


def _renderer(response_format: Any) -> tuple[Renderer, bool]:
    if response_format is None:
        return answer_text, False
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return answer_text, False
    if kind == "json_object":
        return json_object_answer, True
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema", {}) if isinstance(spec, dict) else {}
        return (lambda digest: json_schema_answer(digest, schema)), True
    raise invalid_field("response_format", "type must be 'text', 'json_object' or 'json_schema'.")


def _choice_content(
    digest: bytes, render: Renderer, json_mode: bool, fault: str, max_words: int | None
) -> tuple[str, str]:
    if fault == "empty":
        return "", "stop"
    content = render(digest)
    if fault == "malformed":
        return (malformed_json(content) if json_mode else MALFORMED_TEXT), "stop"
    # The word cap applies to JSON content too: a real provider cuts JSON
    # mid-document when it runs out of tokens, and callers must cope with that.
    content, truncated = truncate_words(content, max_words)
    return content, "length" if truncated else "stop"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
