"""Routing: which of a step's successors get each of its batches (distilabel's routing batch functions).

    load >> sample_n_steps(2) >> [gen_a, gen_b, gen_c]   # each batch goes to two of the three

A routing function takes the names of the successors and returns the names that get the batch.
"""

from __future__ import annotations

import copy
import random
from typing import TYPE_CHECKING, Any, Callable, Union

from distilflow.errors import DistilflowUserError

if TYPE_CHECKING:
    from distilflow.steps.base import _Step

__all__ = ["RoutingBatchFunction", "routing_batch_function", "sample_n_steps"]


class RoutingBatchFunction:
    """Chooses, for each batch of `step`, the successors that get it."""

    def __init__(self, function: Callable[[list[str]], list[str]], description: str = "", n: Union[int, None] = None):
        self.function, self.description, self.n = function, description or function.__name__, n
        self.step: Union[_Step, None] = None
        self.successors: list[str] = []

    def __call__(self, steps: list[str]) -> list[str]:
        return self.function(steps)

    def route(self, seed: str) -> list[str]:
        """The successors that get one batch (checked: some, and only successors).

        `seed` names the batch (pipeline, step, batch number): `sample_n_steps` draws from it, so a
        re-run sends each batch where it went before and finds its answers in the cache.
        """
        if self.n is not None:
            chosen = random.Random(seed).sample(self.successors, self.n)
        else:
            chosen = list(self.function(list(self.successors)))
        unknown = [name for name in chosen if name not in self.successors]
        if not chosen or unknown:
            raise DistilflowUserError(
                f"Routing of step '{self.step.name if self.step else '?'}' ({self.description}) chose {chosen}, "
                f"but a batch must go to at least one of its successors {self.successors}: fix the routing function."
            )
        return chosen

    def _from(self, step: _Step) -> RoutingBatchFunction:
        """`step >> routing`: a copy bound to the step whose batches it routes (`>> [...]` names the
        successors), so one routing function, defined once, serves any number of steps and pipelines."""
        bound = copy.copy(self)
        bound.step, bound.successors = step, []
        return bound

    def _set_step(self, step: _Step, successors: Any) -> None:
        self.step = step
        self.successors = [s.name for s in successors]
        step.pipeline._set_routing(step, self)

    def __rshift__(self, other: Any) -> Any:
        """`routing >> [a, b, c]`: the successors it chooses among."""
        if self.step is None:
            raise DistilflowUserError(
                f"Routing ({self.description}) has no step before it: write `step >> routing >> [a, b]`."
            )
        successors = other if isinstance(other, list) else [other]
        self.step.connect(*successors, routing_batch_function=self)
        return other

    def __repr__(self) -> str:
        return f"RoutingBatchFunction({self.description!r})"


def routing_batch_function(
    function: Union[Callable[[list[str]], list[str]], None] = None, *, description: str = ""
) -> Any:
    """Make a routing function from `function(successor_names) -> names that get the batch`."""

    def wrap(func: Callable[[list[str]], list[str]]) -> RoutingBatchFunction:
        return RoutingBatchFunction(func, description or (func.__doc__ or func.__name__).strip())

    return wrap(function) if function is not None else wrap


def sample_n_steps(n: int) -> RoutingBatchFunction:
    """Each batch goes to `n` of the step's successors, chosen at random."""
    if not isinstance(n, int) or n < 1:
        raise DistilflowUserError(f"sample_n_steps({n!r}): give the number of successors each batch goes to (>= 1).")

    def sample(steps: list[str]) -> list[str]:
        return random.sample(steps, n)

    return RoutingBatchFunction(sample, f"Sample {n} steps from the list of downstream steps.", n=n)
