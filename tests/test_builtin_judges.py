"""UltraFeedback, EvolInstruct and TextGenerationWithImage, on the Dummy doubles and the simulator."""

from __future__ import annotations

import base64
import io
import logging
import random
import re
from typing import Any

import pytest
from PIL import Image
from pydantic import Field

from distilflow.steps.tasks.base import EMPTY_OUTPUT_REASON
from distilflow.errors import DistilflowUserError, ModelRequestError
from distilflow.steps.tasks.evol_instruct.base import MUTATION_TEMPLATES, EvolInstruct
from distilflow.models import DummyAsyncLLM, DummyLLM, OpenAILLM
from distilflow.models.testing import tiny_png
from distilflow.steps.tasks.text_generation_with_image import TextGenerationWithImage
from distilflow.steps.tasks.ultrafeedback import UltraFeedback

UF = "ultra_feedback_0"
EVOL = "evol_instruct_0"


def words(messages) -> int:
    """Input tokens as DummyLLM counts them: words of every message."""
    return sum(len(m["content"].split()) for m in messages)


def loaded(task):
    task.load()
    return task


# -- UltraFeedback ---------------------------------------------------------------------------

ROW = {"instruction": "Name a primary colour.", "generations": ["Red.", "Purple, I think."]}
ASPECTS = ("overall-rating", "helpfulness", "honesty", "instruction-following", "truthfulness")
TYPED = ("helpfulness", "truthfulness")


class StructuredDummyLLM(DummyLLM):
    """DummyLLM with the `structured_output` field a structured-output client has; records what it is asked."""

    structured_output: Any = None
    asked: list = Field(default_factory=list)

    def generate(self, inputs, num_generations=1, **kwargs):
        self.asked.extend(inputs)
        return super().generate(inputs, num_generations, **kwargs)


def reason(row):
    return row["distilabel_metadata"].get(f"fallback_reason_{UF}")


def test_ultrafeedback_text_answer_gives_exact_row():
    answer = (
        "#### Output for Text 1\nRating: 5\nRationale: Red is a primary colour.\n\n"
        "#### Output for Text 2\nRating: 2\nRationale: Purple is not,\nand it hedges.\n"
    )
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer])))
    messages = task.format_input(ROW)
    assert [m["role"] for m in messages] == ["system", "user"]  # a plain chat: no structured output by default
    assert "Name a primary colour." in messages[1]["content"] and "#### Output for Text" in messages[1]["content"]

    assert next(task.process([ROW])) == [
        {
            **ROW,
            "ratings": [5, 2],
            "rationales": ["Red is a primary colour.", "Purple is not,\nand it hedges."],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{UF}": answer,
                f"raw_input_{UF}": messages,
                f"statistics_{UF}": {"input_tokens": words(messages), "output_tokens": len(answer.split())},
            },
        }
    ]


@pytest.mark.parametrize("aspect", ASPECTS)
def test_ultrafeedback_outputs_by_aspect(aspect):
    task = UltraFeedback(llm=DummyLLM(), aspect=aspect)
    columns = ["types", "rationales", "ratings", "rationales-for-ratings"] if aspect in TYPED else ["ratings", "rationales"]
    assert task.outputs == [*columns, "model_name"]
    assert list(task.get_outputs()) == [*columns, "model_name"]
    assert task.use_default_structured_output is False


def test_ultrafeedback_default_aspect_and_no_own_structured_output_argument():
    assert UltraFeedback(llm=DummyLLM()).aspect == "overall-rating"
    with pytest.raises(DistilflowUserError, match="use_structured_output"):
        UltraFeedback(llm=DummyLLM(), use_structured_output=False)  # distilflow's old argument: gone
    with pytest.raises(DistilflowUserError, match="aspect"):
        UltraFeedback(llm=DummyLLM(), aspect="kindness")


@pytest.mark.parametrize("aspect", ASPECTS)
def test_each_aspect_has_its_own_rubric(aspect):
    prompts = {a: UltraFeedback(llm=DummyLLM(), aspect=a).format_input(ROW)[1]["content"] for a in ASPECTS}
    assert sum(p == prompts[aspect] for p in prompts.values()) == 1
    assert all(f"{score}. " in prompts[aspect] for score in range(1, 6))
    assert ("Type: " in prompts[aspect]) == (aspect in TYPED)
    assert ("N/A" in prompts[aspect]) == (aspect == "honesty")


