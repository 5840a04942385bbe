"""DEITA's steps: EvolQuality, ComplexityScorer, QualityScorer and DeitaFiltering (exact rows, fallbacks)."""

from __future__ import annotations

import json
import logging
import random
import re
import subprocess
import sys
from typing import Any

import pytest
from pydantic import Field

from distilflow.steps.tasks.base import EMPTY_OUTPUT_REASON
from distilflow.steps.tasks.complexity_scorer import ComplexityScorer
from distilflow.errors import DistilflowUserError
from distilflow.steps.tasks.evol_quality.base import MUTATION_TEMPLATES, EvolQuality
from distilflow.models import DummyLLM, OpenAILLM
from distilflow.pipeline import Pipeline
from distilflow.steps.tasks.quality_scorer import QualityScorer
from distilflow.steps.deita import DeitaFiltering
from distilflow.steps.text_embedding import hashed_ngram_embeddings

CS, QS, EQ = "complexity_scorer_0", "quality_scorer_0", "evol_quality_0"


class StructuredDummyLLM(DummyLLM):
    """DummyLLM with the `structured_output` field of a structured-output client; records what it is asked."""

    structured_output: Any = None
    asked: list = Field(default_factory=list)

    def generate(self, inputs, num_generations=1, **kwargs):
        self.asked.extend(inputs)
        return super().generate(inputs, num_generations, **kwargs)


def loaded(task):
    task.load()
    return task


def words(messages) -> int:
    return sum(len(m["content"].split()) for m in messages)


def reason(row, name):
    return row["distilabel_metadata"].get(f"fallback_reason_{name}")


# -- ComplexityScorer --------------------------------------------------------------------------

INSTRUCTIONS = ["Add 2 and 2.", "Prove that there are infinitely many primes."]
COMPLEXITY_PROMPT = (
    "How hard is each of the 2 questions below to answer well? Compare them with each other and score each one "
    "from 1 (the simplest) to 2 (the most difficult and complex); a question too complex for you to answer gets 3.\n"
    "Answer with one line per question, in order, like this:\n[1] Score: <score>\n[2] Score: <score>\n...\n\n"
    "[1] Add 2 and 2.\n[2] Prove that there are infinitely many primes."
)


def test_complexity_scorer_text_answer_gives_exact_row():
    task = loaded(ComplexityScorer(llm=DummyLLM(responses=["Sure.\n[1] Score: 1\n[2] Score: 3\nDone."])))
    chat = [{"role": "user", "content": COMPLEXITY_PROMPT}]
    assert task.format_input({"instructions": INSTRUCTIONS}) == chat
    assert task.get_inputs() == {"instructions": True}
    assert task.get_outputs() == {"scores": True, "model_name": True}
    assert next(task.process([{"instructions": INSTRUCTIONS}])) == [
        {
            "instructions": INSTRUCTIONS,
            "scores": [1.0, 3.0],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{CS}": "Sure.\n[1] Score: 1\n[2] Score: 3\nDone.",
                f"raw_input_{CS}": chat,
                f"statistics_{CS}": {"input_tokens": words(chat), "output_tokens": 8},
            },
        }
    ]


def test_complexity_scorer_asks_for_json_narrowed_to_the_row():
    llm = StructuredDummyLLM(responses=['{"scores": [2, 1]}'])
    task = loaded(ComplexityScorer(llm=llm, use_default_structured_output=True))
    assert llm.structured_output == {"format": "json", "schema": task.get_structured_output()}
    assert task.get_structured_output() == {
        "properties": {"scores": {"items": {"type": "integer"}, "title": "Scores", "type": "array"}},
        "required": ["scores"],
        "title": "SchemaComplexityScorer",
        "type": "object",
    }
    [row] = next(task.process([{"instructions": INSTRUCTIONS}]))
    assert row["scores"] == [2.0, 1.0] and reason(row, CS) is None
    chat, structured = llm.asked[0]
    assert chat[0]["content"].endswith(
        'Answer with one JSON object, {"scores": [...]}, whose list holds the 2 scores in the order of the questions.'
        "\n\n[1] Add 2 and 2.\n[2] Prove that there are infinitely many primes."
    )
    assert structured["schema"]["properties"]["scores"] == {
        "items": {"type": "integer", "minimum": 1, "maximum": 3}, "title": "Scores", "type": "array",
        "minItems": 2, "maxItems": 2,
    }


