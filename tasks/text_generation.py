"""`TextGeneration` and `ChatGeneration`: the basic generation tasks."""

from __future__ import annotations

from typing import Any, Union

import jinja2
import jinja2.meta
from pydantic import Field, PrivateAttr, field_validator

from distilflow.steps.tasks.base import Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, StepColumns

__all__ = ["ChatGeneration", "TextGeneration"]

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class TextGeneration(Task):
    """Generate text from a jinja2 `template` filled with the row's `columns`.

    The default template is `{{ instruction }}` over the `instruction` column, which must hold
    text. Other columns may hold anything the template can render (lists of few-shot examples
    looped over with `{% for %}`, dicts, numbers). A `system_prompt` column in the row wins over
    the `system_prompt` attribute (with `use_system_prompt`, distilabel's deprecated switch, on).
    The template is checked against `columns` in `load()`, as distilabel does.

    Output columns: `generation`, `model_name`.
    """

    system_prompt: Union[str, None] = None
    use_system_prompt: bool = Field(
        default=True, description="distilabel's (deprecated): use the row's `system_prompt` column when it has one."
    )
    template: str = Field(default="{{ instruction }}", description="jinja2 template of the user message")
    columns: Union[str, list[str]] = Field(
        default="instruction", validate_default=True, description="columns the template uses"
    )

    _template: Any = PrivateAttr(default=None)

    @field_validator("columns")
    @classmethod
    def _as_list(cls, value: Union[str, list[str]]) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    def load(self) -> None:
        super().load()
        self._template = _compile(self.template, self.columns, type(self).__name__)

    def unload(self) -> None:
        super().unload()
        self._template = None

    def render_template(self, input: dict[str, Any]) -> str:
        template = self._template
        if template is None:  # not loaded (a notebook's format_input, or after unpickling)
            template = self._template = _compile(self.template, self.columns, type(self).__name__)
        return template.render(input)

    @property
    def inputs(self) -> StepColumns:
        return {**dict.fromkeys(self.columns, True), "system_prompt": False}

    @property
    def outputs(self) -> StepColumns:
        return ["generation", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        for column in self.columns:
            _check_value(column, input.get(column), plain_text=self.columns == ["instruction"])
        messages: ChatType = [{"role": "user", "content": self.render_template(input)}]
        row_prompt = input.get("system_prompt") if self.use_system_prompt else None
        system_prompt = row_prompt or self.system_prompt
        if system_prompt is not None:
            if not isinstance(system_prompt, str):
                raise DistilflowUserError(f"column 'system_prompt' must be a string, got {type(system_prompt).__name__}")
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        return {"generation": output}


def _check_value(column: str, value: Any, *, plain_text: bool) -> None:
    """The default `instruction` column holds text; any column holds a value (None is a data error)."""
    if plain_text and _is_chat(value):
        raise DistilflowUserError(
            f"Providing `{column}` formatted as an OpenAI chat / conversation is deprecated (distilabel) and not "
            "supported; use ChatGeneration with the conversation in a `messages` column instead."
        )
    if value is None or (plain_text and not isinstance(value, str)):
        raise DistilflowUserError(
            f"Input `{column}` must be a string. Got: {str(value)[:80]}. Give every row text there (fix or drop this row)."
            if plain_text
            else f"Input `{column}` is empty (None); give every row a value there (fix or drop this row)."
        )


def _is_chat(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


class ChatGeneration(Task):
    """Continue an OpenAI-format conversation held in the `messages` column.

    The last message must be the user's. Output columns: `generation`, `model_name`.
    """

    @property
    def inputs(self) -> StepColumns:
        return ["messages"]

    @property
    def outputs(self) -> StepColumns:
        return ["generation", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        messages = input.get("messages")
        if not isinstance(messages, list) or not messages:
            raise DistilflowUserError(
                "column 'messages' must be a non-empty list of {'role': ..., 'content': ...} dicts, "
                f"got {messages!r:.80}"
            )
        for i, message in enumerate(messages):
            if not (isinstance(message, dict) and {"role", "content"} <= set(message)):
                raise DistilflowUserError(
                    f"message {i} of column 'messages' must be a dict with 'role' and 'content', got {message!r:.80}"
                )
            if message["role"] not in ("system", "user", "assistant", "tool", "developer"):
                raise DistilflowUserError(f"message {i} has unknown role {message['role']!r}")
        if messages[-1]["role"] != "user":
            raise DistilflowUserError(
                f"The last message must be from the user, got role {messages[-1]['role']!r}; "
                "end the conversation with the user turn to answer."
            )
        return messages

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        return {"generation": output}


class _Template:
    """A compiled template over its columns, rendered once per row.

    `jinja2.Template.render` copies the environment's globals (a ChainMap) into each call's
    context; profiled on a run from the cache, that was half the cost of formatting a row.
    Here they are copied once, and each row's context is built from a plain dict.
    """

    __slots__ = ("columns", "_globals", "_template")

    def __init__(self, template: jinja2.Template, columns: list[str]) -> None:
        self._template, self.columns, self._globals = template, tuple(columns), dict(template.globals)

    def render(self, row: dict[str, Any]) -> str:
        variables = dict(self._globals)
        for column in self.columns:
            variables[column] = row[column]
        template = self._template
        try:
            return template.environment.concat(template.root_render_func(template.new_context(variables, shared=True)))
        except Exception:
            return template.environment.handle_exception()  # jinja's own traceback rewriting, as render does


def _compile(template: str, columns: list[str], owner: str) -> _Template:
    """Compile `template`, checking it uses exactly the declared columns."""
    try:
        used = jinja2.meta.find_undeclared_variables(_jinja.parse(template))
    except jinja2.TemplateSyntaxError as e:
        raise DistilflowUserError(f"{owner}: the template is not valid jinja2 ({e.message}, line {e.lineno}).") from e
    unknown = sorted(used - set(columns))
    if unknown:
        raise DistilflowUserError(
            f"{owner}: the template uses {unknown}, which are not in columns={columns}; "
            "add them to `columns` or fix the template."
        )
    unused = sorted(set(columns) - used)
    if unused:
        raise DistilflowUserError(
            f"{owner}: columns {unused} are not used by the template; remove them from `columns` "
            "or use them as {{ name }} in the template."
        )
    return _Template(_jinja.from_string(template), columns)
