"""Connection settings, secrets, retries and adaptive concurrency of the OpenAI-compatible clients.

An OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, Ollama, llama.cpp, TGI, gateways, the
simulator) is configuration: a `base_url` and a key. The `openai` SDK's own retries are turned off
so that every 429/503 passes through `call_with_retries`, which backs off (honouring
`Retry-After` / `retry-after-ms`) and turns the final failure into a `ModelRequestError` whose
`transient` flag tells the orchestrator whether retrying the batch later can help.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Optional, TypeVar

import httpx
from pydantic import BaseModel, Field, NonNegativeInt, PositiveFloat, PositiveInt, PrivateAttr, SecretStr

from distilflow._loop import PerLoop
from distilflow._state import fresh_private_state
from distilflow.models._concurrency import AdaptiveLimit
from distilflow.models._rate_limits import RateLimits
from distilflow.models._server_watch import OUTAGE_RETRY_SECONDS, ServerWatch, server_message, transport_cause
from distilflow.typing import RUNTIME_PARAMETER
from distilflow.errors import DistilflowUserError, ModelRequestError, model_request_error

if TYPE_CHECKING:
    import openai

T = TypeVar("T")
_log = logging.getLogger("distilflow.models")

# Keys we send when the server needs none (vLLM, Ollama, the simulator); the SDK insists on one.
_NO_KEY = "no-key-needed"
_OPENAI_URL = "https://api.openai.com/v1"


class OpenAICompatible(BaseModel):
    """Fields and behaviour of a client for an OpenAI-compatible HTTP API."""

    base_url_env: ClassVar[str] = "OPENAI_BASE_URL"
    api_key_env: ClassVar[str] = "OPENAI_API_KEY"
    default_base_url: ClassVar[str] = _OPENAI_URL
    # The address is not part of a model's identity: the same model reached through another
    # host, port or gateway keeps its cached answers. `model_revision` says when it is not.
    transport_fields: ClassVar[frozenset[str]] = frozenset({
        "api_key", "base_url", "timeout", "max_retries", "retry_backoff", "retry_max_delay",
        "max_concurrent_requests", "min_concurrent_requests", "default_headers", "max_outage_seconds",
        "use_offline_batch_generation", "offline_batch_generation_block_until_done", "jobs_ids",
    })

    model: str = Field(description="Model name sent to the server and written to rows.")
    model_revision: str | None = Field(
        default=None,
        description="What tells this endpoint's model apart from others served under the same name "
        "(a checkpoint, a quantization, a host: e.g. 'llama3-8b-awq@gpu-a'). Cached answers are shared "
        "by every endpoint serving `model` with the same revision, whatever its URL.",
    )
    base_url: Optional[Annotated[str, RUNTIME_PARAMETER]] = Field(
        default=None, description="API root, e.g. http://127.0.0.1:8000/v1."
    )
    api_key: Optional[Annotated[SecretStr, RUNTIME_PARAMETER]] = Field(
        default=None, description="API key; prefer the environment variable, which is never serialized."
    )
    timeout: Annotated[PositiveFloat, RUNTIME_PARAMETER] = Field(
        default=120.0, description="Seconds before a request is abandoned."
    )
    max_retries: Annotated[NonNegativeInt, RUNTIME_PARAMETER] = Field(
        default=6, description="Retries of a transient failure per request."
    )
    max_outage_seconds: Annotated[PositiveFloat, RUNTIME_PARAMETER] = Field(
        default=300.0,
        description="While no request gets through to the server (connections refused or reset), requests wait "
        "for it instead of spending their retries; after this long without an answer the run stops.",
    )
    retry_backoff: PositiveFloat = Field(default=0.5, description="First retry delay, doubled each time.")
    retry_max_delay: PositiveFloat = Field(default=30.0, description="Longest wait between retries.")

    default_headers: Optional[Annotated[dict[str, str], RUNTIME_PARAMETER]] = Field(
        default=None, description="Headers sent with every request (a gateway's routing, an organization)."
    )
    min_concurrent_requests: PositiveInt = Field(
        default=1, description="The adaptive request limit never goes below this, however many 429s."
    )

    _server: Optional[ServerWatch] = PrivateAttr(default=None)  # see server_watch()
    _clients: PerLoop = PrivateAttr(default_factory=PerLoop)
    _limits_adaptive: PerLoop = PrivateAttr(default_factory=PerLoop)
    _rate_limits: PerLoop = PrivateAttr(default_factory=PerLoop)

    @property
    def model_name(self) -> str:
        return self.model

    def answer_identity(self) -> dict[str, Any]:
        # the model asked for, not a display name written to rows
        return {**super().answer_identity(), "model_name": self.model}

    def load(self) -> None:
        super().load()
        self.check_settings()

    def unload(self) -> None:
        self.close_clients()
        super().unload()

    # -- settings ------------------------------------------------------------------------------

    def resolved_base_url(self) -> str:
        return (self.base_url or os.environ.get(self.base_url_env) or self.default_base_url).rstrip("/")

    def _resolved_key(self) -> str:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.resolved_base_url() == self.default_base_url.rstrip("/"):
            raise DistilflowUserError(
                f"{type(self).__name__} needs an API key for {self.default_base_url}: set "
                f"{self.api_key_env} in the environment, or point `base_url` (or {self.base_url_env}) "
                "at an OpenAI-compatible server that needs none."
            )
        return _NO_KEY

    def check_settings(self) -> None:
        """Raise now if the key or URL is missing, rather than at the first request."""
        self._resolved_key()
        url = self.resolved_base_url()
        if not url.startswith(("http://", "https://")):
            raise DistilflowUserError(
                f"{type(self).__name__}: base_url {url!r} is not an http(s) URL; "
                "use e.g. http://127.0.0.1:8000/v1."
            )

    def client(self) -> openai.AsyncOpenAI:
        """The async client bound to the running event loop."""
        import openai  # on first use: a run answered from the cache never pays its import (0.6 s)

        def new_client() -> openai.AsyncOpenAI:
            client = openai.AsyncOpenAI(
                api_key=self._resolved_key(),
                base_url=self.resolved_base_url(),
                timeout=self.timeout,
                max_retries=0,
                default_headers=self.default_headers,
                http_client=_aiohttp_client(openai, self.max_concurrent_requests),
            )
            # closed when this model object goes away, or at exit (aiohttp reports unclosed sessions)
            weakref.finalize(self._clients, _close_soon, asyncio.get_running_loop(), client)
            return client

        return self._clients.get(new_client)

    def close_clients(self) -> None:
        for loop, client in self._clients.items():
            if loop.is_running() and not loop.is_closed():
                try:
                    asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass
        self._clients.clear()

    # Secrets never travel with a pickled client: a worker reads its own environment.
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state = dict(state)
        state["__dict__"] = {**state["__dict__"], "api_key": None}
        state["__pydantic_private__"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        # connection pools, limits and loggers are rebuilt on the receiving side
        object.__setattr__(self, "__pydantic_private__", fresh_private_state(self))

    # -- requests ------------------------------------------------------------------------------

    async def call_with_retries(self, what: str, request: Callable[[], Awaitable[T]], tokens: int = 0) -> T:
        """Await `request()`, retrying transient failures with backoff and jitter.

        Each attempt first waits for the server's rate-limit budget to fit it (`tokens`: what it
        is estimated to cost; see `_rate_limits`); a request that reads an answer's headers passes
        them to `rate_limits().update`.
        """
        attempt = 0
        limit, budget, server = self.concurrency_limit(), self.rate_limits(), self.server_watch()
        while True:
            await limit.acquire()
            tried = time.monotonic()
            try:
                await budget.take(tokens)  # holding the slot: while the budget is spent it is idle anyway
                with server.in_flight():
                    result = await request()
            # a body that is not JSON (a proxy's error page) surfaces as JSONDecodeError
            except (
                _sdk().APIError, httpx.HTTPStatusError, httpx.TransportError, json.JSONDecodeError, MalformedAnswer
            ) as e:
                status, response = _status_of(e)
                if status is not None:
                    server.heard()  # an error answer is an answer: the server is not silent
                if response is not None:
                    budget.update(getattr(response, "headers", None))
                retry_after = _retry_after(response) if response is not None else None
                if status in (429, 503):  # the server says it has too much: ask less of it
                    limit.overloaded(retry_after)
                transient = status is None or _is_transient_status(status)
                # no request at all got through while this one tried: the server is down, so this
                # does not spend a retry of its own; the outage's length is what counts
                outage = status is None and server.failed_to_reach(e, tried)
                if not outage and (not transient or attempt >= self.max_retries):
                    raise self._request_error(what, e, status, transient) from e
                delay = self._backoff(attempt) if retry_after is None else retry_after
                if outage:
                    delay = min(delay, OUTAGE_RETRY_SECONDS)  # find out soon when it is back
            else:
                limit.succeeded()
                server.answered()
                return result
            finally:
                limit.release()
            if not outage:
                attempt += 1
            _log.debug("%s: transient failure, retry %d in %.2fs", what, attempt, delay)
            server.waiting += 1
            try:
                await asyncio.sleep(min(delay, self.retry_max_delay))
            finally:
                server.waiting -= 1

    def server_watch(self) -> ServerWatch:
        """What this client knows of its server's health (refused, down, silent)."""
        if self._server is None:
            self._server = ServerWatch(self)
        return self._server

    def rate_limits(self) -> RateLimits:
        """This loop's view of the server's per-minute budgets, from its x-ratelimit-* headers."""
        return self._rate_limits.get(RateLimits)

    def concurrency_limit(self) -> AdaptiveLimit:
        """This loop's adaptive limit on requests in flight (see `distilflow.models._concurrency`)."""
        return self._limits_adaptive.get(
            lambda: AdaptiveLimit(ceiling=self.max_concurrent_requests, floor=self.min_concurrent_requests)
        )

    def _backoff(self, attempt: int) -> float:
        delay = min(self.retry_max_delay, self.retry_backoff * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    def _request_error(self, what: str, error: Exception, status: int | None, transient: bool) -> ModelRequestError:
        where = self.resolved_base_url()
        if status is None:
            reason = f"{type(error).__name__}: {transport_cause(error)}"
            retried = f" after {self.max_retries} retries"
            return ModelRequestError(f"{what} to {where} failed{retried}: {reason}", transient=True, server_message=reason)
        retried = f" after {self.max_retries} retries" if transient else ""
        said = server_message(error)
        return model_request_error(
            f"{what} to {where} failed with HTTP {status}{retried}: {said}{_fix_for(status)}",
            status_code=status,
            transient=transient,
            code=_server_code(error),
            server_message=said,
        )


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return (". Check the API key (api_key=, or the provider's key variable such as OPENAI_API_KEY) "
                "and that it may use this model")
    if status == 402:
        return ". The account behind the key cannot pay for requests; check its billing"
    return ""


# What is transient and what becomes a fallback row (tests/reliability/test_server_faults.py checks it):
#
# * an answer that is not an answer at all -- a body that is not JSON (a proxy's error page), a
#   JSON value that is not an object, a completion without `choices` (or with none, or with a
#   choice without a message), an images answer without `data` -- is a failure of the server
#   or of something between us and it, like a 5xx: there is no model output to keep. It is
#   retried with backoff and, if it persists, fails the batch as a transient `ModelRequestError`
#   (Prefect retries the batch). Never a fallback row.
# * a well-formed answer whose content is empty, or that the task cannot parse (truncated JSON,
#   no rating, ...), is the model's answer: it is kept as a fallback row with the raw output and
#   `fallback_reason_<task>` ("EmptyOutput: ...", or the format_output error). Not retried: the
#   same request would usually get the same answer, and the row says what happened.
#
# Each client reads its own answers inside the request it hands to `call_with_retries` and raises
# MalformedAnswer there, so that the retry covers it.
class MalformedAnswer(Exception):
    """An HTTP 200 whose body is JSON but not an answer (no choices, no data, not an object)."""


def _sdk() -> Any:
    import openai

    return openai


def clip(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _close_soon(loop: asyncio.AbstractEventLoop, client: Any) -> None:
    """Close `client` on its loop, if that loop still runs (waiting briefly unless on that loop)."""
    if loop.is_closed() or not loop.is_running():
        return
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        loop.create_task(client.close())
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=1.0)


def _aiohttp_client(openai: Any, connections: int) -> Any:
    """The SDK's aiohttp transport (`openai.DefaultAioHttpClient`), else None: the SDK's default.

    Same requests, same error types, but about 30% less CPU per request than the default
    transport, whose connection pool checks every idle connection's socket on each request; a
    run of thousands of requests on one core is bound by exactly that (benchmarks/throughput.py).
    """
    factory = getattr(openai, "DefaultAioHttpClient", None)
    if factory is None:  # an SDK older than the transport
        return None
    try:
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=max(connections, 1), max_keepalive_connections=max(connections, 1),
            keepalive_expiry=openai.DEFAULT_CONNECTION_LIMITS.keepalive_expiry,
        )
        return factory(limits=limits)
    except RuntimeError:  # aiohttp is not installed
        return None


def _status_of(error: Exception) -> tuple[int | None, Any]:
    """(HTTP status, response) of a failed request; status None for transport failures."""
    if isinstance(error, _sdk().APIStatusError):
        return error.status_code, error.response
    if isinstance(error, httpx.HTTPStatusError):
        return error.response.status_code, error.response
    return None, None


def _is_transient_status(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500


def _retry_after(response: Any) -> float | None:
    headers = getattr(response, "headers", None) or {}
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _server_code(error: Exception) -> str | None:
    """The server's own error code (`context_length_exceeded`, ...), when it sent one."""
    body = getattr(error, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    code = inner.get("code") if isinstance(inner, dict) else None
    return str(code) if code is not None else None


_said: set[tuple[str, str]] = set()


def say_once(client: Any, argument: str, what: str) -> None:
    """Log, once per client class and argument, that a distilabel argument cannot apply here."""
    key = (type(client).__name__, argument)
    if key not in _said:
        _said.add(key)
        _log.warning("%s: %s (accepted for distilabel compatibility).", type(client).__name__, what)
