"""The part of the Hugging Face Hub's HTTP API that `huggingface_hub` and `datasets` use to push and read datasets.

Creating a repo, the pre-upload check, git-LFS uploads, NDJSON commits, repo info, tree and
paths-info listings, and file downloads (`resolve`), answered as the Hub answers them (status codes
and the `X-Error-Code` headers the clients read). Repos live in memory (`HubStore`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any, Union

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .store import HubStore, Repo, git_blob_sha1

__all__ = ["build_app"]

_log = logging.getLogger("distilflow.hub")
_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
_LFS_SUFFIXES = (".parquet", ".arrow", ".bin", ".safetensors", ".png", ".jpg", ".jpeg", ".zip", ".gz")
_LFS_SIZE = 10 * 1024 * 1024
USER = "distilflow-user"


def build_app(store: HubStore) -> Starlette:
    def refused(request: Request, write: bool) -> Union[Response, None]:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if (write and not token) or (token and store.tokens is not None and token not in store.tokens):
            return _error(401, "Invalid credentials in Authorization header", "Unauthorized")
        return None

    async def whoami(request: Request) -> Response:
        return refused(request, write=True) or JSONResponse(
            {"type": "user", "name": USER, "fullname": USER, "orgs": [], "auth": {"accessToken": {"role": "write"}}})

    async def create(request: Request) -> Response:
        if (answer := refused(request, write=True)) is not None:
            return answer
        body = await request.json()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or USER}/{body['name']}"
        private = bool(body.get("private")) or body.get("visibility") == "private"  # older and newer clients
        repo, made = store.create(repo_type, repo_id, private)
        url = _repo_url(request, repo)
        if not made:
            return JSONResponse({"error": f"You already created this {repo_type} repo", "url": url}, status_code=409)
        return JSONResponse({"url": url, "name": repo_id, "id": repo_id})

    async def api(request: Request) -> Response:
        repo_type = _TYPES.get(request.path_params["kind"])
        parts = request.path_params["rest"].split("/")
        if repo_type is None or len(parts) < 2:
            return _error(404, "Not found", "EntryNotFound")
        repo = store.get(repo_type, "/".join(parts[:2]))
        action, rest = (parts[2], parts[3:]) if len(parts) > 2 else ("info", [])
        if repo is None or (repo.private and refused(request, write=True)):
            return _error(404, "Repository not found", "RepoNotFound")
        if (answer := refused(request, write=request.method == "POST")) is not None:
            return answer
        if action in ("info", "revision"):
            return JSONResponse(_info(repo))
        if action == "preupload":
            return JSONResponse({"files": [_upload_mode(repo, f) for f in (await request.json())["files"]]})
        if action == "commit":
            return await _commit(request, store, repo)
        if action == "tree":
            prefix = "/".join(rest[1:]).strip("/")
            if prefix and not any(p.startswith(prefix + "/") for p in repo.files):
                return _error(404, f"{prefix} does not exist", "EntryNotFound", repo)
            return JSONResponse(_tree(repo, prefix, request.query_params.get("recursive") in ("1", "true", "True")))
        if action == "paths-info":
            form = await request.form()
            paths = form.getlist("paths") if form else (await request.json()).get("paths", [])
            return JSONResponse([e for p in paths for e in _entries(repo, str(p))])
        return _error(404, f"{action} is not served by the Hub double", "EntryNotFound")

    async def lfs_batch(request: Request) -> Response:
        body = await request.json()
        base = str(request.base_url).rstrip("/")
        objects = []
        for item in body.get("objects", []):
            entry: dict[str, Any] = {"oid": item["oid"], "size": item["size"], "authenticated": True}
            if not store.has_lfs(item["oid"]):
                entry["actions"] = {"upload": {"href": f"{base}/_lfs/{item['oid']}"},
                                    "verify": {"href": f"{base}/_lfs/{item['oid']}/verify"}}
            objects.append(entry)
        return JSONResponse({"transfer": "basic", "objects": objects, "hash_algo": "sha256"},
                            media_type="application/vnd.git-lfs+json")

    async def lfs_put(request: Request) -> Response:
        oid, data = request.path_params["oid"], await request.body()
        if hashlib.sha256(data).hexdigest() != oid:
            return _error(400, "content does not match its oid", "BadRequest")
        store.put_lfs(oid, data)
        return Response(status_code=200)

    async def lfs_verify(request: Request) -> Response:
        ok = store.has_lfs(request.path_params["oid"])
        return JSONResponse({"ok": ok}, status_code=200 if ok else 404)

    async def resolve(request: Request) -> Response:
        repo_type = _TYPES.get(request.path_params["kind"], "model")
        repo = store.get(repo_type, f"{request.path_params['namespace']}/{request.path_params['name']}")
        if repo is None or (repo.private and refused(request, write=True)):
            return _error(404, "Repository not found", "RepoNotFound")
        path = request.path_params["path"]
        if path not in repo.files:
            return _error(404, f"{path} does not exist", "EntryNotFound", repo)
        data = repo.files[path]
        oid = hashlib.sha256(data).hexdigest() if path in repo.lfs_paths else git_blob_sha1(data)
        headers = {"ETag": f'"{oid}"', "X-Repo-Commit": repo.head, "Content-Length": str(len(data)),
                   "Accept-Ranges": "bytes"}
        if path in repo.lfs_paths:
            headers.update({"X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(len(data))})
        if request.method == "HEAD":
            return Response(status_code=200, headers=headers)
        start, end = _range(request.headers.get("range"), len(data))
        if (start, end) != (0, len(data)):
            headers.update({"Content-Range": f"bytes {start}-{end - 1}/{len(data)}", "Content-Length": str(end - start)})
            return Response(data[start:end], status_code=206, headers=headers)
        return Response(data, headers=headers)

    async def validate_yaml(request: Request) -> Response:  # the card's metadata: the double accepts it
        return JSONResponse({"errors": [], "warnings": []})

    async def unknown(request: Request) -> Response:
        _log.info("Hub double: no route for %s %s", request.method, request.url.path)
        return _error(404, f"{request.url.path} is not served by the Hub double", "EntryNotFound")

    return Starlette(routes=[
        Route("/api/whoami-v2", whoami, methods=["GET"]),
        Route("/api/repos/create", create, methods=["POST"]),
        Route("/api/validate-yaml", validate_yaml, methods=["POST"]),
        Route("/api/{kind}/{rest:path}", api, methods=["GET", "POST"]),
        Route("/{kind}/{namespace}/{name}.git/info/lfs/objects/batch", lfs_batch, methods=["POST"]),
        Route("/{namespace}/{name}.git/info/lfs/objects/batch", lfs_batch, methods=["POST"]),
        Route("/_lfs/{oid}", lfs_put, methods=["PUT"]),
        Route("/_lfs/{oid}/verify", lfs_verify, methods=["POST"]),
        Route("/{kind}/{namespace}/{name}/resolve/{revision}/{path:path}", resolve, methods=["GET", "HEAD"]),
        Route("/{rest:path}", unknown, methods=["GET", "HEAD", "POST", "PUT", "DELETE"]),
    ])


async def _commit(request: Request, store: HubStore, repo: Repo) -> Response:
    if store.refused_commits > 0:
        store.refused_commits -= 1
        return _error(500, "The Hub double refused this commit (a simulated outage)", "InternalError")
    summary, regular, lfs, deleted = "", {}, {}, []
    for line in (await request.body()).decode("utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        key, value = item.get("key"), item.get("value", {})
        if key == "header":
            summary = value.get("summary", "")
        elif key == "file":
            content = value["content"]
            regular[value["path"]] = base64.b64decode(content) if value.get("encoding") == "base64" else content.encode()
        elif key == "lfsFile":
            lfs[value["path"]] = value["oid"]
        elif key in ("deletedFile", "deletedFolder"):
            deleted.extend(p for p in repo.files if p == value["path"] or p.startswith(value["path"].rstrip("/") + "/"))
    try:
        oid = store.commit(repo, summary, regular, lfs, deleted)
    except KeyError as e:
        return _error(422, f"LFS object {e} was not uploaded before the commit", "BadRequest")
    return JSONResponse({"commitUrl": f"{_repo_url(request, repo)}/commit/{oid}", "commitOid": oid,
                         "commitMessage": summary, "pullRequestUrl": None})


def _info(repo: Repo) -> dict[str, Any]:
    return {"id": repo.repo_id, "_id": repo.repo_id, "author": repo.repo_id.split("/")[0], "sha": repo.head,
            "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
            "lastModified": "2026-01-01T00:00:00.000Z", "createdAt": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": path} for path in sorted(repo.files)]}


def _upload_mode(repo: Repo, file: dict[str, Any]) -> dict[str, Any]:
    path = file["path"]
    lfs = path.endswith(_LFS_SUFFIXES) or int(file.get("size") or 0) > _LFS_SIZE
    entry = {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False}
    if path in repo.files:
        data = repo.files[path]
        entry["oid"] = hashlib.sha256(data).hexdigest() if path in repo.lfs_paths else git_blob_sha1(data)
    return entry


def _entry(repo: Repo, path: str) -> dict[str, Any]:
    data = repo.files[path]
    entry: dict[str, Any] = {"type": "file", "path": path, "size": len(data), "oid": git_blob_sha1(data)}
    if path in repo.lfs_paths:
        entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return entry


def _entries(repo: Repo, path: str) -> list[dict[str, Any]]:
    path = path.strip("/")
    if path in repo.files:
        return [_entry(repo, path)]
    if any(p.startswith(path + "/") for p in repo.files) or not path:
        return [{"type": "directory", "path": path, "oid": "0" * 40, "size": 0}]
    return []


def _tree(repo: Repo, prefix: str, recursive: bool) -> list[dict[str, Any]]:
    prefix = prefix.strip("/")
    base = f"{prefix}/" if prefix else ""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(repo.files):
        if not path.startswith(base):
            continue
        rest = path[len(base):]
        if recursive or "/" not in rest:
            found[path] = _entry(repo, path)
        parts = rest.split("/")[:-1]
        for depth in range(1, len(parts) + 1) if recursive else range(1, min(len(parts), 1) + 1):
            folder = base + "/".join(parts[:depth])
            found.setdefault(folder, {"type": "directory", "path": folder, "oid": "0" * 40, "size": 0})
    return [found[p] for p in sorted(found)]


def _range(header: Union[str, None], size: int) -> tuple[int, int]:
    if not header or not header.startswith("bytes="):
        return 0, size
    first, _, last = header[len("bytes="):].split(",")[0].partition("-")
    if not first:  # the last N bytes
        return max(size - int(last), 0), size
    return int(first), min(int(last) + 1, size) if last else size


def _repo_url(request: Request, repo: Repo) -> str:
    prefix = {"dataset": "datasets/", "space": "spaces/"}.get(repo.repo_type, "")
    return f"{str(request.base_url).rstrip('/')}/{prefix}{repo.repo_id}"


def _error(status: int, message: str, code: str, repo: Union[Repo, None] = None) -> Response:
    headers = {"X-Error-Code": code, "X-Error-Message": message}
    if repo is not None:
        headers["X-Repo-Commit"] = repo.head
    return JSONResponse({"error": message}, status_code=status, headers=headers)
