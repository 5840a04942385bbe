"""The warm runner: a process with Prefect, openai and distilflow imported, that runs scripts.

Importing them takes about two seconds, longer than a small run's work. `distilflow-server`
starts this process next to the local Prefect server it keeps; `python flows/<name>.py` (any
script whose top level starts with imports, see `distilflow._handoff`) then hands itself over:
the runner forks, and the copy runs the script from its first line with the caller's argv,
working directory, environment and stdin/stdout/stderr.

Per script, two forks: a supervisor that relays the caller's signals and reports the exit
status, and the script's process. Nothing here starts a thread before forking (a forked copy
of a threaded process can inherit held locks).

The runner refuses a script, which then runs in its own process as usual, when:
- the caller's interpreter differs (executable, flags, sys.path) or an environment variable read
  at import differs (PYTHON*, PREFECT_* but the API URL and key, FSSPEC_*, DISTILFLOW_WARM_*);
- the script's directory holds a module that would shadow one the runner imported;
- any file of a module the runner imported changed since it started (an upgrade, an edit): it
  then exits, and the next run starts a fresh one.
Its environment holds no keys: it starts with a short list of variables, and each script gets
the caller's own environment.

    python -m distilflow.tasks.runner.warm_runner      (distilflow-server starts it)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import selectors
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from typing import Any, NoReturn, Union

from distilflow._handoff import environment_at_start, socket_path

PRELOAD = (
    "distilflow.flows._common", "distilflow.tasks", "distilflow.tasks.pipeline", "distilflow.tasks.runner.graph",
    "distilflow.tasks.runner.local_server", "distilflow.tasks.simulator", "prefect.flow_engine",
    "prefect.task_engine", "prefect.task_runners", "prefect.artifacts", "prefect.utilities.visualization",
    "fastapi.encoders", "openai", "anyio._backends._asyncio", "truststore", "email.policy",
)
#: Variables the runner starts with (no keys: a script gets the caller's environment in full).
KEPT_ENV_PREFIXES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_", "TZ", "TMPDIR", "VIRTUAL_ENV",
                     "PYTHON", "PREFECT_", "DISTILFLOW_", "FSSPEC_", "DO_NOT_TRACK")
#: Variables read when modules are imported: a caller's must equal the runner's.
IMPORT_ENV_PREFIXES = ("PYTHON", "PREFECT_", "FSSPEC_", "DISTILFLOW_WARM_", "DO_NOT_TRACK")
#: Passed to scripts, never kept nor compared: keys, passwords, database URLs, the API's address.
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN", "AUTH", "CONNECTION_URL", "CREDENTIAL")
IDLE_CHECK_SECONDS = 5.0
KILL_AFTER_SECONDS = 30.0  # a script whose caller was killed, still running this long after SIGTERM
FILES_TIMEOUT = 60.0  # the longest a script's end waits for its open files to be flushed and closed


def _secret(name: str) -> bool:
    return name == "PREFECT_API_URL" or any(word in name for word in SECRET_WORDS)


def runner_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(KEPT_ENV_PREFIXES) and not _secret(k)}


def _import_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_ENV_PREFIXES) and not _secret(k)}


class _Runner:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.inode = 0  # of the socket, once bound
        before = environment_at_start()  # as this process started: importing this module set defaults
        self.env = _import_env(before)
        self.path = sys.path[1:]
        extra = [m for m in os.environ.get("DISTILFLOW_WARM_PRELOAD", "").split(",") if m.strip()]
        for name in (*PRELOAD, *extra):
            importlib.import_module(name.strip())
        # defaults the imports set (flows/_common.py turns telemetry off): a cold run sets them too
        self.import_defaults = {k: v for k, v in os.environ.items() if k not in before}
        self.files = {f: _mtime(f) for f in _module_files()}
        self.top_level = {name.partition(".")[0] for name in sys.modules}

    def refusal(self, request: dict[str, Any]) -> Union[str, None]:
        """Why this script must run in its own process, or None."""
        if (request["executable"], request["flags"], request["warnoptions"], request["path"][1:]) != (
            sys.executable, list(sys.flags), sys.warnoptions, self.path
        ) or request["xoptions"] != {k: str(v) for k, v in sys._xoptions.items()}:
            return "another interpreter or another sys.path"
        theirs = _import_env(request["env"])
        if theirs != self.env:
            names = sorted(k for k in {*theirs, *self.env} if theirs.get(k) != self.env.get(k))
            return f"the environment differs in {', '.join(names)}"
        folder = os.path.dirname(request["script"])
        for name in self.top_level - set(request["modules"]):
            if os.path.exists(os.path.join(folder, name + ".py")) or os.path.isdir(os.path.join(folder, name)):
                return f"{os.path.join(folder, name)} would shadow the module {name!r}"
        return None

    def stale(self) -> bool:
        return any(_mtime(f) != mtime for f, mtime in self.files.items())


def serve(server_pid: Union[int, None] = None) -> None:
    """Run scripts until stopped (SIGTERM), until the Prefect server `server_pid` is gone, or until
    another runner takes the socket."""
    runner = _Runner()
    path = socket_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    folder = os.lstat(os.path.dirname(path))
    if folder.st_uid != os.getuid() or not stat.S_ISDIR(folder.st_mode):  # a shared /tmp: someone else's
        raise SystemExit(f"{os.path.dirname(path)} is not a directory of this user's; set DISTILFLOW_HOME to a shorter path")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    os.chmod(path, 0o600)
    runner.inode = os.stat(path).st_ino
    listener.listen(64)
    listener.settimeout(IDLE_CHECK_SECONDS)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # supervisors are reaped by the kernel
    signal.signal(signal.SIGTERM, lambda *_: _leave(runner, listener, path, "stopped"))
    _log(f"ready (pid {runner.pid}, {len(sys.modules)} modules imported)")
    while True:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            if not _ours(runner, path):
                _leave(runner, listener, path, "another runner took the socket")
            if server_pid and not process_alive(server_pid):
                _leave(runner, listener, path, f"the Prefect server (pid {server_pid}) is gone")
            continue
        job = _take(runner, listener, path, conn)
        if job is not None:
            sys.stdout.flush(), sys.stderr.flush()  # or the copies print what is buffered again
            if os.fork() == 0:
                _supervise(listener, conn, *job, runner.import_defaults)
            for fd in job[0]:
                os.close(fd)
        conn.close()


def _take(runner: _Runner, listener: socket.socket, path: str, conn: socket.socket) -> Union[tuple, None]:
    """Read a request; answer a ping or a refusal here, or return the script to run (its fds, its request)."""
    fds: list[int] = []
    try:
        conn.settimeout(10)
        uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
        if uid != os.getuid():
            return None
        header, fds, _, _ = socket.recv_fds(conn, 8, 3)
        request = json.loads(_read_exactly(conn, int.from_bytes(header, "big")))
        if request.get("ping"):
            _reply(conn, ok=True)
            return None
        if len(fds) != 3:
            return None
        if runner.stale():
            _reply(conn, ok=False)
            _leave(runner, listener, path, "a module changed on disk; the next run starts a fresh runner")
        reason = runner.refusal(request)
        if reason:
            _log(f"refused {request['script']} (pid {request['pid']}): {reason}")
            _reply(conn, ok=False, say=f"the warm runner did not take this script ({reason}); it runs on its own. "
                                       "`distilflow-server warm` replaces it with one for this environment.")
            return None
        _reply(conn, ok=True)
        _log(f"running {request['script']} for pid {request['pid']}")
        job, fds = (fds, request), []
        return job
    except (OSError, ValueError, KeyError, struct.error) as e:
        _log(f"dropped a request: {e!r}")
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _supervise(
    listener: socket.socket, conn: socket.socket, fds: list[int], request: dict[str, Any], defaults: dict[str, str]
) -> NoReturn:
    """The middle process: starts the script's process, relays signals to it, reports how it ended."""
    listener.close()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        conn.close()
        _run_script(fds, request, defaults)
    try:
        for fd in fds:
            os.close(fd)
        conn.settimeout(None)
        selector = selectors.DefaultSelector()
        selector.register(conn, selectors.EVENT_READ, "caller")
        selector.register(os.pidfd_open(pid), selectors.EVENT_READ, "script")
        pending, kill_at = b"", None
        while True:
            events = selector.select(None if kill_at is None else max(0.0, kill_at - time.monotonic()))
            if not events and kill_at is not None:  # it outlived its caller by a grace period
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                kill_at = None
            for key, _ in events:
                if key.data == "script":
                    status = os.waitpid(pid, 0)[1]
                    outcome = ({"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status)
                               else {"exit": os.waitstatus_to_exitcode(status)})
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps(outcome).encode() + b"\n")
                    os._exit(0)
                data = conn.recv(1024)
                if not data:  # the caller is gone (killed): so is its script
                    selector.unregister(conn)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
                    kill_at = time.monotonic() + KILL_AFTER_SECONDS
                    continue
                pending += data
                *signals, pending = pending.split(b"\n")
                for signum in signals:
                    with contextlib.suppress(ProcessLookupError, ValueError):
                        os.kill(pid, int(signum))
    except BaseException:  # noqa: BLE001 - never return into the runner's loop
        traceback.print_exc()
        os._exit(1)