def test_ultrafeedback_typed_aspect_text_answer():
    answer = (
        "#### Output for Text 1\nType: 1, 2\nRationale: Clear.\nRating: 4\nRationale: Correct.\n\n"
        "#### Output for Text 2\nType: None\nRationale: Unclear.\nRating: N/A\nRationale: Hedges."
    )
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer]), aspect="helpfulness"))
    [row] = next(task.process([ROW]))
    assert reason(row) is None
    assert list(row)[:6] == ["instruction", "generations", "types", "rationales", "ratings", "rationales-for-ratings"]
    # as distilabel: the first type number only, None for "None" / "N/A"
    assert {k: row[k] for k in task.get_outputs()} == {
        "types": [1, None],
        "rationales": ["Clear.", "Unclear."],
        "ratings": [4, None],
        "rationales-for-ratings": ["Correct.", "Hedges."],
        "model_name": "dummy-llm",
    }


def test_ultrafeedback_rating_only_aspect_reads_the_rating_lines_of_a_typed_answer():
    # distilabel's own test: a simple aspect finds "Rating: ...\nRationale: ..." inside longer sections
    answer = "Type: 1\nRationale: t\nRating: 1\nRationale: r1\n\nType: 2\nRationale: t\nRating: 2\nRationale: r2"
    task = loaded(UltraFeedback(llm=DummyLLM(), aspect="instruction-following"))
    assert task.format_output(answer, ROW) == {"ratings": [1, 2], "rationales": ["r1", "r2"]}
    assert task.fallback_reason(answer, ROW, task.format_output(answer, ROW)) is None


def test_ultrafeedback_honesty_not_applicable_is_a_result_not_a_fallback():
    answer = "Rating: N/A\nRationale: A poem.\n\nRating: N/A\nRationale: Also a poem."
    [row] = next(loaded(UltraFeedback(llm=DummyLLM(responses=[answer]), aspect="honesty")).process([ROW]))
    assert (row["ratings"], row["rationales"], reason(row)) == ([None, None], ["A poem.", "Also a poem."], None)


@pytest.mark.parametrize("aspect", ASPECTS)
def test_get_structured_output_is_distilabels_schema(aspect):
    schema = UltraFeedback(llm=DummyLLM(), aspect=aspect).get_structured_output()
    if aspect in TYPED:
        assert schema["title"] == "SchemaUltraFeedbackWithType"
        assert schema["required"] == ["types", "ratings", "rationales", "rationales_for_rating"]
        assert schema["properties"]["types"]["items"] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    else:
        assert schema == {
            "properties": {
                "ratings": {"items": {"type": "integer"}, "title": "Ratings", "type": "array"},
                "rationales": {"items": {"type": "string"}, "title": "Rationales", "type": "array"},
            },
            "required": ["ratings", "rationales"],
            "title": "SchemaUltraFeedback",
            "type": "object",
        }


@pytest.mark.parametrize(
    "aspect, answer, expected",
    [
        (
            "overall-rating",
            '{"ratings": [5, 2], "rationales": ["Correct.", "Purple is secondary."]}',
            {"ratings": [5, 2], "rationales": ["Correct.", "Purple is secondary."]},
        ),
        (
            "truthfulness",  # the schema's key rationales_for_rating fills the column rationales-for-ratings
            (
                '{"types": [null, 1], "ratings": [5, 2], "rationales": ["None.", "Wrong."], '
                '"rationales_for_rating": ["Correct.", "Secondary."]}'
            ),
            {"types": [None, 1], "rationales": ["None.", "Wrong."], "ratings": [5, 2],
             "rationales-for-ratings": ["Correct.", "Secondary."]},
        ),
    ],
)
def test_use_default_structured_output_sets_the_schema_and_reads_json(aspect, answer, expected):
    llm = StructuredDummyLLM(responses=[answer])
    task = UltraFeedback(llm=llm, aspect=aspect, use_default_structured_output=True)
    assert llm.structured_output is None
    task.load()
    schema = task.get_structured_output()
    assert llm.structured_output == {"format": "json", "schema": schema}

    [row] = next(task.process([ROW]))
    assert reason(row) is None
    assert {k: row[k] for k in task.get_outputs() if k != "model_name"} == expected
    assert list(row)[2 : 2 + len(expected)] == list(expected)  # columns in distilabel's order
    # each request narrows the schema to the row: one entry per generation, ratings 1..5
    [(chat, structured)] = llm.asked
    assert row["distilabel_metadata"][f"raw_input_{UF}"] == chat
    assert "JSON object" in chat[1]["content"] and "#### Output for Text" not in chat[1]["content"]
    narrowed = structured["schema"]
    assert narrowed["required"] == schema["required"]
    for name, prop in narrowed["properties"].items():
        assert (prop["minItems"], prop["maxItems"]) == (2, 2), name
    assert narrowed["properties"]["ratings"]["items"] == {"type": "integer", "minimum": 1, "maximum": 5}


