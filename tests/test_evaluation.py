"""Evaluation: BEIR loading fails clearly, metrics are ir-measures' on the run, Qdrant ranks as exact search, reuse."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from pathlib import Path

import ir_measures
import numpy as np
import pytest
import torch
from conftest import write_beir
from haystack import Document

from simlm_haystack import DataError, DualEncoderDocumentEmbedder, DualEncoderTextEmbedder, qdrant_document_store
from simlm_haystack.cli import main
from simlm_haystack.components.pipelines import build_query_pipeline
from simlm_haystack.encoding import DualEncoder
from simlm_haystack.evaluation import (
    DEFAULT_MEASURES,
    FINGERPRINT_FIELD,
    BeirCollection,
    EvaluationResult,
    calc_metrics,
    encode_queries,
    evaluate,
    index_fingerprint,
    load_beir,
    retrieve,
    search,
)
from simlm_haystack.training import load_beir_training

CORPUS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces the risk of heart attack."},
    {"_id": "d2", "title": "Vitamin D", "text": "Vitamin D supports bone health in older adults."},
    {"_id": "d3", "title": "", "text": "Plasmids carry antibiotic resistance genes between bacteria."},
    {"_id": "d4", "title": "Sleep", "text": "Short sleep is associated with obesity in children."},
]
QUERIES = [
    {"_id": "q1", "text": "aspirin prevents heart attacks"},
    {"_id": "q2", "text": "bacteria share resistance genes"},
    {"_id": "q3", "text": "an unjudged query"},
]
QRELS = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td3\t1", "q2\td4\t0"]


def write_test_collection(root: Path, corpus: list = CORPUS, queries: list = QUERIES, qrels: list = QRELS) -> Path:
    return write_beir(root, corpus, queries, {"test": qrels})


def embedders(model: str, recipe: str | None = None) -> tuple[DualEncoderDocumentEmbedder, DualEncoderTextEmbedder]:
    return (
        DualEncoderDocumentEmbedder(model=model, recipe=recipe, progress_bar=False),
        DualEncoderTextEmbedder(model=model, recipe=recipe),
    )


# --- loading ---------------------------------------------------------------------------------------------------


def test_load_beir_reads_documents_queries_and_qrels(tmp_path: Path) -> None:
    collection = load_beir(write_test_collection(tmp_path))
    assert [d.id for d in collection.documents] == ["d1", "d2", "d3", "d4"]
    assert collection.documents[0].meta == {"title": "Aspirin"}
    assert collection.queries["q3"] == "an unjudged query"
    assert collection.split("test") == {"q1": {"d1": 1}, "q2": {"d3": 1, "d4": 0}}
    assert list(collection.judged_queries("test")) == ["q1", "q2"]
    assert collection.missing_documents == {"test": 0}
    with pytest.raises(DataError, match="split 'train' was not loaded"):
        collection.split("train")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"remove": "corpus.jsonl"}, r"corpus.jsonl: no such file"),
        ({"remove": "queries.jsonl"}, r"queries.jsonl: no such file"),
        ({"remove": "qrels/test.tsv"}, r"qrels/test.tsv: no such file"),
        ({"corpus": [*CORPUS[:2], '{"_id": "d3", "text": ']}, r"corpus.jsonl:3: not valid JSON"),
        ({"corpus": [*CORPUS, {"title": "no id", "text": "x"}]}, r"corpus.jsonl:5: no '_id' field"),
        (
            {"corpus": [*CORPUS, {"_id": "d2", "text": "again"}]},
            r"corpus.jsonl:5: duplicate document id 'd2' \(first on line 2\)",
        ),
        (
            {"queries": [*QUERIES, {"_id": "q1", "text": "again"}]},
            r"queries.jsonl:4: duplicate query id 'q1' \(first on line 1\)",
        ),
        ({"queries": [{"_id": "q1", "text": ""}]}, r"queries.jsonl:1: query 'q1' has no text"),
        ({"qrels": [*QRELS, "q9\td1\t1"]}, r"test.tsv:5: query 'q9' is not in .*queries.jsonl"),
        ({"qrels": [*QRELS, "q1 d2 1"]}, r"test.tsv:5: expected 3 tab-separated columns, got 1"),
        ({"qrels": [*QRELS, "q1\td2\thigh"]}, r"test.tsv:5: score must be an integer, got 'high'"),
        ({"qrels": [*QRELS, "q1\td1\t1"]}, r"test.tsv:5: query 'q1' judges document 'd1' twice"),
        ({"qrels": QRELS[1:]}, r"test.tsv:1: expected the header"),
        ({"qrels": []}, r"test.tsv: empty"),
    ],
)
def test_bad_collection_is_a_data_error_naming_file_and_line(tmp_path: Path, change: dict, message: str) -> None:
    root = write_test_collection(
        tmp_path,
        corpus=change.get("corpus", CORPUS),
        queries=change.get("queries", QUERIES),
        qrels=change.get("qrels", QRELS),
    )
    if "remove" in change:
        (root / change["remove"]).unlink()
    with pytest.raises(DataError, match=message):
        load_beir(root)


def test_judged_document_missing_from_the_corpus_is_counted_and_kept(tmp_path: Path, caplog) -> None:
    root = write_test_collection(tmp_path, qrels=[*QRELS, "q1\tgone\t1", "q2\talso-gone\t2"])
    with caplog.at_level(logging.WARNING):
        collection = load_beir(root)
    assert collection.missing_documents == {"test": 2}
    assert collection.split("test")["q1"] == {"d1": 1, "gone": 1}  # kept: a relevant document nobody can find
    assert "2 judgements name documents that are not in the corpus" in caplog.text


def test_collection_keeps_the_line_of_each_querys_first_judgement(tmp_path: Path) -> None:
    root = write_test_collection(tmp_path, qrels=[*QRELS, "q1\td2\t0"])
    collection = load_beir(root)
    assert collection.first_judgement_lines == {"test": {"q1": 2, "q2": 3}}
    assert collection.where_judged("test", "q2") == f"{root / 'qrels' / 'test.tsv'}:3"
    assert collection.where_judged("test", "q9") == f"{root / 'qrels' / 'test.tsv'}:?"


def test_training_examples_name_qrels_lines_from_the_collection_without_reading_the_file(tmp_path: Path) -> None:
    root = write_beir(tmp_path, CORPUS, QUERIES, {"train": [*QRELS[:2], "q2\td4\t0", "q2\tgone\t1"]})
    collection = load_beir(root, splits=["train"])
    (root / "qrels" / "train.tsv").unlink()  # the lines must come from the loaded collection
    with pytest.raises(DataError, match=r"train.tsv:3: query 'q2' judges documents that are not in the corpus"):
        load_beir_training(collection, "train")


# --- evaluation through Qdrant ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_run(tiny_bert: str, sample_dir: Path) -> tuple:
    document_embedder, text_embedder = embedders(tiny_bert, "simlm")
    store = qdrant_document_store(document_embedder, index="sample")
    collection = load_beir(sample_dir)
    result = evaluate(document_embedder, text_embedder, store, collection, top_k=100, progress_bar=False)
    return result, text_embedder, store, collection


def test_metrics_are_ir_measures_on_the_same_run(sample_run) -> None:
    result, _, _, collection = sample_run
    qrels = collection.split("test")
    expected = ir_measures.calc_aggregate([ir_measures.parse_measure(m) for m in DEFAULT_MEASURES], qrels, result.run)
    assert result.metrics == {
        name: pytest.approx(float(expected[ir_measures.parse_measure(name)]), abs=0) for name in DEFAULT_MEASURES
    }
    assert set(result.metrics) == {"nDCG@10", "RR@10", "R@100", "R@1000"}
    assert set(result.run) == set(qrels) and all(len(ranking) == 100 for ranking in result.run.values())
    assert result.counts["queries"] == 50 and result.counts["documents"] == 300
    assert result.counts["judgements"] == sum(len(judged) for judged in qrels.values())
    assert result.recipe["name"] == "simlm" and result.recipe["document_max_length"] == 144
    assert {"python", "torch", "transformers", "haystack-ai", "qdrant-client", "simlm-haystack"} <= set(result.versions)
    assert calc_metrics(qrels, result.run) == result.metrics


def _assert_same_ranking(
    run: dict, exact_scores: np.ndarray, document_ids: list[str], query_ids: list[str], *, identical_top10: float = 0.0
) -> None:
    """Qdrant's scores are the exact ones, and its top-k is the exact top-k up to float noise.

    Random tiny models put all cosines within ~1e-4 of each other, so neighbours can swap on rounding
    alone; ``identical_top10`` asks, for real models, that this share of top-10 lists match exactly.
    """
    # float32 rounding of a dot product: absolute for unit vectors, relative for TAS-B's raw dot products
    tolerance = 2e-6 + 3e-7 * float(np.abs(exact_scores).max())
    position = {document_id: i for i, document_id in enumerate(document_ids)}
    identical = 0
    for row, query_id in enumerate(query_ids):
        ranking = list(run[query_id].items())
        returned = [position[document_id] for document_id, _ in ranking]
        exact = exact_scores[row, returned]
        np.testing.assert_allclose([score for _, score in ranking], exact, atol=tolerance, rtol=0)
        assert np.all(np.diff(exact) <= 2 * tolerance), "Qdrant's order disagrees with the exact scores"
        others = np.delete(exact_scores[row], returned)
        assert others.size == 0 or exact.min() >= others.max() - 2 * tolerance, "a better document was left out"
        identical += list(np.argsort(-exact_scores[row], kind="stable")[:10]) == returned[:10]
    assert identical >= identical_top10 * len(query_ids)


def _assert_ranks_as_exact_search(result: EvaluationResult, encoder: DualEncoder, collection: BeirCollection) -> None:
    documents = collection.documents
    vectors = encoder.encode("document", [d.content for d in documents], [d.meta.get("title") for d in documents])
    queries = collection.judged_queries(result.split)
    query_vectors = encoder.encode("query", list(queries.values()))
    # cosine recipes store unit vectors, so one dot product covers both similarities
    _assert_same_ranking(result.run, query_vectors @ vectors.T, [d.id for d in documents], list(queries))


def test_qdrant_ranks_as_exact_numpy_search_cosine(sample_run) -> None:
    result, text_embedder, _, collection = sample_run
    _assert_ranks_as_exact_search(result, text_embedder.encoder, collection)


def test_qdrant_ranks_as_exact_numpy_search_dot_product(tiny_distilbert: str, sample_dir: Path) -> None:
    document_embedder, text_embedder = embedders(tiny_distilbert, "tas-b")
    collection = load_beir(sample_dir)
    store = qdrant_document_store(document_embedder, index="exact")
    result = evaluate(document_embedder, text_embedder, store, collection, top_k=20, progress_bar=False)
    assert store.similarity == "dot_product"
    _assert_ranks_as_exact_search(result, text_embedder.encoder, collection)


def test_evaluation_on_qdrant_edge_ranks_as_on_qdrant(sample_run, tmp_path: Path) -> None:
    from simlm_haystack.stores import edge_document_store

    result, text_embedder, _, collection = sample_run
    document_embedder = DualEncoderDocumentEmbedder.from_encoder(text_embedder.encoder, progress_bar=False)
    store = edge_document_store(document_embedder, path=str(tmp_path / "edge"), index="sample")
    try:
        on_edge = evaluate(document_embedder, text_embedder, store, collection, top_k=100, progress_bar=False)
    finally:
        store.close()
    assert on_edge.store["engine"] == "EdgeDocumentStore" and result.store["engine"] == "QdrantDocumentStore"
    assert on_edge.metrics == pytest.approx(result.metrics, abs=1e-9)
    for query_id, scores in result.run.items():  # the same scores (order may differ only within fp32 ties)
        edge_scores = on_edge.run[query_id]
        shared = sorted(set(edge_scores) & set(scores))
        assert len(shared) >= len(scores) - 2  # a tie at rank 100 may swap the last document
        np.testing.assert_allclose([edge_scores[d] for d in shared], [scores[d] for d in shared], rtol=1e-5)
    _assert_ranks_as_exact_search(on_edge, text_embedder.encoder, collection)


def test_batched_retrieval_equals_the_query_pipeline_one_query_at_a_time(sample_run) -> None:
    result, text_embedder, store, collection = sample_run
    queries = dict(list(collection.judged_queries("test").items())[:5])
    batched = retrieve(text_embedder, store, queries, top_k=10, progress_bar=False)
    # What a user's query pipeline returns (a component belongs to one pipeline: a second shell, same encoder).
    pipeline = build_query_pipeline(DualEncoderTextEmbedder.from_encoder(text_embedder.encoder), store, top_k=10)
    one_by_one = {
        query_id: {
            document.id: document.score
            for document in pipeline.run({"retriever": {"query": text}})["retriever"]["documents"]
        }
        for query_id, text in queries.items()
    }
    for query_id in queries:
        assert list(batched[query_id]) == list(one_by_one[query_id]) == list(result.run[query_id])[:10]
        np.testing.assert_allclose(list(batched[query_id].values()), list(one_by_one[query_id].values()), atol=1e-5)


class RecordingRetriever:
    """Stands in for the store's retriever component: records each call, returns one document."""

    def __init__(self) -> None:
        self.calls: list[dict] = []

    def run(self, **inputs: object) -> dict:
        self.calls.append(inputs)
        return {"documents": [Document(id=f"hit-{len(self.calls)}", content="x", score=0.5)]}


