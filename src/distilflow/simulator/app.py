"""The Starlette application: model endpoints behind latency/fault handling, plus admin routes."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import SimulatorConfig
from .endpoints import (
    DEFAULT_MODEL,
    Outcome,
    RequestContext,
    admission_tokens,
    chat_completion,
    image_generation,
    refusal,
    request_model,
    text_completion,
)
from .errors import ApiError, rate_limit_reached, request_too_large, scripted_error
from .images import parse_image_name, render_png
from .state import SimulatorState

# Served with a JSON content type on purpose: a proxy that lies about its
# payload is the nasty case, clients must fail to decode rather than get a str.
GARBAGE_BODY = b"<html><body><h1>200 OK</h1>simulated garbage, this is not JSON</body></html>"
# nginx's "client closed request": recorded when a hanging request is abandoned.
CLIENT_CLOSED = 499
# nginx's "connection closed without response": recorded for the "reset" fault.
NO_RESPONSE = 444
# Where `with_connection_control` leaves the function that resets the request's connection.
ABORT_KEY = "distilflow.abort_connection"

Builder = Callable[[dict, Any, str, RequestContext], Outcome]


class Sleeper:
    """asyncio sleeps that shutdown can cut short and client disconnects can end.

    Without this, stop() would wait for every simulated hang (30 s by default).
    """

    def __init__(self) -> None:
        self.closing = False
        self._waiters: set[asyncio.Future[bool]] = set()

    async def sleep(self, delay: float, watch: Request | None = None) -> bool:
        """Sleep ``delay`` seconds; True if the watched client disconnected meanwhile."""
        if delay <= 0 or self.closing:
            return False
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(delay, _settle, done, False)
        watcher = loop.create_task(_watch_disconnect(watch, done)) if watch is not None else None
        self._waiters.add(done)
        try:
            return await done
        finally:
            timer.cancel()
            self._waiters.discard(done)
            if watcher is not None:
                watcher.cancel()

    def wake_all(self) -> None:
        """Called in the server loop when stopping: finish every pending sleep now."""
        self.closing = True
        for waiter in list(self._waiters):
            _settle(waiter, False)


def _settle(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


async def _watch_disconnect(request: Request, done: asyncio.Future[bool]) -> None:
    # The body is already read, so the next ASGI message can only be a disconnect.
    while not done.done():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            _settle(done, True)
            return


class ResetConnection(Response):
    """No answer at all: the TCP connection is reset, as by a crashing server or a dropping proxy.

    Needs the transport that `with_connection_control` finds under uvicorn. Elsewhere it does
    the closest thing ASGI allows: promise a body, send half of it and end the connection.
    """

    def __init__(self) -> None:
        super().__init__(status_code=NO_RESPONSE)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        abort = scope.get(ABORT_KEY)
        if abort is not None and abort():
            # let the server see the connection gone, so it does not answer 500 for us
            for _ in range(3):
                await asyncio.sleep(0)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")]})
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-', "more_body": True})


def with_connection_control(app: Any) -> Any:
    """The ASGI app, with a way for a response to reset its TCP connection (uvicorn only)."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                scope[ABORT_KEY] = lambda: _reset(transport)
        await app(scope, receive, send)

    return wrapped


def _reset(transport: Any) -> bool:
    """Abort the connection with an RST (SO_LINGER 0) rather than an orderly FIN."""
    try:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    except Exception:  # noqa: BLE001 - fall back to a truncated answer
        return False
    return True