def test_a_structured_output_set_by_hand_wins():
    own = {"format": "json", "schema": {"type": "object", "properties": {"ratings": {"type": "array"}}}}
    llm = StructuredDummyLLM(responses=['{"ratings": [3, 3], "rationales": ["a", "b"]}'], structured_output=own)
    task = loaded(UltraFeedback(llm=llm, use_default_structured_output=True))
    assert llm.structured_output == own
    [row] = next(task.process([ROW]))
    assert isinstance(llm.asked[0], list)  # no per-row schema over the user's one
    assert (row["ratings"], reason(row)) == ([3, 3], None)


def test_use_default_structured_output_needs_a_client_that_supports_it():
    with pytest.raises(DistilflowUserError, match="cannot be asked for structured output"):
        UltraFeedback(llm=DummyLLM(), use_default_structured_output=True).load()


def test_ultrafeedback_reads_the_other_format_when_the_asked_one_gives_nothing():
    text_task = loaded(UltraFeedback(llm=DummyLLM()))
    fenced = 'Here you go:\n```json\n{"ratings": [4, 1], "rationales": ["ok", "wrong"]}\n```'
    assert text_task.format_output(fenced, ROW) == {"ratings": [4, 1], "rationales": ["ok", "wrong"]}
    json_task = loaded(UltraFeedback(llm=StructuredDummyLLM(), use_default_structured_output=True))
    text = "Rating: 4\nRationale: ok\n\nRating: 1\nRationale: wrong"
    assert json_task.format_output(text, ROW) == {"ratings": [4, 1], "rationales": ["ok", "wrong"]}


@pytest.mark.parametrize(
    "structured, aspect, answer, columns, problem",
    [
        # nothing readable: distilabel's None lists (one per section of a text answer, per generation for JSON)
        (False, "overall-rating", "I liked both.", {"ratings": [None], "rationales": [None]},
         "no section of the answer has the lines 'Rating: …' / 'Rationale: …'"),
        (True, "honesty", "{ \n   random\n}", {"ratings": [None, None], "rationales": [None, None]},
         "the answer is not a JSON object (invalid JSON"),
        (True, "helpfulness", '{"ratings": [4, ',
         {"types": [None, None], "rationales": [None, None], "ratings": [None, None], "rationales-for-ratings": [None, None]},
         "the answer is not a JSON object"),
        # lists that do not match the generations one to one
        (False, "overall-rating", "Here are my ratings:\n\nRating: 4\nRationale: ok\n\nRating: 1\nRationale: no",
         {"ratings": [None, 4, 1], "rationales": [None, "ok", "no"]},
         "the answer has 3 sections (separated by blank lines) for 2 generations"),
        (False, "overall-rating", "#### Output for Text 1\nRating: 4\nRationale: ok\n",
         {"ratings": [4], "rationales": ["ok"]}, "the answer has 1 section (separated by blank lines) for 2 generations"),
        (False, "overall-rating", "Rating: 4\nRationale: ok\n\nRating 1: bad",
         {"ratings": [4, None], "rationales": ["ok", None]},
         "section(s) 2 of 2 lack the lines 'Rating: …' / 'Rationale: …'"),
        (True, "overall-rating", '{"ratings": [4], "rationales": ["ok", "no"]}',
         {"ratings": [4], "rationales": ["ok", "no"]}, "the JSON list for 'ratings' has 1 entries for 2 generations"),
        (True, "truthfulness", '{"ratings": [4, 2], "rationales": ["ok", "no"]}',
         {"types": [None, None], "rationales": ["ok", "no"], "ratings": [4, 2], "rationales-for-ratings": [None, None]},
         "the JSON answer has no list 'types'"),
        # ratings that are not ratings
        (False, "overall-rating", "Rating: 4\nRationale: ok\n\nRating: 7\nRationale: great",
         {"ratings": [4, 7], "rationales": ["ok", "great"]}, "rating 7 for text 2 is not an integer from 1 to 5"),
        (False, "overall-rating", "Rating: 4\nRationale: ok\n\nRating: great\nRationale: very",
         {"ratings": [4, None], "rationales": ["ok", "very"]}, "rating 'great' in section 2 has no number"),
        (True, "overall-rating", '{"ratings": [4, 2.5], "rationales": ["a", "b"]}',
         {"ratings": [4, 2.5], "rationales": ["a", "b"]}, "rating 2.5 for text 2 is not an integer from 1 to 5"),
    ],
)
def test_ultrafeedback_unreadable_answer_gives_distilabels_columns_and_a_fallback_reason(
    structured, aspect, answer, columns, problem, caplog
):
    llm = StructuredDummyLLM(responses=[answer]) if structured else DummyLLM(responses=[answer])
    task = loaded(UltraFeedback(llm=llm, aspect=aspect, use_default_structured_output=structured))
    assert task.format_output(answer, ROW) == columns
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        [row] = next(task.process([ROW]))
    metadata = row.pop("distilabel_metadata")
    assert row == {**ROW, **columns, "model_name": "dummy-llm"}  # the row is what format_output made of it
    assert metadata[f"raw_output_{UF}"] == answer
    assert metadata[f"fallback_reason_{UF}"].startswith(f"UnparsableOutput: {problem}")