def test_search_sends_every_query_vector_through_the_store_retriever(monkeypatch) -> None:
    retriever = RecordingRetriever()
    built: list[tuple] = []

    class Support:  # what store_support answers for this store: its retriever for dense search
        def __init__(self, document_store: object) -> None:
            self.document_store = document_store

        def retriever(self, retrieval: str, *, top_k: int, search: object = None) -> RecordingRetriever:
            assert retrieval == "dense"
            built.append((self.document_store, top_k))
            return retriever

    monkeypatch.setattr("simlm_haystack.evaluation.retrieval.store_support", Support)
    store = object()
    run = search(store, {"a": np.array([1.0, 0.0]), "b": [0.0, 1.0]}, top_k=3, progress_bar=False)
    assert built == [(store, 3)]  # one retriever for all queries
    assert retriever.calls == [{"query_embedding": [1.0, 0.0], "top_k": 3}, {"query_embedding": [0.0, 1.0], "top_k": 3}]
    assert run == {"a": {"hit-1": 0.5}, "b": {"hit-2": 0.5}}


def test_queries_are_encoded_in_eval_mode_and_the_training_mode_comes_back(sample_run) -> None:
    _, text_embedder, _, collection = sample_run
    texts = list(collection.judged_queries("test").values())[:4]
    model = text_embedder.encoder.loaded.model
    expected = text_embedder.encoder.encode("query", texts)
    model.train()  # as a trainer hands it over: dropout on
    try:
        vectors = encode_queries(text_embedder, texts, progress_bar=False)
        assert model.training
    finally:
        model.eval()
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    np.testing.assert_allclose(text_embedder.run(texts[0])["embedding"], vectors[0], atol=1e-5)  # the component's