@pytest.mark.parametrize(
    "answer, structured, scores, problem",
    [
        ("I cannot rank these.", False, [None, None], "no line of the answer reads '[<number>] Score: <score>'"),
        ("[1] Score: 2", False, [2.0, None], "the answer has no score for item(s) 2 of 2"),
        ("[1] Score: 2\n[2] Score: 1\n[3] Score: 3", False, [2.0, 1.0], "the answer scores item(s) 3, but there are 2"),
        ("[1] Score: 9\n[2] Score: 1", False, [9.0, 1.0], "score(s) 9 are outside 1..3"),
        ("wrong", True, [None, None], "the answer is not JSON"),
        ('{"scores": [1, 2, 3]}', True, [1.0, 2.0], "the JSON list 'scores' has 3 entries for 2 items"),
        ('{"scores": [1]}', True, [1.0, None], "the JSON list 'scores' has 1 entries for 2 items"),
        ('{"scores": ["high", 2]}', True, [None, 2.0], "score(s) 'high' are not numbers"),
        ('{"ranks": [1, 2]}', True, [None, None], "the JSON answer has no list 'scores'"),
    ],
)
def test_complexity_scorer_bad_answers_fall_back_with_one_score_per_instruction(answer, structured, scores, problem):
    llm = StructuredDummyLLM(responses=[answer])
    task = loaded(ComplexityScorer(llm=llm, use_default_structured_output=structured))
    [row] = next(task.process([{"instructions": INSTRUCTIONS}]))
    assert row["scores"] == scores
    assert reason(row, CS).startswith(f"UnparsableOutput: {problem}")
    assert row["distilabel_metadata"][f"raw_output_{CS}"] == answer


def test_complexity_scorer_reads_the_other_format_when_the_asked_one_says_nothing():
    as_text = loaded(ComplexityScorer(llm=DummyLLM(responses=['```json\n{"scores": [3, 1]}\n```'])))
    [row] = next(as_text.process([{"instructions": INSTRUCTIONS}]))
    assert row["scores"] == [3.0, 1.0] and reason(row, CS) is None
    as_json = loaded(ComplexityScorer(llm=StructuredDummyLLM(responses=["[1] Score: 1\n[2] Score: 2"]),
                                      use_default_structured_output=True))
    [row] = next(as_json.process([{"instructions": INSTRUCTIONS}]))
    assert row["scores"] == [1.0, 2.0] and reason(row, CS) is None


def test_complexity_scorer_row_a_step_before_failed_for_passes_without_a_request(caplog):
    llm = DummyLLM(responses=["[1] Score: 1\n[2] Score: 2"])
    task = loaded(ComplexityScorer(llm=llm, input_mappings={"instructions": "evolved_instructions"}))
    rows = [
        {"evolved_instructions": None, "distilabel_metadata": {"fallback_reason_evol_instruct_0": "EmptyOutput"}},
        {"evolved_instructions": INSTRUCTIONS},
    ]
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        first, second = [row for batch in task.process_applying_mappings(rows) for row in batch]
    assert llm.calls == 1  # one request, for the second row only
    assert first == {
        "evolved_instructions": None, "scores": None, "model_name": "dummy-llm",
        "distilabel_metadata": {
            "fallback_reason_evol_instruct_0": "EmptyOutput",
            f"fallback_reason_{CS}": "NothingToScore: column 'instructions' is None (a step before ComplexityScorer "
            "failed for this row); no request was sent",
        },
    }
    assert second["scores"] == [1.0, 2.0] and second["evolved_instructions"] == INSTRUCTIONS
    assert "NothingToScore" in caplog.text


@pytest.mark.parametrize("grouped", [False, True])
def test_complexity_scorer_row_passed_through_has_the_shape_of_the_others(grouped):
    task = loaded(ComplexityScorer(llm=DummyLLM(responses=["[1] Score: 1\n[2] Score: 2"]), num_generations=2,
                                   group_generations=grouped, input_mappings={"instructions": "evolved_instructions"}))
    rows = [{"evolved_instructions": None, "id": 0}, {"evolved_instructions": INSTRUCTIONS, "id": 1}]
    out = [row for batch in task.process_applying_mappings(rows) for row in batch]
    assert [row["id"] for row in out] == ([0, 1] if grouped else [0, 0, 1, 1])
    skipped = out[0]
    if grouped:
        assert skipped["scores"] == [None, None] and len(skipped["distilabel_metadata"]) == 2
        assert out[1]["scores"] == [[1.0, 2.0], [1.0, 2.0]]
    else:
        assert skipped["scores"] is None and out[1]["scores"] is None and out[2]["scores"] == [1.0, 2.0]
    assert all("evolved_instructions" in row and "instructions" not in row for row in out)


