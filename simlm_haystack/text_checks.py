"""Checks of the texts callers hand to an encoder, dense or BM25: each mistake gets one message, whichever
encoder (the dual encoder, :class:`~simlm_haystack.sparse.BM25Encoder`, the LangChain embeddings) is given it.

Nothing here imports torch, so the command line can check its queries before a model is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simlm_haystack.errors import EmptyQueryError


def check_strings(name: str, values: Any, *, optional_items: bool = False) -> list[Any]:
    """``values`` as a list, or a TypeError naming the first item that is not a string (nor ``None``, with
    ``optional_items``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of strings, not {type(values).__name__}")
    for position, value in enumerate(values):
        if not (isinstance(value, str) or (optional_items and value is None)):
            allowed = "a string or None" if optional_items else "a string"
            raise TypeError(f"item {position} of {name} is {type(value).__name__}, not {allowed}")
    return list(values)


def check_texts_and_titles(texts: Any, titles: Any) -> tuple[list[str], list[str | None] | None]:
    """Documents' ``texts`` and ``titles`` (``None``: no titles; an item ``None``: no title) as lists.

    :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or ``None``.
    :raises ValueError: ``titles`` and ``texts`` differ in length.
    """
    texts = check_strings("texts", texts)
    if titles is None:
        return texts, None
    titles = check_strings("titles", titles, optional_items=True)
    if len(titles) != len(texts):
        raise ValueError(f"Got {len(titles)} titles for {len(texts)} texts")
    return texts, titles


def check_queries(queries: Sequence[str]) -> None:
    """An empty or whitespace-only query is an :class:`~simlm_haystack.EmptyQueryError`: there is nothing in it
    to search for (a dual encoder would still give it a vector, of the special tokens alone, and an arbitrary
    top-k with it)."""
    for position, query in enumerate(queries):
        if not query.strip():
            which = "The query" if len(queries) == 1 else f"Query {position + 1} of {len(queries)}"
            shown = "empty" if not query else f"only whitespace ({len(query)} characters)"
            raise EmptyQueryError(f"{which} is {shown}: there is nothing to search for")
