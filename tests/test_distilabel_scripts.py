"""A distilabel script moves to distilflow by renaming the package: its imports resolve, and it runs.

tests/distilabel_scripts/ holds scripts written the way distilabel 1.5.3's docs write them (the
project's own copies, not distilabel's files). Each is renamed as the README's migration says,
`sed -E 's/\\bdistilabel\\b/distilflow/g'` (whole words: `distilabel_metadata` stays), then
imported name by name and run as a user runs it, `python script.py`, against the simulator.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parent / "distilabel_scripts").glob("*.py"))


def renamed(text: str) -> str:
    """What the migration's `sed -E 's/\\bdistilabel\\b/distilflow/g'` makes of a script."""
    return re.sub(r"\bdistilabel\b", "distilflow", text)


def imports_of(text: str) -> list[tuple[str, str]]:
    return [(node.module, alias.name) for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "distilabel"
            for alias in node.names]


def test_every_import_of_the_scripts_resolves_with_the_package_renamed():
    pairs = sorted({pair for script in SCRIPTS for pair in imports_of(script.read_text())})
    assert len(pairs) >= 40, pairs  # the scripts use much of the map: module paths and names alike
    missing = []
    for module, name in pairs:
        target = renamed(module)
        try:
            getattr(importlib.import_module(target), name)
        except (ImportError, AttributeError) as error:
            missing.append(f"from {target} import {name}: {error}")
    assert not missing, "\n".join(missing)


def test_the_rename_leaves_row_shapes_alone():
    text = 'from distilabel.steps import KeepColumns\nKeepColumns(columns=["distilabel_metadata"])\nimport distilabel\n'
    assert renamed(text) == 'from distilflow.steps import KeepColumns\nKeepColumns(columns=["distilabel_metadata"])\nimport distilflow\n'


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_a_renamed_script_runs_to_its_last_line(script, sim, prefect_api, tmp_path):
    from prefect.settings import PREFECT_API_URL

    moved = tmp_path / script.name
    moved.write_text(renamed(script.read_text()))
    env = {**os.environ, "OPENAI_BASE_URL": sim.base_url, "OPENAI_API_KEY": "sk-test",
           "PREFECT_API_URL": PREFECT_API_URL.value(), "DISTILFLOW_RESULTS": str(tmp_path / "answers")}
    done = subprocess.run([sys.executable, str(moved)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert re.search(r"^rows: \d+$", done.stdout, re.M), done.stdout[-2000:]
    if "OpenAILLM(" in script.read_text() or "OpenAIImageGeneration(" in script.read_text():
        assert sim.stats()["requests"] > 0  # its models were asked, over HTTP
