"""Which of distilabel 1.5.3's unit tests run against distilflow, and which are left out and why.

Paths are relative to the source distribution's root. A test is left out only when it checks
distilabel's Pipeline internals, its serialization format, the exact wording or type of its error
messages, the exact wording of a prompt (distilflow's prompts are written in its own words, with the
same content and answer format), or a feature distilflow does not have (each named below);
everything that asserts row shapes, metadata, formatting, arguments or behaviour runs.
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
        "LoadDataFromHub reads from the Hugging Face Hub over the network, which distilflow's loaders do not do (distilabel skips these unless DISTILABEL_RUN_SLOW_TESTS is set)"
    ),
    'tests/unit/steps/generators/test_huggingface.py::TestLoadDataFromHub::test_runtime_parameters[False-Dataset]': (
        "LoadDataFromHub reads from the Hugging Face Hub over the network, which distilflow's loaders do not do (distilabel skips these unless DISTILABEL_RUN_SLOW_TESTS is set)"
    ),
    'tests/unit/steps/generators/test_huggingface.py::TestLoadDataFromHub::test_dataset_outputs': (
        "LoadDataFromHub reads from the Hugging Face Hub over the network, which distilflow's loaders do not do (distilabel skips these unless DISTILABEL_RUN_SLOW_TESTS is set)"
    ),
}
