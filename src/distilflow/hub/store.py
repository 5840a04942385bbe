"""The Hub double's repositories: files by path at the head of `main`, and the commits that made them."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from typing import Union

__all__ = ["HubStore", "Repo", "git_blob_sha1"]


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file's content (what the Hub calls a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    repo_type: str  # "dataset", "model" or "space"
    repo_id: str
    private: bool = False
    files: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)  # files uploaded through git-LFS
    commits: list[tuple[str, str, float]] = field(default_factory=list)  # (oid, summary, time)

    @property
    def head(self) -> str:
        return self.commits[-1][0] if self.commits else "0" * 40


class HubStore:
    """Thread-safe: the double's routes and a test's checks read and write it at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """No repos, no refused commits, any token accepted."""
        with self._lock:
            self._repos: dict[tuple[str, str], Repo] = {}
            self._lfs: dict[str, bytes] = {}  # sha256 -> content, uploaded before the commit that names it
            self.refused_commits = 0  #: commits still to refuse (a push that fails half-way)
            self.tokens: Union[set[str], None] = None  #: accepted tokens; None accepts any

    def create(self, repo_type: str, repo_id: str, private: bool) -> tuple[Repo, bool]:
        """The repo, and whether it was made now."""
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                return self._repos[key], False
            repo = self._repos[key] = Repo(repo_type, repo_id, private)
            repo.commits.append((_oid(f"{repo_id} initial"), "initial commit", time.time()))
            repo.files[".gitattributes"] = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
            return repo, True

    def get(self, repo_type: str, repo_id: str) -> Union[Repo, None]:
        with self._lock:
            return self._repos.get((repo_type, repo_id))

    def repos(self) -> list[Repo]:
        with self._lock:
            return list(self._repos.values())

    def put_lfs(self, oid: str, data: bytes) -> None:
        with self._lock:
            self._lfs[oid] = data

    def has_lfs(self, oid: str) -> bool:
        with self._lock:
            return oid in self._lfs

    def commit(self, repo: Repo, summary: str, regular: dict[str, bytes], lfs: dict[str, str],
               deleted: list[str]) -> str:
        """Apply one commit; `lfs` maps path -> sha256 of content uploaded before. Raises KeyError for a missing one."""
        with self._lock:
            contents = {path: self._lfs[oid] for path, oid in lfs.items()}
            for path in deleted:
                repo.files.pop(path, None)
                repo.lfs_paths.discard(path)
            repo.files.update(regular)
            repo.files.update(contents)
            repo.lfs_paths.difference_update(regular)
            repo.lfs_paths.update(contents)
            oid = _oid(f"{repo.repo_id} {repo.head} {summary} {sorted(repo.files)} {time.time()}")
            repo.commits.append((oid, summary, time.time()))
            return oid


def _oid(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()
