"""Hand a script over to the warm runner, so `python flows/<name>.py` skips seconds of imports.

`import distilflow` calls `hand_off_if_warm()`. When the process is a script (`python x.py`)
whose top level so far has only imported modules, and the warm runner that `distilflow-server`
keeps is up, the runner runs the script from its first line in a process forked from one that
has Prefect, openai and distilflow imported already: same argv, working directory, environment
and stdin/stdout/stderr (the file descriptors themselves are passed). This process waits, passes
on SIGINT/SIGTERM/SIGHUP, and exits with the script's status. In every other case, or when
anything about the runner is off, it returns and the script goes on here, as it always would.

Standard library only, and cheap when there is nothing to do: every `import distilflow` pays it.
`DISTILFLOW_WARM=0` turns it off. The runner is `distilflow.tasks.runner.warm_runner`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import Any, Union

# json, socket and signal are imported where used: a script with no runner to hand over to
# (most imports of distilflow) pays a millisecond here, not ten.

# The environment as the script started, before distilflow's modules set defaults in it.
_ENVIRONMENT_AT_START = dict(os.environ)


def environment_at_start() -> dict[str, str]:
    return dict(_ENVIRONMENT_AT_START)


def home_dir() -> str:
    """`$DISTILFLOW_HOME`, default `~/.distilflow` (a string: pathlib alone costs every import 10 ms)."""
    return os.path.expanduser(os.environ.get("DISTILFLOW_HOME") or os.path.join("~", ".distilflow"))


def socket_path() -> str:
    path = os.path.join(home_dir(), "warm-runner.sock")
    if len(path) < 100:  # a Unix socket's path holds at most 107 bytes
        return path
    # Under a long home (deep temporary directories), a directory only this user can enter.
    import hashlib
    import tempfile

    digest = hashlib.sha1(os.path.realpath(home_dir()).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"distilflow-{os.getuid()}", f"{digest}.sock")


def warm_disabled() -> bool:
    """DISTILFLOW_WARM=0: no script is handed to a runner, even one that is up."""
    # Linux: the runner waits on its scripts through pidfds
    return os.environ.get("DISTILFLOW_WARM", "").lower() in ("0", "false", "no") or not hasattr(os, "pidfd_open")


def warm_opted_in() -> bool:
    """DISTILFLOW_WARM=1: runs start the warm runner themselves. Off by default: a handed-over
    script is not quite a `python x.py` (see the README), so only those who asked get one."""
    return not warm_disabled() and os.environ.get("DISTILFLOW_WARM", "").lower() in ("1", "true", "yes")


def hand_off_if_warm() -> None:
    if warm_disabled():
        return
    line = _script_import_line(sys._getframe(1))
    if line is None or not os.path.exists(socket_path()) or not _only_imports_before(line):
        return
    code = _run_in_runner()
    if code is not None:
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)


def _script_import_line(frame: Any) -> Union[int, None]:
    """The line of `__main__`'s top level that is importing distilflow, when the process is a
    script run directly and the import comes from its top level (through module-level imports
    only). Anything else (`python -m`, `-c`, a REPL, pytest, a function that imports) -> None."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not str(getattr(main, "__file__", "")).endswith(".py"):
        return None
    while frame is not None:
        if frame.f_globals is main.__dict__:
            return frame.f_lineno if frame.f_code.co_name == "<module>" and frame.f_back is None else None
        if frame.f_code.co_name != "<module>" and not frame.f_code.co_filename.startswith("<frozen importlib"):
            return None  # imported from inside a function
        frame = frame.f_back
    return None


def _only_imports_before(line: int) -> bool:
    """Running the script again from its first line repeats nothing but imports."""
    import ast

    try:
        with open(sys.modules["__main__"].__file__, "rb") as source:
            tree = ast.parse(source.read())
    except (OSError, SyntaxError, ValueError):
        return False
    for number, statement in enumerate(tree.body):
        if statement.lineno > line:
            break
        docstring = number == 0 and isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
        if not (docstring or isinstance(statement, (ast.Import, ast.ImportFrom))):
            return False
    return True


def runner_answers() -> bool:
    """Whether a warm runner listens on this home's socket."""
    try:
        sock, _, answer = _ask({"ping": True}, [], timeout=2)
    except (OSError, ValueError):
        return False
    sock.close()
    return answer.get("ok") is True


def _ask(message: dict[str, Any], fds: list[int], timeout: float) -> tuple[Any, Any, dict[str, Any]]:
    """Send the runner `message` (its length, then its JSON; `fds` go with the length) and read its
    first answer line: the socket, a reader for later lines, and the answer."""
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(socket_path())
        payload = json.dumps(message).encode()
        socket.send_fds(sock, [len(payload).to_bytes(8, "big")], fds)
        sock.sendall(payload)
        reader = sock.makefile("rb")
        return sock, reader, json.loads(reader.readline() or b"{}")
    except BaseException:
        sock.close()
        raise


def _request() -> dict[str, Any]:
    return {
        "argv": sys.argv, "cwd": os.getcwd(), "env": dict(os.environ), "path": sys.path,
        "script": os.path.abspath(sys.modules["__main__"].__file__), "pid": os.getpid(),
        "executable": sys.executable, "flags": list(sys.flags), "warnoptions": sys.warnoptions,
        "xoptions": {k: str(v) for k, v in sys._xoptions.items()}, "modules": sorted({m.partition(".")[0] for m in sys.modules}),
    }


def _run_in_runner() -> Union[int, None]:
    """The script's exit status, or None when the runner did not take it (run it here)."""
    import json
    import signal

    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
        sock, reader, answer = _ask(_request(), [0, 1, 2], timeout=10)
    except (OSError, ValueError):
        return None
    if not answer.get("ok"):
        sock.close()
        if answer.get("say"):
            print(f"distilflow: {answer['say']}", file=sys.stderr)
        return None
    # From here the script runs there: this process only relays signals and waits for the status.
    sock.settimeout(None)

    def forward(signum: int, _frame: Any) -> None:
        try:
            sock.sendall(f"{signum}\n".encode())
        except OSError:
            pass

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        outcome = json.loads(reader.readline() or b"{}")
    except (OSError, ValueError):
        outcome = {}
    if "signal" in outcome:
        signal.signal(outcome["signal"], signal.SIG_DFL)
        os.kill(os.getpid(), outcome["signal"])  # end as the script did, so a shell sees the signal
        return 128 + outcome["signal"]
    if "exit" not in outcome:
        print("distilflow: the warm runner stopped before the script finished; run it again "
              "(DISTILFLOW_WARM=0 runs it without the runner).", file=sys.stderr)
        return 1
    return int(outcome["exit"])
