"""Prefect's global concurrency limits, shared by every worker: batches in flight, requests per period.

Both are off by default. `concurrency_limit` names a limit each running batch holds one slot of;
`rate_limit` names one with slot decay (Prefect's rate limits) that a batch takes one slot of per
request, just before it sends them, so that several workers, or several runs, asking the same
model stay under its budget together. The model client's own pacing by the server's
`x-ratelimit-*` headers works within one process; this one works across processes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from distilflow.errors import DistilflowUserError

__all__ = ["RateLimit", "check_rate_limit", "global_slot"]


class RateLimit:
    """Takes slots of the Prefect rate limit `name` (of `size` slots) for requests about to be sent."""

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        # a batch takes its slots a quarter of the limit at a time: asking for more than the limit
        # at once would never be granted, and asking for all of it would starve other workers
        self.chunk = max(1, size // 4)

    def __call__(self, requests: int) -> None:
        from prefect.concurrency.sync import rate_limit

        while requests > 0:
            take = min(requests, self.chunk)
            rate_limit(self.name, occupy=take, strict=True)
            requests -= take


def check_rate_limit(name: str) -> RateLimit:
    """The rate limit `name`, after checking it exists and decays (before any request is sent)."""
    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    create = (
        f"create it with `prefect gcl create {name} --limit <requests per period> --slot-decay-per-second "
        f"<limit / seconds in the period>` (500 requests a minute: --limit 500 --slot-decay-per-second 8.33)"
    )
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise DistilflowUserError(
                f"rate_limit={name!r}: Prefect has no global concurrency limit of that name; {create}, or unset "
                "rate_limit."
            ) from None
    if not limit.slot_decay_per_second:
        raise DistilflowUserError(
            f"rate_limit={name!r}: that global concurrency limit has no slot decay, so it caps requests at once, "
            f"not requests per period. Give it one (`prefect gcl update {name} --slot-decay-per-second <limit / "
            "seconds in the period>`) or use it as concurrency_limit."
        )
    if not limit.active:
        raise DistilflowUserError(
            f"rate_limit={name!r}: that global concurrency limit is inactive, so it would pace nothing; enable it "
            f"(`prefect gcl enable {name}`) or unset rate_limit."
        )
    return RateLimit(name, limit.limit)


@contextmanager
def global_slot(name: str) -> Iterator[None]:
    """One slot of a Prefect global concurrency limit, shared by every worker."""
    from prefect.concurrency.sync import concurrency

    try:
        with concurrency(name, occupy=1, strict=True):
            yield
    except Exception as e:
        if type(e).__name__ != "ConcurrencySlotAcquisitionError":  # (its module is private)
            raise
        raise DistilflowUserError(
            f"Could not take a slot of the global concurrency limit {name!r} ({e}). If it does not "
            f"exist, create it with `prefect gcl create {name} --limit <batches at once>`, or unset "
            "concurrency_limit."
        ) from e

