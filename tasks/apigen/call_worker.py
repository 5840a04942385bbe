"""Generated calls run in a process of their own, killed when a call overruns its time limit.

On a thread, a call past its limit could only be abandoned: an endless loop or a runaway
computation (`factorial(10**9)`) kept a core busy, and its memory held, until the run ended. The
worker is a plain Python process that imports the library (its top-level code runs there, not in
the run's process) and answers one call at a time: JSON lines over pipes of its own, the
functions' prints going to stderr. A late call gets the worker killed, and the next call starts a
new one; a function that ends its process (`os._exit`, a crash) fails its call alone. The worker
ends when the step is unloaded, or when the run's process goes (its input closes).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Union

from distilflow.errors import DistilflowUserError
from distilflow.steps.tasks.apigen.function_call import FunctionResult

__all__ = ["CallWorker"]

#: seconds the library may take to import in the worker
IMPORT_TIMEOUT = 60.0


class CallWorker:
    """A worker process for the library at `libpath`; `call()` from any thread (one call at a time)."""

    def __init__(self, libpath: str, check_is_dangerous: bool) -> None:
        self.libpath, self.check_is_dangerous = libpath, check_is_dangerous
        self._process: Union[subprocess.Popen, None] = None
        self._answers: Union[queue.SimpleQueue, None] = None  # the running worker's answer lines
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the worker; a library that cannot be imported is refused here."""
        with self._lock:
            self._started()

    def call(self, name: str, arguments: Any, timeout: float) -> FunctionResult:
        """What calling `name` with `arguments` gave, or why it failed (never raises for the call's sake)."""
        try:
            request = json.dumps({"name": name, "arguments": arguments}) + "\n"
        except (TypeError, ValueError) as e:
            return FunctionResult(keep=False, execution_result=f"the arguments cannot be passed on: {e}")
        with self._lock:
            process = self._started()
            try:
                process.stdin.write(request)
                process.stdin.flush()
                answer = self._answers.get(timeout=timeout)
            except queue.Empty:
                self._stop(late=True)
                return FunctionResult(keep=False, execution_result=f"the call did not finish within {timeout:g} seconds")
            except OSError:  # the worker went between two calls
                answer = None
            if answer is None:
                code = self._stop()
                return FunctionResult(keep=False, execution_result=f"the call ended the process running it (exit code {code})")
            return json.loads(answer)

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _started(self) -> subprocess.Popen:
        if self._process is not None:
            return self._process
        # -c, not -m: this module is imported with its package, and runpy would warn about that
        command = [sys.executable, "-c", f"from {__name__} import main; main()", self.libpath,
                   "1" if self.check_is_dangerous else "0"]
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        answers: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_read_answers, args=(process.stdout, answers), daemon=True,
                         name="apigen-call-worker").start()
        problem = self._not_ready(answers)
        if problem is not None:
            process.kill()
            process.wait()
            raise DistilflowUserError(problem)
        self._process, self._answers = process, answers
        return process

    def _not_ready(self, answers: queue.SimpleQueue) -> Union[str, None]:
        """None once the worker says it imported the library; else why it cannot be used."""
        try:
            line = answers.get(timeout=IMPORT_TIMEOUT)
            why = "its worker process ended" if line is None else None
        except queue.Empty:
            why = f"importing it took more than {IMPORT_TIMEOUT:g} seconds"
        if why is not None:
            return f"APIGenExecutionChecker: the function library {self.libpath} could not be used: {why}."
        return json.loads(line).get("error")  # the library's own refusal, worded by FunctionLibrary

    def _stop(self, late: bool = False) -> Union[int, None]:
        """End the worker (a late one at once) and say how it ended."""
        process, self._process = self._process, None
        if process is None:
            return None
        if late:
            process.kill()
        else:
            try:
                process.stdin.close()  # the worker's signal to end
                process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
        return process.wait()


def _read_answers(stream: Any, answers: queue.SimpleQueue) -> None:
    for line in stream:
        answers.put(line)
    answers.put(None)


def _exit_when_orphaned(parent: int) -> None:
    """A run killed outright cannot close the worker's input; a busy worker would go on alone."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def main() -> None:
    """The worker: the library's calls from its input, their results to its output, one per line."""
    from distilflow.steps.tasks.apigen.function_call import execute_from_response
    from distilflow.steps.tasks.apigen.function_library import FunctionLibrary

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the run's to handle; it ends the worker
    parent = os.getppid()
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    # the pipes are the worker's own: a function that prints writes to stderr, one that reads gets nothing
    requests, answers = os.fdopen(os.dup(0), "r"), os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(2, 1)
    libpath, check_is_dangerous = sys.argv[1], sys.argv[2] == "1"
    try:
        library = FunctionLibrary(libpath, check_is_dangerous=check_is_dangerous)
    except DistilflowUserError as e:
        answers.write(json.dumps({"error": str(e)}) + "\n")
        return
    answers.write('{"ready": true}\n')
    for line in requests:
        request = json.loads(line)
        function, why = library.function(request["name"])
        if function is None:
            result = FunctionResult(keep=False, execution_result=why)
        else:
            result = execute_from_response(function, request["arguments"], timeout=None)
        answers.write(json.dumps(result) + "\n")
