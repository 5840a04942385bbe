"""OpenAI-compatible clients over real HTTP against the project's simulator."""

from __future__ import annotations

import base64
import logging
import os
import pickle
import struct

import pytest

from distilflow.errors import DistilflowUserError, ModelRequestError

from distilflow.steps.tasks import ImageGeneration, TextGeneration
from distilflow.models import InferenceEndpointsLLM, OpenAIImageGeneration, OpenAILLM

FAST_RETRIES = {"retry_backoff": 0.01, "retry_max_delay": 0.2}


def llm(sim, **kwargs) -> OpenAILLM:
    model = OpenAILLM(model=kwargs.pop("model", "sim-model"), base_url=sim.base_url, **{**FAST_RETRIES, **kwargs})
    model.load()
    return model


CHAT = [{"role": "user", "content": "name three colours of the rainbow"}]


def test_n_is_one_request_and_token_statistics_add_up_to_usage(sim):
    (out,) = llm(sim).generate([CHAT], num_generations=3)
    stats = sim.stats()
    assert stats["requests"] == 1 and stats["choices"] == 3
    assert len(out["generations"]) == 3 and all(out["generations"])
    assert out["statistics"]["input_tokens"] == [6, 6, 6]  # the prompt's words, once per generation
    # each generation's own share, not the request total copied three times
    assert out["statistics"]["output_tokens"] == [len(g.split()) for g in out["generations"]]
    assert sum(out["statistics"]["output_tokens"]) == stats["completion_tokens"]


def test_server_rejecting_n_gets_one_request_per_generation(sim):
    sim.configure(reject_n=True)
    model = llm(sim)
    (out,) = model.generate([CHAT], num_generations=3)
    assert sim.stats()["by_status"] == {"400": 1, "200": 3}
    assert out["statistics"]["output_tokens"] == [len(g.split()) for g in out["generations"]]
    assert sum(out["statistics"]["output_tokens"]) == sim.stats()["completion_tokens"]
    # the refusal is remembered: no second rejected request
    model.generate([CHAT], num_generations=2)
    assert sim.stats()["by_status"] == {"400": 1, "200": 5}


def test_server_ignoring_n_is_topped_up(sim):
    sim.configure(ignore_n=True)
    (out,) = llm(sim).generate([CHAT], num_generations=3)
    assert len(out["generations"]) == 3 and sim.stats()["requests"] == 3


def test_rate_limit_then_success(sim):
    sim.configure(fault_script=[429, 429, "ok"])
    (out,) = llm(sim).generate([CHAT])
    assert out["generations"][0]
    assert sim.stats()["by_status"] == {"429": 2, "200": 1}


def test_500_storm_is_retried_then_reported_as_transient(sim):
    sim.configure(fault_script=[500, 503, 500, "ok"])
    llm(sim).generate([CHAT])
    assert sim.stats()["by_status"] == {"500": 2, "503": 1, "200": 1}

    sim.reset()
    sim.configure(fault_script=[500] * 10)
    with pytest.raises(ModelRequestError) as e:
        llm(sim, max_retries=2).generate([CHAT])
    assert e.value.transient and e.value.status_code == 500
    assert "failed with HTTP 500 after 2 retries" in str(e.value)
    assert sim.stats()["requests"] == 3


def test_400_fails_at_once_with_the_server_message(sim):
    sim.configure(fault_script=[400])
    with pytest.raises(ModelRequestError) as e:
        llm(sim).generate([CHAT])
    assert e.value.status_code == 400 and not e.value.transient
    assert sim.stats()["requests"] == 1
    assert "failed with HTTP 400:" in str(e.value) and sim.base_url in str(e.value)


def test_unknown_model_names_the_model(sim):
    sim.configure(models=["real-model"])
    with pytest.raises(ModelRequestError, match="The model 'typo-model' does not exist") as e:
        llm(sim, model="typo-model").generate([CHAT])
    assert e.value.status_code == 404 and not e.value.transient
    assert sim.stats()["requests"] == 1


def test_timeout_and_garbage_answers_are_retried(sim):
    sim.configure(fault_script=["timeout", "garbage", "ok"])
    (out,) = llm(sim, timeout=0.5).generate([CHAT])
    assert out["generations"][0]
    assert sim.stats()["requests"] == 3