def test_ultrafeedback_format_output_of_no_answer_and_fallback_reason_on_its_own():
    task = loaded(UltraFeedback(llm=DummyLLM(), aspect="truthfulness"))
    nones = {c: [None, None] for c in ("types", "rationales", "ratings", "rationales-for-ratings")}
    assert task.format_output(None, ROW) == nones  # distilabel's answer to a missing output
    assert task.fallback_reason(None, ROW, nones) == "UnparsableOutput: the model gave no answer"
    typed = "Type: 1\nRationale: t\nRating: 3\nRationale: ok\n\nType: 2\nRationale: t\nRating: 4\nRationale: fine"
    assert task.fallback_reason(typed, ROW, task.format_output(typed, ROW)) is None
    with pytest.raises(ValueError, match="needs the input row"):
        task.format_output("Rating: 3\nRationale: ok")


def test_ultrafeedback_empty_answer_is_the_frameworks_fallback():
    [row] = next(loaded(UltraFeedback(llm=DummyLLM(responses=["  "]))).process([ROW]))
    assert (row["ratings"], row["rationales"], reason(row)) == (None, None, EMPTY_OUTPUT_REASON)


def test_ultrafeedback_none_generation_is_shown_as_missing_and_rated_by_the_model():
    row = {"instruction": "Say hi.", "generations": ["Hi!", None, "Hello."]}
    answer = "Rating: 5\nRationale: Good.\n\nRating: 1\nRationale: No answer.\n\nRating: 4\nRationale: Fine."
    task = loaded(UltraFeedback(llm=DummyLLM(responses=[answer])))
    user = task.format_input(row)[1]["content"]
    assert "<text 2>\n(no text)\n</text 2>" in user and "is missing" in user
    assert "is missing" not in task.format_input(ROW)[1]["content"]

    [out] = next(task.process([row]))
    assert (out["ratings"], out["rationales"], reason(out)) == ([5, 1, 4], ["Good.", "No answer.", "Fine."], None)


def test_ultrafeedback_row_without_generations_is_sent_and_marked():
    # distilabel accepts an empty list; the answer cannot rate anything, and the row says so
    row = {"instruction": "q", "generations": []}
    [out] = next(loaded(UltraFeedback(llm=DummyLLM(responses=["Nothing to rate."]))).process([row]))
    assert reason(out) == "UnparsableOutput: the row has no generations to rate"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"instruction": 3, "generations": ["a"]}, "column 'instruction' must be a string"),
        ({"instruction": None, "generations": ["a"]}, "column 'instruction' must be a string"),
        ({"instruction": "q", "generations": "a"}, "column 'generations' must be a list"),
        ({"instruction": "q", "generations": None}, "column 'generations' must be a list"),
        ({"instruction": "q", "generations": ["a", 7]}, "generations[1] must be a string or None"),
    ],
)
def test_ultrafeedback_rejects_bad_rows_before_any_request(row, message):
    llm = DummyLLM()
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(loaded(UltraFeedback(llm=llm)).process([row]))
    assert llm.calls == 0


