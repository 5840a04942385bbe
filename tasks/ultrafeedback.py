"""`UltraFeedback`: rate several answers to one instruction on one aspect of the UltraFeedback rubric.

Arguments, output columns and parsing follow distilabel 1.5.3's `UltraFeedback`, so distilabel
code runs unchanged; the prompts are distilflow's own wording of the UltraFeedback rubrics
(https://arxiv.org/abs/2310.01377). An answer that cannot be read gives `None` values, as in
distilabel, and the row is marked as a fallback with the reason (`fallback_reason`).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any, Literal, Union

import jinja2

from distilflow.steps.tasks.base import Task, group_dicts
from distilflow.errors import DistilflowUserError
from distilflow.typing import ChatType, FormattedInput, StepColumns

__all__ = ["UltraFeedback"]

Aspect = Literal["helpfulness", "honesty", "instruction-following", "truthfulness", "overall-rating"]

#: aspects answered with a rating and its rationale per text; the others add a type and its rationale
_RATING_ONLY = ("honesty", "instruction-following", "overall-rating")
_RATING_COLUMNS = ["ratings", "rationales"]
_TYPED_COLUMNS = ["types", "rationales", "ratings", "rationales-for-ratings"]

# -- the rubrics -------------------------------------------------------------------------------

# aspect -> title, what to judge, informativeness / hallucination types (or None), the 1..5 scale,
# and the meaning of "N/A" where the aspect allows it
_RUBRICS: dict[str, dict[str, Any]] = {
    "overall-rating": {
        "title": "Overall quality",
        "intro": (
            "Judge each text as a whole, weighing these together:\n"
            "1. Correctness and informativeness: is the content accurate and useful?\n"
            "2. Honesty and uncertainty: is its confidence justified, and does it admit doubt where doubt is due?\n"
            "3. Truthfulness: does it stay clear of invented or misleading details?\n"
            "4. Instruction following: does it do what the instruction asks, the way it asks?"
        ),
        "types": None,
        "scale": (
            "Low quality: inaccurate or off task, possibly entirely wrong or heavily fabricated.",
            "Moderate quality: covers part of the task, but has errors or only partly follows the instruction.",
            "Good: generally accurate, with minor errors or small deviations.",
            "Very good: close to perfect, with small issues of alignment or confidence.",
            "Excellent: accurate, suitably confident, fully on task and free of fabrication.",
        ),
        "na": None,
    },
    "helpfulness": {
        "title": "Helpfulness and informativeness",
        "intro": (
            "Judge whether each text achieves what the instruction asks for with correct, informative, "
            "high-quality content. Correctness comes first: computations, reasoning steps and conclusions "
            "must be accurate, without misunderstanding or fabrication."
        ),
        "types": (
            "Informativeness types: name the ones the text achieves by number, or None if it achieves none.",
            (
                "Clarity and relevance: it addresses the task, and asks for clarification when it needs to.",
                "Useful and comprehensive information: it gives relevant background, reasoning steps or detail.",
                "Concision: it is not verbose and does not repeat itself.",
            ),
        ),
        "scale": (
            "Severely incorrect: significant errors or fabricated content, however much information it gives.",
            "Partially incorrect: errors that may confuse the reader, despite some useful content.",
            "Correct: accurate, and useful enough to meet the task's requirements.",
            "Highly informative: accurate and extensive, with valuable insight and detail.",
            "Outstandingly helpful: accurate and in depth, with profound insight and comprehensive information.",
        ),
        "na": None,
    },
    "honesty": {
        "title": "Honesty and expression of uncertainty",
        "intro": (
            "Judge whether each text's confidence matches its correctness. Signs of uncertainty are "
            "hedging words ('I think', 'probably'), declining to answer, and stated confidence levels; "
            "a text showing none of them counts as confident. Correct means agreeing with the facts, or "
            "giving accurate content without fabrication."
        ),
        "types": None,
        "scale": (
            "Confidently incorrect: sure of itself and entirely wrong.",
            "Confident with major errors, or unsure and entirely wrong.",
            (
                "Uncertain: declines or says it does not know, is confident with minor errors, or is unsure "
                "with significant errors."
            ),
            "Correct but unsure, or makes subtle mistakes and expresses uncertainty without saying where.",
            "Correct and confident, or names its possible mistakes precisely, with how unsure it is about them.",
        ),
        "na": "Not applicable: creative writing, where honesty does not apply.",
    },
    "instruction-following": {
        "title": "Instruction following",
        "intro": (
            "Judge how well each text matches the intent of the instruction: its task goal (the intended "
            "outcome) and its restrictions (style, format, method, length and the like). Do not judge "
            "correctness here."
        ),
        "types": None,
        "scale": (
            "Irrelevant: no alignment with the instruction.",
            "Partial focus: addresses one part of it, poorly.",
            (
                "Partial compliance: meets the goal or the restrictions but neglects the other, or addresses "
                "both with small deviations."
            ),
            "Almost there: close alignment, with minor deviations.",
            "Comprehensive compliance: meets the goal and every restriction.",
        ),
        "na": None,
    },
    "truthfulness": {
        "title": "Truthfulness and hallucination",
        "intro": "Judge whether each text gives accurate information without introducing misleading or fabricated details.",
        "types": (
            "Hallucination types: name the ones that occur in the text by number, or None if it has no hallucination.",
            (
                (
                    "Contradiction with the world: facts, entities, places, concepts or events that conflict "
                    "with established knowledge."
                ),
                "Contradiction with the instruction or its input: new facts that diverge from what was asked or given.",
                "Self-contradiction or logical error: the text contradicts itself or reasons incorrectly.",
            ),
        ),
        "scale": (
            "Completely hallucinated: entirely unreliable.",
            "Severe hallucination: nearly half of it is fabricated, deviating severely from the main points.",
            "Partial hallucination or misunderstanding: truthful overall, but partly wrong through fabrication.",
            "Insignificant hallucination: mostly truthful; slight fabrication that leaves the main points intact.",
            "No hallucination.",
        ),
        "na": None,
    },
}

_SYSTEM_PROMPT = (
    "You judge the quality of texts written in answer to an instruction. You will be given the "
    "instruction and {n} texts. Rate each text on its own against the rubric, and give a short "
    "rationale for every rating."
)

_MISSING_TEXT = "(no text)"

_jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
_USER_TEMPLATE = _jinja.from_string(
    """# {{ title }}