@pytest.mark.parametrize(
    "value, message",
    [
        ("Add 2 and 2.", "column 'instructions' must be a list of strings for ComplexityScorer, got str"),
        ([1, 2], "column 'instructions' must be a list of strings for ComplexityScorer, got list"),
        ([], "column 'instructions' is an empty list"),
    ],
)
def test_complexity_scorer_refuses_bad_rows_before_any_request(value, message):
    llm = DummyLLM()
    task = loaded(ComplexityScorer(llm=llm))
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(task.process([{"instructions": INSTRUCTIONS}, {"instructions": value}]))
    assert llm.calls == 0


def test_complexity_scorer_against_the_simulator_over_http():
    from distilflow.simulator import Simulator

    instructions = ["Say hi.", "Plan a trip.", "Prove a theorem.", "Write a poem."]
    with Simulator() as sim:
        task = loaded(ComplexityScorer(llm=OpenAILLM(model="sim", base_url=sim.base_url), use_default_structured_output=True))
        try:
            [row] = next(task.process([{"instructions": instructions}]))
        finally:
            task.unload()
    assert reason(row, CS) is None, row["distilabel_metadata"]
    assert len(row["scores"]) == 4 and all(isinstance(s, float) and 1 <= s <= 5 for s in row["scores"])


# -- QualityScorer ---------------------------------------------------------------------------------

QUALITY_PROMPT = (
    "Below are 3 responses to the same question. Compare them with each other and score how good each one is, "
    "weighing helpfulness, relevance, accuracy, depth, creativity and level of detail: from 1 (the weakest) to 3 "
    "(the best); a response so well written that it cannot be improved gets 4.\n"
    "Answer with one line per response, in order, like this:\n[1] Score: <score>\n[2] Score: <score>\n...\n\n"
    "#Question#: Name a primary colour.\n#Responses#:\n[1] Red.\n[2] Purple, I think.\n[3] (no text)"
)


def test_quality_scorer_text_answer_gives_exact_row():
    task = loaded(QualityScorer(llm=DummyLLM(responses=["[1] Score: 4\n[2] Score: 2\n[3] Score: 1"])))
    row = {"instruction": "Name a primary colour.", "responses": ["Red.", "Purple, I think.", None]}
    chat = [{"role": "user", "content": QUALITY_PROMPT}]
    assert task.format_input(row) == chat
    assert task.get_inputs() == {"instruction": True, "responses": True}
    assert next(task.process([row])) == [
        {
            **row,
            "scores": [4.0, 2.0, 1.0],
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"raw_output_{QS}": "[1] Score: 4\n[2] Score: 2\n[3] Score: 1",
                f"raw_input_{QS}": chat,
                f"statistics_{QS}": {"input_tokens": words(chat), "output_tokens": 9},
            },
        }
    ]


def test_quality_scorer_narrows_the_schema_and_refuses_a_row_without_instruction():
    llm = StructuredDummyLLM(responses=['{"scores": [1, 2]}'])
    task = loaded(QualityScorer(llm=llm, use_default_structured_output=True))
    assert task.get_structured_output()["title"] == "SchemaQualityScorer"
    [row] = next(task.process([{"instruction": "Hi?", "responses": ["a", "b"]}]))
    assert row["scores"] == [1.0, 2.0] and reason(row, QS) is None
    assert llm.asked[0][1]["schema"]["properties"]["scores"]["maxItems"] == 2
    with pytest.raises(DistilflowUserError, match="column 'instruction' must be a string for QualityScorer, got NoneType"):
        next(task.process([{"instruction": None, "responses": ["a"]}]))


def test_quality_scorer_empty_answer_is_a_fallback_row():
    task = loaded(QualityScorer(llm=DummyLLM(responses=[""])))
    [row] = next(task.process([{"instruction": "Hi?", "responses": ["a", "b"]}]))
    assert row["scores"] is None and reason(row, QS) == EMPTY_OUTPUT_REASON


# -- EvolQuality -----------------------------------------------------------------------------------

_GIVEN_RESPONSE = re.compile(r"#Given Response#:\n(.*?)\n\n#Rewritten Response#:", re.DOTALL)


def improver(messages, _index):
    """Appends '+' to the given response (after repeating the closing label, as models do)."""
    return f"#Rewritten Response#: {_GIVEN_RESPONSE.search(messages[0]['content']).group(1)}+"