def test_ultrafeedback_print_renders_the_prompt(capsys):
    task = loaded(UltraFeedback(llm=DummyLLM()))
    task.print()
    out = capsys.readouterr().out
    assert "<PLACEHOLDER_INSTRUCTION>" in out and "<PLACEHOLDER_GENERATION_1>" in out
    task.print(task.format_input(ROW))
    assert "Name a primary colour." in capsys.readouterr().out
    json_task = loaded(UltraFeedback(llm=StructuredDummyLLM(), use_default_structured_output=True))
    json_task.print()
    assert "structured output: json" in capsys.readouterr().out


@pytest.mark.parametrize("aspect", ["overall-rating", "truthfulness"])
def test_ultrafeedback_against_the_simulator_over_http(aspect):
    from distilflow.simulator import Simulator

    row = {"instruction": "Explain rain.", "generations": ["Water falls.", "Clouds cry.", None]}
    with Simulator() as sim:
        rows = {}
        for structured in (True, False):
            task = loaded(UltraFeedback(llm=OpenAILLM(model="sim", base_url=sim.base_url), aspect=aspect,
                                        use_default_structured_output=structured))
            try:
                [rows[structured]] = next(task.process([row]))
            finally:
                task.unload()
    # the simulator answers the (narrowed) schema with schema-shaped JSON: one entry per generation
    out = rows[True]
    assert reason(out) is None, out["distilabel_metadata"]
    assert len(out["ratings"]) == 3 and all(type(r) is int and 1 <= r <= 5 for r in out["ratings"])
    assert len(out["rationales"]) == 3 and all(isinstance(r, str) for r in out["rationales"])
    if aspect in TYPED:
        assert len(out["types"]) == 3 and len(out["rationales-for-ratings"]) == 3
    assert out["model_name"] == "sim"
    # without it, its deterministic sentence is not the text format: distilabel's None list, marked
    out = rows[False]
    assert out["ratings"] == [None] and reason(out).startswith("UnparsableOutput: no section of the answer")


# -- EvolInstruct ----------------------------------------------------------------------------

_GIVEN = re.compile(r"#Given Prompt#:\n(.*?)\n\n#", re.DOTALL)


def evolver(messages, _index):
    """Round prompts get the given instruction with a '+' appended; anything else is answered."""
    content = messages[0]["content"]
    given = _GIVEN.search(content)
    return f"{given.group(1)}+" if given else f"answer to {content}"


def mutation(original: str, current: str, round: int):
    name = random.Random(f"42:{original}:{round}").choice(list(MUTATION_TEMPLATES))
    return [{"role": "user", "content": MUTATION_TEMPLATES[name].replace("<PROMPT>", current)}]


def asked(instruction: str):
    return [{"role": "user", "content": instruction}]


def statistics(prompts, answers):
    return {
        "input_tokens": [words(p) for p in prompts],
        "output_tokens": [len(a.split()) if a else 0 for a in answers],
    }


def test_evol_instruct_template_names_are_distilabels():
    assert list(MUTATION_TEMPLATES) == [
        "CONSTRAINTS", "DEEPENING", "CONCRETIZING", "INCREASED_REASONING_STEPS", "BREADTH",
    ]
    assert all("<PROMPT>" in template for template in MUTATION_TEMPLATES.values())


def test_evol_instruct_two_rounds_keeps_the_last():
    llm = DummyLLM(responses=evolver)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2))
    prompts = [mutation("Add 2 and 2.", "Add 2 and 2.", 0), mutation("Add 2 and 2.", "Add 2 and 2.+", 1)]
    assert task.format_input({"instruction": "Add 2 and 2."}) == prompts[0]
    assert task.get_outputs() == {"evolved_instruction": True, "model_name": True}

    # distilabel's row: statistics of the rounds, no raw inputs or outputs
    assert next(task.process([{"instruction": "Add 2 and 2."}])) == [
        {
            "instruction": "Add 2 and 2.",
            "evolved_instruction": "Add 2 and 2.++",
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"statistics_instruction_{EVOL}": statistics(prompts, ["Add 2 and 2.+", "Add 2 and 2.++"]),
            },
        }
    ]
    assert llm.calls == 2


