"""The forward pass of one query, variant by variant: what ONNX Runtime, OpenVINO and torch offer (issue 17).

all-MiniLM-L6-v2 (``minilm`` recipe) on SciFact's 300 test queries, each tokenised once as
:func:`simlm_haystack.encoding.tokenize` does for the query side. Two timings per variant and query:

* ``forward``: the model inputs (int64 arrays of one query) in, ``last_hidden_state`` out, nothing else;
* ``encode``: ``DualEncoder.encode("query", [text], batch_size=1)`` with the variant as its graph, which
  adds tokenising, padding and pooling (the package's own encoder where the variant is a package setting).

Every variant answers one input of every query length and the first ``--warmup`` queries untimed, then
all variants alternate query by query in one process, in a fresh random order for every query, so a burst
of load from the machine's other tenants hits them alike and no variant always follows the same one.
p50 / p99 / mean per variant, ratios to the package's current choices (also the median of the per-query
ratios), and the agreement with torch: the lowest cosine of a real token's hidden state and of a pooled
query vector.

Variants: torch (exact on the default threads and on one; the package's ``fast``: bf16 autocast where
native; ``torch.compile``), ONNX Runtime fp32 (the plain export and the package's fused graph; graph
optimisation BASIC / EXTENDED / ALL; 1 or 2 intra-op threads; 2 spinning threads), ONNX Runtime int8
(the package's ``INT8_SETTINGS`` on 1 and 2 threads and at BASIC; then :data:`INT8_VARIANTS`: which
weight MatMuls stay fp32; per tensor; uint8 weights; 7-bit weights; the fused graph quantised;
``MatMulNBits`` 8-bit blocks with int8 compute) and OpenVINO (fp32 on 1 or 2 threads, with the infer
request reused, bf16, the int8 ONNX).

``--parts ndcg``: SciFact test nDCG@10 of lossy variants (by default the package's int8 and every lossy
variant faster than it in the timing part: the median of the per-query ratios below 1). The variant
encodes the corpus (batches of 32) and the queries one at a time, as they are served; exact numpy search
gives the top 100, :func:`simlm_haystack.evaluation.scoring.calc_metrics` scores it. The queries are
also scored encoded in batches of 32, as the package's evaluator encodes them. ``--parts documents``:
documents/s of ``--document-variants``, alternating batch by batch.

    .venv/bin/python -m benchmarks.query_forward --parts timing ndcg

Modules: :mod:`.graphs` (a variant's forward pass on ONNX Runtime, OpenVINO or torch), :mod:`.quantized` (the
benchmark's own int8 files), :mod:`.variants` (every variant, built), :mod:`.timing`, :mod:`.documents` and
:mod:`.ndcg` (the three parts), ``__main__`` (the command line and the table).
"""
