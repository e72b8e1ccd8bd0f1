"""SciFact's train and test queries searched as users search, on hybrid Qdrant Edge collections built from cached
MiniLM vectors: the shared part of ``bm25_fit_scifact`` and ``feedback_scifact`` (issue 27).

The corpus's MiniLM vectors come from ``collection_vectors`` (encoded once, cached); each split's query vectors
are encoded once with MiniLM's own recipe and cached beside them. A collection is written for each BM25 setting
(the document side's length normalisation is baked into the stored sparse vectors) and searched through the
store's own retrievers with ``top_k=100`` and the default prefetch of 100 a side: the fusion sees the same
candidates as a user's ``top_k=10`` search, so nDCG@10 and MRR@10 are that search's, and R@100 the same search
looking deeper. Every query is timed (the retriever's ``run``, vectors given).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from haystack import Document
from haystack.dataclasses import SparseEmbedding

from benchmarks.collection import corpus_documents
from benchmarks.collection_vectors import scifact_vectors
from benchmarks.common import MODEL, percentiles
from simlm_haystack.evaluation.data import BeirCollection, load_beir
from simlm_haystack.evaluation.retrieval import Run, encode_sparse_queries
from simlm_haystack.evaluation.scoring import calc_metrics
from simlm_haystack.sparse import BM25Encoder, BM25Settings
from simlm_haystack.stores.edge import EdgeDocumentStore
from simlm_haystack.stores.fusion import HybridSearch
from simlm_haystack.stores.support import store_support

MEASURES = ("nDCG@10", "RR@10", "R@100")
SPLITS = ("train", "test")
#: Where the cached vectors live (``collection_vectors``' folder).
CACHE = Path(tempfile.gettempdir()) / "simlm-haystack-bench"


@dataclass
class Split:
    """One split's judged queries: ids, texts, MiniLM vectors (rows in id order) and judgements."""

    name: str
    ids: list[str]
    texts: list[str]
    dense: np.ndarray
    qrels: dict[str, dict[str, int]]
    sparse: dict[str, list[SparseEmbedding]] = field(default_factory=dict)

    def sparse_vectors(self, settings: BM25Settings) -> list[SparseEmbedding]:
        """The queries' BM25 vectors (the same for every k, b and avg_len: cached once)."""
        key = str(replace(settings, k=1.2, b=0.75, avg_len=256.0))
        if key not in self.sparse:
            self.sparse[key] = encode_sparse_queries(settings, self.texts)
        return self.sparse[key]


@dataclass
class SciFact:
    """The collection, its corpus's cached MiniLM vectors and both splits."""

    collection: BeirCollection
    documents: list[Document]
    vectors: np.ndarray
    splits: dict[str, Split]


def _query_vectors(collection: BeirCollection, split: str, cache: Path) -> np.ndarray:
    path = cache / f"scifact_minilm_{split}_judged_queries.npy"
    if path.is_file():
        return np.load(path)
    from simlm_haystack import DualEncoderTextEmbedder
    from simlm_haystack.models import local_model_path

    embedder = DualEncoderTextEmbedder(model=local_model_path(MODEL), recipe="minilm")
    embedder.warm_up()
    assert embedder.encoder is not None
    vectors = embedder.encoder.encode("query", list(collection.judged_queries(split).values())).astype(np.float32)
    np.save(path, vectors)
    return vectors


def load_scifact(data: Path, cache: Path = CACHE) -> SciFact:
    """SciFact with both splits, the corpus's cached vectors (checked against the corpus) and the queries'."""
    collection = load_beir(data, splits=list(SPLITS))
    documents = corpus_documents(data)
    vectors = np.load(scifact_vectors(cache, data)["documents"])
    if len(vectors) != len(documents):
        raise SystemExit(f"{len(vectors)} cached vectors for {len(documents)} documents: delete the cache in {cache}")
    splits = {}
    for name in SPLITS:
        judged = collection.judged_queries(name)
        qrels = {query: dict(judged_docs) for query, judged_docs in collection.split(name).items()}
        splits[name] = Split(name, list(judged), list(judged.values()), _query_vectors(collection, name, cache), qrels)
    return SciFact(collection, documents, vectors, splits)


