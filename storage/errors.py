"""Storage failures as `DistilflowUserError`s that name the location, the problem and the fix.

fsspec and s3fs report problems as OSError subclasses, botocore exceptions or raw S3 error codes;
a user needs "bucket 'x' does not exist" instead. Messages are scrubbed of every secret this
process knows, in case a library ever quotes one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from urllib.parse import urlsplit

from distilflow.storage.filesystems import (
    CREDENTIALS_BLOCK_VARIABLE,
    filesystem,
    known_secrets,
    s3_endpoint,
)
from distilflow.errors import DistilflowUserError

__all__ = ["StorageNotFoundError", "storage_errors", "translate"]

_REJECTED_CREDENTIALS = {
    "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
}
_CREDENTIALS_FIX = (
    "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
    f"or the Secret block named by {CREDENTIALS_BLOCK_VARIABLE}"
)


class StorageNotFoundError(DistilflowUserError, FileNotFoundError):
    """A path or object that does not exist; still a FileNotFoundError for code that expects one."""


@contextlib.contextmanager
def storage_errors(uri: str, action: str) -> Iterator[None]:
    """Translate storage failures raised inside the block; `action` completes "cannot ... here"."""
    try:
        yield
    except DistilflowUserError:
        raise
    except Exception as e:  # every storage failure gets a message a user can act on
        raise translate(e, uri, action) from e


def translate(error: BaseException, uri: str, action: str) -> DistilflowUserError:
    code = _s3_error_code(error)
    remote = "://" in uri and not uri.startswith("file://")
    if (code is None or code.isdigit()) and remote and isinstance(error, PermissionError):
        code = _code_of_listing(uri) or code
    if _is_connection_error(error):
        return DistilflowUserError(_scrub(_unreachable(uri)))
    if type(error).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return DistilflowUserError(f"{uri}: no S3 credentials found; set AWS_ACCESS_KEY_ID and "
                                   f"AWS_SECRET_ACCESS_KEY, or name a Secret block in {CREDENTIALS_BLOCK_VARIABLE}.")
    if code == "NoSuchBucket" or (isinstance(error, FileNotFoundError) and "bucket does not exist" in str(error)):
        return StorageNotFoundError(f"{uri}: bucket {bucket_of(uri)!r} does not exist; create it or fix the URI.")
    if code in _REJECTED_CREDENTIALS:
        return DistilflowUserError(f"{uri}: the S3 server rejected the credentials ({code}); {_CREDENTIALS_FIX}.")
    if code == "AccessDenied" or (remote and isinstance(error, PermissionError)):
        detail = f" ({code})" if code else ""
        return DistilflowUserError(
            f"{uri}: access denied{detail}: the credentials in use may not {action} here; grant them access to "
            f"bucket {bucket_of(uri)!r} (s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject) or "
            f"{_CREDENTIALS_FIX}."
        )
    if isinstance(error, PermissionError):
        return DistilflowUserError(
            f"{uri}: permission denied: this user may not {action} here; change its permissions or choose another "
            "location."
        )
    if isinstance(error, FileNotFoundError) and action == "write":
        # a folder that exists but takes no new files (/proc, /sys), or vanished while writing
        return DistilflowUserError(f"{uri}: no file can be made there (no such file or directory); choose another path.")
    if isinstance(error, FileNotFoundError):
        return StorageNotFoundError(f"{uri}: no such file or directory; check the path or URI.")
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        return DistilflowUserError(f"{uri}: part of the path is a file, not a directory; choose another path.")
    if isinstance(error, IsADirectoryError):
        return DistilflowUserError(f"{uri}: is a directory where a file was expected; choose another path.")
    return DistilflowUserError(
        _scrub(f"{uri}: cannot {action} ({type(error).__name__}: {error}); check the URI and the storage.")
    )


def bucket_of(uri: str) -> str:
    return urlsplit(uri).netloc if "://" in uri else ""


def _unreachable(uri: str) -> str:
    endpoint = s3_endpoint()
    if not endpoint:
        return (f"{uri}: cannot reach S3; check the network, or set AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) "
                "for an S3-compatible server.")
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (f"{uri}: cannot reach the S3 endpoint {parts.hostname}:{port}; check AWS_ENDPOINT_URL "
            "(or AWS_ENDPOINT_URL_S3) and that the server is running.")


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _s3_error_code(error: BaseException) -> str | None:
    for cause in _causes(error):
        response = getattr(cause, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
    return None


def _code_of_listing(uri: str) -> str | None:
    """The S3 error code behind a bare 403: HEAD answers carry no body, a listing's answer does."""
    try:
        fs, _ = filesystem(uri)
        fs.call_s3("list_objects_v2", Bucket=bucket_of(uri), MaxKeys=1)
    except Exception as e:  # noqa: BLE001 - only its S3 error code matters
        return _s3_error_code(e)
    return None


def _is_connection_error(error: BaseException) -> bool:
    names = {type(cause).__name__ for cause in _causes(error)}
    return bool(names & {
        "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ClientConnectorError",
        "ServerDisconnectedError", "ConnectionRefusedError",
    })


def _scrub(message: str) -> str:
    for secret in known_secrets():
        message = message.replace(secret, "***")
    return message
