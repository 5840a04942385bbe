"""The dataset card of a Distiset: what a reader of the dataset on the Hub (or on disk) sees first.

YAML metadata the Hub reads (`size_categories`, `tags`), per configuration one record and the
`datasets.load_dataset` call that reads it, and how the data was made when the Distiset comes
from a run: the pipeline's graph, each step's model and generation settings (from its
`pipeline.yaml`, which never holds secrets), rows and tokens per step, and the Prefect flow run.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard

    from distilflow.distiset import Distiset

__all__ = ["distiset_card", "size_category"]

TAGS = ["synthetic", "distilabel", "rlaif", "distilflow"]
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
_VALUE_CHARS = 300

_TEMPLATE = """---
{{ metadata }}
---

# {{ repo_id }}

This dataset was generated with distilflow: distilabel's
pipelines, run as Prefect flows.
{% for name, record in records %}
## Configuration `{{ name }}`

A record:

```json
{{ record }}
```

```python
from datasets import load_dataset

ds = load_dataset("{{ repo_id }}", "{{ name }}", split="train")
```
{% endfor %}
{%- if made %}
## How it was made

Pipeline `{{ made.name }}`{% if made.description %}: {{ made.description }}{% endif %}. Its steps, in the
order rows go through them (`pipeline.yaml` in this repository has every setting):

{% for edge in made.edges %}- `{{ edge[0] }}` >> `{{ edge[1] }}`
{% endfor %}
| step | class | model | generation settings | rows | input tokens | output tokens |
| --- | --- | --- | --- | --- | --- | --- |
{% for step in made.steps %}| `{{ step.name }}` | `{{ step.class_name }}` | {{ step.model }} | {{ step.generation }} | {{ step.rows }} | {{ step.input_tokens }} | {{ step.output_tokens }} |
{% endfor %}{% if made.flow_run %}
The run: [its Prefect flow run]({{ made.flow_run }}).
{% endif %}{% endif %}
"""


def size_category(rows: int) -> str:
    """The Hub's size category for a dataset of `rows` rows."""
    return next((label for limit, label in _SIZES if rows < limit), "n>1B")


def distiset_card(distiset: Distiset, repo_id: str) -> DatasetCard:
    import jinja2
    import yaml
    from huggingface_hub import DatasetCard

    rows = max((_num_rows(dataset) for dataset in distiset.values()), default=0)
    metadata = {"size_categories": size_category(rows), "tags": TAGS}
    records = [(name, json.dumps(_first(dataset), indent=2, ensure_ascii=False, default=str))
               for name, dataset in distiset.items()]
    text = jinja2.Template(_TEMPLATE).render(
        metadata=yaml.safe_dump(metadata, sort_keys=False).strip(), repo_id=repo_id, records=records,
        made=_how_it_was_made(distiset),
    )
    return DatasetCard(text)


def _how_it_was_made(distiset: Distiset) -> Any:
    """The pipeline, its steps' models and settings, and per step rows and tokens (None: not from a run)."""
    import yaml

    if distiset.pipeline_path is None or not distiset.pipeline_path.exists():
        return None
    description = yaml.safe_load(distiset.pipeline_path.read_text(encoding="utf-8")) or {}
    counts = {s["step"]: s for s in (distiset.run_summary or {}).get("steps", [])}
    steps = []
    for step in description.get("steps", []):
        model = step.get("model") or {}
        generation = (model.get("settings") or {}).get("generation_kwargs") or {}
        done = counts.get(step["name"], {})
        steps.append({
            "name": step["name"], "class_name": step["class"].rsplit(".", 1)[-1],
            "model": f"`{model['name']}` ({model['class'].rsplit('.', 1)[-1]})" if model else "",
            "generation": ", ".join(f"{k}={v}" for k, v in generation.items()) or "",
            "rows": done.get("rows", ""), "input_tokens": done.get("input_tokens", ""),
            "output_tokens": done.get("output_tokens", ""),
        })
    return {"name": description.get("name"), "description": description.get("description"),
            "edges": description.get("edges", []), "steps": steps,
            "flow_run": (distiset.run_summary or {}).get("flow_run")}


def _num_rows(dataset: Any) -> int:
    return sum(dataset.num_rows.values()) if isinstance(dataset.num_rows, dict) else dataset.num_rows


def _first(dataset: Any) -> dict[str, Any]:
    split = dataset[next(iter(dataset))] if isinstance(dataset.num_rows, dict) else dataset  # a DatasetDict's first
    if split.num_rows == 0:
        return {}
    return {key: _clipped(value) for key, value in split[0].items()}


def _clipped(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _VALUE_CHARS:
        return value[:_VALUE_CHARS] + "..."
    if isinstance(value, dict):
        return {key: _clipped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clipped(item) for item in value[:10]]
    return value
