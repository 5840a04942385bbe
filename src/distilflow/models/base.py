"""What every model client shares: settings, run-time parameters, the answer identity, the async adapter.

The bases users subclass live where distilabel keeps them: `distilflow.models.llms.base` (`LLM`,
`AsyncLLM`) and `distilflow.models.image_generation.base` (`ImageGenerationModel`,
`AsyncImageGenerationModel`).

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
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, ClassVar, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, PrivateAttr, ValidationError, model_validator

from distilflow._loop import PerLoop, run_sync
from distilflow.errors import (
    DistilflowUserError, InvalidSettingsError, ModelConfigurationError, ModelRequestError,
)
from distilflow.mixins.runtime_parameters import RuntimeParametersMixin, generation_parameters
from distilflow.typing import RUNTIME_PARAMETER

_log = logging.getLogger("distilflow.models")

# Arguments of `generate`/`agenerate` that the framework passes itself.
_FRAMEWORK_ARGS = {"self", "input", "inputs", "num_generations"}


class _ModelClient(RuntimeParametersMixin, BaseModel, ABC):
    """What every model client has: a name, generation settings, load/unload."""

    model_config = ConfigDict(
        arbitrary_types_allowed=True, extra="forbid", protected_namespaces=(), validate_assignment=True
    )

    generation_kwargs: Optional[Annotated[dict[str, Any], RUNTIME_PARAMETER]] = Field(
        default_factory=dict,
        description="Settings passed to every generation call (temperature, max_new_tokens, ...).",
    )
    # distilabel's offline batch generation (a provider's batch API): accepted, not done (see below)
    use_offline_batch_generation: Optional[Annotated[bool, RUNTIME_PARAMETER]] = False
    offline_batch_generation_block_until_done: Optional[Annotated[int, RUNTIME_PARAMETER]] = None
    jobs_ids: Union[tuple[str, ...], None] = None

    #: Settings about how the server is reached, not what it answers (left out of `answer_identity`).
    transport_fields: ClassVar[frozenset[str]] = frozenset({
        "max_concurrent_requests", "use_offline_batch_generation", "offline_batch_generation_block_until_done",
        "jobs_ids",
    })

    def __init__(self, **data: Any) -> None:
        # One line naming each refused argument, like the tasks' errors, instead of pydantic's report.
        try:
            super().__init__(**data)
        except ValidationError as e:
            raise InvalidSettingsError.from_validation(type(self).__name__, e) from None

    @model_validator(mode="after")
    def _offline_batch_generation_is_not_done(self):
        if self.use_offline_batch_generation:
            _log.warning(
                "%s: use_offline_batch_generation=True is accepted for distilabel compatibility, but distilflow "
                "sends requests online (no provider batch API); answers are the same, the price is not.",
                type(self).__name__,
            )
        return self

    @property
    def runtime_parameters_names(self) -> dict[str, Any]:
        names = super().runtime_parameters_names
        names["generation_kwargs"] = generation_parameters(self._generate_method(), _FRAMEWORK_ARGS)
        return names

    _logger: logging.Logger | None = PrivateAttr(default=None)

    @property
    @abstractmethod
    def model_name(self) -> str:
        """The name of the model, as written into every row's `model_name`."""

    def answer_identity(self) -> dict[str, Any]:
        """What tells this model's answers apart from another's: class, name and answer-changing settings.

        Part of every answer-cache key, with the request itself. Never the key, the connection or
        the server's address (see `transport_fields`); generation settings are keyed per request.
        """
        cls = type(self)
        exclude = set(self.transport_fields) | {"generation_kwargs"}
        return {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "model_name": self.model_name,
            "settings": self.model_dump(exclude=exclude),
        }

    def generation_settings(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """`kwargs` with every generation setting the client would use by default filled in.

        A changed default (say `max_new_tokens`) changes what is sent, so it belongs in the key.
        """
        settings = {
            name: p.default
            for name, p in inspect.signature(self._generate_method()).parameters.items()
            if name not in _FRAMEWORK_ARGS
            and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
            and p.default is not inspect.Parameter.empty
        }
        settings.update(kwargs)
        return settings

    def load(self) -> None:
        """Prepare the client. Subclasses that override it call `super().load()`."""
        self._logger = logging.getLogger(f"distilflow.models.{type(self).__name__}")

    def unload(self) -> None:
        """Release what `load` acquired."""

    @property
    def is_loaded(self) -> bool:
        return self._logger is not None

    def get_generation_kwargs(self) -> dict[str, Any]:
        return dict(self.generation_kwargs or {})

    def _generate_method(self):
        return self.generate

    @model_validator(mode="after")
    def _check_generation_kwargs(self):
        """Reject unknown settings now, not as a 400 after the first request is paid for."""
        params = inspect.signature(self._generate_method()).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return self
        known = [name for name in params if name not in _FRAMEWORK_ARGS]
        unknown = sorted(set(self.generation_kwargs or {}) - set(known))
        if unknown:
            raise DistilflowUserError(
                f"{type(self).__name__} does not know the generation setting(s) {unknown}. "
                f"Known settings: {sorted(known)}. Fix or remove them in `generation_kwargs`."
            )
        return self


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
        results = await self.agenerate_each(inputs, num_generations, **kwargs)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return results

    async def agenerate_each(
        self,
        inputs: list[Any],
        num_generations: int = 1,
        on_answer: Callable[[int, Any], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> list[Any]:
        """Each input's answer, or the `ModelRequestError` that input's request ended with.

        Requests run concurrently, at most `max_concurrent_requests` at once; `on_answer(index,
        result)` is awaited as each input's request ends, with its answer or its
        `ModelRequestError`, still holding the request's slot. A request error belongs to its
        input; any other error, or a `ModelConfigurationError` (no request can succeed), cancels
        the rest and is raised.
        """
        limit = self._limits.get(lambda: asyncio.Semaphore(self.max_concurrent_requests))

        async def one(index: int, item: Any) -> Any:
            async with limit:
                try:
                    result = await self.agenerate(item, num_generations=num_generations, **kwargs)
                except ModelConfigurationError:
                    raise
                except ModelRequestError as e:
                    result = e
                if on_answer is not None:
                    await on_answer(index, result)
                return result

        tasks = [asyncio.ensure_future(one(i, item)) for i, item in enumerate(inputs)]
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
