"""Which of distilabel 1.5.3's tests run against distilflow, and which are left out and why.

Paths are relative to the source distribution's root. A test is left out only when it reads
distilabel's Pipeline internals (`pipeline.dag`, `pipeline._dry_run`, `pipeline._run_step`, ...),
checks its serialization format, the exact wording or type of its error messages, the exact wording
of a prompt (distilflow's prompts are written in its own words, with the same content and answer
format), or a feature distilflow does not have yet (each named below); everything that asserts row
shapes, metadata, formatting, arguments or behaviour runs.
"""

FILES = [
    "tests/unit/steps/tasks/test_base.py",
    "tests/unit/steps/tasks/test_decorator.py",
    "tests/unit/steps/tasks/test_text_generation.py",
    "tests/unit/steps/tasks/test_image_generation.py",
    "tests/unit/steps/tasks/test_text_generation_with_image.py",
    "tests/unit/steps/tasks/test_ultrafeedback.py",
    "tests/unit/steps/tasks/evol_instruct/test_base.py",
    # DEITA: flows/deita.py
    "tests/unit/steps/tasks/evol_quality/test_base.py",
    "tests/unit/steps/tasks/test_complexity_scorer.py",
    "tests/unit/steps/tasks/test_quality_scorer.py",
    "tests/unit/steps/test_deita.py",
    # APIGen: flows/apigen.py
    "tests/unit/steps/tasks/apigen/test_generator.py",
    "tests/unit/steps/tasks/apigen/test_execution_checker.py",
    "tests/unit/steps/tasks/apigen/test_semantic_checker.py",
    "tests/unit/steps/tasks/apigen/test_utils.py",
    "tests/unit/steps/columns/test_combine.py",
    "tests/unit/steps/columns/test_expand.py",
    "tests/unit/steps/columns/test_group.py",
    "tests/unit/steps/columns/test_keep.py",
    "tests/unit/steps/columns/test_merge.py",
    "tests/unit/steps/columns/test_utils.py",
    "tests/unit/steps/formatting/test_conversation.py",
    "tests/unit/steps/formatting/test_dpo.py",
    "tests/unit/steps/formatting/test_sft.py",
    "tests/unit/steps/test_decorator.py",
    # test_utils.py and test_huggingface.py import Hugging Face `datasets` (and pandas) themselves.
    "tests/unit/steps/generators/test_data.py",
    "tests/unit/steps/generators/test_data_sampler.py",
    "tests/unit/steps/generators/test_utils.py",
    "tests/unit/steps/generators/test_huggingface.py",
    # the Distiset (Hugging Face datasets: splits, save/load locally and through fsspec, the card)
    "tests/unit/test_distiset.py",
    # steps and run-time parameters
    "tests/unit/steps/test_base.py",
    "tests/unit/mixins/test_runtime_parameters.py",
    # pipelines through the public API, run as Prefect flow runs
    "tests/integration/test_pipe_simple.py",
    "tests/integration/test_routing_batch_function.py",
    "tests/integration/test_branching_missaligmnent.py",
    "tests/integration/test_dataset_without_step.py",
    "tests/integration/test_generator_and_sampler.py",
    "tests/integration/test_dry_run.py",
    "tests/integration/test_cache.py",
    "tests/integration/test_caching_steps.py",
    "tests/integration/test_multiple_replicas.py",
    "tests/integration/test_using_fs_to_pass_data.py",
    # Not yet: evol_instruct/test_generator.py (EvolInstructGenerator is a generator task: it comes
    # with generator steps and pipelines), and the tests of tasks distilflow does not have.
]

