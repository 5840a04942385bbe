"""The project installs one import name, `distilflow`, and its public API is what it says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

import distilflow

ROOT = Path(__file__).resolve().parents[1]

PUBLIC = {
    "DISTILABEL_METADATA_KEY", "LLM", "AsyncImageGenerationModel", "AsyncLLM", "BatchesFailedError", "ChatGeneration",
    "DatasetWriter", "DistilflowError", "DistilflowUserError", "DummyAsyncLLM", "DummyImageGenerationModel", "DummyLLM",
    "EvolInstruct", "ImageGeneration", "ImageGenerationModel", "ImageTask", "InferenceEndpointsLLM",
    "ModelConfigurationError", "ModelRequestError", "OpenAIImageGeneration", "OpenAILLM", "RunOptions", "RunResult",
    "Simulator", "StepSummary", "Task", "TextGeneration", "TextGenerationWithImage", "UltraFeedback", "answer_store",
    "read_rows", "run_tasks", "save_image", "task", "write_rows",
    # pipelines: the graph, its steps (distilabel's names), routing and what a run returns
    "Pipeline", "Distiset", "routing_batch_function", "sample_n_steps", "Step", "GlobalStep", "GeneratorStep",
    "StepInput", "StepOutput", "GeneratorStepOutput", "step", "KeepColumns", "GroupColumns", "MergeColumns",
    "CombineOutputs", "ExpandColumns", "FormatTextGenerationDPO", "FormatTextGenerationSFT", "FormatChatGenerationDPO",
    "FormatChatGenerationSFT", "ConversationTemplate", "LoadDataFromDicts", "LoadDataFromFileSystem",
    "LoadDataFromDisk", "LoadDataFromHub", "DataSampler", "make_generator_step",
    # the tasks and steps of the ported pipelines (flows/deita.py, flows/apigen.py)
    "ComplexityScorer", "QualityScorer", "EvolQuality", "DeitaFiltering", "APIGenGenerator", "APIGenSemanticChecker",
    "APIGenExecutionChecker", "KeepPassingRows",
}


def test_the_public_api_is_curated_and_every_name_resolves():
    assert set(distilflow.__all__) == PUBLIC
    for name in distilflow.__all__:
        assert getattr(distilflow, name) is not None, name
    for module in ("distilflow.steps.tasks", "distilflow.models", "distilflow.runner", "distilflow.storage",
                   "distilflow.steps", "distilflow.pipeline"):
        imported = __import__(module, fromlist=["__all__"])
        for name in imported.__all__:
            assert hasattr(imported, name), f"{module}.{name} is in __all__ but missing"


def test_import_distilflow_does_not_load_prefect(tmp_path):
    code = "import sys, distilflow; distilflow.TextGeneration; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


IMPORT_EACH_FIRST = """
import importlib, json, pkgutil, sys
import distilflow, distilflow.steps.tasks

names = sorted({m.name for package in (distilflow, distilflow.steps.tasks)
                for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")
                if not m.name.endswith("__main__")})
failed = {}
for name in names:
    for loaded in [m for m in sys.modules if m == "distilflow" or m.startswith("distilflow.")]:
        del sys.modules[loaded]  # each module imported first, as a user's `import` would
    try:
        importlib.import_module(name)
    except Exception as e:
        failed[name] = f"{type(e).__name__}: {e}"
