"""Griffe extension for the API reference: the package's Sphinx-style prose, rendered as Markdown.

The docstrings are Sphinx-style (``:param x:``, read by griffe's ``sphinx`` parser). Their prose also uses
Sphinx roles (``:class:`~simlm_haystack.X```) and reStructuredText literal blocks (``Example::`` followed by an
indented block), which Markdown would print as they are written. Before rendering, each role becomes a code span
(``~a.b.C`` shows ``C``, as in Sphinx; a leading ``.`` is dropped) and each literal block a fenced code block.
Roles are not turned into links: many name internal modules, which the reference does not document (it documents
the public import paths only), so a link would break whenever the internals move.

Some docstrings are completed at import time (``simlm_haystack.docstrings.docstring_with`` replaces a line
``{encoder_settings}`` by the parameters it stands for, written once for every signature). Griffe reads the source,
so for those the docstring is taken from the imported object; one that cannot be imported fails the build.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import griffe

_FRAGMENT_LINE = re.compile(r"^\s*\{[a-z_]+\}\s*$", re.MULTILINE)
_ROLE = re.compile(r":(?:py:)?(?:class|data|func|meth|mod|attr|exc|obj|const):`([^`]+)`")


def _role_text(match: re.Match[str]) -> str:
    target = match.group(1).strip()
    if "<" in target and target.endswith(">"):  # :role:`title <target>`
        return f"`{target.split('<', 1)[0].strip()}`"
    if target.startswith("~"):
        target = target[1:].rsplit(".", 1)[-1]
    return f"`{target.lstrip('.')}`"


def _language(block: list[str]) -> str:
    first = next((line.strip() for line in block if line.strip()), "")
    if first.startswith(("simlm-haystack", "torchrun", "accelerate", "pip ", "python ")):
        return "bash"
    if first.startswith(("{", "[")):
        return "json"
    return "python"


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.rstrip().endswith("::") and i + 2 < len(lines) and not lines[i + 1].strip():
            indent = len(line) - len(line.lstrip())
            j = i + 2
            block: list[str] = []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                prose = line.rstrip()[:-2].rstrip()
                if prose.strip():
                    out.append(prose + ":")
                out.append("")
                width = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                out.append(" " * indent + "```" + _language(block))
                out.extend(" " * indent + b[width:] if b.strip() else "" for b in block)
                out.append(" " * indent + "```")
                out.append("")
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


class SphinxTextToMarkdown(griffe.Extension):
    """Rewrite Sphinx roles and literal blocks in every docstring into Markdown."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        value = obj.docstring.value
        if _FRAGMENT_LINE.search(value):
            runtime = griffe.dynamic_import(obj.path)  # ImportError fails the build: better than "{...}" shown
            value = inspect.cleandoc(runtime.__doc__ or "")
            if _FRAGMENT_LINE.search(value):
                raise ValueError(f"{obj.path}: a docstring line {{...}} is left after import")
        obj.docstring.value = _ROLE.sub(_role_text, _literal_blocks(value))