def test_missing_judged_documents_are_reported_in_the_result(tiny_bert: str, tmp_path: Path) -> None:
    collection = load_beir(write_test_collection(tmp_path, qrels=[*QRELS, "q1\tgone\t1"]))
    document_embedder, text_embedder = embedders(tiny_bert, "simlm")
    store = qdrant_document_store(document_embedder)
    result = evaluate(document_embedder, text_embedder, store, collection, progress_bar=False)
    assert result.counts["judgements_of_missing_documents"] == 1
    assert result.metrics["R@1000"] == pytest.approx(0.75)  # q1 finds d1 but never "gone"; q2 finds d3


# --- reuse ------------------------------------------------------------------------------------------------------


def test_rerun_reuses_the_index_and_reindex_or_any_change_encodes_again(tiny_bert: str, tmp_path: Path) -> None:
    root = write_test_collection(tmp_path / "beir")
    document_embedder, text_embedder = embedders(tiny_bert, "simlm")
    store = qdrant_document_store(document_embedder, path=str(tmp_path / "q"), index="reuse")

    def run(collection: object = root, **kwargs: object) -> EvaluationResult:
        return evaluate(document_embedder, text_embedder, store, collection, progress_bar=False, **kwargs)

    first = run()
    assert (first.reused_index, first.counts["documents_written"]) == (False, 4)
    second = run()
    assert (second.reused_index, second.counts["documents_written"]) == (True, 0)
    assert second.metrics == first.metrics and second.fingerprint == first.fingerprint
    forced = run(reindex=True)
    assert (forced.reused_index, forced.counts["documents_written"]) == (False, 4)
    assert forced.fingerprint == first.fingerprint

    # Another corpus: re-encoded, and nothing of the old one is left behind.
    smaller = write_test_collection(tmp_path / "smaller", corpus=CORPUS[:3], qrels=QRELS[:3])
    changed = run(smaller)
    assert not changed.reused_index and store.count_documents() == 3
    assert {d.meta[FINGERPRINT_FIELD] for d in store.filter_documents()} == {changed.fingerprint}

    # New weights under the same name (a trainer updating its model in place): re-encoded.
    parameter = next(document_embedder.encoder.loaded.model.parameters())
    saved = parameter.detach().clone()
    try:
        with torch.no_grad():
            parameter.add_(0.01)
        assert not run(smaller).reused_index
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
    assert not run(smaller).reused_index and run(smaller).reused_index


