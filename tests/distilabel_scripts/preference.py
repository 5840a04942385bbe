# distilabel docs: "UltraFeedback" sample pipeline (two generators, grouped, judged, formatted for DPO).
from distilabel.models import OpenAILLM
from distilabel.pipeline import Pipeline
from distilabel.steps import FormatTextGenerationDPO, GroupColumns, LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration, UltraFeedback

with Pipeline(name="ultrafeedback-pipeline") as pipeline:
    load_dataset = LoadDataFromDicts(data=[{"instruction": f"Explain idea number {i}."} for i in range(6)])
    generators = [
        TextGeneration(name=f"text_generation_{model}", llm=OpenAILLM(model=model))
        for model in ("gpt-4o-mini", "gpt-4o")
    ]
    combine_generations = GroupColumns(
        columns=["generation", "model_name"], output_columns=["generations", "generation_models"]
    )
    ultrafeedback = UltraFeedback(aspect="overall-rating", llm=OpenAILLM(model="gpt-4o"))
    format_dpo = FormatTextGenerationDPO()
    load_dataset >> generators >> combine_generations >> ultrafeedback >> format_dpo

if __name__ == "__main__":
    distiset = pipeline.run(use_cache=False)
    rows = distiset["default"]["train"].to_list()
    assert len(rows) == 6
    assert {"prompt", "chosen", "rejected"} <= set(rows[0]), sorted(rows[0])
    print("rows:", len(rows))
