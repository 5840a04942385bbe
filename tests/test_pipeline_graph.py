"""The pipeline graph: `with Pipeline(...)`, `>>`, routing, `@step`, and every bad graph refused with its fix."""

from __future__ import annotations

import pytest

from distilflow.steps.tasks import TextGeneration
from distilflow.errors import DistilflowUserError
from distilflow.models import DummyLLM
from distilflow.pipeline import Pipeline, routing_batch_function, sample_n_steps
from distilflow.steps import GeneratorStep, GlobalStep, Step, StepInput
from distilflow.steps.decorator import step
from distilflow.typing import RuntimeParameter


class Rows(GeneratorStep):
    columns: list[str] = ["instruction"]
    count: int = 4

    @property
    def outputs(self):
        return self.columns

    def process(self, offset: int = 0):
        rows = [{c: f"{c} {i}" for c in self.columns} for i in range(self.count)]
        for start in range(offset, len(rows), self.batch_size):
            yield rows[start : start + self.batch_size], start + self.batch_size >= len(rows)


class Upper(Step):
    inputs = ["instruction"]
    outputs = ["upper"]

    def process(self, inputs: StepInput):
        yield [{**row, "upper": row["instruction"].upper()} for row in inputs]


class Join(Step):
    inputs = ["upper"]
    outputs = ["joined"]

    def process(self, *inputs: StepInput):
        yield [{"joined": [row["upper"] for row in rows]} for rows in zip(*inputs)]


class Dedup(GlobalStep):
    inputs = ["upper"]
    outputs = ["upper"]

    def process(self, inputs: StepInput):
        yield list({row["upper"]: row for row in inputs}.values())


def test_steps_join_the_pipeline_of_their_with_block_and_get_distilabels_default_names():
    with Pipeline(name="p") as pipeline:
        load = Rows()
        a, b = Upper(), Upper()
        gen = TextGeneration(llm=DummyLLM())
    assert [s.name for s in (load, a, b, gen)] == ["rows_0", "upper_0", "upper_1", "text_generation_0"]
    assert all(s.pipeline is pipeline for s in (load, a, b, gen))
    assert list(pipeline.steps) == ["rows_0", "upper_0", "upper_1", "text_generation_0"]
    outside = Upper()
    assert outside.pipeline is None and outside.name == "upper_0"


def test_rshift_builds_chains_branches_and_merges():
    with Pipeline(name="p") as pipeline:
        load, a, b, join = Rows(), Upper(name="a"), Upper(name="b"), Join(name="join")
        assert (load >> [a, b]) == [a, b]
        assert ([a, b] >> join) is join
    assert pipeline.successors("rows_0") == ["a", "b"]
    assert pipeline.predecessors("join") == ["a", "b"]
    assert pipeline.roots == ["rows_0"] and pipeline.leaves == ["join"]
    assert list(pipeline.in_order()) == ["rows_0", "a", "b", "join"]
    pipeline.validate()


def test_routing_sends_each_batch_to_n_successors_the_same_way_every_run():
    with Pipeline(name="p") as pipeline:
        load = Rows()
        gens = [Upper(name=f"g{i}") for i in range(3)]
        routing = sample_n_steps(2)
        assert (load >> routing >> gens) == gens
    pipeline.validate()
    routing = pipeline.routing("rows_0")  # bound to the step (a copy: `sample_n_steps(2)` itself stays free)
    assert routing.description == "Sample 2 steps from the list of downstream steps." and routing.successors == ["g0", "g1", "g2"]
    first = [routing.route(f"p/rows_0/{i}") for i in range(20)]
    assert all(len(chosen) == 2 and set(chosen) <= {"g0", "g1", "g2"} for chosen in first)
    assert [routing.route(f"p/rows_0/{i}") for i in range(20)] == first  # a re-run routes alike
    assert len({tuple(sorted(c)) for c in first}) > 1  # and it does vary from batch to batch


def test_at_step_builds_step_classes_with_run_time_parameters():
    @step(inputs=["instruction"], outputs=["length"])
    def Length(inputs: StepInput, factor: RuntimeParameter[int], offset: RuntimeParameter[int] = 0):
        """Length of the instruction."""
        yield [{**row, "length": len(row["instruction"]) * factor + offset} for row in inputs]

    @step(inputs=["length"], outputs=["length"], step_type="global")
    def Longest(inputs: StepInput):
        yield [max(inputs, key=lambda row: row["length"])]

    @step(outputs=["n"], step_type="generator")
    def Numbers(offset: int = 0, how_many: RuntimeParameter[int] = 3):
        yield [{"n": i} for i in range(offset, how_many)], True

    assert issubclass(Length, Step) and issubclass(Longest, GlobalStep) and issubclass(Numbers, GeneratorStep)
    assert Length.__doc__ == "Length of the instruction." and Length.__module__ == __name__
    length = Length()
    assert length.runtime_parameters_names["factor"] is False and length.runtime_parameters_names["offset"] is True
    with pytest.raises(DistilflowUserError, match=r"needs run-time parameter\(s\) \['factor'\]"):
        next(length.process_applying_mappings([{"instruction": "abc"}]))
    length.set_runtime_parameters({"factor": 2})
    assert next(length.process_applying_mappings([{"instruction": "abc"}])) == [{"instruction": "abc", "length": 6}]
    assert next(Longest().process_applying_mappings([{"length": 1}, {"length": 5}])) == [{"length": 5}]
    assert list(Numbers(how_many=2).process_applying_mappings(offset=1)) == [([{"n": 1}], True)]
    with pytest.raises(ValueError, match="Invalid step type 'sometimes'"):
        step(step_type="sometimes")
    with pytest.raises(ValueError, match="more than one parameter annotated with `StepInput`"):

        @step(inputs=["a"])
        def Twice(inputs: StepInput, more: StepInput):
            yield inputs


