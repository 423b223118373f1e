"""Strict keyword arguments for the public surface: an unknown keyword is a ``TypeError`` naming the
accepted ones (and the closest, for a typo), never a silently ignored setting.

``@strict`` wraps a function or ``__init__`` whose signature has no ``**kwargs``: Python would raise
``TypeError`` anyway, but without saying what *is* accepted.  The wrapper keeps the signature
(``inspect.signature`` follows ``__wrapped__``), so type checkers still flag a typo statically and
ADK's service registry still sees the real parameter names.  :func:`check_keywords` is the same
check for functions that forward ``**kwargs`` (the service factories).
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Callable, Collection, Iterable
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def check_keywords(where: str, given: Iterable[str], accepted: Collection[str]) -> None:
    """Raise ``TypeError`` when ``given`` holds a name not in ``accepted`` (naming both)."""
    unknown = sorted(set(given) - set(accepted))
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, list(accepted), n=1)
        hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
    noun = "argument" if len(unknown) == 1 else "arguments"
    raise TypeError(
        f"{where}() got unexpected keyword {noun} {', '.join(hints)}; "
        f"it accepts: {', '.join(sorted(accepted))}"
    )


def keyword_names(fn: Callable[..., object]) -> frozenset[str]:
    """The names ``fn`` accepts as keywords (``self`` and ``*args``/``**kwargs`` excluded)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return frozenset(
        name for name, p in inspect.signature(fn).parameters.items() if p.kind in kinds and name != "self"
    )


def strict(fn: Callable[P, R]) -> Callable[P, R]:
    """Make an unknown keyword argument of ``fn`` a ``TypeError`` naming the accepted ones."""
    accepted = keyword_names(fn)
    where = fn.__qualname__.removesuffix(".__init__")

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if not accepted.issuperset(kwargs):
            check_keywords(where, kwargs, accepted)
        return fn(*args, **kwargs)

    return wrapper


def known_fields(model: type[Any], data: Any) -> Any:
    """For a pydantic ``mode="before"`` model validator: an unknown field is a ``TypeError``
    (pydantic lets it through, unlike ``ValueError``) naming the model's fields."""
    if isinstance(data, dict):
        check_keywords(model.__name__, data, model.model_fields)
    return data