def rewrite(instruction: str, response: str, original: str, round: int):
    name = random.Random(f"42:{instruction}:{original}:{round}").choice(list(MUTATION_TEMPLATES))
    content = MUTATION_TEMPLATES[name].replace("<PROMPT>", instruction).replace("<RESPONSE>", response)
    return [{"role": "user", "content": content}]


def test_evol_quality_template_names_are_distilabels():
    assert list(MUTATION_TEMPLATES) == ["HELPFULNESS", "RELEVANCE", "DEEPENING", "CREATIVITY", "DETAILS"]
    assert all("<PROMPT>" in t and "<RESPONSE>" in t for t in MUTATION_TEMPLATES.values())


def test_evol_quality_two_rounds_keeps_the_last():
    task = loaded(EvolQuality(llm=DummyLLM(responses=improver), num_evolutions=2))
    row = {"instruction": "Name a colour.", "response": "Red."}
    prompts = [rewrite("Name a colour.", "Red.", "Red.", 0), rewrite("Name a colour.", "Red.+", "Red.", 1)]
    assert task.format_input(row) == prompts[0]
    assert task.get_outputs() == {"evolved_response": True, "model_name": True}
    assert next(task.process([row])) == [
        {
            **row,
            "evolved_response": "Red.++",
            "model_name": "dummy-llm",
            "distilabel_metadata": {
                f"statistics_{EQ}": {"input_tokens": [words(p) for p in prompts], "output_tokens": [3, 3]},
            },
        }
    ]


@pytest.mark.parametrize("include_original, expected", [(False, ["Red.+", "Red.++"]), (True, ["Red.", "Red.+", "Red.++"])])
def test_evol_quality_store_evolutions(include_original, expected):
    task = loaded(EvolQuality(llm=DummyLLM(responses=improver), num_evolutions=2, store_evolutions=True,
                              include_original_response=include_original))
    assert task.get_outputs() == {"evolved_responses": True, "model_name": True}
    [row] = next(task.process([{"instruction": "Name a colour.", "response": "Red."}]))
    assert row["evolved_responses"] == expected


def test_evol_quality_is_the_same_whatever_the_batch():
    rows = [{"instruction": f"Question {i}?", "response": f"Answer {i}."} for i in range(6)]
    alone = loaded(EvolQuality(llm=DummyLLM(responses=improver), num_evolutions=3))
    batched = loaded(EvolQuality(llm=DummyLLM(responses=improver), num_evolutions=3, input_batch_size=4))
    one_by_one = [next(alone.process([row]))[0] for row in rows]
    assert [r for batch in batched.process(rows) for r in batch] == one_by_one


def test_evol_quality_empty_round_falls_back_and_keeps_raw_outputs(caplog):
    answers = iter(["#Rewritten Response#: Red!", "  "])
    task = loaded(EvolQuality(llm=DummyLLM(responses=lambda *_: next(answers)), num_evolutions=3))
    row = {"instruction": "Name a colour.", "response": "Red."}
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        [out] = next(task.process([row]))
    prompts = [rewrite("Name a colour.", "Red.", "Red.", 0), rewrite("Name a colour.", "Red!", "Red.", 1)]
    assert out == {
        **row,
        "evolved_response": None,
        "model_name": "dummy-llm",
        "distilabel_metadata": {
            f"raw_output_{EQ}": ["#Rewritten Response#: Red!", "  "],
            f"raw_input_{EQ}": prompts,
            f"statistics_{EQ}": {"input_tokens": [words(p) for p in prompts], "output_tokens": [3, 0]},
            f"fallback_reason_{EQ}": EMPTY_OUTPUT_REASON,
        },
    }
    assert "round 2" in caplog.text


def test_evol_quality_row_a_step_before_failed_for_passes_without_a_request():
    llm = DummyLLM(responses=improver)
    task = loaded(EvolQuality(llm=llm, num_evolutions=1, input_mappings={"response": "answer"}))
    rows = [{"instruction": "Q?", "answer": None}, {"instruction": "Q?", "answer": "A."}]
    first, second = [r for batch in task.process_applying_mappings(rows) for r in batch]
    assert llm.calls == 1
    assert first == {
        "instruction": "Q?", "answer": None, "evolved_response": None, "model_name": "dummy-llm",
        "distilabel_metadata": {
            f"fallback_reason_{EQ}": "NothingToRewrite: 'instruction' or 'response' is None (a step before failed "
            "for this row); no request was sent",
        },
    }
    assert second["evolved_response"] == "A.+" and second["answer"] == "A."