def test_index_fingerprint_changes_with_the_weights_and_the_corpus_not_otherwise(
    tiny_bert: str, tmp_path: Path
) -> None:
    documents = load_beir(write_test_collection(tmp_path)).documents
    document_embedder, _ = embedders(tiny_bert, "simlm")
    first = index_fingerprint(document_embedder, documents)
    assert len(first) == 32
    # Nothing changed: the same fingerprint, from equal documents and from another embedder of the same model.
    assert index_fingerprint(document_embedder, documents) == first
    assert index_fingerprint(embedders(tiny_bert, "simlm")[0], [replace(d) for d in documents]) == first

    # The corpus: a document fewer, another text, another meta, another order.
    assert index_fingerprint(document_embedder, documents[:3]) != first
    edited = replace(documents[0], content=documents[0].content + " Daily.")
    assert index_fingerprint(document_embedder, [edited, *documents[1:]]) != first
    retitled = replace(documents[0], meta={"title": "ASA"})
    assert index_fingerprint(document_embedder, [retitled, *documents[1:]]) != first
    assert index_fingerprint(document_embedder, documents[::-1]) != first
    # How the embedder reads a document.
    no_titles = DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", title_field=None, progress_bar=False)
    assert index_fingerprint(no_titles, documents) != first

    # The weights, changed in place under the same name; the same again once restored.
    parameter = next(document_embedder.encoder.loaded.model.parameters())
    saved = parameter.detach().clone()
    try:
        with torch.no_grad():
            parameter.add_(0.01)
        assert index_fingerprint(document_embedder, documents) != first
    finally:
        with torch.no_grad():
            parameter.copy_(saved)
    assert index_fingerprint(document_embedder, documents) == first


