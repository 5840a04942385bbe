"""The Python functions a generated call may run: a library file, or a folder of one-function files.

Only functions the library itself defines are callable, by their plain name: not what it imports
(a `from subprocess import run` in the library does not make `run` callable), not private names,
not attributes of attributes, and in a folder only `<name>.py` files right inside it. With
`check_is_dangerous` (distilabel's option) a function whose source does things no generated call
should trigger (start processes, exit, evaluate code, read the keyboard) is refused too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import re
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Union

from distilflow.errors import DistilflowUserError

__all__ = ["FunctionLibrary", "load_module_from_path"]

# what a function's source must not contain to be run from a generated call
_DANGEROUS = re.compile(
    r"\bsubprocess\b|\bos\.(system|popen|exec\w*|spawn\w*|fork|kill|_exit)\b|\bpty\b|\bshutil\.rmtree\b"
    r"|\b(eval|exec|compile|__import__|input|exit|quit|breakpoint)\s*\(|\bSystemExit\b|\bimportlib\b"
    r"|\bthreading\.Thread\s*\(|\bmultiprocessing\b|\bctypes\b|\bsignal\.|\.setLevel\s*\(|\bunittest\.main\s*\("
)


def load_module_from_path(path: Union[str, Path]) -> ModuleType:
    """Import the Python file at `path` as a module of its own (its top-level code runs once, now)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no Python file at {path}")
    name = f"_distilflow_library_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}_{_identifier(path.stem)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and typing in the library look their module up there
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


class FunctionLibrary:
    """The functions at `libpath` (a `.py` file, or a folder of `<function name>.py` files)."""

    def __init__(self, libpath: Union[str, Path], check_is_dangerous: bool = True) -> None:
        self.path = Path(libpath)
        self.check_is_dangerous = check_is_dangerous
        self._module: Union[ModuleType, None] = None
        self._found: dict[str, tuple[Union[Callable[..., Any], None], str]] = {}
        self._lock = threading.Lock()  # batches of one step may run at once
        if self.path.is_file() and self.path.suffix == ".py":
            try:
                self._module = load_module_from_path(self.path)
            except Exception as e:
                raise DistilflowUserError(
                    f"APIGenExecutionChecker: the function library {self.path} could not be imported "
                    f"({type(e).__name__}: {e}). Fix the file, or point libpath at another one."
                ) from e
        elif not self.path.is_dir():
            raise DistilflowUserError(
                f"APIGenExecutionChecker: libpath {str(self.path)!r} is neither a .py file nor a folder. Point it at "
                "the Python file that defines the functions, or at a folder of <function name>.py files."
            )

    def function(self, name: Any) -> tuple[Union[Callable[..., Any], None], str]:
        """The function called `name`, or None and why it may not be run."""
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            return None, f"Function {name!r} not found."
        with self._lock:
            if name not in self._found:
                self._found[name] = self._find(name)
            return self._found[name]

    def _find(self, name: str) -> tuple[Union[Callable[..., Any], None], str]:
        module = self._module
        if module is None:
            file = self.path / f"{name}.py"
            if not file.is_file():
                return None, f"Function '{name}' not found."
            try:
                module = load_module_from_path(file)
            except Exception as e:  # noqa: BLE001 - one broken file fails its own calls only
                return None, f"Function '{name}' could not be loaded from {file.name}: {type(e).__name__}: {e}"
        function = module.__dict__.get(name)
        if not inspect.isfunction(function) or function.__module__ != module.__name__:
            return None, f"Function '{name}' not found."
        if self.check_is_dangerous:
            try:
                source = inspect.getsource(function)
            except (OSError, TypeError):
                return None, f"Function '{name}' was not run: its source cannot be read to check it."
            found = _DANGEROUS.search(source)
            if found:
                return None, f"Function '{name}' was not run: its source uses {found.group(0).strip()!r}, which may be dangerous."
        return function, ""


def _identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)