def test_mappings_rename_a_steps_columns_on_the_way_in_and_out():
    upper = Upper(input_mappings={"instruction": "question"}, output_mappings={"upper": "shout"})
    rows = next(upper.process_applying_mappings([{"question": "hi", "instruction": "kept"}]))
    assert rows == [{"question": "hi", "instruction": "kept", "shout": "HI"}]


# -- bad graphs: refused before anything runs, with the step and the fix ------------------------


def _refused(build, match: str) -> None:
    with pytest.raises(DistilflowUserError, match=match):
        with Pipeline(name="bad") as pipeline:
            build()
        pipeline.validate()


def test_a_cycle_is_refused_naming_it():
    def build():
        load, a, b = Rows(), Upper(name="a"), Upper(name="b")
        load >> a >> b >> a

    _refused(build, r"has a cycle: a >> b >> a")


def test_missing_inputs_are_refused_naming_the_step_and_the_mapping_fix():
    def build():
        Rows(columns=["prompt"]) >> Upper(name="up")

    _refused(build, r"Step 'up' needs column\(s\) \['instruction'\].*input_mappings=\{'instruction'")


def test_a_mapping_to_an_existing_column_satisfies_the_check():
    with Pipeline(name="ok") as pipeline:
        Rows(columns=["prompt"]) >> Upper(input_mappings={"instruction": "prompt"})
    pipeline.validate()


def test_duplicate_names_are_refused():
    with pytest.raises(DistilflowUserError, match=r"already has a step named 'same'.*own `name=`"):
        with Pipeline(name="bad"):
            Upper(name="same")
            Upper(name="same")


def test_a_step_outside_the_pipeline_cannot_be_connected():
    outside = Upper(name="outside")
    with pytest.raises(DistilflowUserError, match=r"'outside' belongs to no pipeline.*inside `with Pipeline"):
        with Pipeline(name="p"):
            Rows() >> outside
    with pytest.raises(DistilflowUserError, match=r"'outside' is not in a pipeline"):
        outside >> Upper(name="other")


def test_a_root_that_makes_no_rows_is_refused_unless_a_dataset_is_given():
    with Pipeline(name="p") as pipeline:
        Upper(name="first") >> Join()
    with pytest.raises(DistilflowUserError, match=r"'first' has no predecessor and makes no rows.*run\(dataset="):
        pipeline.validate()
    pipeline.validate(with_dataset=["instruction"])


def test_branches_that_cut_different_batches_are_merged_by_row_position():
    with Pipeline(name="p") as pipeline:
        a = Rows(name="small", batch_size=10) >> Upper(name="a")
        b = Rows(name="large", batch_size=50) >> Upper(name="b")
        [a, b] >> Join(name="join")
        load = Rows(name="load")
        plain, before_dedup, dedup = Upper(name="plain"), Upper(name="before_dedup"), Dedup(name="dedup")
        load >> [plain, before_dedup]
        before_dedup >> dedup
        [plain, dedup] >> Join(name="join_global")
        load >> [Upper(name="c"), Upper(name="d")] >> Join(name="join_same")
    pipeline.validate()  # distilabel accepts both: rows are paired by position (runner/row_merge.py)
    assert pipeline.merges_by_rows("join") and pipeline.merges_by_rows("join_global")
    assert not pipeline.merges_by_rows("join_same")  # batch i of each, as cut by one loader


def test_routing_that_routes_nowhere_is_refused():
    def build():
        Rows() >> sample_n_steps(3) >> [Upper(name="a"), Upper(name="b")]

    _refused(build, r"routes each batch to 3 of \['a', 'b'\] successors")
    with pytest.raises(DistilflowUserError, match=r"sample_n_steps\(0\)"):
        sample_n_steps(0)


def test_a_routing_function_choosing_no_successor_fails_naming_the_fix():
    @routing_batch_function
    def nobody(steps: list[str]) -> list[str]:
        return []

    with Pipeline(name="p"):
        load = Rows()
        load >> nobody >> [Upper(name="a"), Upper(name="b")]
    with pytest.raises(DistilflowUserError, match=r"chose \[\].*fix the routing function"):
        nobody.route("p/rows_0/0")


def test_a_generator_cannot_have_predecessors():
    def build():
        Rows(name="first") >> Rows(name="second")

    _refused(build, r"'second' is a generator.*start the graph with it")


@routing_batch_function
def first_successor(steps: list[str]) -> list[str]:
    """The first successor only."""
    return steps[:1]


def test_a_module_level_routing_function_serves_every_pipeline_that_uses_it():
    pipelines = []
    for name in ("one", "two"):
        with Pipeline(name=name) as pipeline:
            Rows(name="load") >> first_successor >> [Upper(name=f"{name}_a"), Upper(name=f"{name}_b")]
        pipeline.validate()
        pipelines.append(pipeline)
    for pipeline in pipelines:
        routing = pipeline.routing("load")
        assert routing.step is pipeline.steps["load"] and routing.route("seed") == [f"{pipeline.name}_a"]
    assert first_successor.step is None  # the function itself stays unbound, ready for the next pipeline
