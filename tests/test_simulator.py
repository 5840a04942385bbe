"""The OpenAI-compatible simulator, exercised through real HTTP with the openai client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from pathlib import Path

import httpx
import jsonschema
import openai
import pydantic
import pytest

from distilflow.simulator import Simulator, SimulatorConfig
from distilflow.simulator.state import straggler_unit

ROOT = Path(__file__).resolve().parents[1]
MODEL = "sim-model"


@pytest.fixture(scope="module")
def sim():
    with Simulator() as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh(request):
    """Every test starts from the default config and zeroed counters."""
    if "sim" in request.fixturenames:
        simulator = request.getfixturevalue("sim")
        simulator.configure(**SimulatorConfig().model_dump())
        simulator.reset()
    yield


@pytest.fixture(scope="module")
def client(sim):
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=10) as oai:
        yield oai


@pytest.fixture(scope="module")
def http(sim):
    with httpx.Client(base_url=sim.url, timeout=10) as plain:
        yield plain


def ask(client, text="Say something", **kwargs):
    return client.chat.completions.create(
        model=kwargs.pop("model", MODEL), messages=[{"role": "user", "content": text}], **kwargs
    )


def words(text: str) -> int:
    return len(text.split())


def png_info(data: bytes) -> tuple[int, int, bytes]:
    """Check the PNG structure and CRCs; return width, height and the raw scanlines."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        payload = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks[kind] = payload
        position += 12 + length
    assert list(chunks)[0] == b"IHDR" and b"IEND" in chunks
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    return width, height, zlib.decompress(chunks[b"IDAT"])


# -- chat completions ------------------------------------------------------------


def test_chat_n_choices_and_usage_add_up(sim, client, http):
    messages = [
        {"role": "system", "content": "You are a terse assistant."},  # 5 words
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe  the\nimage below"},  # 4 words
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "in detail"},  # 2 words
            ],
        },
    ]
    response = client.chat.completions.create(model=MODEL, messages=messages, n=3, temperature=1.3)

    assert response.object == "chat.completion"
    assert response.model == MODEL
    assert response.created == 1_700_000_000
    assert [c.index for c in response.choices] == [0, 1, 2]
    counts = [words(c.message.content) for c in response.choices]
    for choice, count in zip(response.choices, counts):
        assert choice.message.role == "assistant"
        assert choice.finish_reason == "stop"
        assert 3 <= count <= 40
    assert response.usage.prompt_tokens == 11
    assert response.usage.completion_tokens == sum(counts)
    assert response.usage.total_tokens == 11 + sum(counts)
    expected = {
        "in_flight": 0,
        "max_in_flight": 1,
        "requests": 1,
        "by_endpoint": {"chat.completions": 1, "completions": 0, "images.generations": 0},
        "by_status": {"200": 1},
        "choices": 3,
        "prompt_tokens": 11,
        "completion_tokens": sum(counts),
        "faults": {},
        "early_retries": 0,
        "stragglers": 0,
        "rate_limited": 0,
    }
    assert sim.stats() == expected
    assert http.get("/_sim/stats").json() == expected


def test_answers_are_deterministic(client, http):
    first = ask(client, "What is distillation?", n=4)
    second = ask(client, "What is distillation?", n=4)
    contents = [c.message.content for c in first.choices]
    assert contents == [c.message.content for c in second.choices]
    assert len(set(contents)) == 4  # each choice index has its own text
    assert ask(client, "What is distillation?", seed=1).choices[0].message.content != contents[0]
    assert ask(client, "What is distillation?", model="other").choices[0].message.content != contents[0]

    body = {"model": MODEL, "messages": [{"role": "user", "content": "bytes"}], "n": 2}
    raw = [http.post("/v1/chat/completions", json=body) for _ in range(2)]
    assert raw[0].status_code == 200 and raw[0].content == raw[1].content


def test_max_tokens_truncates_words_and_sets_finish_reason(client):
    full = ask(client, "Long answer please", n=3)
    cut = ask(client, "Long answer please", n=3, max_tokens=2)
    for whole, short in zip(full.choices, cut.choices):
        assert words(short.message.content) == 2  # every answer has at least 3 words
        assert short.finish_reason == "length"
        assert whole.message.content.startswith(short.message.content)
    assert cut.usage.completion_tokens == 6

    one = ask(client, "Long answer please", max_completion_tokens=1)
    assert words(one.choices[0].message.content) == 1 and one.choices[0].finish_reason == "length"
    roomy = ask(client, "Long answer please", max_tokens=40)
    assert roomy.choices[0].finish_reason == "stop"
    assert roomy.choices[0].message.content == full.choices[0].message.content


def test_reject_n_and_ignore_n(sim, client):
    sim.configure(reject_n=True)
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, n=2)
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == "Only one completion choice is allowed: n must be 1"
    assert len(ask(client, n=1).choices) == 1

    sim.configure(reject_n=False, ignore_n=True)
    response = ask(client, n=5)
    assert len(response.choices) == 1
    assert response.usage.completion_tokens == words(response.choices[0].message.content)


