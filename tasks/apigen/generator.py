"""`APIGenGenerator`: a user query for a function, and the function calls (as JSON) that answer it.

The first stage of APIGen (https://arxiv.org/abs/2406.18518): given a function's name and
description, its tool schema and a few examples of queries with their calls, the model writes a
query and the calls. Arguments, columns and row shapes follow distilabel 1.5.3's
`APIGenGenerator`, so its code runs unchanged; the prompt is distilflow's own wording, keeping the
few sentences distilabel's tests look for.

With `use_default_structured_output=True` each request narrows the JSON schema to its row: the
call names are the row's functions, the arguments follow the tool's JSON schema when the row
has one, and there are exactly as many calls as requests asked for. So even a model that only
fills in a schema (the simulator) makes calls that can be executed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
from typing import Any, Union

from pydantic import field_validator

from distilflow.steps.tasks._json_text import read_json
from distilflow.steps.tasks.base import Task
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, FormattedInput, StepColumns

__all__ = ["APIGenGenerator"]

_SYSTEM_PROMPT = """\
You write training data for function calling: realistic requests a user could make, each paired \
with the exact function calls, in JSON, that carry it out.

Every query you write should:
- read like a real user's request: short and clear;
- be a typical use of the function, some simple, some demanding;
- give a concrete, plausible value for every parameter the calls need (a real-looking date when \
a date is needed; numbers may be written as digits or as words).

