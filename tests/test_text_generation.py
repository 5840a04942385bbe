"""TextGeneration and ChatGeneration: prompts and validation."""

from __future__ import annotations

import pytest

from tasks import ChatGeneration, DistilflowUserError, TextGeneration
from tasks.models import DummyLLM


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
def test_text_generation_template_errors_at_construction(kwargs, message):
    with pytest.raises(DistilflowUserError, match=message):
        TextGeneration(llm=DummyLLM(), **kwargs)


def test_text_generation_rejects_non_string_columns_before_requests():
    llm = DummyLLM()
    t = TextGeneration(llm=llm)
    with pytest.raises(DistilflowUserError, match=r"row 1: column 'instruction' must be a string .*got int: 5"):
        next(t.process([{"instruction": "ok"}, {"instruction": 5}]))
    assert llm.calls == 0


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
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "last message must be the user's"),
    ],
)
def test_chat_generation_validation(messages, message):
    llm = DummyLLM()
    with pytest.raises(DistilflowUserError, match=message):
        next(ChatGeneration(llm=llm).process([{"messages": messages}]))
    assert llm.calls == 0


def test_unknown_generation_settings_are_rejected_up_front():
    from tasks.models import OpenAILLM

    with pytest.raises(DistilflowUserError, match=r"does not know the generation setting\(s\) \['max_tokens_typo'\]"):
        OpenAILLM(model="m", generation_kwargs={"max_tokens_typo": 3})
    OpenAILLM(model="m", generation_kwargs={"temperature": 0.2, "max_new_tokens": 10})
