"""A LangChain RAG chain: retriever -> prompt -> any chat model, over the same exact encoders.

    python examples/langchain_rag.py "Does aspirin lower the risk of heart attack?"

Offline it runs as far as the prompt (indexing and retrieval over embedded Qdrant are real) and
prints it. The chat model plugs in at the end of the chain: with OPENAI_API_KEY set and
``langchain-openai`` installed it is ``ChatOpenAI``; any other LangChain chat model (Ollama,
Anthropic, Hugging Face, ...) takes its place.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from transformers.utils import logging as transformers_logging

from simlm_haystack.corpus import read_jsonl
from simlm_haystack.langchain import DualEncoderEmbeddings, DualEncoderQdrantVectorStore

MODEL = os.environ.get("SIMLM_HAYSTACK_MODEL", "sentence-transformers/all-MiniLM-L6-v2")  # offline-installable
SAMPLE = Path(__file__).resolve().parent / "data" / "scifact-sample" / "corpus.jsonl"
PROMPT = ChatPromptTemplate.from_messages(
    [("human", "Answer the question from these abstracts only.\n{context}\n\nQuestion: {question}")]
)


def format_documents(documents: list[Document]) -> str:
    return "\n".join(
        f"[{number}] {document.metadata.get('title', '')}: {document.page_content}"
        for number, document in enumerate(documents, start=1)
    )


def chat_model() -> object | None:
    """A chat model if one is configured, else None (the chain then stops at the prompt)."""
    if not os.environ.get("OPENAI_API_KEY"):
        return None
    try:
        from langchain_openai import ChatOpenAI
    except ImportError:
        print("[OPENAI_API_KEY is set but langchain-openai is not installed: pip install langchain-openai]\n")
        return None
    return ChatOpenAI(model="gpt-4o-mini")


def main(question: str) -> int:
    # Our output only: no weight-loading bars, no log lines nobody can act on.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    embeddings = DualEncoderEmbeddings(model=MODEL)
    documents = [
        Document(page_content=record["text"], metadata={"title": record.get("title", ""), "doc_id": record["_id"]})
        for _, record in read_jsonl(SAMPLE)
    ]
    # Each title reaches the encoder as the model's recipe says; path= or url= for a persistent store.
    store = DualEncoderQdrantVectorStore.from_documents(documents, embeddings, location=":memory:")
    retriever = store.as_retriever(search_kwargs={"k": 3})

    to_prompt = {"context": retriever | format_documents, "question": RunnablePassthrough()} | PROMPT
    print(to_prompt.invoke(question).to_messages()[0].content)
    llm = chat_model()
    if llm is None:
        print("\n[No chat model configured: stopped at the prompt. Pipe it into any LangChain chat model.]")
    else:
        print("\nAnswer:", (to_prompt | llm | StrOutputParser()).invoke(question))
    return 0


if __name__ == "__main__":
    sys.exit(main(" ".join(sys.argv[1:]) or "Does aspirin lower the risk of heart attack?"))