Every answer you write should:
- be a JSON list of function calls, one call per request in the query;
- use arguments whose types and ranges fit the function's description;
- carry out everything the query asks, and nothing else."""

# distilabel's tests look for these sentences
_PARALLEL = (
    "It can contain multiple parallel queries in natural language for the given functions. "
    "They could use either the same function with different arguments or different functions.\n"
)
_TOOLS_INTRO = "This is the available tool to guide you (respect the order of the parameters):"
_FORMAT_INTRO = "The output MUST strictly adhere to the following JSON format, and NO other text MUST be included:"

_PAIR_FORMAT = """\
   {
       "query": "The query you wrote.",
       "answers": [
           {"name": "the function's name", "arguments": {"parameter name": value, ...}},
           ... (one call per request in the query)
       ]
   }"""
_LIST_FORMAT = f"```\n[\n{_PAIR_FORMAT}\n]\n```"
_PAIRS_FORMAT = f'```\n{{"pairs": [\n{_PAIR_FORMAT}\n]}}\n```'

#: the arguments of a call when the row has no JSON schema for them (distilabel's default)
_ANY_ARGUMENTS = {"additionalProperties": {"type": "string"}, "title": "Arguments", "type": "object"}


class APIGenGenerator(Task):
    """Write a query that `func_name` answers, and the calls that answer it, as distilabel's `APIGenGenerator`.

    `number` is how many requests the query combines (and so how many calls answer it): an int,
    a list to choose from, or a dict of choices and their weights. The choice for a row is made
    from the row itself, so a re-run asks the same question and finds its answer in the cache.
    With `use_tools`, the row's `tools` (a JSON string, or a list of tool dicts) are shown to the
    model. The model answers `[{"query": ..., "answers": [...]}]`, or, with
    `use_default_structured_output=True`, the object of `get_structured_output()` (its `pairs`
    hold that list); the first pair is read, in either form, fenced or not.

    An answer that cannot be read gives `query` None and `answers` a JSON list of `number`
    nulls, as in distilabel, and the row is marked as a fallback with the reason in
    `distilabel_metadata["fallback_reason_<name>"]`.

    Input columns: `examples` (str), `func_name` (str), `func_desc` (str), `tools` (optional).
    Output columns: `query` (str), `answers` (str: the JSON list of calls
    `[{"name": ..., "arguments": {...}}]`), `model_name`.
    """

    system_prompt: str = _SYSTEM_PROMPT
    number: Union[int, list[int], dict[int, float]] = 1
    use_tools: bool = True

    @field_validator("number")
    @classmethod
    def _positive_choices(cls, value: Any) -> Any:
        choices = value if isinstance(value, (list, dict)) else [value]
        if not choices or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in choices):
            raise DistilflowUserError(
                f"APIGenGenerator: number={value!r} must be a positive int, a non-empty list of them, or a dict of "
                "them to weights, e.g. number=1, number=[1, 2, 3] or number={1: 0.7, 2: 0.3}."
            )
        if isinstance(value, dict) and (any(w < 0 for w in value.values()) or sum(value.values()) <= 0):
            raise DistilflowUserError(
                f"APIGenGenerator: the weights of number={value!r} must be non-negative with a positive sum."
            )
        return value

    @property
    def inputs(self) -> StepColumns:
        return {"examples": True, "func_name": True, "func_desc": True, "tools": False}

    @property
    def outputs(self) -> StepColumns:
        return ["query", "answers", "model_name"]

    # -- the prompt ----------------------------------------------------------------------------

    def number_for(self, input: dict[str, Any]) -> int:
        """How many requests the row's query combines: `number`, or a choice made from the row."""
        if isinstance(self.number, int):
            return self.number
        seed = json.dumps([input.get(c) for c in ("func_name", "func_desc", "examples", "tools")], default=str)
        chooser = random.Random(hashlib.sha256(seed.encode()).digest())
        if isinstance(self.number, list):
            return chooser.choice(self.number)
        return chooser.choices(list(self.number), weights=list(self.number.values()))[0]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        func_name, func_desc, examples = (_text(input, column) for column in ("func_name", "func_desc", "examples"))
        number = self.number_for(input)
        description = func_desc
        if self.use_tools and input.get("tools") is not None:
            description += f"\n\n{_TOOLS_INTRO}\n{_tools_text(input['tools'])}"
        closing = (
            "1 diverse query and the function call that answers it"
            if number == 1
            else f"{number} diverse requests combined in one query, with one function call per request"
        )
        user = (
            f"Here are examples of queries for similar functions, each followed by the calls that answer it:\n"
            f"{examples}\n\n"
            "A query may be read as several independent requests.\n"
            f"{_PARALLEL if number > 1 else ''}"
            f"Write a query for the function `{func_name}`. What it does:\n{description}\n\n"
            f"{_FORMAT_INTRO}\n{_PAIRS_FORMAT if self.use_default_structured_output else _LIST_FORMAT}\n\n"
            f"Now please generate {closing}, following the above format."
        )
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def get_structured_output(self) -> dict[str, Any]:
        """The JSON schema distilabel asks for: `{"pairs": [{"query": str, "answers": [{"name": str, "arguments": {str: str}}]}]}`."""
        return {
            "$defs": {
                "Answer": {
                    "properties": {"name": {"title": "Name", "type": "string"}, "arguments": dict(_ANY_ARGUMENTS)},
                    "required": ["name", "arguments"],
                    "title": "Answer",
                    "type": "object",
                },
                "QueryAnswer": {
                    "properties": {
                        "query": {"title": "Query", "type": "string"},
                        "answers": {"items": {"$ref": "#/$defs/Answer"}, "title": "Answers", "type": "array"},
                    },
                    "required": ["query", "answers"],
                    "title": "QueryAnswer",
                    "type": "object",
                },
            },
            "properties": {"pairs": {"items": {"$ref": "#/$defs/QueryAnswer"}, "title": "Pairs", "type": "array"}},
            "required": ["pairs"],
            "title": "QueryAnswerPairs",
            "type": "object",
        }

    def row_structured_output(self, input: dict[str, Any]) -> Union[dict[str, Any], None]:
        """The default structured output narrowed to the row, when it is in use (see the module docstring)."""
        if not self._default_structured_output_in_use():
            return None
        tools = _tool_schemas(input.get("tools")) if self.use_tools else {}
        names = [input["func_name"], *(name for name in tools if name != input["func_name"])]
        calls = [
            {
                "properties": {
                    "name": {"type": "string", "enum": [name]},
                    "arguments": copy.deepcopy(tools.get(name) or _ANY_ARGUMENTS),
                },
                "required": ["name", "arguments"],
                "type": "object",
            }
            for name in names
        ]
        number = self.number_for(input)
        answers = {"type": "array", "items": calls[0] if len(calls) == 1 else {"anyOf": calls},
                   "minItems": number, "maxItems": number}
        pair = {"properties": {"query": {"type": "string"}, "answers": answers}, "required": ["query", "answers"],
                "type": "object"}
        schema = {"properties": {"pairs": {"type": "array", "items": pair, "minItems": 1, "maxItems": 1}},
                  "required": ["pairs"], "type": "object"}
        return {"format": "json", "schema": schema}

    def _sample_input(self) -> FormattedInput:
        return self._request(
            {"examples": "<PLACEHOLDER_EXAMPLES>", "func_name": "<PLACEHOLDER_FUNC_NAME>",
             "func_desc": "<PLACEHOLDER_FUNC_DESC>"}
        )

    # -- the answer ----------------------------------------------------------------------------

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """`query` and `answers` (the calls as a JSON string) of the answer's first pair; see the class docstring."""
        return self._read(output, input)[0]

    def fallback_reason(self, output: Any, input: dict[str, Any], columns: dict[str, Any]) -> Union[str, None]:
        """Why the row has no query: no JSON in the answer, no pair in it, or a pair without a query and a list of calls."""
        problem = self._read(output, input)[1]
        return f"UnparsableOutput: {problem}" if problem else None

    def _read(self, output: Union[str, None], input: Union[dict[str, Any], None]) -> tuple[dict[str, Any], str]:
        if output is None:
            return self._unread(input), "the model gave no answer"
        value, error = read_json(output)
        if value is None:
            return self._unread(input), f"the answer is not JSON ({error})"
        pairs = value.get("pairs", [value] if "query" in value else None) if isinstance(value, dict) else value
        if not isinstance(pairs, list) or not pairs:
            return self._unread(input), "the JSON holds no list of query and answers pairs"
        pair = pairs[0]
        if not isinstance(pair, dict) or not isinstance(pair.get("query"), str) or not isinstance(pair.get("answers"), list):
            return self._unread(input), f"the first pair is not {{\"query\": <text>, \"answers\": [<calls>]}}: {pair!r:.120}"
        return {"query": pair["query"], "answers": json.dumps(pair["answers"])}, ""

    def _unread(self, input: Union[dict[str, Any], None]) -> dict[str, Any]:
        return {"query": None, "answers": json.dumps([None] * self.number_for(input or {}))}


