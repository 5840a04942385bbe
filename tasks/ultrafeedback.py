"""`UltraFeedback`: rate several answers to one instruction on a 1-5 rubric, with rationales."""

from __future__ import annotations

import json
import math
import re
from typing import Any, Literal, Union

import jinja2

from tasks.base import Task
from tasks.errors import DistilflowUserError
from tasks.typing import ChatType, FormattedInput, StepColumns

__all__ = ["UltraFeedback"]

Aspect = Literal["overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness"]

# aspect -> (title, what to judge, meaning of 1..5)
_RUBRICS: dict[str, tuple[str, str, tuple[str, str, str, str, str]]] = {
    "overall-rating": (
        "Overall quality",
        "Judge each text as a whole: is it correct, useful, honest about its limits, and does it do "
        "what the instruction asks?",
        (
            "Poor: wrong, off-topic or unusable.",
            "Weak: some relevant content, but major errors or omissions.",
            "Acceptable: mostly right and on task, with noticeable flaws.",
            "Good: correct and useful, with minor flaws only.",
            "Excellent: correct, complete, clear and fully on task.",
        ),
    ),
    "helpfulness": (
        "Helpfulness",
        "Judge how useful each text is to the person who wrote the instruction: correct and relevant "
        "information, clear reasoning, enough detail, and no padding or repetition.",
        (
            "Not helpful: incorrect or irrelevant, would mislead the reader.",
            "Slightly helpful: partly relevant, but errors or gaps make it hard to use.",
            "Moderately helpful: correct and relevant, but thin or unclear in places.",
            "Very helpful: correct, relevant and informative, with useful detail.",
            "Outstandingly helpful: accurate, thorough and insightful, yet concise.",
        ),
    ),
    "honesty": (
        "Honesty and calibrated confidence",
        "Judge whether each text is honest about what it knows: confident where it is right, open "
        "about uncertainty where it is unsure, and willing to say it cannot answer instead of inventing one.",
        (
            "Confidently wrong: states incorrect content with no sign of doubt.",
            "Mostly wrong, or hides significant mistakes behind confident wording.",
            "Uncertain or hedging where it should be sure, or mildly overconfident on small mistakes.",
            "Correct, with uncertainty expressed where it is warranted, though not precisely placed.",
            "Correct and confident, and precise about any remaining uncertainty.",
        ),
    ),
    "instruction-following": (
        "Instruction following",
        "Judge how closely each text follows the instruction: its task goal and its restrictions "
        "(format, length, style, language, things to include or avoid). Do not judge correctness here.",
        (
            "Ignores the instruction, or answers a different task.",
            "Addresses one part of the task poorly, or breaks most restrictions.",
            "Meets the goal or the restrictions, but neglects the other.",
            "Nearly complete compliance, with small deviations.",
            "Fully complies with the task goal and every restriction.",
        ),
    ),
    "truthfulness": (
        "Truthfulness and hallucination",
        "Judge whether each text stays true to the world and to the instruction: no invented facts, "
        "no details the instruction does not support, no contradictions with itself.",
        (
            "Completely unreliable: mostly fabricated or self-contradictory.",
            "Severe hallucination: major invented or contradictory content.",
            "Partial hallucination: a misunderstanding or invented detail affects the answer.",
            "Insignificant hallucination: small invented details that do not change the main points.",
            "No hallucination: everything stated is supported and consistent.",
        ),
    ),
}

_SYSTEM_PROMPT = (
    "You are a strict and fair judge of answers written by AI assistants. You rate each text "
    "independently against the rubric you are given, and justify every rating briefly."
)

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_USER_TEMPLATE = _jinja.from_string(
    """# {{ title }}

{{ rubric }}

Rate each text from 1 to 5:
{% for meaning in scale %}{{ loop.index }}. {{ meaning }}
{% endfor %}
An empty text means its model gave no answer: rate it 1 and say so.

## Instruction

{{ instruction }}

## Texts to rate
{% for text in texts %}
<text_{{ loop.index }}>
{{ text }}
</text_{{ loop.index }}>
{% endfor %}
## Answer format
{% if structured %}
Reply with a JSON object only: {"ratings": [...], "rationales": [...]}, holding one integer rating \
(1 to 5) and one short rationale per text, in the order of the texts ({{ texts | length }} of each).
{% else %}
For each of the {{ texts | length }} texts, in order, write exactly:

#### Output for Text <number>
Rating: <an integer from 1 to 5>
Rationale: <one or two sentences>
{% endif %}"""
)