def _run_script(fds: list[int], request: dict[str, Any], defaults: dict[str, str]) -> NoReturn:
    """Become the caller's script: its files, directory, environment and argv, then run it."""
    for target, fd in zip((0, 1, 2), fds, strict=True):
        os.dup2(fd, target)
        os.close(fd)
    if os.isatty(1):
        sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    sys.argv[:] = request["argv"]
    sys.path[0] = request["path"][0]
    _settings_from_environment()
    script = request["script"]
    try:
        main = _main_module(script)
        with open(script, "rb") as source:
            code = compile(source.read(), script, "exec", dont_inherit=True)
        exec(code, main.__dict__)
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            _end(done.code or 0)
        print(done.code, file=sys.stderr)
        _end(1)
    except BaseException as error:  # noqa: BLE001 - reported as Python would, from the script's frames
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        sys.excepthook(type(error), error.with_traceback(tb), tb)
        _end(1, signal.SIGINT if isinstance(error, KeyboardInterrupt) else None)
    _end(0)


def _main_module(script: str) -> Any:
    """A fresh `__main__`, as Python makes for `python script.py`."""
    import builtins
    import importlib.machinery
    import types

    main = types.ModuleType("__main__")
    main.__file__, main.__builtins__, main.__spec__ = script, builtins, None
    main.__loader__ = importlib.machinery.SourceFileLoader("__main__", script)
    sys.modules["__main__"] = main
    return main


