"""`@requirements([...])`: the packages a custom step needs, checked before a pipeline spends a request.

    @requirements(["nltk>=3.8"])
    class Tokenize(Step):
        ...

`Pipeline(requirements=[...])` adds the pipeline's own; `pipeline.requirements_to_install()` lists
those missing from this environment, and `pipeline.run()` refuses to start while any is missing,
naming the `pip install` that fixes it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Callable, TypeVar

from packaging.requirements import InvalidRequirement, Requirement

from distilflow.errors import DistilflowUserError

__all__ = ["missing_requirements", "requirements"]

S = TypeVar("S")


def requirements(requirements: list[str]) -> Callable[[S], S]:
    """Mark a step class with the packages it needs (PEP 508 strings)."""
    checked = [str(_parsed(r)) for r in requirements]

    def decorator(step: S) -> S:
        step.requirements = checked  # type: ignore[attr-defined]
        return step

    return decorator


def missing_requirements(requirements: list[str]) -> list[str]:
    """The requirements this environment does not satisfy, sorted, each once."""
    missing = set()
    for text in requirements:
        wanted = _parsed(text)
        try:
            installed = version(wanted.name)
        except PackageNotFoundError:
            missing.add(str(wanted))
            continue
        if wanted.specifier and not wanted.specifier.contains(installed, prereleases=True):
            missing.add(str(wanted))
    return sorted(missing)


def _parsed(text: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as e:
        raise DistilflowUserError(f"requirement {text!r} is not a valid requirement ({e}); write it as in "
                                  "requirements.txt, e.g. 'nltk>=3.8'.") from None