def test_a_server_that_takes_requests_and_answers_none_is_said_while_waited_on(sim, caplog, monkeypatch):
    """A hung server (connections accepted, no answer) is not waited on in silence: a warning says
    which server, how many requests wait and what bounds the wait; an error answer is not silence."""
    from distilflow.models import _server_watch

    monkeypatch.setattr(_server_watch, "OUTAGE_LOG_SECONDS", 0.6)
    monkeypatch.setattr(_server_watch, "SILENCE_CHECK_SECONDS", 0.1)
    sim.configure(fault_script=["timeout", "timeout", "ok"], hang_seconds=5)
    with caplog.at_level(logging.WARNING, logger="distilflow.models"):
        (out,) = llm(sim, timeout=1.0, max_retries=3).generate([CHAT])
    assert out["generations"][0] and sim.stats()["requests"] == 3
    said = [r.getMessage() for r in caplog.records if "has sent no answer for" in r.getMessage()]
    assert said and said[0].startswith(f"the model server at {sim.base_url} has sent no answer for ")
    assert "1 requests wait for one. Each gives up after 1 s (timeout) and is tried again up to 3 times" in said[0]

    # one request hangs 2 s while the other is answered 500 eight times: the server is not silent
    caplog.clear()
    sim.reset()
    sim.configure(fault_script=["timeout"] + [500] * 8 + ["ok"], hang_seconds=2, latency=0.1)
    with caplog.at_level(logging.WARNING, logger="distilflow.models"):
        outs = llm(sim, timeout=5.0, max_retries=10, retry_backoff=0.1, retry_max_delay=0.1).generate([CHAT, CHAT])
    assert all(o["generations"][0] for o in outs) and sim.stats()["requests"] == 10
    assert not [r for r in caplog.records if "has sent no answer" in r.getMessage()]


def test_empty_and_malformed_content_become_fallback_rows(sim):
    sim.configure(fault_script=["empty", "malformed"])
    task = TextGeneration(name="gen", llm=llm(sim), add_raw_input=False)
    rows = next(task.process([{"instruction": "a"}]))
    rows += next(task.process([{"instruction": "b"}]))
    assert rows[0]["generation"] is None
    assert rows[0]["distilabel_metadata"]["fallback_reason_gen"] == "EmptyOutput: the model returned no text"
    # TextGeneration keeps any text; it is the judge tasks that reject malformed answers
    assert rows[1]["generation"] == "<<malformed>>"


def test_a_batch_runs_concurrently_within_the_bound(sim):
    sim.configure(latency=0.2)
    model = llm(sim, max_concurrent_requests=8)
    outputs = model.generate([[{"role": "user", "content": f"q{i}"}] for i in range(20)])
    assert len(outputs) == 20 and sim.stats()["requests"] == 20
    # concurrent (more than one at a time), never beyond the bound
    assert sim.stats()["max_in_flight"] == 8


async def test_generate_inside_a_running_loop(sim):
    (out,) = llm(sim).generate([CHAT])
    assert out["generations"][0]
    out = await llm(sim).agenerate(CHAT, num_generations=2)
    assert len(out["generations"]) == 2


def test_structured_output_request_gets_schema_valid_json(sim):
    schema = {
        "type": "object",
        "properties": {"ratings": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 5}, "minItems": 2, "maxItems": 2}},
        "required": ["ratings"],
    }
    (out,) = llm(sim).generate([(CHAT, {"format": "json", "schema": schema})])
    import json

    ratings = json.loads(out["generations"][0])["ratings"]
    assert len(ratings) == 2 and all(1 <= r <= 5 for r in ratings)


SECRET = "sk-test-SECRET-4242-do-not-leak"


def test_the_key_never_reaches_repr_logs_dumps_or_pickles(sim, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET + "-env")
    explicit = OpenAILLM(model="m", base_url=sim.base_url, api_key=SECRET, **FAST_RETRIES)
    from_env = OpenAILLM(model="m", base_url=sim.base_url, **FAST_RETRIES)
    sim.configure(fault_script=[429, 400])
    with caplog.at_level(logging.DEBUG):
        for model in (explicit, from_env):
            model.load()
            task = TextGeneration(llm=model)
            try:
                next(task.process([{"instruction": "hi"}]))
            except ModelRequestError as e:
                caplog.records.append(logging.makeLogRecord({"msg": str(e)}))
            texts = [repr(model), str(model), repr(task), task.model_dump_json(), str(task.model_dump())]
            blobs = [pickle.dumps(model), pickle.dumps(task)]
            assert not any(SECRET in t for t in texts)
            assert not any(SECRET.encode() in b for b in blobs)
    assert caplog.records, "expected debug logs from the HTTP client"
    assert not any(SECRET in r.getMessage() for r in caplog.records)
    # the key itself is still usable after all that
    assert explicit.api_key.get_secret_value() == SECRET
    clone = pickle.loads(pickle.dumps(explicit))
    assert clone.api_key is None and clone.model == "m"