def test_evol_instruct_keeps_what_follows_the_prompt_label():
    """As distilabel: the text after the last 'Prompt#:' the model echoed, stripped."""
    llm = DummyLLM(responses=lambda messages, _i: f"#Rewritten Prompt#:\n  {evolver(messages, _i)}  \n")
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2, store_evolutions=True))
    (row,) = next(task.process([{"instruction": "q"}]))
    assert row["evolved_instructions"] == ["q+", "q++"]


def test_evol_instruct_store_evolutions_with_the_original():
    llm = DummyLLM(responses=evolver)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2, store_evolutions=True, include_original_instruction=True))
    (row,) = next(task.process([{"instruction": "q"}]))
    assert row["evolved_instructions"] == ["q", "q+", "q++"]
    prompts = [mutation("q", "q", 0), mutation("q", "q+", 1)]
    assert row["distilabel_metadata"] == {f"statistics_instruction_{EVOL}": statistics(prompts, ["q+", "q++"])}


@pytest.mark.parametrize("model", [DummyLLM, DummyAsyncLLM])
@pytest.mark.parametrize("include_original", [False, True])
def test_evol_instruct_store_evolutions_with_answers(include_original, model):
    """Every instruction shown is answered, the original too when it is shown, one to one and in order."""
    llm = model(responses=evolver)
    task = loaded(
        EvolInstruct(
            llm=llm,
            num_evolutions=2,
            store_evolutions=True,
            generate_answers=True,
            include_original_instruction=include_original,
        )
    )
    assert task.get_outputs() == {"evolved_instructions": True, "answers": True, "model_name": True}

    rows = next(task.process([{"instruction": "q"}, {"instruction": "r"}, {"instruction": "q"}]))
    for row in rows:
        x = row["instruction"]
        shown = ([x] if include_original else []) + [f"{x}+", f"{x}++"]
        answers = [f"answer to {i}" for i in shown]
        assert row == {
            "instruction": x,
            "evolved_instructions": shown,
            "answers": answers,
            "model_name": llm.model_name,
            "distilabel_metadata": {
                f"statistics_answer_{EVOL}": statistics([asked(i) for i in shown], answers),
            },
        }
    assert llm.calls == (3 if model is DummyLLM else 3 * 2 + 3 * len(shown))  # async: one call per request


@pytest.mark.parametrize("include_original", [False, True])
def test_evol_instruct_answer_to_the_last_instruction(include_original):
    llm = DummyLLM(responses=evolver)
    task = loaded(
        EvolInstruct(llm=llm, num_evolutions=2, generate_answers=True, include_original_instruction=include_original)
    )
    assert task.get_outputs() == {"evolved_instruction": True, "answer": True, "model_name": True}
    rows = next(task.process([{"instruction": "a"}, {"instruction": "b"}]))
    assert [(r["evolved_instruction"], r["answer"]) for r in rows] == [("a++", "answer to a++"), ("b++", "answer to b++")]
    # distilabel's row: statistics of the answer only
    assert rows[0]["distilabel_metadata"] == {
        f"statistics_answer_{EVOL}": statistics([asked("a++")], ["answer to a++"])
    }
    assert llm.calls == 3


def test_evol_instruct_keeps_upstream_metadata():
    task = loaded(EvolInstruct(llm=DummyLLM(responses=evolver), num_evolutions=1))
    (row,) = next(task.process([{"instruction": "q", "distilabel_metadata": {"raw_output_before": "x"}}]))
    assert row["distilabel_metadata"]["raw_output_before"] == "x"
    assert f"statistics_instruction_{EVOL}" in row["distilabel_metadata"]


def test_evol_instruct_is_the_same_whatever_the_batch():
    rows = [{"instruction": f"Task number {i}: explain topic {i * 7}."} for i in range(12)]

    def run(batch_size):
        task = EvolInstruct(llm=DummyLLM(), num_evolutions=3, store_evolutions=True, input_batch_size=batch_size)
        loaded(task)
        return [row for batch in task.process(rows) for row in batch], task

    (one_by_one, task_1), (by_ten, task_10) = run(1), run(10)
    assert one_by_one == by_ten
    assert (task_1.llm.calls, task_10.llm.calls) == (36, 6)
    first_templates = {task_1.format_input(row)[0]["content"][:60] for row in rows}
    assert len(first_templates) > 1  # templates vary across rows