def test_evol_quality_refuses_bad_settings_and_rows():
    with pytest.raises(DistilflowUserError, match="num_generations must be 1"):
        EvolQuality(llm=DummyLLM(), num_evolutions=1, num_generations=2)
    with pytest.raises(DistilflowUserError, match=r"template\(s\) \['MINE'\] lack the <RESPONSE> placeholder"):
        EvolQuality(llm=DummyLLM(), num_evolutions=1, mutation_templates={"MINE": "Improve <PROMPT>"})
    llm = DummyLLM()
    task = loaded(EvolQuality(llm=llm, num_evolutions=1))
    with pytest.raises(DistilflowUserError, match="column 'response' must be a string for EvolQuality, got list"):
        next(task.process([{"instruction": "Q?", "response": ["A."]}]))
    assert llm.calls == 0


# -- DeitaFiltering --------------------------------------------------------------------------------


def scored(i: float, r: float, **columns):
    return {"evol_instruction_score": i, "evol_response_score": r, **columns}


def test_deita_filtering_keeps_the_best_diverse_rows_of_embeddings():
    rows = [
        scored(1.0, 2.0, embedding=[1.0, 0.0]),
        scored(3.0, 3.0, embedding=[0.0, 1.0]),
        scored(3.0, 2.0, embedding=[0.0, 2.0]),  # same direction as the row above: distance 0
        scored(2.0, 2.0, embedding=[-1.0, 0.0]),
    ]
    step = DeitaFiltering(data_budget=2, diversity_threshold=0.5)
    step.load()
    assert step.get_inputs() == {
        "evol_instruction_score": True, "evol_response_score": True, "embedding": False, "conversation": False,
    }
    assert list(step.process(rows)) == [[
        {**rows[3], "deita_score": 4.0, "deita_score_computed_with": ["evol_instruction_score", "evol_response_score"],
         "nearest_neighbor_distance": 1.0},
        {**rows[0], "deita_score": 2.0, "deita_score_computed_with": ["evol_instruction_score", "evol_response_score"],
         "nearest_neighbor_distance": 1.0},
    ]]
    manhattan = DeitaFiltering(data_budget=4, diversity_threshold=0.0, distance_metric="manhattan", normalize_embeddings=False)
    kept = next(manhattan.process(rows))
    assert [r["nearest_neighbor_distance"] for r in kept] == [1.0, 1.0, 2.0, 2.0]  # scores 9, 6, 4, 2


def test_deita_filtering_selection_does_not_depend_on_the_order_rows_arrive_in():
    # equal scores everywhere: which rows fill the budget is decided by their content, not their order
    # (and so are the distances, to the last bit: a dot product's rounding depends on the matrix's row order)
    noise = random.Random(0)
    vocabulary = "the a data model answer question value system simple clear useful small large quick".split()
    rows = [scored(2.0, 2.0, conversation=" ".join(noise.choices(vocabulary, k=30)), id=i) for i in range(40)]
    step = DeitaFiltering(data_budget=3, diversity_threshold=0.0)
    first = next(step.process(rows))
    for seed in range(3):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert next(step.process(shuffled)) == first
    halves = next(step.process(rows[4:], rows[:4]))  # several predecessors: their rows together
    assert halves == first


def test_deita_filtering_scores_with_what_the_row_has(caplog):
    rows = [
        scored(2.0, None, embedding=[1.0, 0.0]),
        scored(None, 3.0, embedding=[0.0, 1.0]),
        scored(None, None, embedding=[-1.0, 0.0]),
    ]
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        kept = next(DeitaFiltering(data_budget=5, diversity_threshold=0.0).process(rows))
    assert [(r["deita_score"], r["deita_score_computed_with"]) for r in kept] == [
        (3.0, ["evol_response_score"]), (2.0, ["evol_instruction_score"]), (0, []),
    ]
    assert "2 row(s) have only one of" in caplog.text and "1 have neither" in caplog.text