def test_fault_script_429_500_then_success(sim, client):
    sim.configure(fault_script=[429, 500, "ok"], retry_after=0.25)
    with pytest.raises(openai.RateLimitError) as limited:
        ask(client)
    assert limited.value.response.headers["retry-after"] == "1"
    assert limited.value.response.headers["retry-after-ms"] == "250"
    assert limited.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError):
        ask(client)
    assert len(ask(client).choices) == 1
    stats = sim.stats()
    assert stats["requests"] == 3
    assert stats["by_endpoint"]["chat.completions"] == 3
    assert stats["by_status"] == {"200": 1, "429": 1, "500": 1}
    assert stats["choices"] == 1


def test_retrying_client_gets_through_429_and_503(sim):
    sim.configure(fault_script=[429, 503])
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=2) as retrying:
        started = time.perf_counter()
        assert len(ask(retrying).choices) == 1
        assert time.perf_counter() - started < 2  # honours retry-after-ms (50 ms)
    assert sim.stats()["by_status"] == {"200": 1, "429": 1, "503": 1}


def test_fault_fractions_are_reproducible(sim, http):
    sim.configure(rate_limit_fraction=0.3, server_error_fraction=0.2, fault_seed=7)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}

    def run() -> list[int]:
        return [http.post("/v1/chat/completions", json=body).status_code for _ in range(30)]

    statuses = run()
    draws = random.Random(7)
    expected = []
    for _ in range(30):
        draw = draws.random()
        expected.append(429 if draw < 0.3 else 500 if draw < 0.5 else 200)
    assert statuses == expected
    assert {429, 500, 200} <= set(statuses)
    sim.reset()
    assert run() == statuses
    assert sim.stats()["by_status"] == {str(s): statuses.count(s) for s in (200, 429, 500)}


def test_model_restriction_and_model_list(sim, client, http):
    assert [m.id for m in client.models.list()] == ["distilflow-sim"]
    sim.configure(models=["alpha", "beta"])
    listing = http.get("/v1/models").json()
    assert listing == {
        "object": "list",
        "data": [
            {"id": "alpha", "object": "model", "owned_by": "distilflow-simulator", "created": 0},
            {"id": "beta", "object": "model", "owned_by": "distilflow-simulator", "created": 0},
        ],
    }
    assert ask(client, model="beta").model == "beta"
    with pytest.raises(openai.NotFoundError) as caught:
        ask(client, model="gamma")
    assert caught.value.body == {
        "message": "The model 'gamma' does not exist",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_found",
    }
    assert sim.stats()["requests"] == 2  # /v1/models is not a model request


def test_json_object_mode(client):
    response = ask(client, "Give JSON", n=2, response_format={"type": "json_object"})
    plain = ask(client, "Give JSON", n=2)
    for choice, text_choice in zip(response.choices, plain.choices):
        assert json.loads(choice.message.content) == {"response": text_choice.message.content}
    assert response.usage.completion_tokens == sum(words(c.message.content) for c in response.choices)


SCHEMA = {
    "type": "object",
    "properties": {
        "scores": {
            "type": "array",
            "items": {"type": "integer", "minimum": 1, "maximum": 5},
            "minItems": 3,
            "maxItems": 3,
        },
        "tags": {"type": "array", "items": {"type": "string"}},
        "verdict": {"enum": ["good", "bad"]},
        "ok": {"type": "boolean"},
        "ratio": {"type": "number", "minimum": 0, "maximum": 1},
        "note": {"anyOf": [{"type": "string", "maxLength": 10}, {"type": "null"}]},
        "author": {"$ref": "#/$defs/Person"},
        "kind": {"const": "review"},
    },
    "required": ["scores", "tags", "verdict", "ok", "ratio", "note", "author", "kind"],
    "additionalProperties": False,
    "$defs": {
        "Person": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3},
                "age": {"type": "integer", "minimum": 18, "maximum": 99},
            },
            "required": ["name", "age"],
        }
    },
}


def test_json_schema_mode_respects_the_schema(client):
    response_format = {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA}}
    response = ask(client, "Review it", n=8, response_format=response_format)
    for choice in response.choices:
        document = json.loads(choice.message.content)
        jsonschema.validate(document, SCHEMA)
        assert set(document) == set(SCHEMA["properties"])
        assert len(document["scores"]) == 3 and all(1 <= s <= 5 for s in document["scores"])
        assert 1 <= len(document["tags"]) <= 3 and all(isinstance(t, str) and t for t in document["tags"])
        assert 18 <= document["author"]["age"] <= 99
    assert len({c.message.content for c in response.choices}) > 1
    again = ask(client, "Review it", n=8, response_format=response_format)
    assert [c.message.content for c in again.choices] == [c.message.content for c in response.choices]


