"""Column and formatting steps: the exact rows users get (distilabel's shapes), mappings, and the
columns each step declares for the pipeline check."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from distilflow.steps.tasks import TextGeneration, UltraFeedback
from distilflow.errors import DistilflowUserError
from distilflow.models import DummyLLM
from distilflow.pipeline import Pipeline
from distilflow.steps.columns import (
    CombineOutputs, ExpandColumns, GroupColumns, KeepColumns, MergeColumns, merge_distilabel_metadata,
)
from distilflow.steps.formatting import (
    ConversationTemplate, FormatChatGenerationDPO, FormatChatGenerationSFT, FormatTextGenerationDPO,
    FormatTextGenerationSFT,
)

#: sha256("What's 2+2?"), the prompt_id distilabel gives the same prompt
PROMPT_ID = "7762ecf17ad41479767061a8f4a7bfa3b63d371672af5180872f9b82b4cd4e29"
Q = "What's 2+2?"


def run(step, *inputs):
    """All rows `process_applying_mappings` yields (as a pipeline batch gets them)."""
    return [row for rows in step.process_applying_mappings(*inputs) for row in rows]


def answer(text: str) -> list[dict]:
    """The conversation of the prompt Q answered with `text`."""
    return [{"role": "user", "content": Q}, {"role": "assistant", "content": text}]


def meta(name: str, raw: str, tokens: int = 10) -> dict:
    return {f"raw_output_{name}": raw, f"statistics_{name}": {"input_tokens": tokens, "output_tokens": 4}}


# -- merge_distilabel_metadata ----------------------------------------------------------------------


def test_metadata_keys_in_one_row_stay_values_and_keys_in_several_become_lists():
    rows = [
        {"distilabel_metadata": {"raw_output_a": "x", "shared": 1}},
        {"other": 1},  # no metadata: adds nothing
        {"distilabel_metadata": None},
        {"distilabel_metadata": {"raw_output_b": "y", "shared": 2}},
    ]
    assert merge_distilabel_metadata(*rows) == {"raw_output_a": "x", "shared": [1, 2], "raw_output_b": "y"}


def test_per_generation_metadata_lists_are_concatenated_in_row_order():
    rows = [
        {"distilabel_metadata": [{"g": 1}, {"g": 2}]},
        {"distilabel_metadata": {"g": 3}},  # a row of one generation joins as one entry
        {"distilabel_metadata": [{"g": 4}]},
    ]
    assert merge_distilabel_metadata(*rows) == [{"g": 1}, {"g": 2}, {"g": 3}, {"g": 4}]


# -- KeepColumns --------------------------------------------------------------------------------------


def test_keep_columns_keeps_the_listed_columns_in_the_listed_order():
    step = KeepColumns(columns=["generation", "instruction"])
    rows = run(step, [{"instruction": "q", "generation": "a", "model_name": "m", "distilabel_metadata": {}}])
    assert rows == [{"generation": "a", "instruction": "q"}]
    assert list(rows[0]) == ["generation", "instruction"]
    assert step.inputs == step.outputs == ["generation", "instruction"]


def test_keep_columns_writes_output_mappings():
    step = KeepColumns(columns=["instruction", "generation"], output_mappings={"generation": "response"})
    assert run(step, [{"instruction": "q", "generation": "a", "x": 1}]) == [{"instruction": "q", "response": "a"}]


def test_keep_columns_refuses_a_row_without_a_kept_column_naming_it():
    step = KeepColumns(name="keep", columns=["instruction", "generation"])
    with pytest.raises(DistilflowUserError, match=r"KeepColumns 'keep'.*\['generation'\].*it has \['instruction'\]"):
        run(step, [{"instruction": "q"}])


# -- GroupColumns -------------------------------------------------------------------------------------


def test_group_columns_makes_one_row_of_row_i_of_each_branch_and_merges_metadata():
    branch_a = [{"instruction": "q", "generation": "a", "model_name": "m1", "distilabel_metadata": meta("gen_a", "a")}]
    branch_b = [{"instruction": "q", "generation": "b", "model_name": "m2", "distilabel_metadata": meta("gen_b", "b", 12)}]
    step = GroupColumns(columns=["generation", "model_name"])
    assert run(step, branch_a, branch_b) == [{
        "instruction": "q",
        "grouped_generation": ["a", "b"],
        "grouped_model_name": ["m1", "m2"],
        "distilabel_metadata": {
            "raw_output_gen_a": "a", "statistics_gen_a": {"input_tokens": 10, "output_tokens": 4},
            "raw_output_gen_b": "b", "statistics_gen_b": {"input_tokens": 12, "output_tokens": 4},
        },
    }]
    assert step.inputs == ["generation", "model_name"]
    assert step.outputs == ["grouped_generation", "grouped_model_name"]


def test_group_columns_output_columns_and_output_mappings_name_the_lists():
    branches = [[{"generation": "a", "model_name": "m1"}], [{"generation": "b", "model_name": "m2"}]]
    step = GroupColumns(
        columns=["generation", "model_name"], output_columns=["generations", "generation_models"],
        output_mappings={"generation_models": "models"},
    )
    assert step.outputs == ["generations", "generation_models"]
    assert run(step, *branches) == [{"generations": ["a", "b"], "models": ["m1", "m2"]}]


def test_group_columns_without_metadata_adds_none_and_grouped_metadata_is_concatenated():
    plain = GroupColumns(columns=["generation"])
    assert run(plain, [{"generation": "a"}], [{"generation": "b"}]) == [{"grouped_generation": ["a", "b"]}]
    grouped = [{"generation": ["a1", "a2"], "distilabel_metadata": [{"raw_output_a": "a1"}, {"raw_output_a": "a2"}]}]
    other = [{"generation": ["b1"], "distilabel_metadata": [{"raw_output_b": "b1"}]}]
    assert run(plain, grouped, other) == [{
        "grouped_generation": [["a1", "a2"], ["b1"]],
        "distilabel_metadata": [{"raw_output_a": "a1"}, {"raw_output_a": "a2"}, {"raw_output_b": "b1"}],
    }]


def test_group_columns_refuses_output_columns_of_another_length():
    with pytest.raises(DistilflowUserError, match=r"1 output_columns \['x'\] for 2 columns"):
        GroupColumns(columns=["a", "b"], output_columns=["x"])


def test_group_columns_refuses_branches_with_different_numbers_of_rows_instead_of_cutting_rows():
    step = GroupColumns(name="group", columns=["a"])
    with pytest.raises(DistilflowUserError, match=r"GroupColumns 'group'.*\[2, 1\] rows"):
        run(step, [{"a": 1}, {"a": 2}], [{"a": 3}])


# -- MergeColumns -------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [(1, 2), (1, [2]), ([1], [2])])
def test_merge_columns_joins_values_and_lists_into_merged_column(values):
    step = MergeColumns(columns=["query", "queries"])
    row = {"id": 7, "query": values[0], "queries": values[1]}
    assert run(step, [row]) == [{"id": 7, "merged_column": [1, 2]}]
    assert step.inputs == ["query", "queries"] and step.outputs == ["merged_column"]


def test_merge_columns_output_column_may_be_one_of_the_merged_columns_and_output_mappings_apply():
    step = MergeColumns(columns=["queries", "query"], output_column="queries")
    assert run(step, [{"query": "q", "queries": ["a", "b"]}]) == [{"queries": ["a", "b", "q"]}]
    mapped = MergeColumns(columns=["query", "queries"], output_mappings={"merged_column": "all_queries"})
    assert run(mapped, [{"query": "q", "queries": ["a"], "n": 1}]) == [{"n": 1, "all_queries": ["q", "a"]}]


def test_merge_columns_refuses_a_row_without_a_merged_column():
    with pytest.raises(DistilflowUserError, match=r"MergeColumns 'm'.*\['queries'\]"):
        run(MergeColumns(name="m", columns=["query", "queries"]), [{"query": "q"}])


# -- CombineOutputs -----------------------------------------------------------------------------------


def test_combine_outputs_joins_the_columns_of_row_i_of_each_branch_and_merges_metadata():
    classify = [{"text": "t", "label": "x", "model_name": "m1", "distilabel_metadata": meta("classify", "x")}]
    summarize = [{"text": "t", "summary": "s", "model_name": "m2", "distilabel_metadata": meta("summarize", "s")}]
    step = CombineOutputs()
    assert run(step, classify, summarize) == [{
        "text": "t", "label": "x", "model_name": "m2", "summary": "s",  # the later branch wins a shared column
        "distilabel_metadata": {**meta("classify", "x"), **meta("summarize", "s")},
    }]
    assert step.inputs == [] and step.outputs == []


def test_combine_outputs_adds_metadata_only_when_a_row_has_some():
    assert run(CombineOutputs(), [{"a": 1}, {"a": 2}], [{"b": 3}, {"b": 4}]) == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]


def test_combine_outputs_refuses_branches_of_different_lengths():
    with pytest.raises(DistilflowUserError, match=r"CombineOutputs 'c'.*\[1, 2\] rows"):
        run(CombineOutputs(name="c"), [{"a": 1}], [{"b": 1}, {"b": 2}])


# -- ExpandColumns ------------------------------------------------------------------------------------


def test_expand_columns_makes_one_row_per_item_of_the_expanded_columns():
    step = ExpandColumns(columns=["generation", "score"])
    assert step.columns == {"generation": "generation", "score": "score"}
    rows = run(step, [{"instruction": "q", "generation": ["a", "b"], "score": [1, 2]}, {"instruction": "r",
                                                                                          "generation": ["c"], "score": [3]}])
    assert rows == [
        {"instruction": "q", "generation": "a", "score": 1},
        {"instruction": "q", "generation": "b", "score": 2},
        {"instruction": "r", "generation": "c", "score": 3},
    ]
    assert step.inputs == step.outputs == ["generation", "score"]


def test_expand_columns_to_a_new_name_keeps_the_original_list_column():
    step = ExpandColumns(columns={"generations": "generation"})
    assert step.inputs == ["generations"] and step.outputs == ["generation"]
    assert run(step, [{"generations": ["a", "b"]}]) == [
        {"generations": ["a", "b"], "generation": "a"},
        {"generations": ["a", "b"], "generation": "b"},
    ]
    mapped = ExpandColumns(columns=["generations"], output_mappings={"generations": "generation"})
    assert run(mapped, [{"q": 1, "generations": ["a", "b"]}]) == [{"q": 1, "generation": "a"}, {"q": 1, "generation": "b"}]


@pytest.mark.parametrize("encoded", [True, ["generation"]])
def test_expand_columns_decodes_encoded_columns(encoded):
    step = ExpandColumns(columns=["generation", "score"], encoded=encoded)
    row = {"generation": json.dumps(["a", "b"]), "score": [1, 2]}
    assert run(step, [row]) == [{"generation": "a", "score": 1}, {"generation": "b", "score": 2}]


def test_expand_columns_refuses_encoded_columns_that_are_not_expanded():
    with pytest.raises(DistilflowUserError, match=r"encoded columns \['other'\] are not among"):
        ExpandColumns(columns=["generation"], encoded=["other"])


def test_expand_columns_copies_metadata_or_splits_its_token_statistics():
    row = {"generation": ["a", "b", "c"], "distilabel_metadata": {
        "raw_output_gen": "[a, b, c]",
        "statistics_gen": {"input_tokens": 31, "output_tokens": [12]},
    }}
    copied = run(ExpandColumns(columns=["generation"]), [copy.deepcopy(row)])
    assert [r["distilabel_metadata"] for r in copied] == [row["distilabel_metadata"]] * 3
    split = run(ExpandColumns(columns=["generation"], split_statistics=True), [row])
    assert split == [
        {"generation": item, "distilabel_metadata": {
            "raw_output_gen": "[a, b, c]", "statistics_gen": {"input_tokens": [10], "output_tokens": [4]},
        }}
        for item in "abc"
    ]


def test_expand_columns_split_statistics_gives_each_row_its_own_per_generation_metadata():
    row = {"generation": ["a", "b"], "distilabel_metadata": [{"raw_output_gen": "a"}, {"raw_output_gen": "b"}]}
    assert run(ExpandColumns(columns=["generation"], split_statistics=True), [row]) == [
        {"generation": "a", "distilabel_metadata": {"raw_output_gen": "a"}},
        {"generation": "b", "distilabel_metadata": {"raw_output_gen": "b"}},
    ]


def test_expand_columns_passes_a_failed_row_and_drops_empty_lists_saying_so(caplog):
    failed = {"instruction": "q", "generations": None, "distilabel_metadata": {"error_gen": "400"}}
    step = ExpandColumns(name="expand", columns={"generations": "generation"})
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        rows = run(step, [failed, {"instruction": "r", "generations": []}])
    assert rows == [{**failed, "generation": None}]
    assert "ExpandColumns 'expand': 1 row(s) held empty lists" in caplog.text


def test_expand_columns_refuses_lists_of_different_lengths_and_text_that_is_not_a_list():
    step = ExpandColumns(name="expand", columns=["a", "b"])
    with pytest.raises(DistilflowUserError, match=r"different lengths \{'a': 2, 'b': 1\}"):
        run(step, [{"a": [1, 2], "b": [3]}])
    with pytest.raises(DistilflowUserError, match=r"column 'a' holds a str, not a list: set encoded=\['a'\]"):
        run(step, [{"a": "[1, 2]", "b": [3, 4]}])


# -- formatting: DPO ----------------------------------------------------------------------------------


def test_text_dpo_rows_pair_the_best_and_worst_rated_generation():
    row = {"instruction": Q, "generations": ["4", "5", "6"], "ratings": [1, 0, -1]}
    assert run(FormatTextGenerationDPO(), [dict(row)]) == [{
        **row,
        "prompt": Q,
        "prompt_id": PROMPT_ID,
        "chosen": [{"role": "user", "content": Q}, {"role": "assistant", "content": "4"}],
        "chosen_rating": 1,
        "rejected": [{"role": "user", "content": Q}, {"role": "assistant", "content": "6"}],
        "rejected_rating": -1,
    }]  # without generation_models (an optional column), no *_model columns


def test_text_dpo_rows_with_system_prompt_and_generation_models():
    row = {"system_prompt": "Be brief.", "instruction": Q, "generations": ["4", "5"],
           "generation_models": ["A", "B"], "ratings": [2, 5]}
    (out,) = run(FormatTextGenerationDPO(), [row])
    assert list(out) == [*row, "prompt", "prompt_id", "chosen", "chosen_model", "chosen_rating", "rejected",
                         "rejected_model", "rejected_rating"]
    system = {"role": "system", "content": "Be brief."}
    assert out["chosen"] == [system, {"role": "user", "content": Q}, {"role": "assistant", "content": "5"}]
    assert (out["chosen_model"], out["chosen_rating"], out["rejected_model"], out["rejected_rating"]) == ("B", 5, "A", 2)


def test_dpo_ties_take_the_first_generation_and_unrated_rows_stay_with_none(caplog):
    step = FormatTextGenerationDPO(name="dpo")
    tie = {"instruction": Q, "system_prompt": "", "generations": ["a", "b"], "ratings": [3, 3]}
    unrated = {"instruction": Q, "generations": ["a", "b"], "generation_models": ["A", "B"], "ratings": None}
    partly = {"instruction": Q, "generations": ["a", "b", "c"], "ratings": [None, 4, 2]}
    with caplog.at_level(logging.WARNING, logger="distilflow.steps.tasks"):
        out = run(step, [tie, unrated, partly])
    assert out[0]["chosen"] == out[0]["rejected"] == answer("a")  # an empty system prompt is left out
    assert out[1] == {**unrated, "prompt": Q, "prompt_id": PROMPT_ID, "chosen": None, "chosen_model": None,
                      "chosen_rating": None, "rejected": None, "rejected_model": None, "rejected_rating": None}
    assert (out[2]["chosen"], out[2]["rejected"]) == (answer("b"), answer("c"))
    assert "FormatTextGenerationDPO 'dpo': 1 row(s) have no ratings" in caplog.text


def test_chat_dpo_rows_continue_the_conversation_and_take_the_first_user_message_as_prompt():
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": Q}]
    row = {"messages": messages, "generations": ["4", "5"], "generation_models": ["A", "B"], "ratings": [5, 1]}
    assert run(FormatChatGenerationDPO(), [row]) == [{
        **row,
        "prompt": Q,
        "prompt_id": PROMPT_ID,
        "chosen": [*messages, {"role": "assistant", "content": "4"}],
        "chosen_model": "A",
        "chosen_rating": 5,
        "rejected": [*messages, {"role": "assistant", "content": "5"}],
        "rejected_model": "B",
        "rejected_rating": 1,
    }]


def test_chat_formats_refuse_a_conversation_without_a_user_message():
    with pytest.raises(DistilflowUserError, match=r"FormatChatGenerationSFT 'sft'.*no user message.*\['system'\]"):
        run(FormatChatGenerationSFT(name="sft"), [{"messages": [{"role": "system", "content": "s"}], "generation": "x"}])


def test_dpo_input_and_output_mappings():
    step = FormatTextGenerationDPO(input_mappings={"instruction": "question", "ratings": "scores"},
                                   output_mappings={"chosen": "preferred", "rejected": "dispreferred"})
    (out,) = run(step, [{"question": Q, "generations": ["a", "b"], "scores": [1, 2]}])
    assert out == {
        "question": Q, "generations": ["a", "b"], "scores": [1, 2], "prompt": Q, "prompt_id": PROMPT_ID,
        "preferred": [{"role": "user", "content": Q}, {"role": "assistant", "content": "b"}], "chosen_rating": 2,
        "dispreferred": [{"role": "user", "content": Q}, {"role": "assistant", "content": "a"}], "rejected_rating": 1,
    }


# -- formatting: SFT and conversations ----------------------------------------------------------------


@pytest.mark.parametrize("system_prompt", [None, "", "Be brief."])
def test_text_sft_rows(system_prompt):
    row = {"instruction": Q, "generation": "4"}
    if system_prompt is not None:
        row["system_prompt"] = system_prompt
    system = [{"role": "system", "content": system_prompt}] if system_prompt else []
    assert run(FormatTextGenerationSFT(), [row]) == [{
        **row, "prompt": Q, "prompt_id": PROMPT_ID,
        "messages": [*system, {"role": "user", "content": Q}, {"role": "assistant", "content": "4"}],
    }]


def test_text_sft_reads_mapped_columns():
    step = FormatTextGenerationSFT(input_mappings={"generation": "answer"}, output_mappings={"messages": "chat"})
    assert run(step, [{"instruction": Q, "answer": "4"}]) == [{
        "instruction": Q, "answer": "4", "prompt": Q, "prompt_id": PROMPT_ID,
        "chat": [{"role": "user", "content": Q}, {"role": "assistant", "content": "4"}],
    }]


def test_chat_sft_rows_extend_the_messages_and_leave_the_input_row_alone():
    row = {"messages": [{"role": "user", "content": Q}], "generation": "4"}
    before = copy.deepcopy(row)
    assert run(FormatChatGenerationSFT(), [row]) == [{
        "messages": [{"role": "user", "content": Q}, {"role": "assistant", "content": "4"}],
        "generation": "4", "prompt": Q, "prompt_id": PROMPT_ID,
    }]
    assert row == before  # a row another branch also gets is not changed under it


def test_conversation_template_rows_and_mappings():
    assert run(ConversationTemplate(), [{"instruction": "Hello", "response": "Hi"}]) == [{
        "instruction": "Hello", "response": "Hi",
        "conversation": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}],
    }]
    step = ConversationTemplate(input_mappings={"response": "generation"}, output_mappings={"conversation": "messages"})
    assert run(step, [{"instruction": "Hello", "generation": "Hi"}]) == [{
        "instruction": "Hello", "generation": "Hi",
        "messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"}],
    }]


# -- what the pipeline check sees ---------------------------------------------------------------------


def test_formatting_steps_declare_required_and_optional_inputs():
    assert FormatTextGenerationDPO().get_inputs() == {
        "system_prompt": False, "instruction": True, "generations": True, "generation_models": False, "ratings": True,
    }
    assert FormatTextGenerationDPO().get_outputs() == {
        "prompt": True, "prompt_id": True, "chosen": True, "chosen_model": False, "chosen_rating": True,
        "rejected": True, "rejected_model": False, "rejected_rating": True,
    }
    assert FormatChatGenerationDPO().get_inputs() == {
        "messages": True, "generations": True, "generation_models": False, "ratings": True,
    }
    assert FormatTextGenerationDPO().optional_inputs == ["system_prompt", "generation_models"]
    assert FormatTextGenerationSFT().get_inputs() == {"system_prompt": False, "instruction": True, "generation": True}
    assert FormatChatGenerationSFT().inputs == ["messages", "generation"]
    assert FormatTextGenerationSFT().outputs == FormatChatGenerationSFT().outputs == ["prompt", "prompt_id", "messages"]
    assert (ConversationTemplate().inputs, ConversationTemplate().outputs) == (["instruction", "response"], ["conversation"])


def test_a_preference_pipeline_passes_the_check_without_the_optional_columns():
    with Pipeline(name="dpo") as pipeline:
        gen_a, gen_b = TextGeneration(llm=DummyLLM()), TextGeneration(llm=DummyLLM())
        group = GroupColumns(columns=["generation", "model_name"], output_columns=["generations", "generation_models"])
        judge = UltraFeedback(llm=DummyLLM(), aspect="overall-rating")
        dpo = FormatTextGenerationDPO()
        keep = KeepColumns(columns=["prompt", "prompt_id", "chosen", "chosen_model", "rejected", "rejected_model"])
        [gen_a, gen_b] >> group >> judge >> dpo >> keep
    pipeline.validate(with_dataset=["instruction"])
    assert dpo.name == "format_text_generation_d_p_o_0"  # distilabel's default name


def test_the_pipeline_check_names_a_formatting_steps_missing_columns():
    with Pipeline(name="sft") as pipeline:
        gen = TextGeneration(llm=DummyLLM())
        FormatTextGenerationDPO(name="dpo")
        gen >> pipeline.steps["dpo"]
    with pytest.raises(DistilflowUserError, match=r"Step 'dpo' needs column\(s\) \['generations', 'ratings'\]"):
        pipeline.validate(with_dataset=["instruction"])
    with Pipeline(name="ok") as pipeline:
        TextGeneration(llm=DummyLLM()) >> FormatTextGenerationSFT() >> ExpandColumns(columns={"messages": "turn"})
    pipeline.validate(with_dataset=["instruction"])
