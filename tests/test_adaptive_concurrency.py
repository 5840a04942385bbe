"""Adaptive concurrency per model client: converge on a server's quota, never storm it."""

from __future__ import annotations

import asyncio

import pytest

from distilflow._loop import run_sync
from distilflow.models import OpenAILLM
from distilflow.models._concurrency import AdaptiveLimit
from distilflow.simulator import Simulator


def shared_loop_limit(llm: OpenAILLM) -> AdaptiveLimit:
    """The limit on distilflow's shared loop, where the sync `generate` runs."""

    async def current() -> AdaptiveLimit:
        return llm.concurrency_limit()

    return run_sync(current())


def feed(limit: AdaptiveLimit, accepted: int, refused: int, retry_after: float | None = None) -> None:
    for _ in range(accepted):
        limit.succeeded()
    for _ in range(refused):
        limit.overloaded(retry_after)


async def test_limit_grows_when_calm_shrinks_when_overloaded_and_holds_in_between():
    limit = AdaptiveLimit(ceiling=100, floor=2)
    limit.limit = 20.0
    feed(limit, accepted=45, refused=5)  # 10% refused: room to grow
    assert limit.current == 25
    feed(limit, accepted=40, refused=10)  # 20% refused: hold
    assert limit.current == 25 and limit.decreases == 0
    feed(limit, accepted=20, refused=30)  # 60% refused: over capacity
    assert limit.current == 18 and limit.decreases == 1
    for _ in range(20):
        feed(limit, accepted=0, refused=max(50, limit.current))
    assert limit.current == 2  # never below the floor
    for _ in range(40):
        feed(limit, accepted=max(50, limit.current), refused=0)
    assert limit.current == 100  # never above the ceiling


async def test_overload_pauses_new_requests_for_the_retry_after():
    limit = AdaptiveLimit(ceiling=10)
    feed(limit, accepted=0, refused=50, retry_after=0.3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limit.acquire()
    assert loop.time() - started >= 0.25
    limit.release()


async def test_waiters_start_when_a_slot_frees():
    limit = AdaptiveLimit(ceiling=1)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.01)
    assert not waiter.done() and limit.in_flight == 1
    limit.release()
    await asyncio.wait_for(waiter, 1)
    assert limit.in_flight == 1


@pytest.fixture
def quota_server():
    with Simulator(latency=0.05, max_concurrent_requests=8, retry_after=0.02) as sim:
        yield sim


def test_converges_on_the_servers_quota_without_losing_rows(quota_server):
    llm = OpenAILLM(model="m", base_url=quota_server.base_url, max_concurrent_requests=64, max_retries=30, retry_backoff=0.01)
    llm.load()
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(200)]
    first = llm.generate(prompts)
    assert all(o["generations"][0] for o in first)
    quota_server.reset()
    second = llm.generate(prompts)
    assert all(o["generations"][0] for o in second) and len(second) == 200
    stats = quota_server.stats()
    limit = shared_loop_limit(llm)
    assert 4 <= limit.current <= 16, limit.current  # near the quota of 8, far below the ceiling of 64
    assert stats["by_status"]["200"] == 200
    # settled: refusals are a fraction of the answers, not the storm of a 64-wide burst
    assert stats["by_status"]["429"] < 200


def test_random_throttling_does_not_collapse_the_limit():
    with Simulator(latency=0.02, rate_limit_fraction=0.2, retry_after=0.01, fault_seed=3) as sim:
        llm = OpenAILLM(model="m", base_url=sim.base_url, max_concurrent_requests=32, max_retries=30, retry_backoff=0.01)
        llm.load()
        outputs = llm.generate([[{"role": "user", "content": f"q{i}"}] for i in range(300)])
        assert len(outputs) == 300 and all(o["generations"][0] for o in outputs)
        assert sim.stats()["by_status"]["429"] > 30  # the throttling happened
        assert shared_loop_limit(llm).current == 32
        # the server saw the client near its ceiling, never above (how near depends on how busy the machine is)
        assert 16 < sim.stats()["max_in_flight"] <= 32