def test_structured_output_parse_with_pydantic(client):
    class Review(pydantic.BaseModel):
        title: str
        stars: int = pydantic.Field(ge=1, le=5)
        tags: list[str]
        summary: str | None

    parsed = client.chat.completions.parse(
        model=MODEL, messages=[{"role": "user", "content": "Review"}], response_format=Review
    )
    review = parsed.choices[0].message.parsed
    assert isinstance(review, Review) and 1 <= review.stars <= 5 and review.tags


def test_malformed_empty_and_garbage_faults(sim, client, http):
    sim.configure(fault_script=["malformed", "malformed", "empty", "garbage", "garbage"])
    broken = ask(client, "JSON please", response_format={"type": "json_object"})
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken.choices[0].message.content)
    assert broken.choices[0].message.content.startswith('{"response": ')

    text = ask(client, "text please")
    assert text.choices[0].message.content == "<<malformed>>"
    assert text.usage.completion_tokens == 1

    empty = ask(client, "one two three", n=2)
    assert [c.message.content for c in empty.choices] == ["", ""]
    assert (empty.usage.prompt_tokens, empty.usage.completion_tokens) == (3, 0)

    garbage = http.post("/v1/chat/completions", json={"model": MODEL, "messages": []})
    assert garbage.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbage.json()
    with pytest.raises(ValueError):  # the client cannot decode the body either
        ask(client)
    assert ask(client).choices[0].message.content  # script exhausted: normal again
    assert sim.stats()["by_status"] == {"200": 6}


def test_no_choices_and_reset_faults(sim, client, http):
    sim.configure(fault_script=["no_choices", "no_choices", "reset", "reset"])
    # a JSON completion without choices: the SDK builds it, our client must refuse it
    assert ask(client).choices is None
    images = http.post("/v1/images/generations", json={"prompt": "a cat"})
    assert images.status_code == 200 and "data" not in images.json() and images.json()["created"]
    # a reset: no HTTP answer at all, the client sees a connection error (not a status)
    with pytest.raises(openai.APIConnectionError) as reset:
        ask(client)
    assert not isinstance(reset.value, openai.APITimeoutError)
    with pytest.raises(httpx.TransportError):
        http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert ask(client).choices[0].message.content  # the server is fine afterwards
    stats = sim.stats()
    assert stats["by_status"] == {"200": 3, "444": 2}
    assert stats["faults"] == {"no_choices": 2, "reset": 2}
    assert stats["choices"] == 1


def test_payload_faults_are_counted_whether_scripted_or_drawn(sim, http):
    sim.configure(reset_fraction=0.25, no_choices_fraction=0.25, empty_fraction=0.25, fault_seed=9)
    statuses = []
    for i in range(40):
        try:
            statuses.append(http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": f"q{i}"}]}).status_code)
        except httpx.TransportError:
            statuses.append(444)
    draws = random.Random(9)
    expected = Counter()
    for _ in range(40):
        draw = draws.random()  # fractions in FAULT_FRACTIONS order: the newer ones come last
        expected["empty" if draw < 0.25 else "no_choices" if draw < 0.5 else "reset" if draw < 0.75 else "ok"] += 1
    stats = sim.stats()
    assert stats["faults"] == {k: expected[k] for k in ("empty", "no_choices", "reset")}
    assert statuses.count(444) == expected["reset"] == stats["by_status"]["444"]


def test_early_retries_count_requests_that_ignored_retry_after(sim, http):
    sim.configure(fault_script=[429, 429, 503, 503, 500, 500], retry_after=0.2)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "again"}]}
    assert http.post("/v1/chat/completions", json=body).status_code == 429
    assert http.post("/v1/chat/completions", json=body).status_code == 429  # at once: early
    time.sleep(0.25)
    assert http.post("/v1/chat/completions", json=body).status_code == 503  # waited: fine
    other = {"model": MODEL, "messages": [{"role": "user", "content": "another request"}]}
    assert http.post("/v1/chat/completions", json=other).status_code == 503  # not a repeat
    assert http.post("/v1/chat/completions", json=body).status_code == 500  # early after the 503
    assert http.post("/v1/chat/completions", json=body).status_code == 500  # 500 has no Retry-After
    assert http.post("/v1/chat/completions", json=body).status_code == 200
    assert sim.stats()["early_retries"] == 2

    # the concurrency quota's 429 carries Retry-After too
    sim.reset()
    sim.configure(fault_script=[], max_concurrent_requests=1, latency=0.3)

    def slow() -> None:
        with httpx.Client(base_url=sim.url, timeout=10) as own:
            own.post("/v1/chat/completions", json=other)

    holder = threading.Thread(target=slow)
    holder.start()
    deadline = time.monotonic() + 3
    while sim.stats()["in_flight"] < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert http.post("/v1/chat/completions", json=body).status_code == 429
    assert http.post("/v1/chat/completions", json=body).status_code == 429
    holder.join()
    assert sim.stats()["early_retries"] == 1


