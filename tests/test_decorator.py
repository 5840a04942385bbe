"""`@task`: a Task from a function whose docstring holds the prompts."""

from __future__ import annotations

import pickle

import pytest

from distilflow.errors import DistilflowUserError

from distilflow.steps.tasks import Task, task
from distilflow.models import DummyLLM


@task(inputs=["input_field"], outputs=["output_field"])
def MyCustomTask(output, input=None):
    """Answers with a custom prompt.

    ---
    system_prompt: |
        My custom system prompt

    user_message_template: |
        My custom user message template: {input_field}
    ---
    """
    return {"output_field": output.upper()}


def test_decorated_function_becomes_a_task_class():
    assert issubclass(MyCustomTask, Task)
    assert MyCustomTask.__name__ == "MyCustomTask"
    t = MyCustomTask(llm=DummyLLM(model="m", responses=["hi there"], report_statistics=False))
    assert t.name == "my_custom_task_0"
    assert t.get_inputs() == {"input_field": True}
    assert t.get_outputs() == {"output_field": True, "model_name": True}
    rows = next(t.process([{"input_field": "x"}]))
    messages = [
        {"role": "system", "content": "My custom system prompt"},
        {"role": "user", "content": "My custom user message template: x"},
    ]
    assert rows == [
        {
            "input_field": "x",
            "output_field": "HI THERE",
            "model_name": "m",
            "distilabel_metadata": {"raw_output_my_custom_task_0": "hi there", "raw_input_my_custom_task_0": messages},
        }
    ]


def test_decorated_task_pickles_by_reference():
    t = MyCustomTask(llm=DummyLLM(model="m"))
    assert type(pickle.loads(pickle.dumps(t))) is MyCustomTask


def test_empty_system_prompt_sends_only_the_user_message():
    @task(inputs=["a", "b"], outputs=["c"])
    def Two(output, input=None):
        """
        ---
        system_prompt: ""
        user_message_template: "{a} and {b} (literal {{braces}})"
        ---
        """
        return {"c": output}

    assert Two(llm=DummyLLM()).format_input({"a": 1, "b": 2}) == [
        {"role": "user", "content": "1 and 2 (literal {braces})"}
    ]


def _decorate(doc: str | None, inputs=("x",)):
    def fn(output, input=None):
        return {"y": output}

    fn.__doc__ = doc
    return task(inputs=list(inputs), outputs=["y"])(fn)


@pytest.mark.parametrize(
    "doc, message",
    [
        (None, "needs a docstring with a YAML block"),
        ("Just prose, no block.", "no YAML block found"),
        ("---\nsystem_prompt: [unclosed\nuser_message_template: hi\n---", "does not parse"),
        ("---\n- a list\n---", "must be a mapping"),
        ("---\nsystem_prompt: s\n---", r"lacks \['user_message_template'\]"),
        ("---\nuser_message_template: '{x}'\n---", r"lacks \['system_prompt'\]"),
        ("---\nsystem_prompt: s\nuser_message_template: '{x}'\ntemperature: 1\n---", r"unknown key\(s\) \['temperature'\]"),
        ("---\nsystem_prompt: s\nuser_message_template: ''\n---", "must be a non-empty string"),
        ("---\nsystem_prompt: s\nuser_message_template: 'Hi {name}'\n---", r"placeholder\(s\) \['name'\] that are not inputs \['x'\]"),
        ("---\nsystem_prompt: 'You are {persona}'\nuser_message_template: '{x}'\n---", r"system_prompt uses placeholder\(s\) \['persona'\]"),
        ("---\nsystem_prompt: s\nuser_message_template: 'Hi {0}'\n---", "positional placeholder"),
        ("---\nsystem_prompt: s\nuser_message_template: 'Hi {x'\n---", "not a valid format string"),
    ],
)
def test_bad_docstrings_are_rejected_at_decoration_time(doc, message):
    with pytest.raises(DistilflowUserError, match=message):
        _decorate(doc)


def test_inputs_and_outputs_are_required():
    with pytest.raises(DistilflowUserError, match="give both"):
        task(inputs=["x"])(lambda output, input=None: {})
