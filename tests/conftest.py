import os
import sys
import tempfile

# No network beyond loopback: Prefect must not try to send telemetry.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# A `python flows/x.py` started by a test without a Prefect API keeps its local server here, not
# in the user's ~/.distilflow (tests that start one stop it).
if "DISTILFLOW_HOME" not in os.environ:
    os.environ["DISTILFLOW_HOME"] = tempfile.mkdtemp(prefix="distilflow-test-home-")

# No test talks to the real Hugging Face Hub: `huggingface_hub` and `datasets` read HF_ENDPOINT once,
# when imported, so the session's Hub double starts before any test module imports them.
from distilflow.hub import HubDouble  # noqa: E402

HUB = HubDouble().start()
os.environ["HF_ENDPOINT"] = HUB.endpoint
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="distilflow-test-hf-")  # the clients' caches, this session's

import pytest  # noqa: E402


@pytest.fixture
def hub():
    """The session's Hub double (`HF_ENDPOINT`), emptied for this test, any token accepted."""
    HUB.store.reset()
    yield HUB
    HUB.store.reset()


@pytest.fixture(scope="session", autouse=True)
def no_kept_server_outlives_the_tests():
    """A run without a Prefect API (a `pipeline.run()` outside the session's server) starts the
    server distilflow keeps, in this session's DISTILFLOW_HOME: stopped when the tests end."""
    yield
    from distilflow.local_server import stop_local_server

    stop_local_server()


@pytest.fixture(autouse=True)
def answers_of_this_test(tmp_path_factory, monkeypatch):
    """Runs that name no result storage keep their answers in a directory of this test's own.

    Not the checkout's .distilflow/, and not shared: one test's cached answers (say, from a
    simulator answering normally) must not answer another's requests.
    """
    monkeypatch.setenv("DISTILFLOW_RESULTS", str(tmp_path_factory.mktemp("answers")))


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary server, SQLite in a temporary directory) for the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        yield


@pytest.fixture(scope="session")
def simulator():
    from distilflow.simulator import Simulator

    with Simulator() as sim:
        yield sim


@pytest.fixture
def sim(simulator):
    """The session's simulator, with default behaviour and zeroed counters."""
    from distilflow.simulator import SimulatorConfig

    simulator.configure(**SimulatorConfig().model_dump())  # every field back to its default
    simulator.reset()
    return simulator


# --- S3 for the storage tests: a real S3 API (moto) on loopback, never AWS ------------------------


@pytest.fixture(scope="session")
def s3_server():
    """A moto S3 server on 127.0.0.1 for the session; yields its endpoint URL."""
    from distilflow.storage.testing import moto_s3_server

    with moto_s3_server() as url:
        yield url


class S3Bucket:
    def __init__(self, bucket: str, endpoint_url: str):
        self.bucket = bucket
        self.endpoint_url = endpoint_url

    def uri(self, path: str = "") -> str:
        return f"s3://{self.bucket}/{path.lstrip('/')}"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name="us-east-1")


@pytest.fixture
def s3(s3_server, monkeypatch):
    """Environment pointing at the moto server, and a fresh bucket; `.uri(path)` -> "s3://bucket/path"."""
    import uuid

    from distilflow.storage.filesystems import clear_cache

    for name in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_PROFILE",
                 "DISTILFLOW_S3_CREDENTIALS_BLOCK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server)
    clear_cache()
    bucket = S3Bucket(f"distilflow-test-{uuid.uuid4().hex[:12]}", s3_server)
    bucket.client().create_bucket(Bucket=bucket.bucket)  # us-east-1: no LocationConstraint needed
    yield bucket
    clear_cache()


@pytest.fixture(scope="session")
def deployed(tmp_path_factory):
    """prefect server + process pool + `prefect deploy --all` + a worker (tests/deployment_env.py)."""
    from deployment_env import DeploymentEnvironment

    environment = DeploymentEnvironment(tmp_path_factory.mktemp("deployments"))
    try:
        yield environment.start()
    finally:
        environment.stop()


def pytest_terminal_summary(terminalreporter):
    """The count of distilabel's own tests run against distilflow, where the test command ends."""
    suite = sys.modules.get("test_distilabel_suite")
    for line in getattr(suite, "SUMMARY", []):
        terminalreporter.write_line(line)
