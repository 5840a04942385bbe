"""Validated configuration of the simulator (latency, provider quirks, faults)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_IMAGE_SIDE = 512

#: Fault kinds that do not answer with an error status: a delayed, broken or missing answer.
#: timeout: hang (hang_seconds) before answering; malformed: 200 with broken content (truncated
#: JSON in JSON mode, "<<malformed>>" otherwise); empty: 200 with empty content; garbage: 200
#: whose body is not JSON; no_choices: 200 with a JSON completion lacking "choices" (or "data"
#: for images), as some gateways send; reset: the TCP connection is reset, no answer at all.
PAYLOAD_FAULTS = ("timeout", "malformed", "empty", "garbage", "no_choices", "reset")

#: Probabilistic fault fields, in the order a single draw is compared against
#: them; the order is part of the reproducibility contract for a fault_seed.
FAULT_FRACTIONS: dict[str, int | str] = {
    "rate_limit_fraction": 429,
    "server_error_fraction": 500,
    "unavailable_fraction": 503,
    "timeout_fraction": "timeout",
    "malformed_fraction": "malformed",
    "empty_fraction": "empty",
    "garbage_fraction": "garbage",
    # appended (never inserted): the thresholds of the fields above stay the same for a seed
    "no_choices_fraction": "no_choices",
    "reset_fraction": "reset",
}

_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


def parse_image_size(size: str) -> tuple[int, int]:
    """Parse "WxH"; raise ValueError if malformed or outside 1..MAX_IMAGE_SIDE."""
    match = _SIZE_RE.match(size.strip())
    if not match:
        raise ValueError(f"size must look like 'WxH', got {size!r}")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= MAX_IMAGE_SIDE and 1 <= height <= MAX_IMAGE_SIDE):
        raise ValueError(
            f"size {size!r} is not supported: width and height must be between 1 and {MAX_IMAGE_SIDE}"
        )
    return width, height


_Fraction = Field(default=0.0, ge=0.0, le=1.0)


class SimulatorConfig(BaseModel):
    """Behaviour of the simulated provider. Every field has a harmless default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency: float = Field(default=0.0, ge=0.0)
    latency_jitter: float = Field(default=0.0, ge=0.0)
    # Like a real API's long tail: a request whose own draw (from fault_seed and its sequence
    # number, independent of the fault draw and the jitter) falls under straggler_fraction waits
    # straggler_latency instead of latency + jitter. Counted in stats()["stragglers"].
    straggler_fraction: float = _Fraction
    straggler_latency: float = Field(default=5.0, ge=0.0)
    # Generation time: this much more per completion token of a 200 answer (stragglers too).
    latency_per_token: float = Field(default=0.0, ge=0.0)
    models: list[str] | None = None
    reject_n: bool = False
    ignore_n: bool = False
    rate_limit_fraction: float = _Fraction
    # Like a provider's concurrency quota: a request arriving while this many are already being
    # handled is answered 429 at once (with Retry-After). None: no quota.
    max_concurrent_requests: int | None = Field(default=None, ge=1)
    retry_after: float = Field(default=0.05, ge=0.0)
    # Like OpenAI's RPM/TPM limits (None: unlimited): continuously refilling token buckets of this
    # size, refilled over rate_limit_window seconds (60: per minute; shorter only for tests). When
    # either is set, model answers carry OpenAI's x-ratelimit-* headers; a request the budget cannot
    # cover is answered 429 (rate_limit_exceeded, with Retry-After) without consuming it. A request
    # costs 1 request and (prompt tokens + max_tokens per choice) tokens, as OpenAI estimates at
    # admission; without max_tokens, the longest plain answer the simulator writes.
    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    rate_limit_window: float = Field(default=60.0, gt=0.0)
    server_error_fraction: float = _Fraction
    unavailable_fraction: float = _Fraction
    timeout_fraction: float = _Fraction
    hang_seconds: float = Field(default=30.0, ge=0.0)
    malformed_fraction: float = _Fraction
    empty_fraction: float = _Fraction
    garbage_fraction: float = _Fraction
    no_choices_fraction: float = _Fraction
    reset_fraction: float = _Fraction
    fault_seed: int = 0
    fault_script: list[int | str] = Field(default_factory=list)
    # Like a provider refusing an over-long or filtered prompt: a model request any of whose prompt
    # texts contains one of these substrings is answered refusal_status (context_length_exceeded;
    # content_policy_violation for images), every time. Uses no fault_script entry or fault draw.
    refuse_containing: list[str] = Field(default_factory=list)
    refusal_status: int = Field(default=400, ge=400, le=499)
    image_size: str = "64x64"
    # Like a provider: when set, a model request without `Authorization: Bearer <api_key>` is
    # answered 401, so a test can tell that the client really sent its key.
    api_key: str | None = Field(default=None, repr=False)

    @field_validator("models")
    @classmethod
    def _models_not_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or any(not m for m in value)):
            raise ValueError("models must be None or a non-empty list of non-empty names")
        return value

    @field_validator("fault_script", mode="before")
    @classmethod
    def _normalise_script(cls, value: Any) -> Any:
        # CLI and JSON callers naturally write statuses as strings ("429").
        if isinstance(value, (list, tuple)):
            return [int(v) if isinstance(v, str) and v.strip().isdigit() else v for v in value]
        return value

    @field_validator("fault_script")
    @classmethod
    def _check_script(cls, value: list[int | str]) -> list[int | str]:
        for entry in value:
            if isinstance(entry, bool):
                raise ValueError(f"invalid fault_script entry {entry!r}")
            if isinstance(entry, int):
                if entry != 200 and not 400 <= entry <= 599:
                    raise ValueError(f"fault_script status {entry} must be 200 or in 400..599")
            elif entry not in ("ok", *PAYLOAD_FAULTS):
                raise ValueError(
                    f"fault_script entry {entry!r} must be an HTTP status or one of "
                    f"'ok', {', '.join(repr(k) for k in PAYLOAD_FAULTS)}"
                )
        return value

    @field_validator("refuse_containing")
    @classmethod
    def _no_empty_substring(cls, value: list[str]) -> list[str]:
        if any(not needle for needle in value):
            raise ValueError("refuse_containing must not contain an empty string (it would refuse everything)")
        return value

    @field_validator("refusal_status")
    @classmethod
    def _refusal_not_rate_limit(cls, value: int) -> int:
        if value == 429:
            raise ValueError("refusal_status must not be 429: a refusal is not a rate limit")
        return value

    @field_validator("image_size")
    @classmethod
    def _check_image_size(cls, value: str) -> str:
        parse_image_size(value)
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> SimulatorConfig:
        total = sum(getattr(self, name) for name in FAULT_FRACTIONS)
        if total > 1.0 + 1e-9:
            raise ValueError(f"fault fractions add up to {total:g}, which is more than 1")
        if self.reject_n and self.ignore_n:
            raise ValueError("reject_n and ignore_n are mutually exclusive")
        return self

    def updated(self, fields: dict[str, Any]) -> SimulatorConfig:
        """A validated copy with ``fields`` replaced (model_copy would skip validation)."""
        return type(self).model_validate({**self.model_dump(), **fields})
