"""distilabel 1.5.3's own tests, run unmodified against distilflow.

The source distribution is fetched from the package index at test time, never copied into this
repository. Its `tests/unit/conftest.py` and the test files in tests/distilabel_compat/exclusions.py
run in a pytest of their own, with tests/distilabel_compat/distilabel_compat_plugin.py loaded: it
makes every `distilabel.X` import give the module `distilflow.X` (what a user's rename does to a
script), so a module path distilflow lacks fails as it would for the user. The tests left out are
listed there, each with its reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
COMPAT = HERE / "distilabel_compat"
VERSION = "1.5.3"

#: what the run of distilabel's tests said, for the terminal summary
SUMMARY: list[str] = []

sys.path.insert(0, str(HERE / "distilabel_compat"))
from exclusions import EXCLUDED, FILES  # noqa: E402


@pytest.fixture(scope="session")
def distilabel_source(tmp_path_factory) -> Path:
    """distilabel's source distribution, unpacked (its tests only)."""
    where = tmp_path_factory.mktemp("distilabel-sdist")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", f"distilabel=={VERSION}", "--no-deps", "--no-binary", ":all:",
         "-d", str(where)],
        capture_output=True, text=True, timeout=300,
    )
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    (archive,) = where.glob(f"distilabel-{VERSION}.tar.gz")
    root = f"distilabel-{VERSION}/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(root + "tests/") and m.isfile()]
        tar.extractall(where, members=members, filter="data")
    return where / root


def test_distilabel_tests_pass_against_distilflow(distilabel_source, prefect_api):
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = os.pathsep.join([str(COMPAT), str(distilabel_source)])
    # its pipelines run as flow runs on the session's Prefect server; answers in this test's directory
    env["PREFECT_API_URL"] = PREFECT_API_URL.value()
    command = [
        sys.executable, "-m", "pytest", *FILES, "-p", "no:cacheprovider", "-p", "distilabel_compat_plugin",
        "-o", "asyncio_mode=auto", "-q", "-rfE", "--no-header", "--timeout", "120",
        *[arg for node in EXCLUDED for arg in ("--deselect", node)],
    ]
    done = subprocess.run(command, cwd=distilabel_source, env=env, capture_output=True, text=True, timeout=1500)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|failed|error|errors|skipped|deselected)", summary)}
    line = (f"distilabel {VERSION} tests against distilflow: {summary} ({len(EXCLUDED)} left out, reasons in "
            "tests/distilabel_compat/exclusions.py)")
    print(line)
    SUMMARY.append(line)  # shown at the end of the test command's output (tests/conftest.py)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
    assert counts.get("passed", 0) >= 1 and not counts.get("skipped")
    assert counts.get("deselected", 0) == len(EXCLUDED), "an exclusion names a test that no longer exists"
