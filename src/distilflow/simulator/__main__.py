"""Command line: ``python -m distilflow.simulator --port 8000 --latency 0.2 --rate-limit-fraction 0.1``.

Every SimulatorConfig field has a flag (underscores become dashes; list fields
are comma-separated). Serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import sys
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from .config import SimulatorConfig
from distilflow._serving import serve_until_signalled

from .server import Simulator, is_loopback


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _field_kind(annotation: Any) -> Any:
    """The argparse type for a field: list, bool, or a scalar converter."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        origin = typing.get_origin(annotation)
    return list if origin is list else annotation


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m distilflow.simulator", description="OpenAI-compatible simulator for distilflow."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--allow-non-loopback", action="store_true", help="permit binding to a non-loopback address"
    )
    config_group = parser.add_argument_group("simulator config")
    for name, field in SimulatorConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        kind = _field_kind(field.annotation)
        # SUPPRESS keeps unset flags out of the namespace: the model's defaults apply.
        common: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS}
        if kind is bool:
            config_group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif kind is list:
            config_group.add_argument(flag, type=_comma_list, metavar="A,B,...", **common)
        else:
            config_group.add_argument(flag, type=kind, **common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(build_parser().parse_args(argv))
    host, port = args.pop("host"), args.pop("port")
    allow_non_loopback = args.pop("allow_non_loopback")
    if not allow_non_loopback and not is_loopback(host):
        print(f"error: refusing to listen on non-loopback host {host!r}; pass --allow-non-loopback", file=sys.stderr)
        return 2
    try:
        config = SimulatorConfig(**args)
    except ValidationError as error:
        print(f"error: invalid simulator config:\n{error}", file=sys.stderr)
        return 2

    simulator = Simulator(config, host=host, port=port, allow_non_loopback=allow_non_loopback)
    return serve_until_signalled(simulator, "distilflow simulator listening on {url}/v1")

if __name__ == "__main__":
    sys.exit(main())
