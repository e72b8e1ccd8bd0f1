"""A sentence-transformers checkpoint none of our recipes names drops into what people already run: the
pipeline YAML swap by its ``type:`` line alone, every CLI command with no ``--recipe``, and a collection's
encoder identity that knows a folder and its hub id for the same encoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl
from haystack import Document, Pipeline
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderRetriever,
    DualEncoderTextEmbedder,
    EncoderMismatchError,
    build_indexing_pipeline,
    build_query_pipeline,
    edge_document_store,
)
from simlm_haystack.cli import main

ST_TEXT = SentenceTransformersTextEmbedder.__module__ + ".SentenceTransformersTextEmbedder"
DOCUMENTS = [
    Document(id="1", content="Vitamin D deficiency is associated with a higher risk of cancer."),
    Document(id="2", content="Aspirin lowers the risk of a second heart attack."),
    Document(id="3", content="Regular exercise improves insulin sensitivity."),
]


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize(
    ("name", "reading", "prefix"),
    [
        ("yaml-swap-cls-mean-max", {"pooling": ("cls", "mean", "max"), "normalize": True}, ""),
        ("yaml-swap-prompts", {"pooling": "mean", "prompts": {"query": "query: ", "document": "passage: "}}, "query: "),
    ],
)
def test_a_pipeline_yaml_swaps_by_its_type_line_alone(tiny_st, name: str, reading: dict, prefix: str) -> None:
    path = tiny_st(name, **reading)
    theirs = Pipeline()
    # sentence-transformers-haystack applies no prompt by itself: its users pass the model's as prefix=.
    theirs.add_component("embedder", SentenceTransformersTextEmbedder(model=path, prefix=prefix, progress_bar=False))
    their_vector = theirs.run({"embedder": {"text": "what lowers heart attack risk?"}})["embedder"]["embedding"]
    yaml = theirs.dumps()
    swapped_yaml = yaml.replace(f"type: {ST_TEXT}\n", "type: simlm_haystack.DualEncoderTextEmbedder\n")
    assert swapped_yaml != yaml
    swapped = Pipeline.loads(swapped_yaml)
    assert isinstance(swapped.get_component("embedder"), DualEncoderTextEmbedder)
    ours = swapped.run({"embedder": {"text": "what lowers heart attack risk?"}})["embedder"]["embedding"]
    assert cosine(their_vector, ours) >= 0.99999
    np.testing.assert_allclose(np.linalg.norm(ours), np.linalg.norm(their_vector), rtol=1e-5)
    # Serialised again, the recipe stays found from the checkpoint (not written out).
    assert swapped.get_component("embedder").to_dict()["init_parameters"]["recipe"] is None


def test_every_cli_command_takes_a_checkpoint_with_no_recipe(tiny_st, tmp_path: Path, capsys) -> None:
    path = tiny_st("cli-dense", pooling="mean", dense=[(16, None, False)], normalize=True)
    corpus = write_jsonl(
        tmp_path / "beir" / "corpus.jsonl",
        [{"_id": d.id, "title": "", "text": d.content} for d in DOCUMENTS],
    )
    write_jsonl(tmp_path / "beir" / "queries.jsonl", [{"_id": "q1", "text": "aspirin and heart attacks"}])
    write_jsonl(tmp_path / "beir" / "qrels" / "test.tsv", ["query-id\tcorpus-id\tscore", "q1\t2\t1"])
    store = ["--qdrant-path", str(tmp_path / "edge"), "--index", "docs", "--model", path]
    assert main(["index", str(corpus), *store, "--quiet"]) == 0
    assert "16-d, cosine, recipe sentence-transformers" in capsys.readouterr().out
    assert main(["search", "heart attack", *store, "--top-k", "2"]) == 0
    assert capsys.readouterr().out.count("  1. ") == 1
    code = main(["eval", "--model", path, "--data", str(tmp_path / "beir"), "--qdrant-path", str(tmp_path / "ev")])
    assert code == 0, capsys.readouterr().err
    assert "recipe sentence-transformers" in capsys.readouterr().out


@pytest.mark.integration
def test_a_folder_and_its_hub_id_are_one_encoder_to_a_collection(minilm_path: str, tmp_path: Path) -> None:
    """Indexed from the installed folder (its recipe read from its sentence-transformers files), searched by
    the hub id (its known model card): the same weights read the same way, so the collection accepts it."""
    folder_embedder = DualEncoderDocumentEmbedder(model=minilm_path, progress_bar=False)
    assert folder_embedder.recipe.name == "sentence-transformers"
    store = edge_document_store(folder_embedder, path=str(tmp_path / "edge"), index="docs")
    build_indexing_pipeline(folder_embedder, store).run({"embedder": {"documents": DOCUMENTS}})
    by_hub_id = DualEncoderRetriever(model="sentence-transformers/all-MiniLM-L6-v2", document_store=store, top_k=1)
    assert by_hub_id.text_embedder.recipe.name == "minilm"
    assert by_hub_id.run(query="aspirin and heart attacks")["documents"][0].id == "2"
    by_hub_id.close()


def test_other_dense_weights_are_another_encoder(tiny_st, tmp_path: Path) -> None:
    """The identity covers the Dense layers' weights: same transformer, other projection, refused."""
    first = tiny_st("identity-dense-a", pooling="mean", dense=[(16, None, False)], normalize=True)
    second = tmp_path / "identity-dense-b"
    shutil.copytree(tiny_st("identity-dense-c", pooling="mean", dense=[(16, None, False)], normalize=True), second)
    embedder = DualEncoderDocumentEmbedder(model=first, progress_bar=False)
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="docs")
    build_indexing_pipeline(embedder, store).run({"embedder": {"documents": DOCUMENTS}})
    retriever = DualEncoderRetriever(model=str(second), document_store=store)
    with pytest.raises(EncoderMismatchError, match="the model weights"):
        retriever.run(query="aspirin")
    retriever.close()