def test_refused_prompts_get_context_length_exceeded_every_time(sim, client, http):
    # fault_script shows that a refusal takes no entry; latency shows it is still waited for
    sim.configure(refuse_containing=["FORBIDDEN", "too long"], fault_script=[500], latency=0.1)
    for _ in range(2):  # a property of the prompt: refused again, identically
        started = time.perf_counter()
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, "this prompt is FORBIDDEN here")
        assert time.perf_counter() - started >= 0.1
        assert refused.value.status_code == 400
        assert refused.value.code == "context_length_exceeded"
        assert refused.value.param == "messages"
        assert refused.value.body == {
            "message": "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 133000 tokens. Please reduce the length of the messages.",  # 5 words
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    with pytest.raises(openai.InternalServerError):  # the script entry is still there
        ask(client, "an innocent prompt")
    assert ask(client, "an innocent prompt").choices[0].message.content
    # any message counts, and text parts of part lists too
    parts = [{"role": "system", "content": "be brief"},
             {"role": "user", "content": [{"type": "text", "text": "it is too long, sorry"}]}]
    with pytest.raises(openai.BadRequestError) as in_parts:
        client.chat.completions.create(model=MODEL, messages=parts)
    assert in_parts.value.code == "context_length_exceeded"
    stats = sim.stats()
    assert stats["requests"] == 5
    assert stats["by_endpoint"]["chat.completions"] == 5
    assert stats["by_status"] == {"200": 1, "400": 3, "500": 1}
    assert stats["choices"] == 1


def test_refused_completion_and_image_prompts(sim, client, http):
    sim.configure(refuse_containing=["nsfw"], refusal_status=413, fault_seed=3, server_error_fraction=0.5)
    with pytest.raises(openai.APIStatusError) as completion:
        client.completions.create(model=MODEL, prompt=["fine", "an nsfw prompt"])
    assert completion.value.status_code == 413
    assert completion.value.body["code"] == "context_length_exceeded"
    assert completion.value.body["param"] == "prompt"

    for _ in range(2):
        with pytest.raises(openai.APIStatusError) as image:
            client.images.generate(prompt="something nsfw")
        assert image.value.status_code == 413
        assert image.value.body == {
            "message": "Your request was rejected as a result of our safety system. Your prompt may "
            "contain text that is not allowed by our safety system.",
            "type": "invalid_request_error",
            "param": None,
            "code": "content_policy_violation",
        }
    # refusals drew no random fault: the draws for the seed start with the next request
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    statuses = [http.post("/v1/chat/completions", json=body).status_code for _ in range(10)]
    draws = random.Random(3)
    assert statuses == [500 if draws.random() < 0.5 else 200 for _ in range(10)]
    stats = sim.stats()
    assert stats["by_endpoint"] == {"chat.completions": 10, "completions": 1, "images.generations": 2}
    assert stats["by_status"]["413"] == 3 and stats["requests"] == 13

    sim.configure(refusal_status=400)
    with pytest.raises(openai.BadRequestError) as image:
        client.images.generate(prompt="nsfw again")
    assert image.value.code == "content_policy_violation"


def test_refusal_config_is_validated(sim, http):
    for status in (429, 500, 399, 200):
        with pytest.raises(pydantic.ValidationError):
            SimulatorConfig(refusal_status=status)
        assert http.post("/_sim/config", json={"refusal_status": status}).status_code == 422
    with pytest.raises(pydantic.ValidationError):
        SimulatorConfig(refuse_containing=["ok", ""])
    assert SimulatorConfig(refusal_status=422, refuse_containing=["x"]).refusal_status == 422

    from distilflow.simulator.__main__ import build_parser, main

    args = vars(build_parser().parse_args(["--refuse-containing", "x, too long", "--refusal-status", "413"]))
    assert args == {"host": "127.0.0.1", "port": 8000, "allow_non_loopback": False,
                    "refuse_containing": ["x", "too long"], "refusal_status": 413}
    assert main(["--port", "0", "--refusal-status", "429"]) == 2  # rejected before serving


def test_restart_on_the_same_port():
    first = Simulator(latency=0.0).start()
    port = first.port
    with openai.OpenAI(base_url=first.base_url, api_key="sim", max_retries=0, timeout=5) as oai:
        assert ask(oai).choices[0].message.content
        first.stop()
        with pytest.raises(openai.APIConnectionError):
            ask(oai)
        with Simulator(port=port) as second:
            assert second.base_url == first.base_url
            assert ask(oai).choices[0].message.content
            assert second.stats()["by_status"] == {"200": 1}


def test_timeout_fault_hangs_until_the_client_gives_up(sim):
    sim.configure(fault_script=["timeout"])
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=0, timeout=0.3) as impatient:
        started = time.perf_counter()
        with pytest.raises(openai.APITimeoutError):
            ask(impatient)
        assert time.perf_counter() - started < 2
        assert len(ask(impatient).choices) == 1
    deadline = time.monotonic() + 3
    while sim.stats()["by_status"].get("499") != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.stats()["by_status"] == {"200": 1, "499": 1}