def test_interrupted_indexing_is_completed_not_reused(tiny_bert: str, tmp_path: Path) -> None:
    collection = load_beir(write_test_collection(tmp_path))
    document_embedder, text_embedder = embedders(tiny_bert, "simlm")
    store = qdrant_document_store(document_embedder)
    first = evaluate(document_embedder, text_embedder, store, collection, progress_bar=False)
    store.delete_documents(["d4"])  # as if the run had stopped before the last document
    again = evaluate(document_embedder, text_embedder, store, collection, progress_bar=False)
    assert not again.reused_index and store.count_documents() == 4 and again.metrics == first.metrics


# --- the real model -----------------------------------------------------------------------------------------------


@pytest.mark.integration
def test_minilm_on_the_sample_through_qdrant_equals_exact_search(minilm_path: str, sample_dir: Path) -> None:
    document_embedder, text_embedder = embedders("sentence-transformers/all-MiniLM-L6-v2")
    document_embedder.batch_size = 64
    store = qdrant_document_store(document_embedder, index="minilm")
    collection = load_beir(sample_dir)
    result = evaluate(document_embedder, text_embedder, store, collection, top_k=100, progress_bar=False)
    assert result.recipe["name"] == "minilm"
    assert result.metrics["nDCG@10"] > 0.85  # 300 documents: every judged one, plus 200 distractors
    # What Qdrant holds is what the encoder gives, and Qdrant ranks as exact search over it.
    stored = {document.id: document.embedding for document in store.filter_documents()}
    document_ids = [document.id for document in collection.documents]
    vectors = np.array([stored[document_id] for document_id in document_ids], dtype=np.float32)
    few = collection.documents[:8]
    encoded = document_embedder.encoder.encode("document", [d.content for d in few], [d.meta["title"] for d in few])
    np.testing.assert_allclose(vectors[:8], encoded, atol=1e-5)
    queries = collection.judged_queries("test")
    query_vectors = text_embedder.encoder.encode("query", list(queries.values()))
    _assert_same_ranking(result.run, query_vectors @ vectors.T, document_ids, list(queries), identical_top10=0.95)