def build_app(state: SimulatorState, sleeper: Sleeper) -> Starlette:
    async def model_request(request: Request, endpoint: str, build: Builder) -> Response:
        try:
            raw = await request.body()
        except ClientDisconnect:  # gone before sending its body: nothing to count
            return Response(status_code=CLIENT_CLOSED)
        expected = state.config.api_key
        if expected and request.headers.get("authorization") != f"Bearer {expected}":
            state.record_response(401)
            return ApiError(401, "Incorrect API key provided.", code="invalid_api_key").response()
        key = f"{endpoint}:{hashlib.sha256(raw).hexdigest()}"
        state.arrived(key)
        if not state.enter():
            state.refuse_over_quota(endpoint, key)
            return _with_headers(scripted_error(429, state.config.retry_after).response(), state.rate_limit_headers())
        try:
            config = state.config
            if config.requests_per_minute is None and config.tokens_per_minute is None:
                return await handle_model_request(request, raw, key, endpoint, build)
            body = _parse_object_or_empty(raw)
            admission = state.admit(endpoint, key, admission_tokens(endpoint, body, config))
            refused = admission.refusal
            if refused is None:
                response = await handle_model_request(request, raw, key, endpoint, build)
                return _with_headers(response, admission.headers)
            model = request_model(body)
            if refused.wait is None:
                error = request_too_large(refused.kind, model, refused.limit, refused.requested, admission.headers)
            else:
                error = rate_limit_reached(
                    refused.kind, model, refused.limit, refused.used, refused.requested, refused.wait, admission.headers
                )
            return error.response()
        finally:
            state.leave()

    async def handle_model_request(request: Request, raw: bytes, key: str, endpoint: str, build: Builder) -> Response:
        config = state.config
        refused = _refusal(raw, endpoint, config) if config.refuse_containing else None
        if refused is not None:  # a property of the prompt, not a fault: latency, then the error
            await sleeper.sleep(state.request_delay(config, state.begin_refused(endpoint)))
            state.record_response(refused.status)
            return refused.response()
        config, fault, sequence = state.begin_request(endpoint)
        await sleeper.sleep(state.request_delay(config, sequence))
        if isinstance(fault, int):
            state.record_response(fault, key=key, retry_after=config.retry_after)
            return scripted_error(fault, config.retry_after).response()
        if fault == "garbage":
            state.record_response(200)
            return Response(GARBAGE_BODY, media_type="application/json")
        if fault == "reset":
            state.record_response(NO_RESPONSE)
            return ResetConnection()
        if fault == "timeout" and await sleeper.sleep(config.hang_seconds, watch=request):
            state.record_response(CLIENT_CLOSED)
            return Response(status_code=CLIENT_CLOSED)
        try:
            body = _parse_object(raw)
            context = RequestContext(hashlib.sha256(raw).hexdigest()[:24], str(request.base_url))
            outcome = build(body, config, fault, context)
        except ApiError as error:
            state.record_response(error.status)
            return error.response()
        if fault == "no_choices":  # a well-formed JSON object that is not an answer
            payload = {k: v for k, v in outcome.payload.items() if k not in ("choices", "data")}
            state.record_response(200, prompt_tokens=outcome.prompt_tokens)
            return JSONResponse(payload)
        # generation time: longer answers take longer (nothing to wait for by default)
        await sleeper.sleep(config.latency_per_token * outcome.completion_tokens)
        state.record_response(
            200,
            choices=outcome.choices,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
        )
        return JSONResponse(outcome.payload)

    async def chat(request: Request) -> Response:
        return await model_request(request, "chat.completions", chat_completion)

    async def completions(request: Request) -> Response:
        return await model_request(request, "completions", text_completion)

    async def images(request: Request) -> Response:
        return await model_request(request, "images.generations", image_generation)

    async def list_models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_model_card(m) for m in _model_ids(state)]})

    async def get_model(request: Request) -> Response:
        model_id = request.path_params["model_id"]
        if state.config.models is not None and model_id not in state.config.models:
            return ApiError(
                404, f"The model '{model_id}' does not exist", param="model", code="model_not_found"
            ).response()
        return JSONResponse(_model_card(model_id))

    async def image_file(request: Request) -> Response:
        parsed = parse_image_name(request.path_params["name"])
        if parsed is None:
            return ApiError(404, "No such simulated image.", code="not_found").response()
        return Response(render_png(*parsed), media_type="image/png")

    async def stats(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.snapshot())

    async def get_config(request: Request) -> Response:
        return JSONResponse(state.config.model_dump(exclude={"api_key"}))

    async def update_config(request: Request) -> Response:
        try:
            fields = _parse_object(await request.body())
            config = state.update_config(fields)
        except ApiError as error:
            return error.response()
        except ValidationError as error:
            detail = json.loads(error.json(include_url=False, include_context=False))
            body = ApiError(422, f"Invalid simulator config: {error}", code="invalid_config").body()
            return JSONResponse({**body, "detail": detail}, status_code=422)
        return JSONResponse(config.model_dump())

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"{exc.detail}: {request.method} {request.url.path}"
        code = "not_found" if exc.status_code == 404 else None
        return ApiError(exc.status_code, message, code=code).response()

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/images/generations", images, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", get_model, methods=["GET"]),
        Route("/_sim/images/{name}.png", image_file, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/reset", reset, methods=["POST"]),
        Route("/_sim/config", get_config, methods=["GET"]),
        Route("/_sim/config", update_config, methods=["POST"]),
        Route("/_sim/health", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: http_error})


def _with_headers(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers[name] = value
    return response


def _refusal(raw: bytes, endpoint: str, config: SimulatorConfig) -> ApiError | None:
    """The refusal for this body's prompt, if any; a body that is not a JSON object is not refused
    here (the normal path answers it with its validation error)."""
    try:
        body = _parse_object(raw)
    except ApiError:
        return None
    return refusal(endpoint, body, config)


def _parse_object_or_empty(raw: bytes) -> dict:
    try:
        return _parse_object(raw)
    except ApiError:
        return {}


def _parse_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError(400, f"We could not parse the JSON body of your request: {error}", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", code="invalid_json")
    return body


def _model_ids(state: SimulatorState) -> list[str]:
    return state.config.models if state.config.models is not None else [DEFAULT_MODEL]


def _model_card(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "owned_by": "distilflow-simulator", "created": 0}
