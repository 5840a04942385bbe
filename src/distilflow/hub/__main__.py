"""Command line: `distilflow-hub --port 8008` serves a local Hub double until SIGINT or SIGTERM.

Point the clients at it with `HF_ENDPOINT=http://127.0.0.1:8008` (and `HF_HUB_DISABLE_XET=1`), set
before they are imported: `distiset.push_to_hub(...)`, `datasets.load_dataset(...)` and
`LoadDataFromHub` then push to and read from it. Repos live in memory, for the command's life.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from distilflow._serving import is_loopback, serve_until_signalled

from .server import HubDouble


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="distilflow-hub", description="A local double of the Hugging Face Hub.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8008, help="port to listen on (default 8008; 0 picks a free one)")
    args = parser.parse_args(argv)
    if not is_loopback(args.host):
        print(f"error: refusing to listen on non-loopback host {args.host!r}", file=sys.stderr)
        return 2
    return serve_until_signalled(
        HubDouble(host=args.host, port=args.port),
        "distilflow Hub double listening on {url}; set HF_ENDPOINT={url} and HF_HUB_DISABLE_XET=1 for the clients",
    )


if __name__ == "__main__":
    sys.exit(main())
