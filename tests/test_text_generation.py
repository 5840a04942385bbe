"""TextGeneration and ChatGeneration: prompts and validation."""

from __future__ import annotations

import pytest

from distilflow.errors import DistilflowUserError

from distilflow.steps.tasks import ChatGeneration, TextGeneration
from distilflow.models import DummyLLM
from distilflow.runner import run_tasks


def test_text_generation_renders_the_template_and_system_prompt():
    t = TextGeneration(llm=DummyLLM(), system_prompt="Be brief.", template="Q: {{ q }} ({{ lang }})", columns=["q", "lang"])
    assert t.get_inputs() == {"q": True, "lang": True, "system_prompt": False}
    assert t.format_input({"q": "why?", "lang": "en"}) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Q: why? (en)"},
    ]
    # the row's system prompt wins over the attribute
    assert t.format_input({"q": "a", "lang": "b", "system_prompt": "Row."})[0] == {"role": "system", "content": "Row."}


def test_text_generation_rows_match_distilabel():
    t = TextGeneration(name="text-generation", llm=DummyLLM(model="m", responses=["Madrid."], report_statistics=False))
    t.load()
    assert next(t.process([{"instruction": "What's the capital of Spain?"}])) == [
        {
            "instruction": "What's the capital of Spain?",
            "generation": "Madrid.",
            "distilabel_metadata": {
                "raw_output_text-generation": "Madrid.",
                "raw_input_text-generation": [{"role": "user", "content": "What's the capital of Spain?"}],
            },
            "model_name": "m",
        }
    ]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"template": "{{ instruction }} {{ extra }}"}, r"uses \['extra'\], which are not in columns"),
        ({"template": "{{ instruction", "columns": "instruction"}, "not valid jinja2"),
        ({"template": "{{ a }}", "columns": ["a", "b"]}, r"columns \['b'\] are not used by the template"),
    ],
)
def test_text_generation_template_errors_at_load_before_any_request(kwargs, message):
    llm = DummyLLM()
    task = TextGeneration(llm=llm, **kwargs)  # checked at load(), as distilabel does
    with pytest.raises(DistilflowUserError, match=message):
        task.load()
    with pytest.raises(DistilflowUserError, match=message):
        run_tasks(TextGeneration(llm=llm, **kwargs), [{"instruction": "x", "a": "1", "b": "2"}])
    assert llm.calls == 0


def test_text_generation_rejects_non_string_instructions_before_requests():
    llm = DummyLLM()
    t = TextGeneration(llm=llm)
    with pytest.raises(DistilflowUserError, match=r"row 1: Input `instruction` must be a string. Got: 5."):
        next(t.process([{"instruction": "ok"}, {"instruction": 5}]))
    assert llm.calls == 0


def test_custom_columns_may_hold_lists_for_few_shot_templates():
    template = "Write like these:{% for e in examples %}\n- {{ e }}{% endfor %}\nTopic: {{ topic }}"
    task = TextGeneration(llm=DummyLLM(), template=template, columns=["examples", "topic"])
    task.load()
    [row] = next(task.process([{"examples": ["a cat", "a dog"], "topic": "birds"}]))
    assert row["distilabel_metadata"]["raw_input_text_generation_0"] == [
        {"role": "user", "content": "Write like these:\n- a cat\n- a dog\nTopic: birds"}
    ]


def test_use_system_prompt_decides_whether_the_rows_system_prompt_is_used():
    row = {"instruction": "hi", "system_prompt": "from the row"}
    on = TextGeneration(llm=DummyLLM(), system_prompt="from the task")
    off = TextGeneration(llm=DummyLLM(), system_prompt="from the task", use_system_prompt=False)
    assert on.format_input(row)[0] == {"role": "system", "content": "from the row"}
    assert off.format_input(row)[0] == {"role": "system", "content": "from the task"}


def test_chat_generation_passes_the_conversation():
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye?"},
    ]
    t = ChatGeneration(llm=DummyLLM(model="m", responses=["bye"], report_statistics=False), add_raw_input=False)
    assert next(t.process([{"messages": messages}])) == [
        {"messages": messages, "generation": "bye", "model_name": "m", "distilabel_metadata": {"raw_output_chat_generation_0": "bye"}}
    ]


@pytest.mark.parametrize(
    "messages, message",
    [
        ([], "non-empty list"),
        ("hello", "non-empty list"),
        ([{"role": "user"}], "message 0 .* must be a dict with 'role' and 'content'"),
        ([{"role": "robot", "content": "x"}], "unknown role 'robot'"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "The last message must be from the user"),
    ],
)
def test_chat_generation_validation(messages, message):
    llm = DummyLLM()
    with pytest.raises(DistilflowUserError, match=message):
        next(ChatGeneration(llm=llm).process([{"messages": messages}]))
    assert llm.calls == 0


def test_unknown_generation_settings_are_rejected_up_front():
    from distilflow.models import OpenAILLM

    with pytest.raises(DistilflowUserError, match=r"does not know the generation setting\(s\) \['max_tokens_typo'\]"):
        OpenAILLM(model="m", generation_kwargs={"max_tokens_typo": 3})
    OpenAILLM(model="m", generation_kwargs={"temperature": 0.2, "max_new_tokens": 10})
