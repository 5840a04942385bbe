"""A pipeline as a command and a deployable flow: `pipeline.main()` and `pipeline.as_flow()`.

    with Pipeline(name="my-dataset") as pipeline:
        ...
    if __name__ == "__main__":
        pipeline.main()      # python my_pipeline.py --output s3://bucket/rows.jsonl --gen.input-batch-size 20

Every step's run-time parameters become typed flags (`--<step>.<parameter>`, a model's
`--<step>.llm.generation-kwargs '{"temperature": 0.7}'`) and, for a deployment, fields of the
flow's parameter form in the Prefect UI. The run streams each leaf step's rows to `--output`
(one leaf: that file; several: `<output>/<leaf>.jsonl`), with the exit statuses of the flows:
0 complete, 3 written with failed rows, 2 bad input or configuration, 1 failed (nothing written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.fields import FieldInfo

from distilflow.errors import DistilflowUserError
from distilflow.runner.cli import HubPublishing, RunSettings, main
from distilflow.typing import RUNTIME_PARAMETER

__all__ = ["pipeline_flow", "pipeline_main", "pipeline_parameters"]

_RESERVED = {"output", "dry_run", "run", "push_to_hub", "private"}
#: run-time parameters that are distilabel's and mean nothing here (Ray resources, provider batch APIs)
_NOT_FLAGS = {"resources", "use_offline_batch_generation", "offline_batch_generation_block_until_done"}


def pipeline_parameters(pipeline: Any) -> type[BaseModel]:
    """The parameters of a run of `pipeline`: output, dry run, `--run.*`, and each step's run-time parameters."""
    fields: dict[str, Any] = {
        "output": (Union[str, None], Field(default=None, description=(
            f"Where the rows go (.jsonl or .parquet, a path or s3:// URI); default output/{pipeline.name}.jsonl "
            f"(several leaf steps: output/{pipeline.name}/<step>.jsonl).")
        )),
        "dry_run": (bool, Field(default=False, description="Run one batch of 3 rows without the cache and print the rows.")),
        "run": (RunSettings, Field(default_factory=RunSettings)),
        **{name: (field.annotation, field) for name, field in HubPublishing.model_fields.items()},
    }
    for name, step in pipeline.steps.items():
        model = _settings_model(step, f"{_field_name(name)}_parameters")
        if model is not None:
            fields[_field_name(name)] = (model, Field(default_factory=model, description=f"Step '{name}'"))
    return create_model(f"{_class_name(pipeline.name)}Parameters", __doc__=pipeline.description or
                        f"Run the pipeline '{pipeline.name}'.", **fields)


def pipeline_flow(pipeline: Any, params_model: Union[type[BaseModel], None] = None) -> Any:
    """A Prefect flow named after the pipeline whose one parameter, `params`, sets every step and the run."""
    from prefect import flow, get_run_logger
    from prefect.task_runners import ThreadPoolTaskRunner

    from distilflow.runner.graph import BATCH_THREADS
    from distilflow.runner.to_dataset import run_pipeline_to_dataset, user_error_state

    params_model = params_model or pipeline_parameters(pipeline)

    def run_pipeline_flow(params: params_model = params_model()) -> Any:  # type: ignore[valid-type]  # noqa: B008 - the form Prefect shows
        try:
            _apply(pipeline, params)
            options = params.run.options()  # the graph is checked by the run, before any request
            return run_pipeline_to_dataset(pipeline, _outputs(pipeline, params.output), options, get_run_logger(),
                                           dry_run=params.dry_run, push_to_hub=params.push_to_hub,
                                           private=params.private)
        except DistilflowUserError as e:
            return user_error_state(e)

    run_pipeline_flow.__annotations__ = {"params": params_model, "return": Any}
    return flow(run_pipeline_flow, name=pipeline.name, description=pipeline.description,
                task_runner=ThreadPoolTaskRunner(max_workers=BATCH_THREADS), persist_result=False)


def pipeline_main(pipeline: Any, argv: Union[list[str], None] = None) -> NoReturn:
    params_model = pipeline_parameters(pipeline)
    main(pipeline_flow(pipeline, params_model), params_model, argv)


def _apply(pipeline: Any, params: BaseModel) -> None:
    for name, step in pipeline.steps.items():
        values = getattr(params, _field_name(name), None)
        if values is not None:
            step.set_runtime_parameters(values.model_dump(exclude_none=True))


def _outputs(pipeline: Any, output: Union[str, None]) -> dict[str, str]:
    leaves = pipeline.leaves
    if len(leaves) == 1:
        return {leaves[0]: output or f"output/{pipeline.name}.jsonl"}
    base = output or f"output/{pipeline.name}"
    suffix = Path(base).suffix if Path(base).suffix in (".jsonl", ".parquet") else ".jsonl"
    directory = base[: -len(suffix)] if base.endswith(suffix) else base
    return {leaf: f"{directory.rstrip('/')}/{leaf}{suffix}" for leaf in leaves}


def _settings_model(owner: Any, model_name: str) -> Union[type[BaseModel], None]:
    """A model of `owner`'s run-time parameters (a step's, or its model client's), each defaulting to its value now."""
    fields: dict[str, Any] = {}
    for name, optional in owner.runtime_parameters_names.items():
        if name in _NOT_FLAGS:
            continue
        value = getattr(owner, name, None)
        if isinstance(optional, dict) and name != "generation_kwargs":  # a nested object with its own (the llm)
            nested = _settings_model(value, f"{model_name}_{name}")
            if nested is not None:
                fields[name] = (nested, Field(default_factory=nested))
            continue
        info = type(owner).model_fields.get(name)
        annotation = _plain(info.annotation) if info is not None else Any
        constraints = [m for m in (info.metadata if info is not None else []) if m != RUNTIME_PARAMETER]
        if constraints:  # PositiveInt's > 0: a bad flag is refused by the command line, before a run starts
            annotation = Annotated[(annotation, *constraints)]
        if "SecretStr" in str(annotation) or name == "api_key":
            continue  # keys come from the environment: never a flag, a form default or a deployment file
        if name == "generation_kwargs":
            annotation = dict[str, Any]
        fields[name] = (Union[annotation, None], Field(default=value, description=_description(owner, name)))
    if not fields:
        return None
    return create_model(model_name, __config__=ConfigDict(extra="forbid"), **fields)


def _plain(annotation: Any) -> Any:
    """`RuntimeParameter[int]` (an Annotated Optional) -> int; constraints (`PositiveInt`'s > 0) kept."""
    metadata = getattr(annotation, "__metadata__", ())
    if RUNTIME_PARAMETER in metadata:
        kept = tuple(m for m in metadata if m != RUNTIME_PARAMETER and not isinstance(m, FieldInfo))
        annotation = Annotated[(get_args(annotation)[0], *kept)] if kept else get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) is Union and len(args) == 1:
        return _plain(args[0])
    return annotation


def _description(owner: Any, name: str) -> str:
    field = type(owner).model_fields.get(name)
    return (field.description if field is not None and field.description else name.replace("_", " ")).strip()


def _field_name(step_name: str) -> str:
    name = step_name.replace("-", "_")
    return f"step_{name}" if name in _RESERVED or not name.isidentifier() else name


def _class_name(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part) or "Pipeline"