# node id (as pytest prints it) -> why it is left out
EXCLUDED: dict[str, str] = {
    'tests/unit/steps/tasks/test_base.py::TestTask::test_model_post_init_raise_valuerror_use_offline_batch_generation': (
        "offline batch generation (a provider's batch API) is not a distilflow feature: the argument is accepted and requests go online, so no task refuses it"
    ),
    'tests/unit/steps/tasks/test_base.py::TestTask::test_is_global_with_offline_batch_generation': (
        "offline batch generation is not a distilflow feature (see above); `is_global` belongs to distilabel's Pipeline internals"
    ),
    'tests/unit/steps/tasks/test_base.py::TestTask::test_with_errors': (
        "wording and type of error messages: distilflow does not warn about a step built without a pipeline (run_tasks and flows run steps without one), and a missing `llm` is a one-line InvalidSettingsError (a ValueError) rather than pydantic's ValidationError report"
    ),
    'tests/unit/steps/tasks/test_base.py::TestTask::test_serialization': (
        "distilabel's serialization format (`dump()`, type_info): distilflow does not serialize steps that way"
    ),
    'tests/unit/steps/tasks/test_decorator.py::TestTaskDecorator::test_decoraror_raise_if_no_docstring': (
        "wording of the error message (distilflow's names the function and the fix; same DistilflowUserError/ValueError)"
    ),
    'tests/unit/steps/tasks/test_decorator.py::TestTaskDecorator::test_decorator_raise_if_docstring_invalid': (
        "wording of the error message (distilflow's says what is missing and how to write it)"
    ),
    'tests/unit/steps/tasks/test_decorator.py::TestTaskDecorator::test_decorator_raise_if_no_system_prompt_or_user_message_template': (
        "wording of the error message (distilflow's names the missing key)"
    ),
    'tests/unit/steps/tasks/test_decorator.py::TestTaskDecorator::test_decorator_raise_if_template_invalid_placeholders': (
        "wording of the error message (distilflow's names the unknown placeholders and the inputs)"
    ),
    'tests/unit/steps/tasks/evol_instruct/test_base.py::TestEvolInstruct::test_with_errors': (
        "wording and type of error messages: a missing `num_evolutions` (required, as in distilabel) is a one-line InvalidSettingsError (a ValueError) naming it, not pydantic's ValidationError report; no pipeline warning (see TestTask::test_with_errors)"
    ),
    'tests/unit/steps/tasks/evol_instruct/test_base.py::TestEvolInstruct::test_serialization': (
        "distilabel's serialization format (`dump()`, type_info, runtime_parameters_info): distilflow does not serialize steps that way"
    ),
    'tests/unit/steps/tasks/evol_quality/test_base.py::TestEvolQuality::test_with_errors': (
        "wording and type of error messages: a missing `num_evolutions` (required, as in distilabel) is a one-line InvalidSettingsError (a ValueError) naming it, not pydantic's ValidationError report; no pipeline warning (see TestTask::test_with_errors)"
    ),
    'tests/unit/steps/tasks/evol_quality/test_base.py::TestEvolQuality::test_serialization': (
        "distilabel's serialization format (`dump()`, type_info, runtime_parameters_info): distilflow does not serialize steps that way"
    ),
    'tests/unit/steps/tasks/test_complexity_scorer.py::TestComplexityScorer::test_format_input': (
        "exact prompt wording: the test compares the whole prompt with distilabel's template text, and distilflow's prompts are its own words (same content: the numbered instructions, the 1..n+1 scale, the `[i] Score: s` answer format, checked in tests/test_deita.py)"
    ),
    'tests/unit/steps/tasks/test_quality_scorer.py::TestQualityScorer::test_format_input': (
        "exact prompt wording: the test compares the whole prompt with distilabel's template text, and distilflow's prompts are its own words (same content: the question, the numbered responses, the 1..n+1 scale, the `[i] Score: s` answer format, checked in tests/test_deita.py)"
    ),
    'tests/unit/steps/generators/test_huggingface.py::TestLoadDataFromHub::test_runtime_parameters[True-IterableDataset]': (
        "reads the dataset distilabel-internal-testing/instruction-dataset-mini from the real Hugging Face Hub (distilabel skips it unless DISTILABEL_RUN_SLOW_TESTS is set); distilflow's tests never reach the Hub: LoadDataFromHub is tested against the Hub double in tests/test_distiset.py"
    ),
    'tests/unit/steps/generators/test_huggingface.py::TestLoadDataFromHub::test_runtime_parameters[False-Dataset]': (
        "reads the dataset distilabel-internal-testing/instruction-dataset-mini from the real Hugging Face Hub (distilabel skips it unless DISTILABEL_RUN_SLOW_TESTS is set); distilflow's tests never reach the Hub: LoadDataFromHub is tested against the Hub double in tests/test_distiset.py"
    ),
    'tests/unit/steps/generators/test_huggingface.py::TestLoadDataFromHub::test_dataset_outputs': (
        "reads the dataset distilabel-internal-testing/instruction-dataset-mini from the real Hugging Face Hub (distilabel skips it unless DISTILABEL_RUN_SLOW_TESTS is set); distilflow's tests never reach the Hub: LoadDataFromHub is tested against the Hub double in tests/test_distiset.py"
    ),
    'tests/unit/steps/test_base.py::TestStep::test_signature': (
        "`signature` is distilabel's cache identity, a hash of its serialization format (`dump()`); distilflow's step cache is keyed by the step's code, settings and inputs (src/distilflow/runner/step_cache.py)"
    ),
    'tests/unit/steps/test_base.py::TestStep::test_connect': (
        "reads `pipeline.dag` (distilabel's Pipeline internals); the same graph is checked through the public API in tests/test_pipeline_graph.py"
    ),
    'tests/unit/steps/test_base.py::TestStep::test_creating_step_without_pipeline': (
        'distilflow runs steps without a pipeline by design (`run_tasks`, the flows, `task.process`): a warning on every such step would be noise on every flow run; `>>` without a pipeline is refused with the fix'
    ),
    'tests/unit/steps/test_base.py::TestStepSerialization::test_step_dump': (
        "distilabel's serialization format (`dump()`, type_info): distilflow does not serialize steps that way"
    ),
    'tests/unit/steps/test_base.py::TestStepSerialization::test_step_from_dict': (
        "distilabel's serialization format (`from_dict`, type_info): distilflow does not serialize steps that way"
    ),
    'tests/unit/steps/test_base.py::TestStepSerialization::test_step_from_dict_without_pipeline_context': (
        "distilabel's serialization format (`from_dict`, type_info): distilflow does not serialize steps that way"
    ),
    'tests/integration/test_dataset_without_step.py::test_pipeline_run_without_generator_step[dataset0]': (
        'reads `len(pipeline.dag)` (distilabel adds a loader node to its DAG); the same runs (list, `datasets.Dataset`, DataFrame) are in tests/test_pipeline_run.py'
    ),
    'tests/integration/test_dataset_without_step.py::test_pipeline_run_without_generator_step[dataset1]': (
        'reads `len(pipeline.dag)` (see above)'
    ),
    'tests/integration/test_dataset_without_step.py::test_pipeline_run_without_generator_step[dataset2]': (
        'reads `len(pipeline.dag)` (see above)'
    ),
    'tests/integration/test_dry_run.py::test_dry_run': (
        "reads `pipeline._dry_run` and distilabel's dry-run batch size internals; a dry run (one batch through every step, no answer cache) is tested in tests/test_pipeline_cli.py"
    ),
    'tests/integration/test_caching_steps.py::test_cache_with_step_cache_false': (
        "spies on `pipeline._run_step` (distilabel's internals) to count steps run; a step's use_cache=False is tested in tests/test_pipeline_run.py"
    ),
    'tests/integration/test_caching_steps.py::test_cache_with_step_changing': (
        "spies on `pipeline._run_step` (distilabel's internals)"
    ),
    'tests/integration/test_caching_steps.py::test_cache_with_intermediate_step_cache_false': (
        "spies on `pipeline._run_step` (distilabel's internals)"
    ),
    'tests/integration/test_caching_steps.py::test_cache_adding_step': (
        "spies on `pipeline._run_step` (distilabel's internals)"
    ),
    'tests/integration/test_caching_steps.py::test_cache_adding_step_with_multiple_predecessor': (
        "spies on `pipeline._run_step` (distilabel's internals)"
    ),
    'tests/integration/test_caching_steps.py::test_cache_with_offset': (
        "patches `pipeline._process_batch` (distilabel's internals) to stop a run mid-way; a killed run that resumes is tested in tests/test_pipeline_run.py (test_a_killed_pipeline_resumes_sending_only_what_was_never_answered)"
    ),
    'tests/unit/test_distiset.py::TestDistiset::test_dataset_card': (
        "the card's tags: distilflow's cards carry distilabel's ['synthetic', 'distilabel', 'rlaif'] and also 'distilflow' (so datasets made with it can be found); the test compares the whole list. The size category is the same, checked in tests/test_distiset.py"
    ),
}