def test_evol_instruct_empty_round_falls_back_and_stops(caplog):
    def responses(messages, index):
        answer = evolver(messages, index)
        return "  " if answer == "bad+" else (None if answer == "worse++" else answer)

    llm = DummyLLM(responses=responses)
    task = loaded(EvolInstruct(llm=llm, num_evolutions=2, generate_answers=True))
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        good, bad, worse = next(task.process([{"instruction": i} for i in ("good", "bad", "worse")]))

    assert (good["evolved_instruction"], good["answer"]) == ("good++", "answer to good++")
    assert list(good["distilabel_metadata"]) == [f"statistics_answer_{EVOL}"]
    for row, raw in ((bad, ["  "]), (worse, ["worse+", None])):
        metadata = row.pop("distilabel_metadata")
        expected = {"evolved_instruction": None, "answer": None, "model_name": "dummy-llm"}
        assert row == {"instruction": row["instruction"], **expected}
        # a fallback row keeps every request it made
        assert metadata[f"raw_output_{EVOL}"] == raw
        assert len(metadata[f"raw_input_{EVOL}"]) == len(raw)
        assert len(metadata[f"statistics_instruction_{EVOL}"]["output_tokens"]) == len(raw)
        assert f"statistics_answer_{EVOL}" not in metadata
        assert metadata[f"fallback_reason_{EVOL}"] == EMPTY_OUTPUT_REASON
    assert llm.calls == 3
    assert sum("evolution round" in r.getMessage() for r in caplog.records) == 2


def test_evol_instruct_empty_answer_falls_back():
    def responses(messages, index):
        answer = evolver(messages, index)
        return "" if answer == "answer to q" else answer

    task = loaded(
        EvolInstruct(
            llm=DummyLLM(responses=responses), num_evolutions=1, store_evolutions=True,
            generate_answers=True, include_original_instruction=True,
        )
    )
    (row,) = next(task.process([{"instruction": "q"}]))
    assert (row["evolved_instructions"], row["answers"]) == (None, None)
    metadata = row["distilabel_metadata"]
    assert metadata[f"raw_output_{EVOL}"] == ["q+", "", "answer to q+"]
    assert metadata[f"raw_input_{EVOL}"] == [mutation("q", "q", 0), asked("q"), asked("q+")]
    assert len(metadata[f"statistics_answer_{EVOL}"]["input_tokens"]) == 2
    assert metadata[f"fallback_reason_{EVOL}"] == EMPTY_OUTPUT_REASON


def test_evol_instruct_failed_request_ends_its_row_only():
    def responses(messages, index):
        if "refuse me+" in messages[0]["content"]:
            raise ModelRequestError("bad", status_code=400, code="context_length_exceeded", server_message="too long")
        return evolver(messages, index)

    task = loaded(EvolInstruct(llm=DummyAsyncLLM(responses=responses), num_evolutions=3, generate_answers=True))
    good, refused = next(task.process([{"instruction": "fine"}, {"instruction": "refuse me"}]))
    assert (good["evolved_instruction"], good["answer"]) == ("fine+++", "answer to fine+++")
    assert (refused["evolved_instruction"], refused["answer"]) == (None, None)
    metadata = refused["distilabel_metadata"]
    assert metadata[f"error_{EVOL}"] == {"status_code": 400, "code": "context_length_exceeded", "message": "too long"}
    assert f"fallback_reason_{EVOL}" not in metadata
    # round 1 answered, round 2 refused, nothing asked after
    assert metadata[f"raw_output_{EVOL}"] == ["refuse me+", None]
    assert metadata[f"raw_input_{EVOL}"] == [mutation("refuse me", "refuse me", 0), mutation("refuse me", "refuse me+", 1)]
    assert metadata[f"statistics_instruction_{EVOL}"] == statistics([mutation("refuse me", "refuse me", 0)], ["refuse me+"])


def test_evol_instruct_rejects_bad_settings():
    with pytest.raises(DistilflowUserError, match="num_evolutions"):
        EvolInstruct(llm=DummyLLM())  # required, as in distilabel
    with pytest.raises(DistilflowUserError, match="num_generations must be 1"):
        EvolInstruct(llm=DummyLLM(), num_evolutions=1, num_generations=2)
    with pytest.raises(DistilflowUserError, match="<PROMPT>"):
        EvolInstruct(llm=DummyLLM(), num_evolutions=1, mutation_templates={"PLAIN": "Make it harder."})
    with pytest.raises(DistilflowUserError, match="column 'instruction' must be a string"):
        next(loaded(EvolInstruct(llm=DummyLLM(), num_evolutions=1)).process([{"instruction": None}]))