print(json.dumps({"modules": len(names), "failed": failed}))
"""


def test_every_module_imports_first_without_an_import_cycle(tmp_path):
    out = subprocess.run([sys.executable, "-c", IMPORT_EACH_FIRST], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["modules"] > 100 and report["failed"] == {}, report


def test_distilabels_module_map_resolves_under_distilflow():
    """The module paths distilabel 1.5.3's docs and examples import from, with the package renamed."""
    import importlib

    paths = [
        "distilflow.models", "distilflow.models.llms", "distilflow.models.llms.base", "distilflow.models.llms.openai",
        "distilflow.models.image_generation", "distilflow.models.image_generation.base",
        "distilflow.models.image_generation.utils", "distilflow.models.mixins", "distilflow.models.mixins.magpie",
        "distilflow.llms", "distilflow.steps", "distilflow.steps.base", "distilflow.steps.typing",
        "distilflow.steps.columns", "distilflow.steps.formatting", "distilflow.steps.generators.data",
        "distilflow.steps.generators.data_sampler", "distilflow.steps.generators.huggingface",
        "distilflow.steps.generators.utils", "distilflow.steps.decorator", "distilflow.steps.deita",
        "distilflow.steps.tasks", "distilflow.steps.tasks.base", "distilflow.steps.tasks.typing",
        "distilflow.steps.tasks.text_generation", "distilflow.steps.tasks.text_generation_with_image",
        "distilflow.steps.tasks.ultrafeedback", "distilflow.steps.tasks.evol_instruct.base",
        "distilflow.steps.tasks.evol_instruct.utils", "distilflow.steps.tasks.evol_quality.base",
        "distilflow.steps.tasks.apigen.utils", "distilflow.steps.tasks.structured_outputs.outlines",
        "distilflow.typing", "distilflow.pipeline", "distilflow.pipeline.local", "distilflow.distiset",
        "distilflow.mixins.runtime_parameters", "distilflow.utils.requirements", "distilflow.constants",
        "distilflow.errors", "distilflow.exceptions",
    ]
    for path in paths:
        module = importlib.import_module(path)
        for name in getattr(module, "__all__", []):
            assert hasattr(module, name), f"{path}.{name}"
    # where distilabel's path is not a concept's home, the module there is an alias that says what it hands out
    aliases = ["distilflow.llms", "distilflow.steps.typing", "distilflow.steps.tasks.typing", "distilflow.pipeline.local",
               "distilflow.steps.generators.huggingface", "distilflow.steps.tasks.structured_outputs.outlines",
               "distilflow.steps.tasks.apigen.utils"]
    for path in aliases:
        module = importlib.import_module(path)
        assert module.__all__ and all(getattr(module, name).__module__ != path for name in module.__all__
                                      if hasattr(getattr(module, name), "__module__")), path


SCRATCH_SCRIPT = """
import json
import tasks, storage, flows.pipeline                      # this project's own modules
from distilflow import DummyLLM, TextGeneration, run_tasks, read_rows
from distilflow.storage import write_rows

result = run_tasks(TextGeneration(llm=DummyLLM()), [{"instruction": "hi"}], result_storage="answers")
write_rows("out.jsonl", result.rows)
print(json.dumps({"mine": [tasks.WHO, storage.WHO, flows.pipeline.WHO],
                  "rows": [r["generation"] for r in read_rows("out.jsonl")]}))
"""


def test_a_project_with_its_own_tasks_flows_and_storage_still_uses_distilflow(tmp_path):
    (tmp_path / "tasks.py").write_text("WHO = 'my tasks'\n")
    (tmp_path / "storage.py").write_text("WHO = 'my storage'\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "__init__.py").write_text("")
    (tmp_path / "flows" / "pipeline.py").write_text("WHO = 'my flows'\n")
    (tmp_path / "main.py").write_text(SCRATCH_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "main.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["mine"] == ["my tasks", "my storage", "my flows"]
    assert seen["rows"] == [DummyRowText.of({"instruction": "hi"})]


class DummyRowText:
    @staticmethod
    def of(row) -> str:
        from distilflow import DummyLLM

        llm = DummyLLM()
        return llm.generate([[{"role": "user", "content": row["instruction"]}]])[0]["generations"][0]


def test_the_wheel_installs_only_distilflow(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = tmp_path.glob("distilflow-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}
    assert {t for t in top_level if not t.endswith(".dist-info")} == {"distilflow"}
    for module in ("distilflow/__init__.py", "distilflow/steps/tasks/base.py", "distilflow/runner/pipeline.py",
                   "distilflow/storage/answers.py", "distilflow/flows/text_generation.py",
                   "distilflow/flows/data/instructions.jsonl", "distilflow/simulator/__main__.py"):
        assert module in names, module
    # every module of the checkout's packages is in the wheel (a new subpackage must be listed)
    for folder, installed_as in (("tasks", "distilflow/steps/tasks"), ("storage", "distilflow/storage"),
                                 ("flows", "distilflow/flows"), ("src/distilflow", "distilflow")):
        for path in (ROOT / folder).rglob("*.py"):
            assert f"{installed_as}/{path.relative_to(ROOT / folder).as_posix()}" in names, path


def test_prefect_yaml_parses():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert isinstance(config.get("deployments"), list)
