"""How a run stops when something outside it does: a signal, or the Prefect API going away.

* A scheduler that stops for any reason (Ctrl-C, SIGTERM, a bug) cancels the requests its
  batches wait for (`stopping_cancels_requests`): Prefect's task runner waits for every running
  batch before the flow run can end, and a batch waiting out a model server's outage would hold
  the process for minutes. What was answered is stored before the batch ends.
* `supervised(api_url)` is what `python flows/<name>.py` runs under (`cli.main`): SIGTERM (what
  `timeout`, systemd, CI and Kubernetes send) ends the run as Ctrl-C does, and the process exits
  with the conventional status (143; 130 for Ctrl-C) after its answers are stored. A watch asks
  the Prefect API's `/health` every few seconds; when it has not answered for `LOST_SECONDS`,
  the run ends at once with one line naming the server and the fix: Prefect's own client would
  retry every call for minutes and then end in a traceback, and the flow run could not be
  recorded anyway. The flow run left RUNNING is marked Crashed by the next run against that
  server (`flow_run_records`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Union

from distilflow._loop import cancel_all

__all__ = ["EXIT_LOST_SERVER", "EXIT_SIGINT", "EXIT_SIGTERM", "RunInterrupted", "stopping_cancels_requests",
           "supervised"]

#: Exit statuses of a run stopped from outside (see cli.py for the others).
EXIT_LOST_SERVER, EXIT_SIGINT, EXIT_SIGTERM = 4, 130, 143
#: The Prefect API is asked this often, and lost when it has not answered for this long.
CHECK_SECONDS = 2.0
LOST_SECONDS = 20.0
#: Longest wait for answers still on their way to the answer cache when a run ends abruptly.
FLUSH_SECONDS = 10.0

_log = logging.getLogger("distilflow.runner")
# Prefect's own services repeat their connection errors (a whole event's repr every 7 s) while
# the API is down; the watch says what happens instead, once.
_NOISY_WHILE_DOWN = ("prefect.events.clients", "prefect._internal.concurrency")


class RunInterrupted(SystemExit):
    """SIGTERM (or Ctrl-C) ended the run; its `code` is the exit status."""


@contextlib.contextmanager
def stopping_cancels_requests() -> Iterator[None]:
    try:
        yield
    except BaseException:
        cancel_all()
        raise


@contextlib.contextmanager
def supervised(api_url: Union[str, None], signals: bool = True) -> Iterator[None]:
    """Run the block with the Prefect API at `api_url` watched and, with `signals` (a command line's
    run, not a library call such as `pipeline.run()`), SIGTERM and Ctrl-C ending it with 143/130."""
    previous = signal.signal(signal.SIGTERM, _terminated) if signals and _main_thread() else None
    watch = ApiWatch(api_url, _lost_api) if api_url else None
    if watch is not None:
        watch.start()
    try:
        yield
    except KeyboardInterrupt:
        if not signals:
            raise
        _stopped_by("Ctrl-C")
        raise RunInterrupted(EXIT_SIGINT) from None
    finally:
        if watch is not None:
            watch.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _terminated(signum, frame) -> None:
    # Prefect's flow engine puts its own handler in place while the flow runs (it marks the flow
    # run Crashed) and calls this one when it is done: either way the run ends here.
    _stopped_by("SIGTERM")
    raise RunInterrupted(EXIT_SIGTERM)


def _stopped_by(what: str) -> None:
    cancel_all()
    _flush_answers()
    print(
        f"stopped by {what}: every answer received so far is kept in the answer cache; run the same command "
        "again to go on (it sends only the requests not answered yet).",
        file=sys.stderr,
    )


def _lost_api(message: str) -> None:
    """The run cannot go on without its Prefect API: keep the answers, say so, end the process."""
    cancel_all()
    _flush_answers()
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    # Not SystemExit: Prefect's engine would try to report the ending to the lost API first,
    # retrying for minutes; there is nothing left to write (answers are stored, the output is
    # published only by a run that completed).
    os._exit(EXIT_LOST_SERVER)


def _flush_answers() -> None:
    with contextlib.suppress(Exception):
        from distilflow.storage.answers import flush_all

        flush_all(FLUSH_SECONDS)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class ApiWatch:
    """A daemon thread asking `<api_url>/health`; `lost(message)` once it has not answered for LOST_SECONDS.

    Any HTTP answer below 500 counts as alive (a server behind auth may refuse /health); refused
    or reset connections, timeouts and 5xx from a proxy in front of a dead server do not.
    """

    def __init__(self, api_url: str, lost: Callable[[str], None]) -> None:
        self.api_url, self.lost = api_url.rstrip("/"), lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="distilflow-prefect-api-watch", daemon=True)
        self._quieted: dict[str, bool] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._restore_logs()

    def _watch(self) -> None:
        import httpx

        last_answer = time.monotonic()
        with httpx.Client(timeout=CHECK_SECONDS * 2) as client:
            while not self._stop.wait(CHECK_SECONDS):
                problem = _ask(client, f"{self.api_url}/health")
                now = time.monotonic()
                if problem is None:
                    if self._quieted:
                        _log.warning("distilflow: the Prefect API at %s answers again.", self.api_url)
                        self._restore_logs()
                    last_answer = now
                    continue
                if not self._quieted:
                    _log.warning(
                        "distilflow: the Prefect API at %s does not answer (%s); the run stops in %.0f s unless it "
                        "comes back (every answer received is kept).", self.api_url, problem, LOST_SECONDS,
                    )
                    self._quiet_logs()
                if now - last_answer >= LOST_SECONDS and not self._stop.is_set():
                    self.lost(_lost_message(self.api_url, problem, now - last_answer))
                    return

    def _quiet_logs(self) -> None:
        # `disabled`, not a level: Prefect's internal loggers ignore levels (their SafeLogger)
        for name in _NOISY_WHILE_DOWN:
            logger = logging.getLogger(name)
            self._quieted[name] = logger.disabled
            logger.disabled = True

    def _restore_logs(self) -> None:
        for name, disabled in self._quieted.items():
            logging.getLogger(name).disabled = disabled
        self._quieted.clear()


def _ask(client, url: str) -> Union[str, None]:
    """None when the API answered, else what went wrong, in words."""
    import httpx

    try:
        status = client.get(url).status_code
    except httpx.ConnectError as e:
        return "connection refused" if "refused" in str(e).lower() else f"cannot connect: {e}"
    except httpx.TimeoutException:
        return f"no answer within {CHECK_SECONDS * 2:.0f} s"
    except httpx.HTTPError as e:
        return f"{type(e).__name__}: {e}"
    return None if status < 500 else f"HTTP {status}"


def _lost_message(api_url: str, problem: str, seconds: float) -> str:
    from distilflow.runner import flow_run_records

    fix = (
        "The next run starts the server distilflow keeps again"
        if flow_run_records.is_kept_server(api_url)
        else "Start the server again (or point PREFECT_API_URL at one that is up)"
    )
    return (
        f"lost the Prefect API at {api_url}: no answer for {seconds:.0f} s ({problem}). The run stopped; every "
        f"answer it received is kept in the answer cache and nothing was written to the output. {fix}: run the "
        "same command again and it sends only the requests not answered yet."
    )