def _end(code: int, signum: Union[int, None] = None) -> NoReturn:
    """End as Python ends a script (other threads joined, atexit handlers, files flushed), without
    tearing down the two thousand modules the runner imported: that alone takes most of a second."""
    import _io
    import atexit
    import gc
    import threading

    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    # Files the script left open are closed as teardown would close them (gzip writes its trailer):
    # everything flushed first, so a text layer's last writes reach the buffer under it.
    standard = set()  # sys.stdout and the layers under it stay open: Python only flushes them
    for stream in (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__):
        while stream is not None and id(stream) not in standard:
            standard.add(id(stream))
            stream = getattr(stream, "buffer", None) or getattr(stream, "raw", None)
    # not isinstance: it looks up each object's __class__, seconds over the runner's heap
    files = [o for o in gc.get_objects() if issubclass(type(o), _io._IOBase) and id(o) not in standard]
    # Only files written to: one a daemon thread is blocked reading (a subprocess's output) would
    # wait for that thread's lock forever, and a file only read has nothing to lose.
    closing = threading.Thread(target=_flush_and_close, args=([f for f in files if _written(f)],), daemon=True)
    closing.start()
    closing.join(FILES_TIMEOUT)  # a file a stuck thread holds must not keep the script from ending
    sys.stdout.flush(), sys.stderr.flush()
    if signum is not None:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(code)


def _written(file: Any) -> bool:
    try:
        return not file.closed and file.writable()
    except Exception:  # noqa: BLE001 - a file object in a state of its own: left as it is
        return False


def _flush_and_close(files: list[Any]) -> None:
    for step in ("flush", "close"):
        for file in files:
            with contextlib.suppress(Exception):
                if not file.closed:
                    getattr(file, step)()


def _settings_from_environment() -> None:
    """What Prefect and others read at import, read again for this script's environment and directory."""
    from prefect.context import refresh_global_settings_context
    from prefect.logging.configuration import setup_logging

    refresh_global_settings_context()  # the profile, prefect.toml and .env of the script's directory
    setup_logging(incremental=False)  # handlers for this terminal (colours) and these settings
    if "numpy" in sys.modules:  # its global generator would otherwise repeat in every script
        sys.modules["numpy"].random.seed()


def _ours(runner: _Runner, path: str) -> bool:
    try:
        return os.stat(path).st_ino == runner.inode
    except OSError:
        return False


def _leave(runner: _Runner, listener: socket.socket, path: str, why: str) -> NoReturn:
    if os.getpid() != runner.pid:
        os._exit(1)
    listener.close()
    if _ours(runner, path):  # not a newer runner's
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    _log(f"exiting: {why}")
    os._exit(0)


def process_alive(pid: int) -> bool:
    """Running (a zombie, ended but not yet reaped by its parent, is not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:  # reaped since the kill above, unless there is no /proc to look in
        return not os.path.isdir("/proc/self")
    except (OSError, IndexError):
        return True


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(min(size - len(data), 1 << 20))
        if not chunk:
            raise ValueError("the caller hung up mid-request")
        data += chunk
    return data


def _reply(conn: socket.socket, **message: Any) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _module_files() -> list[str]:
    return sorted({f for m in list(sys.modules.values()) if isinstance(f := getattr(m, "__file__", None), str)})


def _mtime(path: str) -> Union[int, None]:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def _log(text: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} warm runner: {text}", flush=True)


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else None)