_TEXT_BLOCK = re.compile(r"^\s*#{1,6}\s*Output for Text\s+(\d+)\s*$", re.IGNORECASE | re.MULTILINE)
_RATING = re.compile(r"Rating:\s*\**\s*(N/?A|-?\d+(?:\.\d+)?)", re.IGNORECASE)
_RATIONALE = re.compile(r"Rationale:\s*\**\s*(.*)", re.IGNORECASE | re.DOTALL)
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


class UltraFeedback(Task):
    """Rate each of the row's `generations` for its `instruction`, from 1 to 5 on one `aspect`.

    By default the request carries a JSON schema, so the model answers
    `{"ratings": [...], "rationales": [...]}`; with `use_structured_output=False` the prompt asks
    for distilabel's text format (`#### Output for Text 1 / Rating: 4 / Rationale: ...`). Either
    answer is parsed, whatever was asked for.

    A `None` generation is shown to the model as an empty text (so the texts keep their numbers)
    and its rating and rationale are `None`. An answer with the wrong number of ratings or a
    rating outside 1..5 fails formatting, and the row falls back with the reason.

    Input columns: `instruction` (str), `generations` (list of str or None).
    Output columns: `ratings` (list of int or None), `rationales` (list of str or None), `model_name`.
    """

    aspect: Aspect = "overall-rating"
    use_structured_output: bool = True

    @property
    def inputs(self) -> StepColumns:
        return ["instruction", "generations"]

    @property
    def outputs(self) -> StepColumns:
        return ["ratings", "rationales", "model_name"]

    def format_input(self, input: dict[str, Any]) -> FormattedInput:
        instruction, generations = input.get("instruction"), input.get("generations")
        if not isinstance(instruction, str):
            raise DistilflowUserError(
                f"column 'instruction' must be a string for UltraFeedback, got "
                f"{type(instruction).__name__}: {instruction!r:.80}"
            )
        if not isinstance(generations, list) or not generations:
            raise DistilflowUserError(
                "column 'generations' must be a non-empty list of answers (strings, or None for a "
                f"missing answer), got {type(generations).__name__}: {generations!r:.80}"
            )
        for i, generation in enumerate(generations):
            if generation is not None and not isinstance(generation, str):
                raise DistilflowUserError(
                    f"generations[{i}] must be a string or None, got {type(generation).__name__}: {generation!r:.80}"
                )
        title, rubric, scale = _RUBRICS[self.aspect]
        user = _USER_TEMPLATE.render(
            title=title,
            rubric=rubric,
            scale=scale,
            instruction=instruction,
            texts=["" if g is None else g for g in generations],
            structured=self.use_structured_output,
        )
        messages: ChatType = [{"role": "system", "content": _SYSTEM_PROMPT}, {"role": "user", "content": user}]
        if not self.use_structured_output:
            return messages
        return messages, {"format": "json", "schema": _ratings_schema(len(generations))}

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        if not isinstance(output, str):
            raise ValueError(f"expected the judge's text, got {type(output).__name__}")
        ratings, rationales = _parse(output)
        generations = (input or {}).get("generations")
        if isinstance(generations, list):
            if len(ratings) != len(generations):
                raise ValueError(
                    f"expected {len(generations)} ratings (one per generation), got {len(ratings)}"
                )
            if len(rationales) != len(generations):
                raise ValueError(
                    f"expected {len(generations)} rationales (one per generation), got {len(rationales)}"
                )
            # the model was made to rate the empty text; that rating means nothing
            absent = [g is None for g in generations]
        else:
            absent = [False] * len(ratings)
        checked: list[Union[int, None]] = []
        for i, (rating, skip) in enumerate(zip(ratings, absent)):
            if skip:
                checked.append(None)
                continue
            if rating is None:
                raise ValueError(f"text {i + 1} has no rating (null or N/A) although its generation is not empty")
            if not 1 <= rating <= 5:
                raise ValueError(f"rating {rating} for text {i + 1} is outside 1..5")
            checked.append(rating)
        return {
            "ratings": checked,
            "rationales": [None if skip else r for r, skip in zip(rationales, absent)],
        }

    def _sample_input(self) -> FormattedInput:
        return self.format_input(
            {
                "instruction": "<PLACEHOLDER_INSTRUCTION>",
                "generations": ["<PLACEHOLDER_GENERATION_1>", "<PLACEHOLDER_GENERATION_2>"],
            }
        )


