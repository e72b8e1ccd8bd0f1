"""Embedded scale: EdgeDocumentStore (Qdrant Edge) vs QdrantDocumentStore(path=...) (qdrant-client local mode).

Vectors: the 5,183 SciFact documents encoded once with all-MiniLM-L6-v2 (minilm recipe; cached as .npy
under --cache by :mod:`benchmarks.collection_vectors`), then perturbed copies up to each size: copy j of document i is
``normalise(v_i + sigma * g_j)`` with ``g_j ~ N(0, I_384)`` drawn from a seeded generator, so a copy is
another document on the same topic, not a random point (random Gaussian vectors are the worst case for
any graph index and not what users store). Each document carries its SciFact title and text as payload.
Queries: the 300 SciFact test queries, encoded with the same model.

For each size, each engine runs in fresh subprocesses: one writes (``write_documents`` in batches of
1,000 with ``DuplicatePolicy.OVERWRITE``, as ``index_documents`` writes; then Edge builds its HNSW graph,
timed apart); then query processes reopen the store and run the 300 queries one at a time through the
engine's retriever component, in --rounds rounds that alternate the engines (the medians of the rounds
are reported). The write phases alternate their order from size to size. Local mode is stopped at the
first size whose write phase passes --local-limit-minutes, and not run at larger sizes.

    .venv/bin/python -m benchmarks.edge_scale --sizes 10000 50000 200000   # --data DIR: another BEIR collection

Modules: :mod:`.vectors` (the perturbed copies), :mod:`.workers` (the write and query processes),
:mod:`.driver` (one size: the processes in turn, their medians and ratios), ``__main__`` (the command line).
"""
