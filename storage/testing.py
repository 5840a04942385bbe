"""An S3 API on loopback for tests and benchmarks: moto's server, in a process of its own.

Needs moto (`pip install -e '.[test]'`). Nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

__all__ = ["moto_s3_server"]


@contextlib.contextmanager
def moto_s3_server(timeout: float = 10.0) -> Iterator[str]:
    """Run `python -m moto.server` on a free 127.0.0.1 port; yield its endpoint URL; stop it after.

    Its own process, so what it stores does not count towards the caller's memory and a test may
    switch on its IAM authentication without affecting anyone else's server.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"moto's S3 server did not start on {url}; is moto installed (pip install -e '.[test]')?"
                    ) from None
                time.sleep(0.05)
        yield url
    finally:
        server.terminate()
        server.wait(10)
