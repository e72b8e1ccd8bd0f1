"""A LlamaIndex RAG query engine: hybrid retriever -> response synthesis -> any LLM, over the same exact encoders.

    python examples/llama_index_rag.py "Does aspirin lower the risk of heart attack?"

Offline it runs end to end with LlamaIndex's ``MockLLM``, which answers with the prompt it was given (indexing
and hybrid retrieval over an embedded Qdrant Edge collection are real). With OPENAI_API_KEY set and
``llama-index-llms-openai`` installed the LLM is OpenAI's; any other LlamaIndex LLM takes its place.
"""

from __future__ import annotations

import os
import sys
from itertools import islice
from pathlib import Path

from llama_index.core import Document
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from transformers.utils import logging as transformers_logging

from simlm_haystack import edge_document_store
from simlm_haystack.corpus import read_jsonl
from simlm_haystack.llama_index import DualEncoderEmbedding, DualEncoderRetriever, index_nodes

MODEL = os.environ.get("SIMLM_HAYSTACK_MODEL", "sentence-transformers/all-MiniLM-L6-v2")  # offline-installable
SAMPLE = Path(__file__).resolve().parent / "data" / "scifact-sample" / "corpus.jsonl"


def llm() -> tuple[LLM, bool]:
    """An LLM if one is configured, else LlamaIndex's offline MockLLM; and whether it is a real one."""
    if os.environ.get("OPENAI_API_KEY"):
        try:
            from llama_index.llms.openai import OpenAI
        except ImportError:
            print("[OPENAI_API_KEY is set but llama-index-llms-openai is not installed]\n")
        else:
            return OpenAI(model="gpt-4o-mini"), True
    return MockLLM(max_tokens=60), False


def main(question: str, limit: int | None = None) -> int:
    # Our output only: no weight-loading bars, no log lines nobody can act on.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    embedding = DualEncoderEmbedding(model=MODEL)
    documents = [
        Document(id_=record["_id"], text=record["text"], metadata={"title": record.get("title", "")})
        for _, record in islice(read_jsonl(SAMPLE), limit)
    ]
    # A LlamaIndex splitter's nodes, each keeping its abstract's title (read as the recipe says) and its source.
    nodes = SentenceSplitter(chunk_size=256, chunk_overlap=0).get_nodes_from_documents(documents)
    # A temporary Qdrant Edge collection (path= for a persistent one; qdrant_document_store for a server), with
    # BM25 beside the dense vectors; written through the checked write path of `simlm-haystack index`.
    store = edge_document_store(embedding, use_sparse_embeddings=True)
    try:
        index_nodes(nodes, embedding, store, retrieval="hybrid")
        retriever = DualEncoderRetriever.from_embedding(embedding, store, retrieval="hybrid", top_k=3)
        model, real = llm()
        response = RetrieverQueryEngine.from_args(retriever, llm=model).query(question)
    finally:
        store.close()
    print("Sources:")
    for number, source in enumerate(response.source_nodes, start=1):
        print(f"[{number}] {source.node.metadata.get('title', '')}: {source.node.get_content()[:120]}...")
    if real:
        print("\nAnswer:", response)
    else:
        print("\nAnswer (MockLLM, no LLM configured: it repeats the start of its prompt):", response)
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "Does aspirin lower the risk of heart attack?"))