def test_normalize_embeddings_on_a_cosine_model_that_does_not_normalise_is_honoured(tiny_st, tmp_path: Path) -> None:
    """Their YAML often says ``normalize_embeddings: true`` for such a model: the swap gives their unit vectors,
    and a collection indexed with the raw ones (Qdrant stores a cosine collection's vectors normalised) is the
    same encoder's."""
    path = tiny_st("swap-cls-raw", pooling="cls")
    theirs = SentenceTransformersTextEmbedder(model=path, normalize_embeddings=True, progress_bar=False)
    theirs.warm_up()
    their_vector = theirs.run("what lowers heart attack risk?")["embedding"]
    data = theirs.to_dict()
    ours = DualEncoderTextEmbedder.from_dict({**data, "type": "simlm_haystack.DualEncoderTextEmbedder"})
    assert ours.recipe.normalize and not DualEncoderTextEmbedder(model=path).recipe.normalize
    vector = ours.run("what lowers heart attack risk?")["embedding"]
    assert cosine(their_vector, vector) >= 0.99999 and abs(np.linalg.norm(vector) - 1) < 1e-5
    again = DualEncoderTextEmbedder.from_dict(ours.to_dict())
    assert again.run("what lowers heart attack risk?")["embedding"] == vector

    embedder = DualEncoderDocumentEmbedder(model=path, progress_bar=False)  # raw vectors
    store = edge_document_store(embedder, path=str(tmp_path / "edge"), index="docs")
    build_indexing_pipeline(embedder, store).run({"embedder": {"documents": DOCUMENTS}})
    query_pipeline = build_query_pipeline(ours, store, top_k=3)  # checks the collection's encoder first
    assert len(query_pipeline.run({"retriever": {"query": "aspirin"}})["retriever"]["documents"]) == 3
    store.close()


def test_train_and_pretrain_take_a_checkpoint_with_no_recipe(tiny_st, tmp_path: Path, sample_dir: Path, capsys) -> None:
    path = tiny_st("cli-train-mean", pooling="mean", normalize=True)
    beir = tmp_path / "beir"
    write_jsonl(beir / "corpus.jsonl", [{"_id": d.id, "title": "", "text": d.content} for d in DOCUMENTS])
    write_jsonl(beir / "queries.jsonl", [{"_id": "q1", "text": "aspirin and heart attacks"}])
    write_jsonl(beir / "qrels" / "train.tsv", ["query-id\tcorpus-id\tscore", "q1\t2\t1"])
    common = ["--max_steps", "1", "--per_device_train_batch_size", "1", "--disable_tqdm", "true", "--use_cpu", "true"]
    train = ["--train", str(beir), "--n_negatives", "0"]
    code = main(["train", "--model", path, *train, "--output_dir", str(tmp_path / "ft"), *common])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "ft" / "modules.json").is_file()
    arguments = ["--model", path, "--corpus", str(sample_dir / "corpus.jsonl"), "--generator", "unigram"]
    code = main(["pretrain", *arguments, "--output_dir", str(tmp_path / "pt"), "--report_to", "none", *common])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "(read as 'sentence-transformers')" in out
    # A checkpoint whose Dense layer the trainers would neither train nor save: refused, saying so.
    dense = tiny_st("cli-train-dense", pooling="mean", dense=[(16, None, False)])
    code = main(["train", "--model", dense, *train, "--output_dir", str(tmp_path / "no"), *common])
    assert code == 2 and "dense layers after pooling (2_Dense)" in capsys.readouterr().err
