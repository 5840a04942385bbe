"""The project's packages are the ones this checkout provides."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_packages_import_from_this_repository(tmp_path):
    # from an unrelated directory and without PYTHONPATH: only the installed distribution can
    # supply `tasks`, `storage` and `flows`, and it must point at this checkout
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import json, tasks, storage, flows; print(json.dumps([m.__file__ for m in (tasks, storage, flows)]))"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    files = [Path(f).resolve() for f in json.loads(out.stdout)]
    assert files == [ROOT / "tasks" / "__init__.py", ROOT / "storage" / "__init__.py", ROOT / "flows" / "__init__.py"]
    # and the public API is what this repository defines
    out = subprocess.run(
        [sys.executable, "-c", "import tasks, tasks.models; print(tasks.TextGeneration.__module__, tasks.models.OpenAILLM.__module__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )
    assert out.stdout.split() == ["tasks.text_generation", "tasks.models.openai"]


def test_prefect_yaml_parses():
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert isinstance(config.get("deployments"), list)


def test_public_names_are_exported():
    import tasks
    import tasks.models

    for module in (tasks, tasks.models):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
