"""Lazy public exports for package roots (PEP 562).

A package root such as ``mnas.train`` lists its public names, but importing
the package must not import TensorFlow: ``mnas-search --help`` and every
bad-flag refusal would otherwise wait ~10 s for it. Each name is imported from
its module on first access instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    ``exports`` maps each public name to the module (relative to ``package``,
    e.g. ``".builder"``) that defines it.
    """
    names = sorted(exports)

    def module_getattr(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def module_dir() -> list[str]:
        return names

    return module_getattr, module_dir, names