def test_invalid_requests_name_the_field(http):
    def error(body, path="/v1/chat/completions", **kwargs):
        response = http.post(path, **({"content": body} if isinstance(body, bytes) else {"json": body}), **kwargs)
        assert response.status_code == 400
        return response.json()["error"]

    assert error(b"{not json")["code"] == "invalid_json"
    assert error({"model": MODEL})["param"] == "messages"
    assert "'messages'" in error({"model": MODEL})["message"]
    assert error({"messages": [{"role": "user", "content": "x"}]})["param"] == "model"
    assert error({"model": MODEL}, "/v1/completions")["param"] == "prompt"
    streaming = error({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "stream": True})
    assert streaming["message"] == "streaming is not supported by the simulator"
    assert error({"model": MODEL, "messages": [{"role": "user", "content": "x"}], "n": 0})["param"] == "n"
    assert error({"prompt": "cat", "size": "1024x1024"}, "/v1/images/generations")["param"] == "size"
    ok = http.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}], "extra": 1})
    assert ok.status_code == 200  # unknown fields are ignored


# -- completions and images ------------------------------------------------------


def test_text_completions(client):
    response = client.completions.create(model=MODEL, prompt=["one two three", "four five"], n=2)
    assert response.object == "text_completion"
    assert [c.index for c in response.choices] == [0, 1, 2, 3]
    assert all(3 <= words(c.text) <= 40 for c in response.choices)
    assert response.usage.prompt_tokens == 5
    assert response.usage.completion_tokens == sum(words(c.text) for c in response.choices)
    single = client.completions.create(model=MODEL, prompt="four five")
    assert single.choices[0].text == response.choices[2].text
    short = client.completions.create(model=MODEL, prompt="four five", max_tokens=2)
    assert words(short.choices[0].text) == 2 and short.choices[0].finish_reason == "length"


