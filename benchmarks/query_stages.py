"""Where one query's time goes: the drop-in retriever's stages, timed inside the real call.

:class:`StageTimer` wraps, for as long as it is active, the functions one ``DualEncoderRetriever.run`` passes
through and records each call's wall time: tokenising (``encoding.tokenize``), the forward pass (the ONNX Runtime
or OpenVINO graph, or the torch model), pooling (``encoding.pool``), the engine's search (the Edge shard's query)
and building the ``Document`` s from its points. What the stages leave of the whole call is Python around them
(padding, checks, the component's own work). Wrapping costs about a microsecond a stage.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from benchmarks.common import median

STAGES = ("tokenize", "forward", "pool", "search", "documents")


class StageTimer:
    """Milliseconds per stage, one list per stage, appended by the wrapped functions while :meth:`active`."""

    def __init__(self) -> None:
        self.milliseconds: dict[str, list[float]] = defaultdict(list)

    def _timed(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.milliseconds[stage].append(1000 * (time.perf_counter() - start))

        return timed

    @contextmanager
    def _patched(self, owner: Any, name: str, stage: str) -> Iterator[None]:
        original = getattr(owner, name)
        setattr(owner, name, self._timed(stage, original))
        try:
            yield
        finally:
            setattr(owner, name, original)

    @contextmanager
    def active(self, encoder: Any, store: Any) -> Iterator[None]:
        """Time ``encoder``'s (a ``DualEncoder``) and ``store``'s (an ``EdgeDocumentStore``) stages."""
        from simlm_haystack import encoding
        from simlm_haystack.stores.edge.document_store import EdgeDocumentStore

        with ExitStack() as stack:
            stack.enter_context(self._patched(encoding, "tokenize", "tokenize"))
            stack.enter_context(self._patched(encoding, "pool", "pool"))
            if encoder.graph is not None:
                stack.enter_context(self._patched(encoder, "graph", "forward"))
            else:
                stack.enter_context(self._patched(encoder.loaded.model, "forward", "forward"))
            stack.enter_context(self._patched(store, "_call", "search"))
            stack.enter_context(self._patched(store, "_documents", "documents"))
            assert isinstance(store, EdgeDocumentStore)
            yield

    def summary(self, totals: list[float]) -> dict[str, float]:
        """Each stage's median per query and the rest of the whole call (its median less theirs), ms."""
        per_query = {stage: round(median(self.milliseconds[stage]), 3) for stage in STAGES if self.milliseconds[stage]}
        whole = median(totals)
        return {**per_query, "other": round(whole - sum(per_query.values()), 3), "whole": round(whole, 3)}
