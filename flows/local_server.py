"""`python -m distilflow.flows.local_server status|start|stop`: the local Prefect server runs reuse.

It lives in `distilflow.local_server`, where every pipeline's command line uses it.
"""

import sys

from distilflow.local_server import ensure_local_server, local_server_url, main, stop_local_server

__all__ = ["ensure_local_server", "local_server_url", "main", "stop_local_server"]

if __name__ == "__main__":
    sys.exit(main())
