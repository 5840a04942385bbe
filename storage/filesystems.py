"""The one place that builds fsspec filesystems, and the few file operations every module shares.

S3 settings come from the environment (the standard AWS_* variables) or from a Prefect `Secret`
block named by DISTILFLOW_S3_CREDENTIALS_BLOCK, never from code or from a plain block setting,
because those are stored and shown in clear text. The one exception is the `storage_options` a user
passes to a distilabel loader (LoadDataFromFileSystem, LoadDataFromDisk), handed through as given.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import fsspec
from fsspec.implementations.local import LocalFileSystem

from distilflow.errors import DistilflowUserError

__all__ = [
    "CREDENTIALS_BLOCK_VARIABLE",
    "clear_cache",
    "filesystem",
    "is_local",
    "join",
    "known_secrets",
    "parent_of",
    "remove_quietly",
    "remove_tree_quietly",
    "replace",
    "s3_endpoint",
    "write_bytes_atomic",
]

CREDENTIALS_BLOCK_VARIABLE = "DISTILFLOW_S3_CREDENTIALS_BLOCK"
S3_PROTOCOLS = ("s3", "s3a")

# An unreachable endpoint must fail in seconds: botocore's defaults (60 s connect timeout, several
# attempts) would hold a flow for minutes before its first model request.
_S3_CONFIG = {
    "connect_timeout": 3,
    "read_timeout": 30,
    "retries": {"total_max_attempts": 2, "mode": "standard"},
}

_block_settings: dict[str, dict[str, str]] = {}
_block_lock = threading.Lock()


def filesystem(uri: str, storage_options: dict[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem that holds `uri`, and the path of `uri` inside it.

    `storage_options` are fsspec's options for that filesystem, given by a caller that took them
    from its user (distilabel's loaders accept them); on S3 they are laid over the settings from
    the environment, a nested dict such as `client_kwargs` key by key.
    """
    protocol = urlsplit(uri).scheme.lower() if "://" in uri else "file"
    if protocol in S3_PROTOCOLS:
        # Listings are not cached: another process may replace a manifest or a file at any time.
        options = _laid_over(_s3_options(), storage_options or {})
        return fsspec.core.url_to_fs(uri, use_listings_cache=False, **options)
    try:
        return fsspec.core.url_to_fs(uri, **(storage_options or {}))
    except TypeError as e:  # an option this filesystem does not take
        raise DistilflowUserError(
            f"{uri}: storage_options {sorted(storage_options or {})} are not options of this filesystem ({e}); "
            "give only options its fsspec implementation accepts."
        ) from e
    except (ImportError, ValueError) as e:
        raise DistilflowUserError(
            f"{uri}: unsupported storage location ({e}); use a local path or an fsspec URI such as s3://bucket/prefix."
        ) from e


def clear_cache() -> None:
    """Forget credentials read from the Secret block and cached filesystem instances."""
    with _block_lock:
        _block_settings.clear()
    try:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
    except ImportError:
        pass


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint in use (None means AWS), for messages; never holds a secret."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        return endpoint
    if os.environ.get(CREDENTIALS_BLOCK_VARIABLE):
        return _credentials_from_block().get("endpoint_url")
    return None


def known_secrets() -> list[str]:
    """Secret values this process may use, so error messages can be scrubbed of them."""
    values = [os.environ.get("AWS_SECRET_ACCESS_KEY"), os.environ.get("AWS_SESSION_TOKEN")]
    with _block_lock:
        values += [settings.get("aws_secret_access_key") for settings in _block_settings.values()]
    return [value for value in values if value and len(value) >= 8]  # shorter ones are test dummies


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return isinstance(fs, LocalFileSystem)


def join(path: str, *names: str) -> str:
    return "/".join([path.rstrip("/"), *names])


def parent_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[0] if "/" in path.rstrip("/") else ""