def test_images_b64_and_url(sim, client, http):
    response = client.images.generate(model="img", prompt="a red fox", n=2, size="32x16")
    assert len(response.data) == 2
    pngs = [base64.b64decode(item.b64_json) for item in response.data]
    for png in pngs:
        width, height, scanlines = png_info(png)
        assert (width, height) == (32, 16)
        assert len(scanlines) == 16 * (1 + 32 * 3)
    assert pngs[0] != pngs[1]

    default = client.images.generate(prompt="a red fox")
    assert png_info(base64.b64decode(default.data[0].b64_json))[:2] == (64, 64)

    by_url = client.images.generate(prompt="a red fox", size="32x16", response_format="url")
    assert by_url.data[0].url.startswith(f"{sim.url}/_sim/images/")
    served = http.get(by_url.data[0].url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert served.content == pngs[0]

    with pytest.raises(openai.BadRequestError):
        client.images.generate(prompt="too big", size="1024x1024")
    stats = sim.stats()
    assert stats["by_endpoint"]["images.generations"] == 4
    assert stats["by_status"] == {"200": 3, "400": 1}


# -- admin endpoints and lifecycle -----------------------------------------------


def test_admin_config_and_reset_over_http(sim, client, http):
    assert http.get("/_sim/config").json() == SimulatorConfig().model_dump(exclude={"api_key"})  # never shown
    bad = http.post("/_sim/config", json={"latency": -1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["latency"]
    assert http.post("/_sim/config", json={"no_such_field": 1}).status_code == 422
    assert http.post("/_sim/config", json={"rate_limit_fraction": 0.7, "empty_fraction": 0.7}).status_code == 422

    updated = http.post("/_sim/config", json={"reject_n": True, "fault_script": ["503"]})
    assert updated.status_code == 200 and updated.json()["fault_script"] == [503]
    assert sim.config.reject_n is True
    with pytest.raises(openai.InternalServerError):  # 503 from the script
        ask(client)
    with pytest.raises(openai.BadRequestError):
        ask(client, n=2)
    assert http.get("/_sim/stats").json()["requests"] == 2

    reset = http.post("/_sim/reset")
    assert reset.status_code == 200
    assert http.get("/_sim/stats").json() == {
        "in_flight": 0,
        "max_in_flight": 0,
        "requests": 0,
        "by_endpoint": {"chat.completions": 0, "completions": 0, "images.generations": 0},
        "by_status": {},
        "choices": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "faults": {},
        "early_retries": 0,
        "stragglers": 0,
        "rate_limited": 0,
    }
    with pytest.raises(pydantic.ValidationError):
        sim.configure(timeout_fraction=2)


def test_configure_latency_at_runtime(sim, client):
    sim.configure(latency=0.15)
    started = time.perf_counter()
    ask(client)
    assert time.perf_counter() - started >= 0.15


def test_concurrent_requests_with_latency(sim):
    sim.configure(latency=0.2)

    async def burst() -> list:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sim", max_retries=0) as aclient:
            return await asyncio.gather(*(ask_async(aclient, i) for i in range(500)))

    async def ask_async(aclient, i):
        return await aclient.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": f"question {i}"}]
        )

    started = time.perf_counter()
    responses = asyncio.run(burst())
    elapsed = time.perf_counter() - started
    assert elapsed >= 0.2  # the latency was applied
    assert len(responses) == 500 and all(len(r.choices) == 1 for r in responses)
    assert sim.stats()["requests"] == 500 and sim.stats()["by_status"] == {"200": 500}
    # answered side by side, not one after another (which would take 100 s): what the wall-clock
    # bound this test had meant, without flaking on a loaded machine
    assert sim.stats()["max_in_flight"] >= 50


def sim_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("distilflow-simulator")]


def test_stop_is_fast_with_requests_in_flight():
    before = len(sim_threads())
    started = time.perf_counter()
    simulator = Simulator(fault_script=["timeout"] * 3, hang_seconds=30).start()
    assert time.perf_counter() - started < 1
    answers: list[str] = []

    def call() -> None:
        with openai.OpenAI(base_url=simulator.base_url, api_key="sim", max_retries=0) as oai:
            answers.append(ask(oai).choices[0].message.content)

    callers = [threading.Thread(target=call) for _ in range(3)]
    for caller in callers:
        caller.start()
    deadline = time.monotonic() + 3
    while simulator.stats()["requests"] < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    simulator.stop()
    assert time.perf_counter() - started < 2
    for caller in callers:
        caller.join(5)
    assert len(answers) == 3 and all(answers)  # hangs were cut short, not dropped
    assert len(sim_threads()) == before


async def test_usable_inside_a_running_event_loop():
    async with Simulator(models=["m"]) as simulator:
        async with openai.AsyncOpenAI(base_url=simulator.base_url, api_key="sim", max_retries=0) as aclient:
            response = await aclient.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    assert response.choices[0].message.content


def test_refuses_non_loopback_host():
    with pytest.raises(ValueError):
        Simulator(host="0.0.0.0")


# -- command line ----------------------------------------------------------------


def test_cli_serves_and_exits_on_sigterm():
    env = dict(os.environ)
    command = [sys.executable, "-m", "distilflow.simulator", "--port", "0", "--models", "cli-a,cli-b", "--fault-script", "429,ok"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("distilflow simulator listening on http://127.0.0.1:")
        base_url = line.rsplit(" ", 1)[1]
        assert base_url.endswith("/v1")
        with openai.OpenAI(base_url=base_url, api_key="sim", max_retries=0) as oai:
            with pytest.raises(openai.RateLimitError):
                ask(oai, model="cli-a")
            assert ask(oai, model="cli-b").model == "cli-b"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
        process.stderr.close()

    refused = subprocess.run(
        [sys.executable, "-m", "distilflow.simulator", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=20,
    )
    assert refused.returncode == 2 and "non-loopback" in refused.stderr


def test_api_key_when_set_is_required_like_a_provider():
    import openai

    with Simulator(api_key="sk-right") as sim:
        wrong = openai.OpenAI(base_url=sim.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        right = openai.OpenAI(base_url=sim.base_url, api_key="sk-right", max_retries=0)
        assert right.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]).choices
        assert sim.stats()["by_status"] == {"401": 1, "200": 1}
        assert "sk-right" not in httpx.get(sim.base_url.removesuffix("/v1") + "/_sim/config").text


# -- stragglers and rate-limit budgets -------------------------------------------

# OpenAI's x-ratelimit-reset-* format (Go durations): "120ms", "1s", "8.64s", "6m0s", "1h2m3.5s".
DURATION = re.compile(r"0s|[1-9]\d*ms|(?:[1-9]\d*h)?(?:\d+m)?\d+(?:\.\d{1,3})?s")
RATE_LIMIT_HEADERS = [f"x-ratelimit-{what}-{kind}" for what in ("limit", "remaining", "reset") for kind in ("requests", "tokens")]


def chat_body(text="Say something", **fields):
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **fields}


def test_stragglers_are_the_predicted_requests_and_are_counted(sim):
    seed = 2
    # server_error_fraction shows the straggler draw leaves the seeded fault schedule as it was
    sim.configure(straggler_fraction=0.2, straggler_latency=1.0, fault_seed=seed, server_error_fraction=0.3)
    predicted = [sequence for sequence in range(1, 21) if straggler_unit(seed, sequence) < 0.2]
    assert 0 < len(predicted) < 20
    durations: dict[int, float] = {}
    statuses: dict[int, int] = {}

    def send(sequence: int) -> None:
        with httpx.Client(base_url=sim.url, timeout=10) as own:
            started = time.perf_counter()
            statuses[sequence] = own.post("/v1/chat/completions", json=chat_body()).status_code
            durations[sequence] = time.perf_counter() - started

    # one at a time in arrival order (so request i gets sequence number i), stragglers overlapping
    senders = []
    for sequence in range(1, 21):
        senders.append(threading.Thread(target=send, args=(sequence,)))
        senders[-1].start()
        deadline = time.monotonic() + 3
        while sim.stats()["requests"] < sequence and time.monotonic() < deadline:
            time.sleep(0.001)
    for sender in senders:
        sender.join(10)
    assert [s for s in range(1, 21) if durations[s] >= 1.0] == predicted
    assert all(durations[s] < 0.5 for s in range(1, 21) if s not in predicted)
    assert sim.stats()["stragglers"] == len(predicted)
    draws = random.Random(seed)
    assert [statuses[s] for s in range(1, 21)] == [500 if draws.random() < 0.3 else 200 for _ in range(20)]


def test_latency_per_token_makes_longer_answers_slower(sim, client):
    sim.configure(latency_per_token=0.005)
    started = time.perf_counter()
    long = ask(client, "Long answer please", n=3)
    long_time = time.perf_counter() - started
    started = time.perf_counter()
    short = ask(client, "Long answer please", max_tokens=1)
    short_time = time.perf_counter() - started
    assert long.usage.completion_tokens >= 30 and short.usage.completion_tokens == 1
    assert long_time >= 0.005 * long.usage.completion_tokens
    assert short_time < long_time - 0.1
    assert sim.stats()["stragglers"] == 0


def test_rate_limit_headers_only_with_a_budget_and_counting_down(sim, http):
    plain = http.post("/v1/chat/completions", json=chat_body())
    assert plain.status_code == 200 and not [h for h in plain.headers if h.startswith("x-ratelimit")]

    sim.configure(requests_per_minute=60)
    answers = [http.post("/v1/chat/completions", json=chat_body()) for _ in range(3)]
    for answer, remaining in zip(answers, (59, 58, 57)):
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-limit-requests"] == "60"
        assert answer.headers["x-ratelimit-remaining-requests"] == str(remaining)
        assert DURATION.fullmatch(answer.headers["x-ratelimit-reset-requests"])
        assert "x-ratelimit-limit-tokens" not in answer.headers  # no token budget, no token headers
    assert answers[0].headers["x-ratelimit-reset-requests"] == "1s"  # 1 request back at 60/min

    # a token budget adds its three headers; a change of budget starts it full again
    sim.configure(tokens_per_minute=1000, fault_script=[500, 429])
    failed = http.post("/v1/chat/completions", json=chat_body(max_tokens=5))  # 2 + 5 tokens
    assert failed.status_code == 500  # any answer of an admitted request carries the headers
    assert [h for h in failed.headers if h.startswith("x-ratelimit")] == RATE_LIMIT_HEADERS  # OpenAI's order
    assert failed.headers["x-ratelimit-remaining-requests"] == "59"
    assert failed.headers["x-ratelimit-remaining-tokens"] == "993"
    assert failed.headers["x-ratelimit-reset-tokens"] == "420ms"  # 7 tokens at 1000/min
    fault = http.post("/v1/chat/completions", json=chat_body(max_tokens=5))
    assert fault.status_code == 429 and fault.headers["x-ratelimit-remaining-tokens"] == "986"
    stats = sim.stats()
    assert stats["by_status"]["429"] == 1 and stats["rate_limited"] == 0  # a fault, not the budget


def test_requests_budget_refuses_with_429_and_accepts_again_after_the_reset(sim, http):
    # 3 requests per 1.5 s: one comes back every 0.5 s; the script shows refusals take no entry
    sim.configure(requests_per_minute=3, rate_limit_window=1.5, fault_script=["ok"] * 4 + [500])
    assert [http.post("/v1/chat/completions", json=chat_body()).status_code for _ in range(3)] == [200] * 3
    refused = [http.post("/v1/chat/completions", json=chat_body()) for _ in range(2)]
    for answer in refused:
        assert answer.status_code == 429
        error = answer.json()["error"]
        assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests")
        wait_ms = int(answer.headers["retry-after-ms"])
        assert 0 < wait_ms <= 500 and answer.headers["retry-after"] == "1"
        assert error["message"] == (
            f"Rate limit reached for {MODEL} in organization org-simulator on requests per min (RPM): "
            f"Limit 3, Used 3, Requested 1. Please try again in {wait_ms}ms. "
            "Visit https://platform.openai.com/account/rate-limits to learn more."
        )
        assert answer.headers["x-ratelimit-limit-requests"] == "3"
        assert answer.headers["x-ratelimit-remaining-requests"] == "0"
        assert DURATION.fullmatch(answer.headers["x-ratelimit-reset-requests"])
    # the first refusal consumed nothing: the second is told to wait no longer
    assert int(refused[1].headers["retry-after-ms"]) <= int(refused[0].headers["retry-after-ms"])

    time.sleep(int(refused[1].headers["retry-after-ms"]) / 1000)
    accepted = http.post("/v1/chat/completions", json=chat_body("another question"))
    assert accepted.status_code == 200 and accepted.headers["x-ratelimit-remaining-requests"] == "0"
    time.sleep(0.5)
    assert http.post("/v1/chat/completions", json=chat_body("third")).status_code == 500  # 5th script entry
    stats = sim.stats()
    assert stats["rate_limited"] == 2 and stats["requests"] == 7
    assert stats["by_status"] == {"200": 4, "429": 2, "500": 1}
    assert stats["early_retries"] == 1  # the second refused request repeated the first at once


def test_retrying_client_gets_through_a_requests_budget(sim):
    sim.configure(requests_per_minute=2, rate_limit_window=0.4)  # one request back every 0.2 s
    with openai.OpenAI(base_url=sim.base_url, api_key="sim", max_retries=5) as retrying:
        started = time.perf_counter()
        answers = [ask(retrying, f"question {i}") for i in range(4)]
        assert time.perf_counter() - started < 3
    assert all(answer.choices for answer in answers)
    stats = sim.stats()
    assert stats["by_status"]["200"] == 4 and stats["rate_limited"] == stats["by_status"]["429"] >= 1
    assert stats["early_retries"] == 0  # retry-after-ms was enough to wait


def test_tokens_budget_counts_prompt_plus_max_tokens(sim, http):
    sim.configure(tokens_per_minute=100)  # refills 100 tokens a minute: nothing comes back meanwhile
    five = "one two three four five"
    first = http.post("/v1/chat/completions", json=chat_body(five, max_tokens=50))
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining-tokens"] == "45"
    assert "x-ratelimit-limit-requests" not in first.headers
    refused = http.post("/v1/chat/completions", json=chat_body(five, max_tokens=50))  # 55 > 45
    assert refused.status_code == 429
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "tokens")
    assert "on tokens per min (TPM): Limit 100, Used 55, Requested 55. Please try again in " in error["message"]
    assert refused.headers["retry-after"] == "6"  # 10 tokens short at 100 a minute
    assert refused.headers["x-ratelimit-remaining-tokens"] == "45"
    fits = http.post("/v1/chat/completions", json=chat_body(five, max_tokens=40))  # 45: just fits
    assert fits.status_code == 200 and fits.headers["x-ratelimit-remaining-tokens"] == "0"

    sim.configure(tokens_per_minute=100)  # a new budget starts full
    several = http.post("/v1/chat/completions", json=chat_body(five, n=3, max_tokens=20))  # 5 + 3 * 20
    assert several.headers["x-ratelimit-remaining-tokens"] == "35"
    uncapped = http.post("/v1/chat/completions", json=chat_body(five))  # 5 + the longest answer, 40
    assert uncapped.status_code == 429 and "Requested 45." in uncapped.json()["error"]["message"]
    prompts = http.post("/v1/completions", json={"model": MODEL, "prompt": ["a b", "c"], "max_tokens": 10})
    assert prompts.status_code == 200 and prompts.headers["x-ratelimit-remaining-tokens"] == "12"  # 3 + 2 * 10
    too_large = http.post("/v1/chat/completions", json=chat_body(five, max_tokens=200))
    assert too_large.status_code == 429 and "retry-after" not in too_large.headers  # no wait would help
    assert too_large.json()["error"]["message"].startswith(
        f"Request too large for {MODEL} in organization org-simulator on tokens per min (TPM): Limit 100, Requested 205."
    )
    assert sim.stats()["rate_limited"] == 3