def test_evol_instruct_print(capsys):
    loaded(EvolInstruct(llm=DummyLLM(), num_evolutions=1)).print()
    assert "<PLACEHOLDER_INSTRUCTION>" in capsys.readouterr().out


# -- TextGenerationWithImage -----------------------------------------------------------------

PNG = tiny_png("x")


def image_part(messages):
    return messages[-1]["content"][1]["image_url"]["url"]


def test_image_url_is_sent_as_is_with_the_rendered_text():
    task = TextGenerationWithImage(llm=DummyLLM(), system_prompt="Be brief.", template="Describe: {{ instruction }}")
    assert task.get_inputs() == {"instruction": True, "system_prompt": False, "image": True}
    assert task.format_input({"instruction": "the cat", "image": "https://example.com/cat.jpg"}) == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe: the cat"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
    ]


def test_image_row_is_processed():
    task = loaded(TextGenerationWithImage(llm=DummyLLM(responses=["A cat."])))
    row = {"instruction": "What is it?", "image": "https://example.com/cat.jpg"}
    [out] = next(task.process([row]))
    assert out == {
        **row,
        "generation": "A cat.",
        "model_name": "dummy-llm",
        "distilabel_metadata": {
            "raw_output_text_generation_with_image_0": "A cat.",
            "raw_input_text_generation_with_image_0": task.format_input(row),
            "statistics_text_generation_with_image_0": {"input_tokens": 3, "output_tokens": 2},
        },
    }


@pytest.mark.parametrize(
    "data, kind",
    [
        (base64.b64decode(PNG), "png"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 12, "jpeg"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "webp"),
        (b"GIF89a" + b"\0" * 6, "gif"),
        (b"not an image header", "jpeg"),
    ],
)
def test_base64_image_becomes_a_data_uri_of_its_format(data, kind):
    encoded = base64.b64encode(data).decode()
    task = TextGenerationWithImage(llm=DummyLLM(), image_type="base64")
    url = image_part(task.format_input({"instruction": "?", "image": encoded}))
    assert url == f"data:image/{kind};base64,{encoded}"


@pytest.mark.parametrize("mode", ["RGB", "CMYK", "RGBA"])
def test_pil_image_becomes_a_jpeg_data_uri_as_in_distilabel(mode):
    image = Image.new(mode, (3, 2))
    task = TextGenerationWithImage(llm=DummyLLM(), image_type="PIL")
    url = image_part(task.format_input({"instruction": "?", "image": image}))
    prefix = "data:image/jpeg;base64,"
    assert url.startswith(prefix)
    decoded = Image.open(io.BytesIO(base64.b64decode(url[len(prefix):])))
    assert (decoded.format, decoded.size) == ("JPEG", (3, 2))


def test_a_url_image_is_sent_as_given_like_distilabel():
    task = TextGenerationWithImage(llm=DummyLLM(), image_type="url")
    assert image_part(task.format_input({"instruction": "?", "image": "images/cat.png"})) == "images/cat.png"


@pytest.mark.parametrize(
    "image_type, image, message",
    [
        ("url", Image.new("RGB", (1, 1)), "column 'image' must be a URL string"),
        ("url", "  ", "column 'image' must be a URL string"),
        ("url", None, "column 'image' must be a URL string"),
        ("base64", "not base64 at all!", "column 'image' is not valid base64"),
        ("base64", b"\x89PNG", "column 'image' must be a base64 string"),
        ("base64", "", "column 'image' is empty"),
        ("PIL", PNG, "column 'image' must be a PIL.Image.Image"),
    ],
)
def test_bad_images_are_rejected_before_any_request(image_type, image, message):
    llm = DummyLLM()
    task = loaded(TextGenerationWithImage(llm=llm, image_type=image_type))
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(task.process([{"instruction": "?", "image": image}]))
    assert llm.calls == 0


def test_image_cannot_be_a_template_column():
    with pytest.raises(DistilflowUserError, match="'image' is the image column"):
        TextGenerationWithImage(llm=DummyLLM(), template="{{ image }}", columns=["image"])


@pytest.mark.parametrize("image_type", ["url", "base64", "PIL"])
def test_image_task_print(image_type, capsys):
    TextGenerationWithImage(llm=DummyLLM(), image_type=image_type).print()
    out = capsys.readouterr().out
    assert "<PLACEHOLDER_INSTRUCTION>" in out and "[image: " in out
