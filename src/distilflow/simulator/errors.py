"""OpenAI-style error responses, both for real validation errors and scripted faults."""

from __future__ import annotations

import math

from starlette.responses import JSONResponse


class ApiError(Exception):
    """An error answered as ``{"error": {...}}`` with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def missing_field(name: str) -> ApiError:
    return ApiError(
        400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter"
    )


def invalid_field(name: str, detail: str) -> ApiError:
    return ApiError(400, f"Invalid value for '{name}': {detail}", param=name, code="invalid_value")


#: The context window a refused chat or completions prompt is said to exceed.
CONTEXT_LENGTH = 128_000


def context_length_exceeded(status: int, tokens: int, param: str) -> ApiError:
    """OpenAI's answer to a prompt longer than the model's context (``param``: messages or prompt)."""
    return ApiError(
        status,
        f"This model's maximum context length is {CONTEXT_LENGTH} tokens. However, your {param} "
        f"resulted in {tokens} tokens. Please reduce the length of the {param}.",
        param=param,
        code="context_length_exceeded",
    )


def content_policy_violation(status: int) -> ApiError:
    """OpenAI's answer to an image prompt its safety system rejects."""
    return ApiError(
        status,
        "Your request was rejected as a result of our safety system. Your prompt may contain text "
        "that is not allowed by our safety system.",
        code="content_policy_violation",
    )


def retry_headers(retry_after: float) -> dict[str, str]:
    # Retry-After only allows whole seconds; clients that know retry-after-ms
    # (the openai SDK does) get the precise, usually much shorter, delay.
    return {
        "Retry-After": str(math.ceil(retry_after)),
        "retry-after-ms": str(round(retry_after * 1000)),
    }


def openai_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-* headers (Go's time.Duration format,
    in whole milliseconds, rounded up): "0s", "120ms", "1s", "8.64s", "6m0s", "1h2m3.5s"."""
    millis = max(0, math.ceil(seconds * 1000 - 1e-6))
    if millis < 1000:
        return f"{millis}ms" if millis else "0s"
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    whole, fraction = divmod(millis, 1000)
    text = f"{whole}" + (f".{fraction:03d}".rstrip("0") if fraction else "") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    return f"{minutes}m{text}" if minutes else text


_BUDGET_NAMES = {"requests": "requests per min (RPM)", "tokens": "tokens per min (TPM)"}
_RATE_LIMIT_HELP = "Visit https://platform.openai.com/account/rate-limits to learn more."


def rate_limit_reached(
    kind: str, model: str, limit: int, used: int, requested: int, wait: float, headers: dict[str, str]
) -> ApiError:
    """OpenAI's 429 for a request its RPM or TPM budget cannot cover now (``kind``: requests or tokens)."""
    return ApiError(
        429,
        f"Rate limit reached for {model} in organization org-simulator on {_BUDGET_NAMES[kind]}: "
        f"Limit {limit}, Used {used}, Requested {requested}. Please try again in {openai_duration(wait)}. "
        + _RATE_LIMIT_HELP,
        code="rate_limit_exceeded",
        type=kind,
        headers={**headers, **retry_headers(wait)},
    )


def request_too_large(kind: str, model: str, limit: int, requested: int, headers: dict[str, str]) -> ApiError:
    """OpenAI's 429 for a request larger than the whole budget: no wait helps, so no Retry-After."""
    return ApiError(
        429,
        f"Request too large for {model} in organization org-simulator on {_BUDGET_NAMES[kind]}: "
        f"Limit {limit}, Requested {requested}. The input or output tokens must be reduced in order "
        "to run successfully. " + _RATE_LIMIT_HELP,
        code="rate_limit_exceeded",
        type=kind,
        headers=headers,
    )


# status -> (message, type, code), modelled on what OpenAI answers.
_SCRIPTED: dict[int, tuple[str, str, str | None]] = {
    400: ("Bad request (simulated fault).", "invalid_request_error", None),
    401: ("Incorrect API key provided (simulated fault).", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource (simulated fault).", "invalid_request_error", None),
    404: ("The requested resource does not exist (simulated fault).", "invalid_request_error", None),
    408: ("Request timed out (simulated fault).", "timeout", None),
    409: ("Conflict (simulated fault).", "invalid_request_error", None),
    422: ("Unprocessable request (simulated fault).", "invalid_request_error", None),
    429: ("Rate limit reached for requests (simulated fault).", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request (simulated fault).", "server_error", None),
    502: ("Bad gateway (simulated fault).", "server_error", None),
    503: ("The server is overloaded or not ready yet (simulated fault).", "server_error", None),
    504: ("Gateway timeout (simulated fault).", "server_error", None),
}


def scripted_error(status: int, retry_after: float) -> ApiError:
    """The error a fault_script status or a fault fraction answers with."""
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    message, type_, code = _SCRIPTED.get(status, (f"Simulated error {status}.", default_type, None))
    headers = retry_headers(retry_after) if status in (429, 503) else None
    return ApiError(status, message, code=code, type=type_, headers=headers)