def test_straggler_and_budget_fields_are_validated_and_have_cli_flags(sim, http):
    for bad in ({"straggler_fraction": 1.5}, {"straggler_latency": -1}, {"latency_per_token": -0.1},
                {"requests_per_minute": 0}, {"tokens_per_minute": -5}, {"rate_limit_window": 0}):
        with pytest.raises(pydantic.ValidationError):
            SimulatorConfig(**bad)
        assert http.post("/_sim/config", json=bad).status_code == 422
    # the straggler fraction is its own draw, not part of the fault fractions' total
    assert SimulatorConfig(straggler_fraction=1.0, server_error_fraction=1.0).straggler_fraction == 1.0

    from distilflow.simulator.__main__ import build_parser
    from distilflow.simulator.errors import openai_duration

    flags = ["--straggler-fraction", "0.01", "--straggler-latency", "8", "--latency-per-token", "0.002",
             "--requests-per-minute", "500", "--tokens-per-minute", "90000", "--rate-limit-window", "6"]
    args = vars(build_parser().parse_args(flags))
    assert {k: args[k] for k in args if k not in ("host", "port", "allow_non_loopback")} == {
        "straggler_fraction": 0.01, "straggler_latency": 8.0, "latency_per_token": 0.002,
        "requests_per_minute": 500, "tokens_per_minute": 90000, "rate_limit_window": 6.0,
    }
    assert [openai_duration(s) for s in (0, 0.0004, 0.12, 1, 8.64, 360, 3723.5)] == [
        "0s", "1ms", "120ms", "1s", "8.64s", "6m0s", "1h2m3.5s"
    ]
