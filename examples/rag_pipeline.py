"""A RAG pipeline: DualEncoderRetriever -> ChatPromptBuilder -> any chat generator.

    python examples/rag_pipeline.py "Does aspirin lower the risk of heart attack?"

Offline it runs as far as the prompt (retrieval over embedded Qdrant is real) and prints it. The
LLM plugs in as the ``llm`` component: with OPENAI_API_KEY set it is Haystack's
``OpenAIChatGenerator``; any other chat generator (Ollama, Hugging Face, Anthropic, ...) takes its
place with the same ``messages`` input.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from haystack import Pipeline
from haystack.components.builders import ChatPromptBuilder
from haystack.dataclasses import ChatMessage

from simlm_haystack import DualEncoderDocumentEmbedder, DualEncoderRetriever, index_documents, qdrant_document_store
from simlm_haystack.corpus import read_documents

MODEL = os.environ.get("SIMLM_HAYSTACK_MODEL", "sentence-transformers/all-MiniLM-L6-v2")  # offline-installable
SAMPLE = Path(__file__).resolve().parent / "data" / "scifact-sample" / "corpus.jsonl"
TEMPLATE = [
    ChatMessage.from_user(
        "Answer the question from these abstracts only.\n"
        "{% for document in documents %}[{{ loop.index }}] {{ document.meta.title }}: {{ document.content }}\n"
        "{% endfor %}\nQuestion: {{ query }}"
    )
]


def main(question: str) -> int:
    embedder = DualEncoderDocumentEmbedder(model=MODEL, progress_bar=False)
    store = qdrant_document_store(embedder)  # ":memory:"; path= or url= for a persistent store
    index_documents(read_documents(SAMPLE), embedder, store, progress_bar=False)

    rag = Pipeline()
    rag.add_component("retriever", DualEncoderRetriever(model=MODEL, document_store=store, top_k=3))
    rag.add_component("prompt_builder", ChatPromptBuilder(template=TEMPLATE, required_variables=["query"]))
    rag.connect("retriever.documents", "prompt_builder.documents")
    if os.environ.get("OPENAI_API_KEY"):
        from haystack.components.generators.chat import OpenAIChatGenerator

        rag.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
        rag.connect("prompt_builder.prompt", "llm.messages")

    result = rag.run(
        {"retriever": {"query": question}, "prompt_builder": {"query": question}},
        include_outputs_from={"prompt_builder"},
    )
    print(result["prompt_builder"]["prompt"][0].text)
    if "llm" in result:
        print("\nAnswer:", result["llm"]["replies"][0].text)
    else:
        print("\n[No OPENAI_API_KEY: stopped before the LLM. Connect any chat generator to prompt_builder.prompt.]")
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "Does aspirin lower the risk of heart attack?"))
