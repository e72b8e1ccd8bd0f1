"""The collection's corpus and test queries encoded with MiniLM once, kept as ``.npy`` files under a cache folder.

``edge_scale`` builds its larger collections from these vectors and ``query_latency`` writes them into every
store it measures, so both search the same vectors and neither encodes the corpus again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.collection import corpus_documents, test_queries
from benchmarks.common import DEFAULT_DATA, MODEL


def scifact_vectors(cache: Path, data: Path = DEFAULT_DATA) -> dict[str, Path]:
    """Encode the collection's corpus and test queries with MiniLM (its own ``minilm`` recipe) once; later runs
    read the cached files.

    The files are named after the collection's folder (``scifact_minilm_documents.npy`` for SciFact).
    """
    files = {name: cache / f"{Path(data).name}_minilm_{name}.npy" for name in ("documents", "queries")}
    if all(path.is_file() for path in files.values()):
        return files
    # Imported here: a run that finds the cached files never loads the model.
    from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderTextEmbedder
    from simlm_haystack.models import local_model_path

    cache.mkdir(parents=True, exist_ok=True)
    documents = corpus_documents(data)
    embedder = DualEncoderDocumentEmbedder(model=local_model_path(MODEL), recipe="minilm", progress_bar=True)
    embedder.warm_up()
    embedded = embedder.run(documents)["documents"]
    np.save(files["documents"], np.array([d.embedding for d in embedded], dtype=np.float32))
    queries = test_queries(data)
    text_embedder = DualEncoderTextEmbedder(model=local_model_path(MODEL), recipe="minilm")
    text_embedder.warm_up()
    assert text_embedder.encoder is not None
    np.save(files["queries"], text_embedder.encoder.encode("query", queries).astype(np.float32))
    return files
