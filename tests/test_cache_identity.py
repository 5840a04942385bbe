"""The step identity in the cache key: what changes it and what must not."""

from __future__ import annotations

import json

from tasks import TextGeneration, UltraFeedback, task
from tasks.models import OpenAILLM
from tasks.runner.cache import digest, step_identity

SECRET = "sk-identity-SECRET-123"


def key(t, version="1"):
    return digest(step_identity(t, version))


def gen(**kwargs):
    llm_kwargs = kwargs.pop("llm", {})
    return TextGeneration(llm=OpenAILLM(**{"model": "m", **llm_kwargs}), **kwargs)


def test_identity_holds_no_secret_and_no_transport_settings():
    identity = step_identity(gen(llm={"api_key": SECRET, "base_url": "http://127.0.0.1:1/v1"}))
    text = json.dumps(identity)
    assert SECRET not in text and "127.0.0.1" not in text and "api_key" not in text
    assert identity["model"]["model_name"] == "m"
    assert identity["settings"]["template"] == "{{ instruction }}"


def test_what_changes_the_answers_changes_the_key():
    base = key(gen())
    assert key(gen(llm={"model": "other"})) != base
    assert key(gen(llm={"generation_kwargs": {"temperature": 0.5}})) != base
    assert key(gen(system_prompt="Be brief.")) != base
    assert key(gen(template="Q: {{ instruction }}")) != base
    assert key(gen(num_generations=2)) != base
    assert key(gen(num_generations=2, group_generations=True)) != key(gen(num_generations=2))
    assert key(gen(name="other_name")) != base
    assert key(gen(), version="2") != base
    assert key(UltraFeedback(llm=OpenAILLM(model="m"))) != key(UltraFeedback(llm=OpenAILLM(model="m"), aspect="honesty"))


def test_transport_and_batching_do_not_change_the_key():
    base = key(gen())
    assert key(gen(llm={"api_key": SECRET})) == base
    assert key(gen(llm={"base_url": "http://127.0.0.1:9/v1", "timeout": 5, "max_retries": 1})) == base
    assert key(gen(llm={"max_concurrent_requests": 3})) == base
    assert key(gen(input_batch_size=7)) == base


def test_decorated_tasks_with_other_prompts_get_other_keys():
    def make(template):
        def fn(output, input=None):
            return {"y": output}

        fn.__doc__ = f"---\nsystem_prompt: s\nuser_message_template: '{template}'\n---"
        return task(inputs=["x"], outputs=["y"])(fn)

    a, b = make("A {x}"), make("B {x}")
    assert key(a(llm=OpenAILLM(model="m"))) != key(b(llm=OpenAILLM(model="m")))


def test_row_digest_is_stable_and_content_based():
    rows = [{"a": 1, "b": [1, 2]}, {"a": 2}]
    assert digest(rows) == digest([{"b": [1, 2], "a": 1}, {"a": 2}])
    assert digest(rows) != digest(rows[::-1])


def test_editing_a_tasks_code_changes_its_key():
    from tasks import Task

    class A(Task):
        inputs = property(lambda self: ["x"])
        outputs = property(lambda self: ["y"])

        def format_input(self, input):
            return [{"role": "user", "content": input["x"]}]

        def format_output(self, output, input=None):
            return {"y": output}

    class B(A):
        def format_output(self, output, input=None):
            return {"y": output.strip()}

    class C(A):
        def format_output(self, output, input=None):
            return {"y": output}

    llm = OpenAILLM(model="m")
    assert key(B(name="t", llm=llm)) != key(C(name="t", llm=llm))
    # the same code in another class body (other line numbers) gives the same digest part
    assert step_identity(C(name="t", llm=llm))["code"] == step_identity(type("D", (A,), {"__module__": __name__, "format_output": C.format_output})(name="t", llm=llm))["code"]