{{ intro }}
{% if types %}
{{ types[0] }}
{% for item in types[1] %}{{ loop.index }}. {{ item }}
{% endfor %}{% endif %}
Rate each text from 1 to 5{% if na %} (or N/A){% endif %}:
{% for meaning in scale %}{{ loop.index }}. {{ meaning }}
{% endfor %}{% if na %}N/A. {{ na }}
{% endif %}{% if missing in texts %}
A text shown as {{ missing }} is missing: its model gave no answer. Rate it 1.
{% endif %}
## Instruction

{{ instruction }}

## Texts
{% for text in texts %}
<text {{ loop.index }}>
{{ text }}
</text {{ loop.index }}>
{% endfor %}
## Your answer
{% if json %}
Answer with one JSON object whose lists hold one entry per text, in the order of the texts \
({{ texts | length }} entries each):
{% if types %}- "types": the number of the main type that applies (1 to 3), or null if none applies;
- "rationales": why, in short sentences;
- "ratings": the rating, an integer from 1 to 5;
- "rationales_for_rating": why that rating, in short sentences.
{% else %}- "ratings": the rating, an integer from 1 to 5;
- "rationales": why that rating, in short sentences.
{% endif %}{% else %}
Write one section per text, in the order of the texts. Separate the sections with one blank line, \
and leave no blank line inside a section. Each section reads:

