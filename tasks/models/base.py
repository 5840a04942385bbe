"""Model client bases, with distilabel's names and output shapes.

A model client answers a batch of formatted inputs:

* `LLM.generate(inputs, num_generations)` -> one `{"generations": [...n], "statistics": {...}}`
  per input;
* `ImageGenerationModel.generate(inputs, num_generations)` -> one `[{"images": [b64]}, ...n]`
  per input.

Async clients implement only `agenerate(input, ...)` for a single input; their sync `generate`
is a thin adapter that runs the batch concurrently (bounded by `max_concurrent_requests`) on
distilflow's shared event loop, so it also works when the caller already runs a loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, model_validator

from tasks._loop import PerLoop, run_sync
from tasks.errors import DistilflowUserError
from tasks.typing import FormattedInput, GenerateOutput, ImageGenerateOutput

__all__ = [
    "AsyncImageGenerationModel",
    "AsyncLLM",
    "ImageGenerationModel",
    "LLM",
]

# Arguments of `generate`/`agenerate` that the framework passes itself.
_FRAMEWORK_ARGS = {"self", "input", "inputs", "num_generations"}


class _ModelClient(BaseModel, ABC):
    """What every model client has: a name, generation settings, load/unload."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", protected_namespaces=(), validate_assignment=True
    )

    generation_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Settings passed to every generation call (temperature, max_new_tokens, ...).",
    )

    _logger: logging.Logger | None = PrivateAttr(default=None)

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The name of the model, as written into every row's `model_name`."""

    def load(self) -> None:
        """Prepare the client. Subclasses that override it call `super().load()`."""
        self._logger = logging.getLogger(f"distilflow.models.{type(self).__name__}")

    def unload(self) -> None:
        """Release what `load` acquired."""

    @property
    def is_loaded(self) -> bool:
        return self._logger is not None

    def get_generation_kwargs(self) -> dict[str, Any]:
        return dict(self.generation_kwargs)

    def _generate_method(self):
        return self.generate

    @model_validator(mode="after")
    def _check_generation_kwargs(self):
        """Reject unknown settings now, not as a 400 after the first request is paid for."""
        params = inspect.signature(self._generate_method()).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return self
        known = [name for name in params if name not in _FRAMEWORK_ARGS]
        unknown = sorted(set(self.generation_kwargs) - set(known))
        if unknown:
            raise DistilflowUserError(
                f"{type(self).__name__} does not know the generation setting(s) {unknown}. "
                f"Known settings: {sorted(known)}. Fix or remove them in `generation_kwargs`."
            )
        return self


class LLM(_ModelClient):
    """A text model. Implement `model_name` and `generate`."""

    @abstractmethod
    def generate(
        self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any
    ) -> list[GenerateOutput]:
        """Generate `num_generations` answers for each input."""

    def generate_outputs(
        self, inputs: list[FormattedInput], num_generations: int = 1, **kwargs: Any
    ) -> list[GenerateOutput]:
        """`generate`, with its answer checked so a broken client fails loudly, not as odd rows."""
        outputs = self.generate(inputs=inputs, num_generations=num_generations, **kwargs)
        _check_llm_outputs(type(self).__name__, outputs, len(inputs), num_generations)
        return outputs


class ImageGenerationModel(_ModelClient):
    """An image model. Implement `model_name` and `generate`."""

    @abstractmethod
    def generate(
        self, inputs: list[str], num_generations: int = 1, **kwargs: Any
    ) -> list[ImageGenerateOutput]:
        """Generate `num_generations` images for each prompt."""

    def generate_outputs(
        self, inputs: list[str], num_generations: int = 1, **kwargs: Any
    ) -> list[ImageGenerateOutput]:
        outputs = self.generate(inputs=inputs, num_generations=num_generations, **kwargs)
        if len(outputs) != len(inputs) or any(len(o) != num_generations for o in outputs):
            raise RuntimeError(
                f"{type(self).__name__}.generate must return one list of {num_generations} "
                f"image dict(s) per input; got {[len(o) for o in outputs]} for {len(inputs)} inputs."
            )
        return outputs


class _AsyncAdapter(BaseModel):
    """Turns a single-input `agenerate` into a batch `generate` with bounded concurrency."""

    max_concurrent_requests: PositiveInt = Field(
        default=64, description="Most requests this client keeps in flight at once."
    )

    _limits: PerLoop = PrivateAttr(default_factory=PerLoop)

    def _generate_method(self):
        return self.agenerate

    def generate(self, inputs: list[Any], num_generations: int = 1, **kwargs: Any) -> list[Any]:
        return run_sync(self.agenerate_batch(inputs, num_generations=num_generations, **kwargs))

    async def agenerate_batch(
        self, inputs: list[Any], num_generations: int = 1, **kwargs: Any
    ) -> list[Any]:
        """Await `agenerate` for every input concurrently; the first error cancels the rest."""
        limit = self._limits.get(lambda: asyncio.Semaphore(self.max_concurrent_requests))

        async def one(item):
            async with limit:
                return await self.agenerate(item, num_generations=num_generations, **kwargs)

        tasks = [asyncio.ensure_future(one(item)) for item in inputs]
        if not tasks:
            return []
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except BaseException:
            for t in tasks:
                t.cancel()
            raise
        if pending:
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        failed = [t for t in tasks if t.done() and not t.cancelled() and t.exception() is not None]
        if failed:  # the real error, not the cancellation of its neighbours
            raise failed[0].exception()
        return [t.result() for t in tasks]


class AsyncLLM(_AsyncAdapter, LLM):
    """A text model with an async client. Implement `model_name` and `agenerate`."""

    @abstractmethod
    async def agenerate(
        self, input: FormattedInput, num_generations: int = 1, **kwargs: Any
    ) -> GenerateOutput:
        """Generate `num_generations` answers for one input."""


class AsyncImageGenerationModel(_AsyncAdapter, ImageGenerationModel):
    """An image model with an async client. Implement `model_name` and `agenerate`."""

    @abstractmethod
    async def agenerate(
        self, input: str, num_generations: int = 1, **kwargs: Any
    ) -> ImageGenerateOutput:
        """Generate `num_generations` images for one prompt: `[{"images": [b64]}, ...]`."""


def _check_llm_outputs(owner: str, outputs: Any, n_inputs: int, n: int) -> None:
    ok = isinstance(outputs, list) and len(outputs) == n_inputs
    ok = ok and all(
        isinstance(o, dict) and isinstance(o.get("generations"), list) and len(o["generations"]) == n
        for o in outputs
    )
    if not ok:
        raise RuntimeError(
            f"{owner}.generate must return one {{'generations': [...{n}], 'statistics': {{...}}}} "
            f"per input ({n_inputs} inputs); got {outputs!r:.300}"
        )