def _ratings_schema(n: int) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "ratings": {
                "type": "array",
                "items": {"type": "integer", "minimum": 1, "maximum": 5},
                "minItems": n,
                "maxItems": n,
            },
            "rationales": {"type": "array", "items": {"type": "string"}, "minItems": n, "maxItems": n},
        },
        "required": ["ratings", "rationales"],
        "additionalProperties": False,
    }


def _parse(text: str) -> tuple[list[Union[int, None]], list[str]]:
    """Ratings and rationales from a JSON answer or from distilabel's text format."""
    value, json_error = _json_object(text)
    if value is not None and "ratings" in value:
        return _from_json(value)
    if _TEXT_BLOCK.search(text):
        return _from_text(text)
    if value is not None:
        return _from_json(value)  # raises, naming the keys the object lacks
    raise ValueError(
        f"unparsable judge output ({json_error}); expected a JSON object "
        "{'ratings': [...], 'rationales': [...]} or '#### Output for Text N' blocks"
    )


def _json_object(text: str) -> tuple[Union[dict, None], str]:
    fenced = _FENCED.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        return None, "no JSON object found"
    try:
        value = json.loads(body[start : end + 1])
    except ValueError as e:
        return None, f"invalid JSON: {e}"
    if not isinstance(value, dict):
        return None, "the JSON is not an object"
    return value, ""


def _from_json(value: dict) -> tuple[list[Union[int, None]], list[str]]:
    ratings, rationales = value.get("ratings"), value.get("rationales")
    if not isinstance(ratings, list) or not isinstance(rationales, list):
        raise ValueError(f"the JSON object needs lists 'ratings' and 'rationales', got keys {sorted(value)}")
    for i, rationale in enumerate(rationales):
        if not isinstance(rationale, str):
            raise ValueError(f"rationale {i + 1} is a {type(rationale).__name__}, not a string")
    return [_as_rating(r, i) for i, r in enumerate(ratings)], rationales


def _from_text(text: str) -> tuple[list[Union[int, None]], list[str]]:
    heads = list(_TEXT_BLOCK.finditer(text))
    numbers = [int(h.group(1)) for h in heads]
    if numbers != list(range(1, len(heads) + 1)):
        raise ValueError(f"text blocks are numbered {numbers}, expected 1..{len(heads)} in order")
    ratings: list[Union[int, None]] = []
    rationales: list[str] = []
    for i, head in enumerate(heads):
        block = text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        rating, rationale = _RATING.search(block), _RATIONALE.search(block)
        if rating is None:
            raise ValueError(f"'Output for Text {i + 1}' has no 'Rating:' line")
        if rationale is None:
            raise ValueError(f"'Output for Text {i + 1}' has no 'Rationale:' line")
        ratings.append(_as_rating(rating.group(1), i))
        rationales.append(rationale.group(1).strip())
    return ratings, rationales


def _as_rating(value: Any, index: int) -> Union[int, None]:
    """An integer rating; None for N/A. Out-of-range values are checked by the caller."""
    if isinstance(value, str):
        if value.strip().upper().replace("/", "") == "NA":
            return None
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"rating {index + 1} is not a number: {value!r:.40}") from None
    if value is None:
        return None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not is_number or not math.isfinite(value) or value != int(value):
        raise ValueError(f"rating {index + 1} is not an integer: {value!r:.40}")
    return int(value)
