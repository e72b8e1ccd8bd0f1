"""Parameter documentation written once and put into every signature that takes the parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

Documented = TypeVar("Documented", bound=Callable[..., Any] | type)


def docstring_with(**fragments: str) -> Callable[[Documented], Documented]:
    """A decorator that replaces each line ``{name}`` of a docstring by ``fragments[name]``, indented as that
    line is: so that ``help()`` and API docs show every parameter where the signature lists it, while its
    text is written once (e.g. :data:`simlm_haystack.settings.SETTINGS_DOC`)."""

    def decorate(target: Documented) -> Documented:
        lines = (target.__doc__ or "").splitlines()
        for name, fragment in fragments.items():
            marker = "{" + name + "}"
            position = next((i for i, line in enumerate(lines) if line.strip() == marker), None)
            if position is None:
                raise ValueError(f"{target.__qualname__}'s docstring has no {marker} line")
            indent = lines[position][: len(lines[position]) - len(lines[position].lstrip())]
            lines[position : position + 1] = [indent + line if line else "" for line in fragment.splitlines()]
        target.__doc__ = "\n".join(lines)
        return target

    return decorate
