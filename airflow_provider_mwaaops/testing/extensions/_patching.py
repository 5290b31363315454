"""Runtime patching of moto's classes, installed once per process.

moto's server runs in this process, so replacing a method on one of its classes changes what the
server does for every backend, existing or future. Every patch is tagged with an id so that a second
``install_all()`` (a second emulator, a re-imported module) finds it and does nothing, and patches of
the same method by different modules stack instead of replacing each other.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

_PATCH_ID = "__mwaaops_patch_id__"


def _is_patched(function: Any, patch_id: str) -> bool:
    """Whether ``patch_id`` is anywhere in the chain of wrappers around ``function``."""
    while function is not None:
        if getattr(function, _PATCH_ID, None) == patch_id:
            return True
        function = getattr(function, "__wrapped__", None)
    return False


def wrap_method(owner: type, name: str, patch_id: str, make: Callable[[Callable[..., Any]], Any]) -> None:
    """Replace ``owner.name`` (defined on ``owner`` itself) with ``make(original)``, once.

    Classmethods stay classmethods: ``make`` receives and returns the plain function.
    """
    current = owner.__dict__.get(name)
    if current is None:
        raise AttributeError(f"{owner.__qualname__} defines no {name!r}; unsupported moto version")
    is_classmethod = isinstance(current, classmethod)
    original = current.__func__ if is_classmethod else current
    if _is_patched(original, patch_id):
        return
    wrapper = make(original)
    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _PATCH_ID, patch_id)
    setattr(owner, name, classmethod(wrapper) if is_classmethod else wrapper)


def add_method(owner: type, name: str, function: Callable[..., Any]) -> None:
    """Give ``owner`` a method it lacks (a new API action, say); keeps moto's own if it has one."""
    if name not in owner.__dict__:
        setattr(owner, name, function)


def subclasses_defining(root: type, name: str) -> Iterator[type]:
    """``root`` and every loaded subclass that defines ``name`` itself (so overrides get patched too)."""
    seen: set[type] = set()
    pending = [root]
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        if name in cls.__dict__:
            yield cls


def replaced_by(function: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``make`` for :func:`wrap_method` that ignores the original (a handler rewritten whole)."""

    def make(_original: Callable[..., Any]) -> Callable[..., Any]:
        def replacement(*args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

        return replacement

    return make