def build_store(scifact: SciFact, settings: BM25Settings, folder: Path) -> EdgeDocumentStore:
    """A hybrid Edge collection of the corpus: the cached dense vectors and BM25 vectors of ``settings``."""
    encoder = BM25Encoder(settings)
    sparse = encoder.encode_documents(
        [d.content or "" for d in scifact.documents], [d.meta.get("title") for d in scifact.documents]
    )
    store = EdgeDocumentStore(
        path=str(folder), index="hybrid", embedding_dim=scifact.vectors.shape[1], use_sparse_embeddings=True
    )
    store.write_documents(
        [
            replace(
                document, embedding=vector.tolist(), sparse_embedding=SparseEmbedding(list(s.indices), list(s.values))
            )
            for document, vector, s in zip(scifact.documents, scifact.vectors, sparse, strict=True)
        ]
    )
    store.finish_writing()
    return store


def with_store(scifact: SciFact, settings: BM25Settings, work: Callable[[EdgeDocumentStore], Any]) -> Any:
    """``work(store)`` on a fresh collection for ``settings``, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="scifact-splits-"))
    store = build_store(scifact, settings, folder)
    try:
        return work(store)
    finally:
        store.close()
        shutil.rmtree(folder, ignore_errors=True)


def timed_search(
    store: EdgeDocumentStore,
    split: Split,
    settings: BM25Settings,
    retrieval: str,
    hybrid: HybridSearch | None = None,
    top_k: int = 100,
    retriever: Any = None,
) -> tuple[Run, list[float]]:
    """Each query of ``split`` through the store's own retriever (or ``retriever``): the run and ms a query."""
    retriever = retriever or store_support(store).retriever(retrieval, top_k=top_k, search=hybrid)
    sparse = split.sparse_vectors(settings)
    run: Run = {}
    milliseconds = []
    for index, query_id in enumerate(split.ids):
        vectors: dict[str, Any] = {}
        if retrieval != "sparse":
            vectors["query_embedding"] = split.dense[index].tolist()
        if retrieval != "dense":
            vectors["query_sparse_embedding"] = sparse[index]
        start = time.perf_counter()
        documents = retriever.run(**vectors, top_k=top_k)["documents"]
        milliseconds.append(1000 * (time.perf_counter() - start))
        run[query_id] = {document.id: float(document.score) for document in documents}
    return run, milliseconds


def scored(split: Split, run: Run, milliseconds: Sequence[float]) -> dict[str, Any]:
    """Measures in percent (2 decimals), latency percentiles in ms, and the per-query nDCG@10 (for paired tests)."""
    import ir_measures

    per_query = {
        metric.query_id: metric.value for metric in ir_measures.iter_calc([ir_measures.nDCG @ 10], split.qrels, run)
    }
    return {
        "metrics": {name: round(100 * value, 2) for name, value in calc_metrics(split.qrels, run, MEASURES).items()},
        "latency_ms": percentiles(milliseconds, 3),
        "ndcg10_per_query": [round(per_query.get(query_id, 0.0), 5) for query_id in split.ids],
    }


def paired_bootstrap(a: Sequence[float], b: Sequence[float], *, samples: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of ``b - a`` in points (x100) with a 95% paired-bootstrap interval over queries."""
    differences = 100 * (np.asarray(b) - np.asarray(a))
    rng = np.random.default_rng(seed)
    means = differences[rng.integers(0, len(differences), (samples, len(differences)))].mean(axis=1)
    return {
        "mean": round(float(differences.mean()), 2),
        "low": round(float(np.percentile(means, 2.5)), 2),
        "high": round(float(np.percentile(means, 97.5)), 2),
    }