# --- command line -------------------------------------------------------------------------------------------------


def test_cli_eval_prints_a_table_and_writes_the_json(tiny_bert: str, tmp_path: Path, capsys) -> None:
    root = write_test_collection(tmp_path / "beir")
    out = tmp_path / "results.json"
    argv = [
        "eval",
        "--model",
        tiny_bert,
        "--recipe",
        "simlm",
        "--data",
        str(root),
        "--qdrant-path",
        str(tmp_path / "q"),
    ]
    assert main([*argv, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"nDCG@10\s+RR@10\s+R@100\s+R@1000", printed) and "2 queries, 4 documents" in printed
    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results["metrics"]) == {"nDCG@10", "RR@10", "R@100", "R@1000"}
    assert results["recipe"]["name"] == "simlm" and results["recipe"]["pooling"] == "cls"
    assert results["collection"] == str(root) and results["split"] == "test" and results["top_k"] == 1000
    assert results["counts"]["queries"] == 2 and results["reused_index"] is False
    assert {"python", "torch", "transformers", "haystack-ai", "qdrant-client", "simlm-haystack"} <= set(
        results["versions"]
    )
    assert results["store"]["index"] == f"eval-beir-{Path(tiny_bert).name}-simlm"
    assert main([*argv, "--quiet"]) == 0 and "reused" in capsys.readouterr().out


def test_cli_eval_missing_file_is_one_line_and_exit_2(tiny_bert: str, tmp_path: Path, capsys) -> None:
    root = write_test_collection(tmp_path / "beir")
    (root / "qrels" / "test.tsv").unlink()
    code = main(
        ["eval", "--model", tiny_bert, "--recipe", "simlm", "--data", str(root), "--qdrant-path", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "qrels/test.tsv: no such file" in err


def test_cli_eval_unwritable_out_fails_before_encoding(tiny_bert: str, tmp_path: Path, capsys) -> None:
    root = write_test_collection(tmp_path / "beir")
    out = tmp_path / "missing-folder" / "results.json"
    arguments = ["--model", tiny_bert, "--recipe", "simlm", "--data", str(root), "--qdrant-path", str(tmp_path)]
    code = main(["eval", *arguments, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "cannot write the results there" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beir"]  # no store was opened, nothing indexed