def test_deita_filtering_without_embeddings_compares_conversation_texts():
    def conversation(question, answer):
        return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]

    rows = [
        scored(3.0, 3.0, conversation=conversation("What's the capital of Spain?", "The capital of Spain is Madrid.")),
        scored(3.0, 2.0, conversation=conversation("what is the capital of spain?", "The capital of Spain is Madrid!")),
        scored(2.0, 2.0, conversation=conversation("Write a haiku about the sea.", "Waves fold into foam.")),
        scored(1.0, 1.0, conversation=conversation("Explain photosynthesis.", "Plants turn light into food.")),
    ]
    kept = next(DeitaFiltering(data_budget=3, diversity_threshold=0.1).process(rows))
    # the first two are near-copies (distance about 0.06): both are skipped, as in distilabel
    assert [r["deita_score"] for r in kept] == [4.0, 1.0]
    assert all(r["nearest_neighbor_distance"] > 0.5 for r in kept)
    distances = [r["nearest_neighbor_distance"] for r in next(DeitaFiltering(data_budget=4, diversity_threshold=0).process(rows))]
    assert distances[0] == pytest.approx(distances[1]) and 0.0 < distances[0] < 0.1
    # a string column mapped in works too
    flat = [
        {**{k: v for k, v in r.items() if k != "conversation"}, "text": " ".join(m["content"] for m in r["conversation"])}
        for r in rows
    ]
    mapped = DeitaFiltering(data_budget=3, diversity_threshold=0.1, input_mappings={"conversation": "text"})
    assert [r["deita_score"] for r in next(mapped.process_applying_mappings(flat))] == [4.0, 1.0]


def test_deita_filtering_rows_without_an_embedding_are_not_kept(caplog):
    rows = [scored(3.0, 3.0, embedding=None), scored(1.0, 1.0, embedding=[1.0, 0.0]), scored(1.0, 2.0, embedding=[0.0, 1.0])]
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        kept = next(DeitaFiltering(data_budget=3, diversity_threshold=0.5).process(rows))
    assert [r["deita_score"] for r in kept] == [2.0, 1.0]
    assert "1 of 3 row(s) have no embedding" in caplog.text
    [alone] = next(DeitaFiltering(data_budget=1).process([scored(1.0, 1.0, embedding=[1.0])]))
    assert alone["nearest_neighbor_distance"] is None  # no other row to compare to
    # a row a step before failed for: no scores, no text; it is not kept, whatever the budget
    failed = scored(None, None, conversation=[{"role": "user", "content": None}, {"role": "assistant", "content": None}])
    texts = [failed, scored(1.0, 1.0, conversation="Waves fold into foam."), scored(1.0, 2.0, conversation="Name a colour.")]
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        kept = next(DeitaFiltering(data_budget=3, diversity_threshold=0.1).process(texts))
    assert [r["deita_score"] for r in kept] == [2.0, 1.0]
    assert "1 of 3 row(s) have no conversation text" in caplog.text


@pytest.mark.parametrize(
    "step, rows, message",
    [
        (DeitaFiltering(), [scored(1.0, 1.0, embedding=[1.0])], "needs `data_budget`"),
        (DeitaFiltering(data_budget=1), [scored(1.0, 1.0, instruction="x")], "the rows have neither"),
        (DeitaFiltering(data_budget=1), [scored(1.0, 1.0, embedding=[1.0]), scored(1.0, 1.0, embedding=[1.0, 2.0])],
         "embeddings have different lengths [1, 2]"),
    ],
)
def test_deita_filtering_refuses_what_it_cannot_compare(step, rows, message):
    with pytest.raises(DistilflowUserError, match=re.escape(message)):
        next(step.process(rows))


def test_deita_filtering_is_a_global_step_with_run_time_parameters():
    with Pipeline(name="deita-unit"):
        step = DeitaFiltering(name="deita_filtering")
    assert step.is_global
    assert {"data_budget", "diversity_threshold", "normalize_embeddings", "distance_metric"} <= set(step.runtime_parameters_names)
    step.set_runtime_parameters({"data_budget": 7, "distance_metric": "manhattan"})
    assert (step.data_budget, step.distance_metric) == (7, "manhattan")
    with pytest.raises(DistilflowUserError, match="distance_metric"):
        step.set_runtime_parameters({"distance_metric": "euclidean"})


def test_hashed_embeddings_are_the_same_in_every_process():
    texts = ["The capital of Spain is Madrid.", "", "ab"]
    vectors = hashed_ngram_embeddings(texts)
    assert vectors.shape == (3, 1024) and not vectors[1].any() and abs(vectors[2]).sum() == 2  # " ab", "ab "
    code = (
        "import json; from distilflow.steps.text_embedding import hashed_ngram_embeddings as h; "
        f"print(json.dumps(h({texts!r}).tolist()))"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "12345", "PATH": ""})
    assert json.loads(other.stdout) == vectors.tolist()
