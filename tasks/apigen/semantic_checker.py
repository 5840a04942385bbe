"""`APIGenSemanticChecker`: a model judges whether a query's function calls, and their results, do what it asks.

The third stage of APIGen (https://arxiv.org/abs/2406.18518), after the execution check. Arguments,
columns and row shapes follow distilabel 1.5.3's `APIGenSemanticChecker`, so its code runs
unchanged; the prompt is distilflow's own wording, keeping the lines distilabel's tests look for.
"""

from __future__ import annotations

import json
from typing import Any, Union

from distilflow.steps.tasks._json_text import read_json
from distilflow.steps.tasks.base import DISTILABEL_METADATA_KEY, Task
from distilflow.typing import ChatType, FormattedInput, StepColumns

__all__ = ["APIGenSemanticChecker"]

_SYSTEM_PROMPT = """\
You check function-calling data. Other models wrote a user query, the function calls meant to \
answer it, and ran those calls; you decide whether the calls and their results really do what the \
user asked.

The data does not pass when:
1. a call does not serve the query's goal, or its arguments look wrong;
2. a call uses a function that is not among the available ones, or the wrong one of them;
3. there are more or fewer calls than the query needs;
4. the results have nothing to do with what the functions are for;
5. the results show an error, or a call that did not run."""

_USER_TEMPLATE = """\
Given information:
- All Available Functions:
{func_desc}
- User Query: {query}
- Generated Function Calls: {func_call}
- Execution Results: {execution_result}

The query may ask for several things at once. Functions may be stand-ins and results may be cut \
short: neither is a reason to fail the data. Decide mainly on whether the calls carry out what the \
query asks, as the functions are described.
Give your reasoning in "thought" (leave it empty when the data passes) and your decision in \
"passes": "yes" or "no".

Your response MUST strictly adhere to the following JSON format, and NO other text MUST be included.
```
{{
   "thought": "your reasoning, briefly",
   "passes": "yes" or "no"
}}
```
"""

_VERDICTS = {"yes": True, "no": False}


class APIGenSemanticChecker(Task):
    """Judge whether a row's calls (`answers`) and their `execution_result` do what its `query` asks.

    As distilabel's: the model answers `{"thought": ..., "passes": "yes" | "no"}` (asked for in the
    prompt, or enforced with `use_default_structured_output=True`), fenced or not. `format_output`
    returns the row's columns with `thought` and `keep_row_after_semantic_check` (True for "yes",
    False for "no"). An answer that cannot be read gives None for both, as in distilabel, and the
    row is marked as a fallback with the reason in `distilabel_metadata["fallback_reason_<name>"]`.

    Input columns: `func_desc` (str), `query` (str), `answers` (str: JSON list of calls),
    `execution_result` (str or list of str), `keep_row_after_execution_check` (bool).
    Output columns: `keep_row_after_semantic_check` (bool), `thought` (str), `model_name`.
    """

    system_prompt: str = _SYSTEM_PROMPT

    @property
    def inputs(self) -> StepColumns:
        return {"func_desc": True, "query": True, "answers": True, "execution_result": True,
                "keep_row_after_execution_check": True}

    @property
    def outputs(self) -> StepColumns:
        return ["keep_row_after_semantic_check", "thought", "model_name"]

    def format_input(self, input: dict[str, Any]) -> ChatType:
        user = _USER_TEMPLATE.format(
            func_desc=_shown(input.get("func_desc")),
            query=_shown(input.get("query")),
            func_call=_shown(input.get("answers")),
            execution_result=_shown(input.get("execution_result")),
        )
        return [{"role": "system", "content": self.system_prompt}, {"role": "user", "content": user}]

    def get_structured_output(self) -> dict[str, Any]:
        """The JSON schema distilabel asks for: `{"thought": str, "passes": "yes" | "no"}`."""
        return {
            "properties": {
                "thought": {"title": "Thought", "type": "string"},
                "passes": {"enum": ["yes", "no"], "title": "Passes", "type": "string"},
            },
            "required": ["thought", "passes"],
            "title": "Checker",
            "type": "object",
        }

    def _sample_input(self) -> FormattedInput:
        return self.format_input(
            {"func_desc": "<PLACEHOLDER_FUNC_DESC>", "query": "<PLACEHOLDER_QUERY>",
             "answers": "<PLACEHOLDER_ANSWERS>", "execution_result": "<PLACEHOLDER_EXECUTION_RESULT>"}
        )

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """The row's columns with `thought` and `keep_row_after_semantic_check`; see the class docstring."""
        row = {k: v for k, v in (input or {}).items() if k != DISTILABEL_METADATA_KEY}
        return {**row, **self._read(output)[0]}

    def fallback_reason(self, output: Any, input: dict[str, Any], columns: dict[str, Any]) -> Union[str, None]:
        """Why the row has no verdict: no JSON object in the answer, or no "passes" of "yes" or "no" in it."""
        problem = self._read(output)[1]
        return f"UnparsableOutput: {problem}" if problem else None

    def _read(self, output: Union[str, None]) -> tuple[dict[str, Any], str]:
        unread = {"thought": None, "keep_row_after_semantic_check": None}
        if output is None:
            return unread, "the model gave no answer"
        value, error = read_json(output)
        if not isinstance(value, dict):
            return unread, f"the answer is not a JSON object ({error or 'another JSON value'})"
        passes = value.get("passes")
        verdict = passes if isinstance(passes, bool) else _VERDICTS.get(passes.strip().lower()) if isinstance(passes, str) else None
        if verdict is None:
            return unread, f'"passes" is {passes!r:.40}, not "yes" or "no"'
        thought = value.get("thought")
        return {"thought": thought if isinstance(thought, str) or thought is None else json.dumps(thought),
                "keep_row_after_semantic_check": verdict}, ""


def _shown(value: Any) -> str:
    """A column as the prompt shows it: text as it is, lists and dicts as JSON, nothing as empty."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
