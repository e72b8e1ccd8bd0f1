"""The benchmarks behind BENCHMARKS.md, one runnable module each, run from the repository root:

    .venv/bin/python -m benchmarks.query_latency --help

:mod:`benchmarks.common` holds what they share (the machine, the load, the default model and collection,
timing statistics, result files); :mod:`benchmarks.collection` reads the BEIR collection. A benchmark too big
for one module is a subpackage (``query_forward``, ``pretrain_scifact``, ``edge_scale``) run the same way.
Nothing here is part of the installed package.
"""