def _text(input: dict[str, Any], column: str) -> str:
    value = input.get(column)
    if column == "examples" and isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n\n".join(value)
    if not isinstance(value, str):
        raise DistilflowUserError(
            f"column '{column}' must be a string for APIGenGenerator, got {type(value).__name__}: {value!r:.80}"
        )
    return value


def _tools_text(tools: Any) -> str:
    return tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)


def _tool_schemas(tools: Any) -> dict[str, Union[dict[str, Any], None]]:
    """Tool name -> the JSON schema of its arguments (None when the tool gives none), from the row's `tools`.

    Tools are OpenAI's `{"type": "function", "function": {...}}` or the bare `{"name", "description",
    "parameters"}`; parameters that are not a JSON schema object (xLAM's own form) count as none.
    """
    if isinstance(tools, str):
        tools, _ = read_json(tools)
    if isinstance(tools, dict):
        tools = [tools]
    schemas: dict[str, Union[dict[str, Any], None]] = {}
    for tool in tools if isinstance(tools, list) else []:
        tool = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            continue
        parameters = tool.get("parameters")
        is_schema = isinstance(parameters, dict) and parameters.get("type") == "object" and isinstance(
            parameters.get("properties"), dict
        )
        schemas[tool["name"]] = parameters if is_schema else None
    return schemas