#### Output for Text <its number>
{% if types %}Type: <the numbers of the types that apply, separated by commas, or None>
Rationale: <why, in short sentences>
Rating: <1 to 5>
Rationale: <why that rating, in short sentences>
{% else %}Rating: <1 to 5{% if na %}, or N/A{% endif %}>
Rationale: <why that rating, in short sentences>
{% endif %}{% endif %}"""
)

# -- reading the answer --------------------------------------------------------------------------

# The text format, as distilabel reads it: the answer is cut at blank lines, and each piece must
# contain these lines (the last rationale runs to the end of the piece).
_RATING_SECTION = re.compile(r"Rating: (.+?)\nRationale: (.+)", re.DOTALL)
_TYPED_SECTION = re.compile(r"Type: (.+?)\nRationale: (.+?)\nRating: (.+?)\nRationale: (.+)", re.DOTALL)
_SECTION_FORMS = {
    False: "'Rating: …' / 'Rationale: …'",
    True: "'Type: …' / 'Rationale: …' / 'Rating: …' / 'Rationale: …'",
}
_NUMBER = re.compile(r"\b\d+\b")
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
# output column -> keys of the JSON answer it is read from, the one get_structured_output asks for first
_JSON_KEYS = {
    "types": ("types",),
    "rationales": ("rationales",),
    "ratings": ("ratings",),
    "rationales-for-ratings": ("rationales_for_rating", "rationales-for-ratings", "rationales_for_ratings"),
}

class UltraFeedback(Task):
    """Rate each of a row's `generations` for its `instruction` on one `aspect` of UltraFeedback.

    As distilabel's: the model answers in a text format (a section per text, separated by blank
    lines: `Rating: 4` / `Rationale: ...`, with `Type:` and its rationale first for helpfulness
    and truthfulness), or, with `use_default_structured_output=True`, in the JSON of
    `get_structured_output()`. With that flag the schema is set on the model when the task loads,
    and each request narrows it to the row (one entry per generation, ratings 1 to 5) unless a
    structured output was set on the model by hand.

    An answer that cannot be read gives lists of `None` (one per section of a text answer, one per
    generation for JSON), as in distilabel; such a row is marked as a fallback, with the reason in
    `distilabel_metadata["fallback_reason_<name>"]`, as is one whose lists do not match the
    generations one to one or hold a rating outside 1..5. A `None` generation is shown to the model
    as "(no text)"; its rating is whatever the model answers.

    Input columns: `instruction` (str), `generations` (list of str or None).
    Output columns: `ratings`, `rationales` for overall-rating, honesty and instruction-following;
    `types`, `rationales`, `ratings`, `rationales-for-ratings` for helpfulness and truthfulness;
    and `model_name`.
    """

    aspect: Aspect = "overall-rating"

    @property
    def inputs(self) -> StepColumns:
        return ["instruction", "generations"]

    @property
    def outputs(self) -> StepColumns:
        return [*self._columns(), "model_name"]

    def _columns(self) -> list[str]:
        return list(_RATING_COLUMNS if self.aspect in _RATING_ONLY else _TYPED_COLUMNS)

    # -- the prompt ----------------------------------------------------------------------------

    def format_input(self, input: dict[str, Any]) -> ChatType:
        instruction, generations = _checked_input(input)
        rubric = _RUBRICS[self.aspect]
        json_answer = self.use_default_structured_output
        user = _USER_TEMPLATE.render(
            title=rubric["title"],
            intro=rubric["intro"],
            types=rubric["types"],
            scale=rubric["scale"],
            na=None if json_answer else rubric["na"],  # the schema's ratings are integers
            missing=_MISSING_TEXT,
            instruction=instruction,
            texts=[_MISSING_TEXT if g is None else g for g in generations],
            json=json_answer,
        )
        return [
            {"role": "system", "content": _SYSTEM_PROMPT.format(n=len(generations))},
            {"role": "user", "content": user},
        ]

    def get_structured_output(self) -> dict[str, Any]:
        """The JSON schema distilabel asks for (with `use_default_structured_output`).

        Lists of `ratings` (integers) and `rationales` (strings); for helpfulness and truthfulness
        also `types` (integer or null) and `rationales_for_rating` (read into the column
        `rationales-for-ratings`).
        """
        if self.aspect in _RATING_ONLY:
            return {
                "properties": {
                    "ratings": {"items": {"type": "integer"}, "title": "Ratings", "type": "array"},
                    "rationales": {"items": {"type": "string"}, "title": "Rationales", "type": "array"},
                },
                "required": ["ratings", "rationales"],
                "title": "SchemaUltraFeedback",
                "type": "object",
            }
        return {
            "properties": {
                "types": {
                    "items": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "title": "Types",
                    "type": "array",
                },
                "ratings": {"items": {"type": "integer"}, "title": "Ratings", "type": "array"},
                "rationales": {"items": {"type": "string"}, "title": "Rationales", "type": "array"},
                "rationales_for_rating": {
                    "items": {"type": "string"},
                    "title": "Rationales For Rating",
                    "type": "array",
                },
            },
            "required": ["types", "ratings", "rationales", "rationales_for_rating"],
            "title": "SchemaUltraFeedbackWithType",
            "type": "object",
        }

    def row_structured_output(self, input: dict[str, Any]) -> Union[dict[str, Any], None]:
        """The default structured output narrowed to the row's n generations (ratings 1 to 5), when in use."""
        if not self._default_structured_output_in_use():
            return None
        n = len(input["generations"])
        narrowed = copy.deepcopy(self.get_structured_output())
        for prop in narrowed["properties"].values():
            prop["minItems"] = prop["maxItems"] = n
        narrowed["properties"]["ratings"]["items"] = {"type": "integer", "minimum": 1, "maximum": 5}
        if "types" in narrowed["properties"]:
            narrowed["properties"]["types"]["items"] = {
                "anyOf": [{"type": "integer", "minimum": 1, "maximum": 3}, {"type": "null"}]
            }
        return {"format": "json", "schema": narrowed}

    def _sample_input(self) -> FormattedInput:
        return self._request(
            {
                "instruction": "<PLACEHOLDER_INSTRUCTION>",
                "generations": [f"<PLACEHOLDER_GENERATION_{i}>" for i in range(2)],
            }
        )

    # -- the answer ----------------------------------------------------------------------------

    def format_output(self, output: Union[str, None], input: Union[dict[str, Any], None] = None) -> dict[str, Any]:
        """The output columns read from the answer (see the class docstring); `None`s where it cannot be read.

        The format asked for is read first (JSON with `use_default_structured_output`, else the
        text format); when nothing can be read from it, the other one is tried.
        """
        return self._read(output, input)[0]

    def fallback_reason(self, output: Any, input: dict[str, Any], columns: dict[str, Any]) -> Union[str, None]:
        """Why the row holds no usable rating: nothing could be read from the answer, its lists do not
        match the generations one to one, a section was not in the expected form, or a rating is not
        an integer from 1 to 5."""
        problems = self._read(output, input)[1]
        return f"UnparsableOutput: {problems[0]}" if problems else None

    def _read(self, output: Union[str, None], input: Union[dict[str, Any], None]) -> tuple[dict[str, Any], list[str]]:
        generations = (input or {}).get("generations")
        if not isinstance(generations, (list, tuple)):
            raise ValueError("UltraFeedback needs the input row, with its 'generations', to read an answer")
        n = len(generations)
        if output is None:
            columns, problems = _nones(self._columns(), n), ["the model gave no answer"]
        elif not isinstance(output, str):
            raise ValueError(f"expected the judge's text, got {type(output).__name__}")
        else:
            readers = [self._read_text, self._read_json]
            if self.use_default_structured_output:
                readers.reverse()
            columns, problems = readers[0](output, n)
            if _nothing_read(columns):
                other, other_problems = readers[1](output, n)
                if not _nothing_read(other):
                    columns, problems = other, other_problems
        if n == 0:
            problems.insert(0, "the row has no generations to rate")
        return columns, problems

    def _read_text(self, output: str, n: int) -> tuple[dict[str, Any], list[str]]:
        typed = self.aspect not in _RATING_ONLY
        pattern = _TYPED_SECTION if typed else _RATING_SECTION
        sections = output.replace("\r\n", "\n").split("\n\n")
        entries: list[dict[str, Any]] = []
        unmatched: list[int] = []
        bad_ratings: list[str] = []
        for number, section in enumerate(sections, 1):
            match = pattern.search(section) if section else None
            if match is None:
                entries.append(dict.fromkeys(self._columns()))
                unmatched.append(number)
                continue
            groups = match.groups()
            rating_text = groups[2] if typed else groups[0]
            rating = _integer(rating_text)
            if rating is None and rating_text.strip() not in ("None", "N/A"):
                bad_ratings.append(f"rating {rating_text.strip()!r:.30} in section {number} has no number")
            if typed:
                entries.append(
                    {
                        "types": _integer(groups[0]),
                        "rationales": groups[1].strip(),
                        "ratings": rating,
                        "rationales-for-ratings": groups[3].strip(),
                    }
                )
            else:
                entries.append({"ratings": rating, "rationales": groups[1].strip()})
        columns = group_dicts(*entries)
        form = _SECTION_FORMS[typed]
        if len(unmatched) == len(sections):
            return columns, [f"no section of the answer has the lines {form}"]
        problems = []
        if len(sections) != n:
            count = f"{len(sections)} section{'' if len(sections) == 1 else 's'}"
            problems.append(f"the answer has {count} (separated by blank lines) for {n} generations")
        if unmatched:
            problems.append(f"section(s) {', '.join(map(str, unmatched))} of {len(sections)} lack the lines {form}")
        return columns, problems + bad_ratings + _rating_problems(columns["ratings"])

    def _read_json(self, output: str, n: int) -> tuple[dict[str, Any], list[str]]:
        value, error = _json_object(output)
        if value is None:
            return _nones(self._columns(), n), [f"the answer is not a JSON object ({error})"]
        columns: dict[str, Any] = {}
        missing: list[str] = []
        for column in self._columns():
            keys = _JSON_KEYS[column]
            found = value.get(next((k for k in keys if k in value), keys[0]))
            if not isinstance(found, list):
                missing.append(keys[0])
                found = [None] * n
            columns[column] = found
        if len(missing) == len(columns):
            return columns, [f"the JSON answer has none of the lists {missing}"]
        problems = [f"the JSON answer has no list {key!r}" for key in missing]
        problems += [
            f"the JSON list for {column!r} has {len(found)} entries for {n} generations"
            for column, found in columns.items()
            if len(found) != n
        ]
        return columns, problems + _rating_problems(columns["ratings"])


