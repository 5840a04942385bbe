"""`HubDouble`: a local stand-in for the Hugging Face Hub, for tests and offline runs.

    with HubDouble() as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint   # before huggingface_hub / datasets are imported
        distiset.push_to_hub("me/my-dataset", token="anything")
        datasets.load_dataset("me/my-dataset", "default", split="train")

The real `huggingface_hub` and `datasets` clients talk to it over HTTP on loopback. It keeps repos
in memory (`hub.repo("me/my-dataset").files`), accepts any token unless given `tokens=`, and
`hub.refuse_commits(1)` makes the next commit fail as an outage would.
"""

from __future__ import annotations

from typing import Union

from distilflow._serving import LoopbackServer

from .app import build_app
from .store import HubStore, Repo

__all__ = ["HubDouble"]


class HubDouble(LoopbackServer):
    kind = "hub-double"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tokens: Union[set[str], None] = None) -> None:
        self.store = HubStore()
        self.store.tokens = set(tokens) if tokens is not None else None
        super().__init__(build_app(self.store), host, port)

    @property
    def endpoint(self) -> str:
        """What `HF_ENDPOINT` is set to for the clients to use this double."""
        return self.url

    def repo(self, repo_id: str, repo_type: str = "dataset") -> Union[Repo, None]:
        return self.store.get(repo_type, repo_id)

    def refuse_commits(self, count: int = 1) -> None:
        """Answer the next `count` commits with a server error (a push that fails half-way)."""
        self.store.refused_commits = count

    def __repr__(self) -> str:
        return f"HubDouble({self.endpoint if self.running else 'stopped'})"
