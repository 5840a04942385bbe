"""What a client knows of its server's health, so a fault is named in seconds, never waited on in silence.

- A server this client never reached that refuses connections for REFUSED_AT_START_SECONDS is a
  wrong URL: `ModelConfigurationError`, naming it.
- An outage (no request got through since a failing one started: refused, reset, unknown host)
  is waited out without spending requests' retries, with a warning every OUTAGE_LOG_SECONDS, and
  ends the run past `max_outage_seconds` (`ModelServerUnavailableError`).
- A server that takes requests and answers none (hung, black-holed) is said every
  OUTAGE_LOG_SECONDS while requests wait on it; their `timeout` and `max_retries` bound it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Optional, Protocol

from distilflow._loop import PerLoop
from distilflow.errors import ModelConfigurationError, ModelServerUnavailableError

__all__ = [
    "OUTAGE_LOG_SECONDS", "OUTAGE_RETRY_SECONDS", "REFUSED_AT_START_SECONDS", "ServerWatch", "server_message",
    "transport_cause",
]

_log = logging.getLogger("distilflow.models")

#: How long a server that never answered this client may refuse connections before the run stops.
REFUSED_AT_START_SECONDS = 5.0
#: During an outage, requests try again at least this often, and the log says so this often.
OUTAGE_RETRY_SECONDS = 5.0
OUTAGE_LOG_SECONDS = 25.0
#: How often a client with requests in flight looks whether any answer came.
SILENCE_CHECK_SECONDS = 5.0


class Client(Protocol):
    base_url_env: str
    max_outage_seconds: float
    timeout: float
    max_retries: int

    def resolved_base_url(self) -> str: ...


class ServerWatch:
    """One client's view of its server: answered yet, refused since when, silent since when."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._answered = False
        self._refused_since: Optional[float] = None
        self._last_answer = time.monotonic()
        self._last_heard = 0.0  # the last HTTP answer of any status
        self._outage_since: Optional[float] = None
        self._said = 0.0
        self.waiting = 0  # requests sleeping before their next try
        self._in_flight = 0
        self._busy_since = 0.0
        self._watchers = PerLoop()

    # -- what happened to a request --------------------------------------------------------------

    def answered(self) -> None:
        self._answered, self._refused_since = True, None
        self._last_answer = time.monotonic()
        if self._outage_since is not None:
            _log.warning("%s answers again.", self._client.resolved_base_url())
            self._outage_since = None

    def heard(self) -> None:
        self._last_heard = time.monotonic()

    def failed_to_reach(self, error: BaseException, tried: float) -> bool:
        """A request started at `tried` failed without an HTTP answer: raise if nothing listens at the
        URL or an outage lasted too long; whether this is an outage (the retry is not spent)."""
        self._check_listening(error)
        if not (_unreachable(error) and self._last_answer <= tried):
            return False
        self._in_outage(error)
        return True

    @contextlib.contextmanager
    def in_flight(self) -> Iterator[None]:
        """Around one request's wait for its answer: while any wait, silence is watched."""
        if self._in_flight == 0:
            self._busy_since = time.monotonic()
        self._in_flight += 1
        watcher = self._watchers.get(_Watcher)
        if watcher.task is None or watcher.task.done():
            watcher.task = asyncio.get_running_loop().create_task(self._watch_silence())
        try:
            yield
        finally:
            self._in_flight -= 1

    # -- what the user is told --------------------------------------------------------------------

    def _check_listening(self, error: BaseException) -> None:
        if self._answered or _refused_connection(error) is None:
            return
        now = time.monotonic()
        if self._refused_since is None:
            self._refused_since = now
        elif now - self._refused_since >= REFUSED_AT_START_SECONDS:
            raise ModelConfigurationError(
                f"nothing is listening at {self._client.resolved_base_url()} ({_refused_connection(error)} for "
                f"{now - self._refused_since:.0f} s, and no answer yet): check the base URL (base_url=, "
                f"{self._client.base_url_env}; --model.base-url in the flows), or start the server first.",
                transient=False,
            ) from error

    def _in_outage(self, error: BaseException) -> None:
        now = time.monotonic()
        if self._outage_since is None:
            self._outage_since, self._said = now, 0.0
        down, limit = now - self._outage_since, self._client.max_outage_seconds
        url, cause = self._client.resolved_base_url(), transport_cause(error)
        if down >= limit:
            raise ModelServerUnavailableError(
                f"the model server at {url} has not answered for {down:.0f} s ({cause}), more than "
                f"max_outage_seconds={limit:g} (--model.max-outage-seconds in the flows). The run stopped; every "
                "answer it received is kept in the answer cache: run the same command again once the server is "
                "back, and it sends only the requests not answered yet.",
                transient=False,
            ) from error
        if now - self._said >= OUTAGE_LOG_SECONDS:
            self._said = now
            since = f" for {down:.0f} s" if down >= 1 else ""
            _log.warning(
                "the model server at %s does not answer (%s)%s; %d requests wait for it. Retrying every few "
                "seconds; the run stops if no answer comes for another %.0f s (max_outage_seconds).",
                url, cause, since, self.waiting + 1, limit - down,
            )

    async def _watch_silence(self) -> None:
        while self._in_flight > 0:
            await asyncio.sleep(SILENCE_CHECK_SECONDS)
            now = time.monotonic()
            silent = now - max(self._last_answer, self._last_heard, self._busy_since)
            if self._in_flight and silent >= OUTAGE_LOG_SECONDS and now - self._said >= OUTAGE_LOG_SECONDS:
                self._said = now
                client = self._client
                _log.warning(
                    "the model server at %s has sent no answer for %.0f s; %d requests wait for one. Each gives up "
                    "after %g s (timeout) and is tried again up to %d times (max_retries).",
                    client.resolved_base_url(), silent, self._in_flight, client.timeout, client.max_retries,
                )


class _Watcher:
    task: Optional[asyncio.Task] = None


def _causes(error: BaseException):
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _refused_connection(error: BaseException) -> Optional[str]:
    """"connection refused" or "unknown host" when that is what the transport ran into, else None."""
    for cause in _causes(error):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, socket.gaierror):
            return f"unknown host ({cause})"
    return None


def _unreachable(error: BaseException) -> bool:
    """Whether the server could not be reached at all (refused, reset, unknown host), not merely slow."""
    return any(
        isinstance(cause, (ConnectionRefusedError, ConnectionResetError, socket.gaierror))
        or type(cause).__name__ in ("ClientConnectorError", "ServerDisconnectedError", "ConnectError")
        for cause in _causes(error)
    )


def transport_cause(error: BaseException) -> str:
    """What went wrong underneath: the SDK's aiohttp transport reports a refused port as a timeout."""
    refused = _refused_connection(error)
    if refused is not None:
        return refused
    deepest = list(_causes(error))[-1]
    return server_message(error) if deepest is error else f"{server_message(error)} ({deepest})"


def server_message(error: BaseException) -> str:
    """The server's own message in an error answer, else the error's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(error, "message", None) or error)
