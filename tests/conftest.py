import os
import pathlib
import sys

# No network beyond loopback: Prefect must not try to send telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

# Tests import the packages of this checkout, whatever else is installed.
ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary server, SQLite in a temporary directory) for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def simulator():
    from tasks.simulator import Simulator

    with Simulator() as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    """The session's simulator, with default behaviour and zeroed counters."""
    simulator.configure(
        fault_script=[], reject_n=False, ignore_n=False, models=None, latency=0.0,
        rate_limit_fraction=0.0, server_error_fraction=0.0, unavailable_fraction=0.0,
        malformed_fraction=0.0, empty_fraction=0.0, timeout_fraction=0.0, garbage_fraction=0.0,
    )
    simulator.reset()
    return simulator
