"""Every test in this folder is marked `reliability`: `pytest -m reliability` runs the suite alone."""

import pathlib
import sys

import pytest

TESTS = pathlib.Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:  # the shared helpers next to the top-level conftest (deployment_env)
    sys.path.insert(0, str(TESTS))

HERE = pathlib.Path(__file__).parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in pathlib.Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.reliability)


@pytest.fixture
def instructions(tmp_path):
    """A JSONL file of numbered instructions (flow_process.ROWS of them)."""
    from flow_process import write_instructions

    return write_instructions(tmp_path / "instructions.jsonl")


@pytest.fixture
def slow_sim():
    """A simulator of its own, slow enough (0.3 s an answer) to catch a run half way."""
    from distilflow.simulator import Simulator

    with Simulator(latency=0.3) as sim:
        yield sim