def test_a_missing_key_for_openai_itself_fails_at_load(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(DistilflowUserError, match="set OPENAI_API_KEY"):
        OpenAILLM(model="gpt-4o-mini").load()


def test_base_url_and_key_come_from_the_environment(sim, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    model = OpenAILLM(model="m")
    model.load()
    assert model.generate([CHAT])[0]["generations"][0]
    assert "OPENAI" not in model.model_dump_json() and model.base_url is None


def test_inference_endpoints_llm_runs_distilabel_code_unchanged(sim, monkeypatch):
    monkeypatch.setenv("HF_INFERENCE_ENDPOINT", sim.base_url)
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    # the seed page's example, with only the import changed
    task = TextGeneration(
        name="text-generation",
        llm=InferenceEndpointsLLM(
            model_id="meta-llama/Meta-Llama-3-70B-Instruct",
            tokenizer_id="meta-llama/Meta-Llama-3-70B-Instruct",
        ),
        num_generations=3,
        group_generations=True,
    )
    task.load()
    (row,) = next(task.process([{"instruction": "What's the capital of Spain?"}]))
    assert row["model_name"] == "meta-llama/Meta-Llama-3-70B-Instruct"
    assert len(row["generation"]) == 3 and len(row["distilabel_metadata"]) == 3
    assert set(row["distilabel_metadata"][0]) == {
        "raw_output_text-generation", "raw_input_text-generation", "statistics_text-generation"
    }
    assert sim.stats()["requests"] == 1


def test_inference_endpoints_llm_needs_a_url_for_a_named_endpoint(monkeypatch):
    monkeypatch.delenv("HF_INFERENCE_ENDPOINT", raising=False)
    with pytest.raises(DistilflowUserError, match="needs the endpoint's URL"):
        InferenceEndpointsLLM(endpoint_name="my-endpoint").load()


def _png_size(b64: str) -> tuple[int, int]:
    data = base64.b64decode(b64)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("response_format", ["b64_json", "url"])
def test_image_generation_returns_base64_either_way(sim, response_format):
    model = OpenAIImageGeneration(model="img", base_url=sim.base_url, generation_kwargs={"response_format": response_format, "size": "32x32"})
    task = ImageGeneration(image_generation_model=model, num_generations=2, add_raw_output=False)
    task.load()
    rows = next(task.process([{"prompt": "a red square"}]))
    assert [r["prompt"] for r in rows] == ["a red square"] * 2
    assert all(_png_size(r["image"]) == (32, 32) for r in rows)
    assert rows[0]["image"] != rows[1]["image"]
    assert sim.stats()["by_endpoint"]["images.generations"] == 1


def test_image_generation_failure_is_a_model_request_error(sim):
    sim.configure(fault_script=[400])
    model = OpenAIImageGeneration(model="img", base_url=sim.base_url)
    model.load()
    with pytest.raises(ModelRequestError, match="image request to .* failed with HTTP 400"):
        model.generate(["x"])


def test_env_is_clean():
    # guard: tests above must not leak their environment changes
    assert os.environ.get("OPENAI_API_KEY") != SECRET + "-env"


def test_an_unpickled_client_works_in_another_process_with_its_own_key(sim, tmp_path):
    import subprocess
    import sys

    model = llm(sim, api_key=SECRET)
    model.load()
    model.generate([CHAT])
    (tmp_path / "client.pkl").write_bytes(pickle.dumps(model))
    code = (
        "import pickle, sys; m = pickle.loads(open(sys.argv[1], 'rb').read()); m.load(); "
        "print(m.generate([[{'role': 'user', 'content': 'hi'}]])[0]['generations'][0] is not None)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "client.pkl")], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "True", done.stderr[-2000:]


def test_rate_limit_headers_pace_requests_before_any_429(sim):
    """The simulator allows 20 requests a (shortened) minute of 1 s and says so in x-ratelimit-*
    headers: a client that reads them waits for the reset instead of being refused."""
    sim.configure(requests_per_minute=20, rate_limit_window=1.0)
    llm = OpenAILLM(model="sim", base_url=sim.base_url, max_concurrent_requests=4, **FAST_RETRIES)
    llm.load()
    outputs = llm.generate([[{"role": "user", "content": f"q {i}"}] for i in range(60)])
    assert all(o["generations"][0] for o in outputs)
    stats = sim.stats()
    # only the first round can be refused: before the first answer, the client knows no budget
    assert stats["rate_limited"] <= 4 and stats["by_status"]["200"] == 60
    assert sum(limits.waits for _, limits in llm._rate_limits.items()) > 0


def test_token_budget_headers_pace_requests_too(sim):
    sim.configure(tokens_per_minute=400, rate_limit_window=1.0)
    llm = OpenAILLM(model="sim", base_url=sim.base_url, max_concurrent_requests=2,
                    generation_kwargs={"max_new_tokens": 40}, **FAST_RETRIES)
    llm.load()
    outputs = llm.generate([[{"role": "user", "content": f"question number {i}"}] for i in range(30)])
    assert all(o["generations"][0] for o in outputs)
    assert sim.stats()["rate_limited"] <= 2 and sim.stats()["by_status"]["200"] == 30


def test_rate_limit_durations_parse_as_openai_writes_them():
    from distilflow.models._rate_limits import parse_duration

    assert [parse_duration(d) for d in ("1s", "6m0s", "120ms", "1h2m3.5s", "0.5", "", "soon")] == [
        1.0, 360.0, 0.12, 3723.5, 0.5, None, None
    ]