def replace(fs: fsspec.AbstractFileSystem, source: str, target: str) -> None:
    """Move `source` onto `target` so that readers see the old object or the new one, never a mix.

    Local: os.replace (a rename, atomic on one filesystem; fsspec's shutil.move is not when the
    target exists). Object stores: a server-side copy, atomic per object, then the source goes.
    """
    if is_local(fs):
        os.replace(source, target)
    else:
        fs.mv(source, target)


def write_bytes_atomic(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    """Write a whole object so that no reader sees part of it."""
    if is_local(fs):
        fs.makedirs(parent_of(path) or ".", exist_ok=True)
        temporary = join(parent_of(path) or ".", f".{path.rsplit('/', 1)[-1]}.tmp-{uuid.uuid4().hex}")
        try:
            with fs.open(temporary, "wb") as f:
                f.write(data)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    else:
        fs.pipe_file(path, data)  # one PUT: an object store shows the object whole or not at all


def remove_quietly(fs: fsspec.AbstractFileSystem, paths: list[str]) -> None:
    """Delete files, best effort: cleanup must never hide the error or the result that led to it."""
    if not paths:
        return
    try:
        fs.rm(paths)  # one bulk request on object stores
    except Exception:  # noqa: BLE001 - some already gone: one by one
        for path in paths:
            with contextlib.suppress(Exception):
                fs.rm_file(path)


def remove_tree_quietly(fs: fsspec.AbstractFileSystem, path: str, *, only_if_empty: bool = False) -> None:
    with contextlib.suppress(Exception):
        if is_local(fs) and only_if_empty:
            os.rmdir(path)
        elif is_local(fs):
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        elif not only_if_empty and fs.exists(path):  # object stores have no empty directories
            fs.rm(path, recursive=True)


def _s3_options() -> dict[str, Any]:
    env = os.environ
    block = _credentials_from_block() if env.get(CREDENTIALS_BLOCK_VARIABLE) else {}
    # s3fs buffers a 50 MiB block per open file by default; S3's smallest multipart upload part
    # (5 MiB) keeps streaming reads and writes small.
    options: dict[str, Any] = {"config_kwargs": dict(_S3_CONFIG), "default_block_size": 5 * 2**20}
    client_kwargs: dict[str, Any] = {}
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        options.update(key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"])
        if env.get("AWS_SESSION_TOKEN"):
            options["token"] = env["AWS_SESSION_TOKEN"]
    elif block:
        options.update(key=block["aws_access_key_id"], secret=block["aws_secret_access_key"])
        if block.get("aws_session_token"):
            options["token"] = block["aws_session_token"]
    # Else botocore's own chain (~/.aws, instance roles) decides, as for any AWS tool.
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or block.get("endpoint_url")
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or block.get("region_name")
    if region:
        client_kwargs["region_name"] = region
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def _laid_over(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in given.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if nested else value
    return merged


def _credentials_from_block() -> dict[str, str]:
    name = os.environ[CREDENTIALS_BLOCK_VARIABLE]
    with _block_lock:
        if name in _block_settings:
            return _block_settings[name]
    settings = _load_credentials_block(name)
    with _block_lock:
        _block_settings[name] = settings
    return settings


def _load_credentials_block(name: str) -> dict[str, str]:
    from prefect.blocks.system import Secret

    fix = (
        f"create a Secret block named {name!r} whose value is a JSON object with aws_access_key_id and "
        f"aws_secret_access_key (optionally endpoint_url, region_name), or unset {CREDENTIALS_BLOCK_VARIABLE}"
    )
    try:
        value = Secret.load(name, _sync=True).get()
    except Exception as e:  # noqa: BLE001 - not found, wrong block type, API unreachable
        raise DistilflowUserError(
            f"cannot load the S3 credentials block {name!r} named by {CREDENTIALS_BLOCK_VARIABLE} "
            f"({type(e).__name__}); {fix}."
        ) from None  # the cause may quote the block's value
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = None
    if not isinstance(value, dict) or not value.get("aws_access_key_id") or not value.get("aws_secret_access_key"):
        raise DistilflowUserError(f"the Secret block {name!r} does not hold S3 credentials in the expected form; {fix}.")
    return {key: str(item) for key, item in value.items() if item is not None}