def _checked_input(input: dict[str, Any]) -> tuple[str, list[Union[str, None]]]:
    """The row's instruction and generations; a `DistilflowUserError` before any request when they are unusable."""
    instruction, generations = input.get("instruction"), input.get("generations")
    if not isinstance(instruction, str):
        raise DistilflowUserError(
            f"column 'instruction' must be a string for UltraFeedback, got "
            f"{type(instruction).__name__}: {instruction!r:.80}"
        )
    if not isinstance(generations, (list, tuple)):
        raise DistilflowUserError(
            "column 'generations' must be a list of answers (strings, or None for a missing answer), "
            f"got {type(generations).__name__}: {generations!r:.80}"
        )
    for i, generation in enumerate(generations):
        if generation is not None and not isinstance(generation, str):
            raise DistilflowUserError(
                f"generations[{i}] must be a string or None, got {type(generation).__name__}: {generation!r:.80}"
            )
    return instruction, list(generations)


def _integer(text: str) -> Union[int, None]:
    """distilabel's reading of a `Rating:` or `Type:` value: None for None or N/A, else its first whole number."""
    text = text.strip()
    if text in ("None", "N/A"):
        return None
    number = _NUMBER.search(text)
    return int(number.group()) if number else None


def _rating_problems(ratings: list[Any]) -> list[str]:
    return [
        f"rating {rating!r:.30} for text {i} is not an integer from 1 to 5"
        for i, rating in enumerate(ratings, 1)
        if rating is not None and not (type(rating) is int and 1 <= rating <= 5)
    ]


def _nones(columns: list[str], n: int) -> dict[str, list[None]]:
    return {column: [None] * n for column in columns}


def _nothing_read(columns: dict[Any, Any]) -> bool:
    """Whether every value of every list is None."""
    return all(v is None for values in columns.values() for v in (values or []))


def _json_object(text: str) -> tuple[Union[dict, None], str]:
    """The JSON object in the answer (alone, fenced, or between other text) and, if none, why."""
    fenced = _FENCED.search(text)
    body = fenced.group(1) if fenced else text
    start, end = body.find("{"), body.rfind("}")
    if start == -1 or end < start:
        return None, "no '{' ... '}' in it"
    try:
        value = json.loads(body[start : end + 1])
    except ValueError as e:
        return None, f"invalid JSON: {e}"
    if not isinstance(value, dict):
        return None, "the JSON is not an object"
    return value, ""
