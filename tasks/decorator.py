"""`@task`: a Task class from a formatting function whose docstring holds the prompts.

    @task(inputs=["question"], outputs=["answer"])
    def Answer(output: str | None, input: dict | None = None) -> dict:
        '''
        ---
        system_prompt: You answer briefly.
        user_message_template: "Question: {question}"
        ---
        '''
        return {"answer": output}

Placeholders are Python `str.format` fields and must be declared inputs; every problem with the
docstring is reported when the function is decorated, not when rows arrive.
"""

from __future__ import annotations

import inspect
import re
import string
from typing import Any, Callable, ClassVar, Union

import yaml

from distilflow.steps.tasks.base import Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, StepColumns

__all__ = ["task"]

_YAML_BLOCK = re.compile(r"^---[ \t]*\n(.*?)\n---[ \t]*$", re.DOTALL | re.MULTILINE)
_KEYS = ("system_prompt", "user_message_template")


def task(
    inputs: Union[StepColumns, None] = None, outputs: Union[StepColumns, None] = None
) -> Callable[[Callable[..., dict[str, Any]]], type[Task]]:
    """Build a `Task` subclass named after the decorated function."""

    def decorator(func: Callable[..., dict[str, Any]]) -> type[Task]:
        where = f"@task on {func.__qualname__}"
        if inputs is None or outputs is None:
            raise DistilflowUserError(f"{where}: give both `inputs=[...]` and `outputs=[...]`.")
        declared = list(inputs)
        prompts = _prompts_from_docstring(func, where)
        for key, template in prompts.items():
            unknown = sorted(set(_placeholders(template, key, where)) - set(declared))
            if unknown:
                raise DistilflowUserError(
                    f"{where}: {key} uses placeholder(s) {unknown} that are not inputs {declared}; "
                    "add them to `inputs` or fix the template (write literal braces as {{ and }})."
                )
        system_prompt, user_template = prompts["system_prompt"], prompts["user_message_template"]

        def format_input(self, input: dict[str, Any]) -> ChatType:
            values = {name: input.get(name) for name in declared}
            messages: ChatType = [{"role": "user", "content": user_template.format(**values)}]
            if system_prompt:
                messages.insert(0, {"role": "system", "content": system_prompt.format(**values)})
            return messages

        def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None):
            return func(output, input)

        namespace = {
            "__module__": func.__module__,
            "__qualname__": func.__qualname__,
            "__doc__": func.__doc__,
            "inputs": property(lambda self: inputs),
            "outputs": property(lambda self: outputs),
            "format_input": format_input,
            "format_output": format_output,
            # class-level, so they are part of the class's identity, not per-instance settings
            "__annotations__": {"system_prompt_template": ClassVar[str], "user_message_template": ClassVar[str]},
            "system_prompt_template": system_prompt,
            "user_message_template": user_template,
        }
        return type(func.__name__, (Task,), namespace)

    return decorator


def _prompts_from_docstring(func: Callable, where: str) -> dict[str, str]:
    doc = inspect.getdoc(func)
    if not doc:
        raise DistilflowUserError(
            f"{where}: the function needs a docstring with a YAML block between '---' lines holding "
            "`system_prompt` and `user_message_template`."
        )
    match = _YAML_BLOCK.search(doc)
    if not match:
        raise DistilflowUserError(
            f"{where}: no YAML block found in the docstring; put `system_prompt:` and "
            "`user_message_template:` between two lines that read '---'."
        )
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as e:
        raise DistilflowUserError(f"{where}: the docstring's YAML block does not parse: {e}") from e
    if not isinstance(data, dict):
        raise DistilflowUserError(f"{where}: the docstring's YAML block must be a mapping of keys to prompts.")
    missing = [k for k in _KEYS if k not in data]
    if missing:
        raise DistilflowUserError(f"{where}: the docstring's YAML block lacks {missing}; it needs both {list(_KEYS)}.")
    extra = sorted(set(data) - set(_KEYS))
    if extra:
        raise DistilflowUserError(f"{where}: unknown key(s) {extra} in the docstring's YAML block; allowed: {list(_KEYS)}.")
    for key in _KEYS:
        if not isinstance(data[key], str) or (key == "user_message_template" and not data[key].strip()):
            raise DistilflowUserError(f"{where}: `{key}` must be a non-empty string in the docstring's YAML block.")
    return {k: data[k].strip("\n") if k == "system_prompt" else data[k] for k in _KEYS}


def _placeholders(template: str, key: str, where: str) -> list[str]:
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as e:
        raise DistilflowUserError(f"{where}: {key} is not a valid format string ({e}).") from e
    names = []
    for field in fields:
        name = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not name or name.isdigit():
            raise DistilflowUserError(f"{where}: {key} has a positional placeholder '{{{field}}}'; name it after an input.")
        names.append(name)
    return names
