"""DistilflowResultStorage: Prefect's cached task results on S3, credentials from the environment only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage import DistilflowResultStorage, result_storage_block
from storage.filesystems import clear_cache
from tasks.errors import DistilflowUserError

ROOT = Path(__file__).resolve().parents[1]
SECRET = "result-secret-Hk3vP9qL2mXw-distinctive"
KEY_ID = "AKIADISTINCTIVEKEYID"

# One flow run with a cached task; prints its task state and result. Each subprocess has its own
# PREFECT_HOME, hence its own ephemeral server and SQLite database: only the S3 storage is shared.
RUN_ONCE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from prefect import flow, task
    from prefect.cache_policies import INPUTS
    from storage import result_storage_block

    location, calls = sys.argv[1], Path(sys.argv[2])

    @task(cache_policy=INPUTS, persist_result=True)
    def square(x):
        with calls.open("a") as f:
            f.write("called\\n")
        return {"square": x * x}

    @flow
    def run(location):
        state = square.with_options(result_storage=result_storage_block(location))(12, return_state=True)
        return state.name, state.result()

    print(json.dumps(run(location)))
    """
)


@pytest.fixture
def distinct_credentials(s3, monkeypatch):
    """moto accepts any credentials when it does not enforce auth; these are easy to search for."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    clear_cache()
    return s3


def stored_objects(s3, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("Contents", [])
    return {obj["Key"]: client.get_object(Bucket=s3.bucket, Key=obj["Key"])["Body"].read() for obj in listed}


def test_cache_hit_on_s3_within_a_process(distinct_credentials, prefect_api):
    from prefect import flow, task
    from prefect.cache_policies import INPUTS
    from prefect.client.orchestration import get_client

    s3 = distinct_credentials
    location = s3.uri("results")
    calls = []

    @task(cache_policy=INPUTS, persist_result=True)
    def double(x):
        calls.append(x)
        return {"double": x * 2, "note": "cached on s3"}

    @flow
    def run():
        storage = result_storage_block(location)
        state = double.with_options(result_storage=storage)(21, return_state=True)
        return state.name, state.result(), storage._block_document_id

    first_state, first, block_id = run()
    second_state, second, _ = run()
    assert (first_state, second_state) == ("Completed", "Cached")
    assert first == second == {"double": 42, "note": "cached on s3"}
    assert calls == [21]

    objects = stored_objects(s3, "results/")
    assert len(objects) == 1
    assert all(SECRET.encode() not in data and KEY_ID.encode() not in data for data in objects.values())

    with get_client(sync_client=True) as client:
        document = client.read_block_document(block_id, include_secrets=True)
    assert document.block_type.slug == "distilflow-result-storage"
    assert document.data == {"basepath": location}
    dumped = document.model_dump_json()
    assert SECRET not in dumped and KEY_ID not in dumped and s3.endpoint_url not in dumped


def test_cache_hit_across_processes_sharing_only_s3(distinct_credentials, tmp_path):
    s3 = distinct_credentials
    location = s3.uri("shared-results")
    calls = tmp_path / "calls.txt"
    outputs = []
    for run in ("first", "second"):
        home = tmp_path / f"prefect-home-{run}"
        env = {name: value for name, value in os.environ.items() if not name.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
                   PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120",
                   PYTHONPATH=str(ROOT))
        result = subprocess.run([sys.executable, "-c", RUN_ONCE, location, str(calls)], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=240, check=False)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(json.loads(result.stdout.strip().splitlines()[-1]))
        assert (home / "prefect.db").exists()  # its own database
    assert outputs == [["Completed", {"square": 144}], ["Cached", {"square": 144}]]
    assert calls.read_text() == "called\n"  # the second process never ran the task body
    objects = stored_objects(s3, "shared-results/")
    assert len(objects) == 1
    assert all(SECRET.encode() not in data for data in objects.values())


def test_block_reads_and_writes_through_storage(s3):
    block = DistilflowResultStorage(basepath=s3.uri("direct"))
    assert block.write_path("abc", b"payload") == s3.uri("direct/abc")
    assert block.read_path("abc") == b"payload"
    assert block.read_path(s3.uri("direct/abc")) == b"payload"  # Prefect may pass resolved paths
    with pytest.raises(FileNotFoundError):
        block.read_path("missing")
    with pytest.raises(DistilflowUserError, match="no such file or directory"):
        block.read_path("missing")


async def test_block_async_methods(s3):
    block = DistilflowResultStorage(basepath=s3.uri("async"))
    await block.awrite_path("k", b"v")
    assert await block.aread_path("k") == b"v"


def test_result_storage_refuses_credentials_in_the_uri():
    with pytest.raises(DistilflowUserError) as error:
        result_storage_block("s3://AKIAX:topsecretvalue@bucket/results")
    assert "topsecretvalue" not in str(error.value)
    assert str(error.value).startswith("result storage s3://***@bucket/results: the URI must not hold credentials;")
