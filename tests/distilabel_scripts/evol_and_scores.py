# distilabel docs: "DEITA" building blocks (evolutions, answers, the two scorers), without the embeddings step.
from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import ExpandColumns, LoadDataFromDicts
from distilabel.steps.tasks import ComplexityScorer, EvolInstruct, EvolQuality, QualityScorer, TextGeneration

with Pipeline(name="evol-and-scores") as pipeline:
    load = LoadDataFromDicts(data=[{"instruction": f"How do I sort a list of {i} numbers?"} for i in range(3)])
    evol_instruction = EvolInstruct(
        llm=OpenAILLM(model="gpt-4o-mini"), num_evolutions=2, store_evolutions=True,
        include_original_instruction=True,
    )
    instruction_complexity = ComplexityScorer(
        llm=OpenAILLM(model="gpt-4o-mini"),
        input_mappings={"instructions": "evolved_instructions"},
        output_mappings={"scores": "complexity_scores", "model_name": "scorer_model"},
    )
    expand = ExpandColumns(
        columns={"evolved_instructions": "evolved_instruction", "complexity_scores": "complexity_score"}
    )
    answer = TextGeneration(llm=OpenAILLM(model="gpt-4o-mini"), input_mappings={"instruction": "evolved_instruction"})
    evol_response = EvolQuality(
        llm=OpenAILLM(model="gpt-4o-mini"), num_evolutions=1,
        input_mappings={"instruction": "evolved_instruction", "response": "generation"},
    )
    load >> evol_instruction >> instruction_complexity >> expand >> answer >> evol_response

if __name__ == "__main__":
    rows = pipeline.run(use_cache=False)["default"]["train"]
    assert len(rows) == 3 * 3, len(rows)  # the original and two evolutions of each instruction
    assert all("complexity_score" in row and row["evolved_response"] for row in rows), rows[0]
    assert QualityScorer(llm=OpenAILLM(model="gpt-4o-mini")).outputs == ["scores", "model_name"]
    print("rows:", len(rows))
