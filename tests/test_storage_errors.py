"""Every storage failure is a DistilflowUserError naming the location, the problem and the fix."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.request

import pytest

from distilflow.storage import (
    DatasetWriter,
    check_readable,
    check_writable,
    read_rows,
    save_image,
    write_rows,
)
from distilflow.storage.filesystems import clear_cache
from distilflow.storage.testing import moto_s3_server
from distilflow.errors import DistilflowUserError

DISTINCTIVE_SECRET = "wrong-secret-Zq8rT2vW9xY4-distinctive"


def raises_user_error(call, *args) -> str:
    with pytest.raises(DistilflowUserError) as error:
        result = call(*args)
        if hasattr(result, "__next__"):
            list(result)
    return str(error.value)


# --- local paths --------------------------------------------------------------------------------


def test_missing_local_path(tmp_path):
    uri = str(tmp_path / "nope.jsonl")
    for call in (check_readable, read_rows):
        message = raises_user_error(call, uri)
        assert message == f"{uri}: no such file or directory; check the path or URI."


def test_missing_path_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_rows(str(tmp_path / "nope.jsonl"))


def test_directory_that_is_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "_private.jsonl").write_text("{}\n")
    message = raises_user_error(read_rows, str(tmp_path))
    assert message == (
        f"{tmp_path}: not a dataset: no _manifest.json and no .jsonl or .parquet files in it; point at a dataset "
        "file or a directory that holds them."
    )


def test_file_with_an_unsupported_extension(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,2\n")
    message = raises_user_error(check_readable, str(path))
    assert message.startswith(f"{path}: not a JSONL or Parquet file (.csv); give a .jsonl or .parquet file")
    message = raises_user_error(write_rows, str(tmp_path / "out.csv"), [{"a": 1}])
    assert message.startswith(f"{tmp_path}/out.csv: unknown dataset format '.csv'; name the file .jsonl or .parquet")


def test_jsonl_that_does_not_parse_names_file_and_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"ok": 1}\n\n{"ok": 2}\n{"ok": 3,,}\n')
    rows = read_rows(str(path))
    assert next(rows) == {"ok": 1}
    assert next(rows) == {"ok": 2}
    message = raises_user_error(lambda: list(rows))
    assert message == (
        f"{path}, line 4: not valid JSON (Expecting property name enclosed in double quotes at column 10); "
        "a JSONL file holds one JSON object per line."
    )


def test_jsonl_line_that_is_not_an_object(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"ok": 1}\n[1, 2]\n')
    message = raises_user_error(read_rows, str(path))
    assert message.startswith(f"{path}, line 2: a row must be a JSON object, got list;")


def test_jsonl_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"ok": 1}\n{"name": "café"}\n'.encode("latin-1"))
    message = raises_user_error(read_rows, str(path))
    assert message == f"{path}, line 2: not UTF-8 text (invalid continuation byte at byte 13); re-encode the file as UTF-8."


def test_parquet_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "fake.parquet"
    path.write_text('{"a": 1}\n')
    message = raises_user_error(read_rows, str(path))
    assert message.startswith(f"{path}: not a Parquet file (")
    assert "check the file, or give it the extension of its real format." in message


def test_damaged_manifest(tmp_path):
    (tmp_path / "_manifest.json").write_text("{not json")
    message = raises_user_error(read_rows, str(tmp_path))
    assert message.startswith(f"{tmp_path}: its _manifest.json is damaged (")
    assert "write the dataset again, or delete _manifest.json" in message


def test_rows_parquet_cannot_hold(tmp_path):
    uri = str(tmp_path / "empty-dict.parquet")
    message = raises_user_error(write_rows, uri, [{"meta": {}}])
    assert message.startswith(f"{uri}: rows cannot be stored as Parquet (Cannot write struct type 'meta' with no child")
    message = raises_user_error(write_rows, uri, [{"a": 1}, {"a": "x"}])
    assert message.startswith(f"{uri}: rows 0-1 cannot be stored as Parquet (")


def test_target_is_an_existing_file_for_a_directory(tmp_path):
    (tmp_path / "taken").write_text("x")
    for uri in (str(tmp_path / "taken" / "out.jsonl"), str(tmp_path / "taken" / "dir") + "/"):
        for call in (check_writable, lambda uri: write_rows(uri, [{"a": 1}]), DatasetWriter):
            message = raises_user_error(call, uri)
            assert message == f"{uri}: part of the path is a file, not a directory; choose another path."


# --- S3 -----------------------------------------------------------------------------------------


def test_missing_bucket(s3):
    for uri in ("s3://no-such-bucket-df/data.jsonl", "s3://no-such-bucket-df/dataset/"):
        expected = f"{uri}: bucket 'no-such-bucket-df' does not exist; create it or fix the URI."
        assert raises_user_error(check_readable, uri) == expected
        assert raises_user_error(read_rows, uri) == expected
        assert raises_user_error(check_writable, uri) == expected
        assert raises_user_error(write_rows, uri, [{"a": 1}]) == expected
    uri = "s3://no-such-bucket-df/images"
    message = raises_user_error(save_image, "iVBORw0KGgo=", uri)
    assert message.endswith(": bucket 'no-such-bucket-df' does not exist; create it or fix the URI.")


def test_missing_key_and_prefix_on_s3(s3):
    for uri in (s3.uri("nope.jsonl"), s3.uri("no/prefix/")):
        assert raises_user_error(read_rows, uri) == f"{uri}: no such file or directory; check the path or URI."


def test_s3_prefix_that_is_not_a_dataset(s3):
    s3.client().put_object(Bucket=s3.bucket, Key="stuff/readme.txt", Body=b"hi")
    uri = s3.uri("stuff/")
    assert raises_user_error(check_readable, uri).startswith(f"{uri}: not a dataset: no _manifest.json")


def test_unreachable_endpoint_fails_fast_and_names_it(monkeypatch):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DISTINCTIVE_SECRET)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    clear_cache()
    started = time.monotonic()
    for call, args in ((check_writable, ()), (check_readable, ()), (write_rows, ([{"a": 1}],))):
        message = raises_user_error(call, "s3://bucket/data.jsonl", *args)
        assert message == (
            f"s3://bucket/data.jsonl: cannot reach the S3 endpoint 127.0.0.1:{port}; check AWS_ENDPOINT_URL "
            "(or AWS_ENDPOINT_URL_S3) and that the server is running."
        )
    assert time.monotonic() - started < 15


# --- wrong credentials: a moto server that enforces IAM authentication --------------------------


@pytest.fixture(scope="module")
def auth_s3(tmp_path_factory):
    """A separate moto server (its own process, so auth does not leak into the session server).

    Set-up runs unauthenticated: a bucket, a user allowed s3:* and a user with no policy, each with
    an access key. Then `POST /moto-api/reset-auth 0` makes every later request authenticated and
    authorized against moto's IAM: unknown key ids, wrong secrets and missing permissions fail as on AWS.
    """
    import boto3

    with moto_s3_server() as url:
        admin = {"endpoint_url": url, "region_name": "us-east-1", "aws_access_key_id": "admin",
                 "aws_secret_access_key": "admin-secret"}
        boto3.client("s3", **admin).create_bucket(Bucket="guarded")
        boto3.client("s3", **admin).put_object(Bucket="guarded", Key="data.jsonl", Body=b'{"a": 1}\n')
        iam = boto3.client("iam", **admin)
        keys = {}
        for user, policy in (("allowed", {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}), ("nobody", None)):
            iam.create_user(UserName=user)
            if policy:
                document = {"Version": "2012-10-17", "Statement": [policy]}
                iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(document))
            keys[user] = iam.create_access_key(UserName=user)["AccessKey"]
        enforce = urllib.request.Request(f"{url}/moto-api/reset-auth", data=b"0", method="POST",
                                         headers={"Content-Type": "text/plain"})
        assert json.loads(urllib.request.urlopen(enforce).read())["status"] == "ok"
        yield url, keys


@pytest.fixture
def use_credentials(auth_s3, monkeypatch):
    url, _ = auth_s3
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("DISTILFLOW_S3_CREDENTIALS_BLOCK", raising=False)

    def use(key_id: str, secret: str) -> None:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        clear_cache()

    yield use
    clear_cache()


def test_auth_server_accepts_the_right_credentials(auth_s3, use_credentials):
    _, keys = auth_s3
    use_credentials(keys["allowed"]["AccessKeyId"], keys["allowed"]["SecretAccessKey"])
    check_writable("s3://guarded/out.jsonl")
    assert list(read_rows("s3://guarded/data.jsonl")) == [{"a": 1}]


def every_storage_call(uri_prefix: str):
    yield "check_readable", lambda: check_readable(f"{uri_prefix}/data.jsonl"), "data.jsonl", "read"
    yield "read_rows", lambda: list(read_rows(f"{uri_prefix}/data.jsonl")), "data.jsonl", "read"
    yield "check_writable", lambda: check_writable(f"{uri_prefix}/out.jsonl"), "out.jsonl", "write"
    yield "write_rows", lambda: write_rows(f"{uri_prefix}/out.parquet", [{"a": 1}]), "out.parquet", "write"
    yield "DatasetWriter", lambda: DatasetWriter(f"{uri_prefix}/ds/").write_part(0, [{"a": 1}]), "ds/", "write"


@pytest.mark.parametrize("case", ["unknown key id", "wrong secret"])
def test_rejected_credentials(auth_s3, use_credentials, case):
    _, keys = auth_s3
    if case == "unknown key id":
        use_credentials("AKIAUNKNOWNUNKNOWN00", DISTINCTIVE_SECRET)
        code = "InvalidAccessKeyId"
    else:
        use_credentials(keys["allowed"]["AccessKeyId"], DISTINCTIVE_SECRET)
        code = "SignatureDoesNotMatch"
    for name, call, path, _ in every_storage_call("s3://guarded"):
        message = raises_user_error(call)
        assert message == (
            f"s3://guarded/{path}: the S3 server rejected the credentials ({code}); check AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or the Secret block named by "
            "DISTILFLOW_S3_CREDENTIALS_BLOCK."
        ), name
        assert DISTINCTIVE_SECRET not in message


def test_credentials_without_permission(auth_s3, use_credentials):
    _, keys = auth_s3
    use_credentials(keys["nobody"]["AccessKeyId"], keys["nobody"]["SecretAccessKey"])
    for name, call, path, action in every_storage_call("s3://guarded"):
        message = raises_user_error(call)
        assert message.startswith(
            f"s3://guarded/{path}: access denied (AccessDenied): the credentials in use may not {action} here; "
            "grant them access to bucket 'guarded'"
        ), name
        assert keys["nobody"]["SecretAccessKey"] not in message


# --- credentials from a Prefect Secret block ------------------------------------------------------


def test_credentials_from_a_secret_block(s3, prefect_api, monkeypatch):
    from prefect.blocks.system import Secret

    Secret(value={"aws_access_key_id": "from-block", "aws_secret_access_key": "block-secret-value",
                  "endpoint_url": s3.endpoint_url, "region_name": "us-east-1"}).save("df-test-s3", overwrite=True)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("DISTILFLOW_S3_CREDENTIALS_BLOCK", "df-test-s3")
    clear_cache()
    uri = s3.uri("via-block.jsonl")
    assert write_rows(uri, [{"a": 1}]) == 1
    assert list(read_rows(uri)) == [{"a": 1}]

    monkeypatch.setenv("DISTILFLOW_S3_CREDENTIALS_BLOCK", "no-such-block")
    clear_cache()
    message = raises_user_error(read_rows, uri)
    assert message.startswith("cannot load the S3 credentials block 'no-such-block' named by "
                              "DISTILFLOW_S3_CREDENTIALS_BLOCK (")
    assert "create a Secret block named 'no-such-block' whose value is a JSON object" in message


def test_environment_wins_over_the_secret_block(s3, prefect_api, monkeypatch):
    from prefect.blocks.system import Secret

    Secret(value=json.dumps({"aws_access_key_id": "x", "aws_secret_access_key": "y",
                             "endpoint_url": "http://127.0.0.1:9"})).save("df-test-s3-unused", overwrite=True)
    monkeypatch.setenv("DISTILFLOW_S3_CREDENTIALS_BLOCK", "df-test-s3-unused")
    clear_cache()
    uri = s3.uri("env.jsonl")
    assert write_rows(uri, [{"a": 1}]) == 1  # the fixture's AWS_* variables, not the block's dead endpoint


def test_no_secret_in_environment_dump_of_messages(s3, monkeypatch, tmp_path):
    """A distinctive secret in the environment never shows in any translated message."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DISTINCTIVE_SECRET)
    clear_cache()
    messages = [
        raises_user_error(read_rows, s3.uri("missing.jsonl")),
        raises_user_error(read_rows, "s3://no-such-bucket-df/x.jsonl"),
        raises_user_error(write_rows, s3.uri("x.csv"), []),
    ]
    assert all(DISTINCTIVE_SECRET not in message for message in messages)
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == DISTINCTIVE_SECRET
