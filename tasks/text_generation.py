"""`TextGeneration` and `ChatGeneration`: the basic generation tasks."""

from __future__ import annotations

from typing import Any, Union

import jinja2
import jinja2.meta
from pydantic import Field, PrivateAttr, field_validator

from tasks.base import Task
from tasks.errors import DistilflowUserError
from tasks.typing import ChatType, StepColumns

__all__ = ["ChatGeneration", "TextGeneration"]

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


class TextGeneration(Task):
    """Generate text from a jinja2 `template` filled with the row's `columns`.

    The default template is `{{ instruction }}` over the `instruction` column. A `system_prompt`
    column in the row wins over the `system_prompt` attribute.

    Output columns: `generation`, `model_name`.
    """

    system_prompt: Union[str, None] = None
    template: str = Field(default="{{ instruction }}", description="jinja2 template of the user message")
    columns: Union[str, list[str]] = Field(
        default="instruction", validate_default=True, description="columns the template uses"
    )

    _template: Any = PrivateAttr(default=None)

    @field_validator("columns")
    @classmethod
    def _as_list(cls, value: Union[str, list[str]]) -> list[str]:
        return [value] if isinstance(value, str) else list(value)

    def model_post_init(self, __context: Any) -> None:
        self._template = _compile(self.template, self.columns, type(self).__name__)
        super().model_post_init(__context)

    def render_template(self, input: dict[str, Any]) -> str:
        if self._template is None:  # after unpickling
            self._template = _compile(self.template, self.columns, type(self).__name__)
        return self._template.render(**{c: input[c] for c in self.columns})

    @property
    def inputs(self) -> StepColumns:
        return {**dict.fromkeys(self.columns, True), "system_prompt": False}

    @property
    def outputs(self) -> StepColumns:
        return ["generation", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        for column in self.columns:
            value = input.get(column)
            if not isinstance(value, str):
                got = "None (an empty value)" if value is None else f"{type(value).__name__}: {value!r:.80}"
                raise DistilflowUserError(
                    f"column '{column}' must be a string for {type(self).__name__}, got {got}; "
                    "give every row text there (fix or drop this row)."
                )
        messages: ChatType = [{"role": "user", "content": self.render_template(input)}]
        system_prompt = input.get("system_prompt", self.system_prompt)
        if system_prompt is not None:
            if not isinstance(system_prompt, str):
                raise DistilflowUserError(f"column 'system_prompt' must be a string, got {type(system_prompt).__name__}")
            messages.insert(0, {"role": "system", "content": system_prompt})
        return messages

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        return {"generation": output}


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
                f"the last message must be the user's, got role {messages[-1]['role']!r}; "
                "end the conversation with the user turn to answer."
            )
        return messages

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        return {"generation": output}


def _compile(template: str, columns: list[str], owner: str) -> jinja2.Template:
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
    return _jinja.from_string(template)
