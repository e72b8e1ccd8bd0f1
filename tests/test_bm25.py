"""BM25 sparse vectors: Qdrant Edge's Bm25 against fastembed's ``Qdrant/bm25``, the Haystack components, LangChain.

fastembed is the reference: its own ``Bm25`` class runs offline from a local model folder holding the one
file it reads, ``english.txt``. That file (``tests/data/fastembed_bm25_english.txt``) is NLTK's English
stopword list, 179 words, as Qdrant has it in
``lib/segment/src/index/field_index/full_text_index/stop_words/english.rs``; the Hugging Face repository
``Qdrant/bm25`` could not be read offline to compare. :func:`test_edge_english_stopwords_are_the_reference_list`
checks that Edge's own English list is that list, so both sides filter the same words.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.dataclasses import SparseEmbedding

import simlm_haystack  # noqa: F401  # puts simlm_haystack on Haystack's deserialisation allowlist
from simlm_haystack.components.bm25_document_embedder import BM25SparseDocumentEmbedder
from simlm_haystack.components.bm25_text_embedder import BM25SparseTextEmbedder
from simlm_haystack.errors import EmptyQueryError, SettingsError
from simlm_haystack.sparse import BM25Encoder, BM25Settings, SparseVector, document_text

STOPWORDS_FILE = Path(__file__).resolve().parent / "data" / "fastembed_bm25_english.txt"

#: Texts that exercise each step of the scheme; each comment says what.
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",  # stopwords, final punctuation
    "Fox, fox; FOX! foxes... fox?",  # one term repeated, in several cases and forms
    "running runner runs ran easily fairly generously",  # stemming
    "Aspirin (acetylsalicylic acid) reduces the risk of myocardial infarction by 25%.",
    "Café naïve résumé Über STRASSE straße İstanbul ǅemal ﬁne",  # accents, case folding, ligatures
    "北京是中国的首都 Москва — столица России; Σίσυφος ΣΊΣΥΦΟΣ",  # other scripts
    "snake_case __init__ _ a_b e-mail covid-19 3.14 1,000,000 HTML5",  # underscores, hyphens, numbers
    "don't won't I'm you'd they've",  # contractions: their pieces are stopwords
    "x" * 41 + " " + "y" * 40 + " " + "a" * 39 + "ing",  # the 40-character limit, before stemming
    "emoji 😀 ™ © ½ ² test",
    "tab\tseparated\nnew line\r\nwindows",
    "the and of to in",  # stopwords only
    "",
    "   \t\n ",
]


@pytest.fixture(scope="module")
def fastembed_bm25(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``make(**kwargs)``: fastembed's own ``Bm25("Qdrant/bm25", **kwargs)``, offline."""
    bm25 = pytest.importorskip(
        "fastembed.sparse.bm25",
        reason="fastembed (the reference BM25) is not installed: pip install --no-deps fastembed==0.9.1 "
        "mmh3 py_rust_stemmers loguru",
    )
    model_dir = tmp_path_factory.mktemp("qdrant-bm25")
    (model_dir / "english.txt").write_text(STOPWORDS_FILE.read_text(encoding="utf-8"), encoding="utf-8")

    def make(**kwargs: Any) -> Any:
        # specific_model_path: fastembed reads the folder as it is, with no hub lookup.
        return bm25.Bm25("Qdrant/bm25", specific_model_path=str(model_dir), **kwargs)

    return make


@pytest.fixture(scope="module")
def sample_texts(sample_dir: Path) -> tuple[list[str], list[str | None], list[str]]:
    """40 SciFact passages (texts, titles) and 40 queries: real scientific text."""
    corpus = [json.loads(line) for line in (sample_dir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [json.loads(line) for line in (sample_dir / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    return (
        [record["text"] for record in corpus[:40]],
        [record.get("title") for record in corpus[:40]],
        [record["text"] for record in queries[:40]],
    )


def assert_equals_fastembed_document(ours: SparseVector, theirs: Any) -> None:
    expected = dict(zip(theirs.indices.tolist(), theirs.values.tolist(), strict=True))
    got = dict(zip(ours.indices, ours.values, strict=True))
    assert len(got) == len(ours.indices)  # no index twice
    assert got.keys() == expected.keys()
    for index, value in expected.items():
        # Edge computes in float32, fastembed in float64 (Qdrant stores float32).
        assert math.isclose(got[index], value, rel_tol=1e-6), (index, got[index], value)


def assert_equals_fastembed_query(ours: SparseVector, theirs: Any) -> None:
    assert len(set(ours.indices)) == len(ours.indices)
    assert set(ours.indices) == set(theirs.indices.tolist())
    assert all(value == 1.0 for value in ours.values)
    assert all(value == 1 for value in theirs.values.tolist())


# ---------------------------------------------------------------------------------------------------------------
# (a) The scheme: fastembed's Qdrant/bm25, computed by Edge


def test_default_settings_are_fastembeds_and_edges(fastembed_bm25: Any) -> None:
    import qdrant_edge

    reference = fastembed_bm25()
    edge = qdrant_edge.Bm25Config()
    settings = BM25Settings()
    assert (settings.k, settings.b, settings.avg_len) == (reference.k, reference.b, reference.avg_len)
    assert (settings.k, settings.b, settings.avg_len) == (edge.k, edge.b, edge.avg_len)
    assert settings.language == reference.language
    assert settings.max_token_len == reference.token_max_length


def test_documents_and_queries_equal_fastembed_on_fixed_texts(fastembed_bm25: Any) -> None:
    reference = fastembed_bm25()
    encoder = BM25Encoder()
    documents = encoder.encode_documents(TEXTS)
    for ours, theirs in zip(documents, reference.embed(TEXTS), strict=True):
        assert_equals_fastembed_document(ours, theirs)
    queries = [text for text in TEXTS if text.strip()]
    for ours, theirs in zip(encoder.encode_queries(queries), reference.query_embed(queries), strict=True):
        assert_equals_fastembed_query(ours, theirs)
    # The texts reach every branch: stopwords alone (contractions' pieces too) and empty texts give empty
    # vectors, the others do not.
    empty = {"the and of to in", "don't won't I'm you'd they've", "", "   \t\n "}
    assert [len(vector.indices) == 0 for vector in documents] == [text in empty for text in TEXTS]
    assert len(set(documents[1].indices)) == 1  # "fox" five times, one term
    assert documents[1].values[0] > documents[0].values[0]  # and it weighs more than a term met once


def test_documents_and_queries_equal_fastembed_on_scifact(
    fastembed_bm25: Any, sample_texts: tuple[list[str], list[str | None], list[str]]
) -> None:
    texts, titles, queries = sample_texts
    reference = fastembed_bm25()
    encoder = BM25Encoder()
    joined = [document_text(text, title) for text, title in zip(texts, titles, strict=True)]
    for ours, theirs in zip(encoder.encode_documents(texts, titles), reference.embed(joined), strict=True):
        assert_equals_fastembed_document(ours, theirs)
    for ours, theirs in zip(encoder.encode_queries(queries), reference.query_embed(queries), strict=True):
        assert_equals_fastembed_query(ours, theirs)


@pytest.mark.parametrize(
    ("settings", "fastembed_kwargs"),
    [
        (BM25Settings(k=0.9, b=0.4, avg_len=12.5), {"k": 0.9, "b": 0.4, "avg_len": 12.5}),
        (BM25Settings(k=0.0, b=0.0), {"k": 0.0, "b": 0.0}),
        (BM25Settings(max_token_len=5), {"token_max_length": 5}),
        (BM25Settings(stopwords=False), {"stopwords": set()}),
        (BM25Settings(stopwords=["Fox", "QUICK", "runs"]), {"stopwords": {"Fox", "QUICK", "runs"}}),
        ("no stemmer", "english stopwords"),
        (BM25Settings(language="french", stopwords=False), {"language": "french", "stopwords": set()}),
        (BM25Settings(stemmer="german", stopwords=False), "german stemmer"),
    ],
    ids=["k-b-avg_len", "k0-b0", "max_token_len", "no-stopwords", "own-stopwords", "no-stemmer", "french", "german"],
)
def test_other_settings_equal_fastembed(fastembed_bm25: Any, settings: Any, fastembed_kwargs: Any) -> None:
    if settings == "no stemmer":
        words = set(STOPWORDS_FILE.read_text(encoding="utf-8").split())
        settings, fastembed_kwargs = BM25Settings(stemmer=False), {"disable_stemmer": True, "stopwords": words}
    if fastembed_kwargs == "german stemmer":
        from py_rust_stemmers import SnowballStemmer

        fastembed_kwargs = {"stemmer": SnowballStemmer("german"), "stopwords": set()}
    texts = [*TEXTS, "Die Kinder spielten fröhlich in den Gärten", "Les enfants jouaient dans les jardins"]
    reference = fastembed_bm25(**fastembed_kwargs)
    encoder = BM25Encoder(settings)
    for ours, theirs in zip(encoder.encode_documents(texts), reference.embed(texts), strict=True):
        assert_equals_fastembed_document(ours, theirs)
    queries = [text for text in texts if text.strip()]
    for ours, theirs in zip(encoder.encode_queries(queries), reference.query_embed(queries), strict=True):
        assert_equals_fastembed_query(ours, theirs)


def test_edge_english_stopwords_are_the_reference_list() -> None:
    encoder = BM25Encoder()
    words = STOPWORDS_FILE.read_text(encoding="utf-8").split()
    assert len(words) == len(set(words)) == 179
    kept = [word for word in words if encoder.encode_query(word).indices]
    assert kept == []
    # Words that other English lists stop but NLTK's does not: Edge keeps them.
    assert all(encoder.encode_query(word).indices for word in ("would", "could", "also", "shall", "among"))


def test_weights_follow_the_bm25_formula_without_fastembed() -> None:
    """Independent of fastembed: term frequencies and length counted by hand."""
    settings = BM25Settings(k=1.5, b=0.6, avg_len=10.0)
    encoder = BM25Encoder(settings)
    # Tokens after stopwords: fox x3, jumps, lazy -> length 5 (the, over, the are stopwords).
    [document] = encoder.encode_documents(["The fox jumps over the lazy fox, FOX!"])
    fox = encoder.encode_query("fox").indices[0]
    jumps = encoder.encode_query("jumps").indices[0]
    norm = settings.k * (1 - settings.b + settings.b * 5 / settings.avg_len)
    weights = dict(zip(document.indices, document.values, strict=True))
    assert len(weights) == 3
    assert math.isclose(weights[fox], 3 * (settings.k + 1) / (3 + norm), rel_tol=1e-6)
    assert math.isclose(weights[jumps], 1 * (settings.k + 1) / (1 + norm), rel_tol=1e-6)
    assert list(document.indices) == sorted(document.indices)
    # A query's vector does not depend on k, b or avg_len.
    assert BM25Encoder().encode_query("The fox jumps") == encoder.encode_query("The fox jumps")


def test_a_title_is_read_before_the_text() -> None:
    encoder = BM25Encoder()
    with_titles = encoder.encode_documents(["reduces heart attacks", "no title", "empty title"], ["Aspirin", None, ""])
    joined = encoder.encode_documents(["Aspirin reduces heart attacks", "no title", "empty title"])
    assert with_titles == joined
    with pytest.raises(ValueError, match="2 titles for 3 texts"):
        encoder.encode_documents(["a", "b", "c"], ["x", "y"])


def test_queries_that_mean_nothing_are_refused_and_stopwords_give_an_empty_vector() -> None:
    encoder = BM25Encoder()
    for query in ("", "  \n"):
        with pytest.raises(EmptyQueryError):
            encoder.encode_query(query)
    assert encoder.encode_query("what is the") == SparseVector(indices=(), values=())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": -0.1}, "k must be >= 0"),
        ({"b": 1.5}, "b must be between 0 and 1"),
        ({"avg_len": 0}, "avg_len must be > 0"),
        ({"avg_len": float("nan")}, "finite"),
        ({"k": "1.2"}, "finite number"),
        ({"language": "klingon"}, "klingon"),
        ({"stemmer": "klingon"}, "SnowballLanguage"),
        ({"stopwords": "klingon"}, "no Language"),
        ({"stopwords": ["ok", 3]}, "3 is not a string"),
        ({"max_token_len": 0}, "max_token_len"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        BM25Settings(**kwargs)


def test_settings_round_trip_through_json() -> None:
    settings = BM25Settings(k=1.0, stemmer="french", stopwords={"Le", "la", "le"}, max_token_len=None)
    assert settings.stopwords == ("la", "le")
    data = json.loads(json.dumps(settings.to_dict()))
    assert BM25Settings.from_dict(data) == settings
    assert BM25Settings.from_dict({}) == BM25Settings()
    with pytest.raises(SettingsError, match="Unknown BM25 settings"):
        BM25Settings.from_dict({"k1": 1.2})


# ---------------------------------------------------------------------------------------------------------------
# (b) Haystack components


@pytest.fixture
def documents() -> list[Document]:
    return [
        Document(content="Aspirin reduces the risk of heart attack.", meta={"title": "Aspirin", "year": 2020}),
        Document(content=None, meta={"title": "Only a title"}),
        Document(content="No title here, running and runs."),
        Document(content="", meta={}),
    ]


def test_document_embedder_sets_the_encoders_vectors_and_leaves_input_untouched(documents: list[Document]) -> None:
    before = copy.deepcopy(documents)
    out = BM25SparseDocumentEmbedder().run(documents)["documents"]
    assert documents == before
    assert all(document.sparse_embedding is None for document in documents)
    assert [d.id for d in out] == [d.id for d in documents]
    assert [(d.content, d.meta) for d in out] == [(d.content, d.meta) for d in documents]
    expected = BM25Encoder().encode_documents(
        [
            "Aspirin Aspirin reduces the risk of heart attack.",  # title + " " + content
            "Only a title",
            "No title here, running and runs.",
            "",
        ]
    )
    for document, vector in zip(out, expected, strict=True):
        assert isinstance(document.sparse_embedding, SparseEmbedding)
        assert document.sparse_embedding.indices == list(vector.indices)
        assert document.sparse_embedding.values == list(vector.values)
    assert out[3].sparse_embedding.indices == []


def test_document_embedder_reads_meta_fields_and_no_title_when_told(documents: list[Document]) -> None:
    embedder = BM25SparseDocumentEmbedder(title_field=None, meta_fields_to_embed=["year", "missing"])
    out = embedder.run(documents[:1])["documents"]
    [expected] = BM25Encoder().encode_documents(["2020\nAspirin reduces the risk of heart attack."])
    assert out[0].sparse_embedding.indices == list(expected.indices)
    assert out[0].sparse_embedding.values == list(expected.values)


def test_document_embedder_settings_change_the_vectors(documents: list[Document]) -> None:
    settings = BM25Settings(k=0.5, b=0.2, stemmer=False, stopwords=["risk"])
    embedder = BM25SparseDocumentEmbedder(k=0.5, b=0.2, stemmer=False, stopwords=["risk"])
    assert embedder.settings == settings
    [out] = embedder.run(documents[:1])["documents"]
    [expected] = BM25Encoder(settings).encode_documents([documents[0].content], [documents[0].meta["title"]])
    assert out.sparse_embedding.values == list(expected.values)
    assert (
        out.sparse_embedding.values
        != BM25SparseDocumentEmbedder().run(documents[:1])["documents"][0].sparse_embedding.values
    )


def test_text_embedder_outputs_the_encoders_query_vector() -> None:
    embedder = BM25SparseTextEmbedder()
    embedding = embedder.run("Does aspirin reduce heart attacks?")["sparse_embedding"]
    expected = BM25Encoder().encode_query("Does aspirin reduce heart attacks?")
    assert embedding == SparseEmbedding(indices=list(expected.indices), values=list(expected.values))
    assert len(embedding.indices) == 4 and embedding.values == [1.0] * 4  # does, ? dropped
    with pytest.raises(EmptyQueryError):
        embedder.run(" ")


def test_async_runs_give_the_same_vectors(documents: list[Document]) -> None:
    document_embedder = BM25SparseDocumentEmbedder()
    text_embedder = BM25SparseTextEmbedder()

    async def both() -> tuple[Any, Any]:
        return await asyncio.gather(document_embedder.run_async(documents), text_embedder.run_async("heart risk"))

    documents_result, text_result = asyncio.run(both())
    assert documents_result == document_embedder.run(documents)
    assert text_result == text_embedder.run("heart risk")


@pytest.mark.parametrize("component_class", [BM25SparseDocumentEmbedder, BM25SparseTextEmbedder])
def test_components_round_trip_through_dicts_and_yaml(component_class: type) -> None:
    extra = (
        {"title_field": None, "meta_fields_to_embed": ["year"]} if component_class is BM25SparseDocumentEmbedder else {}
    )
    component = component_class(k=0.9, b=0.5, avg_len=100.0, language="english", stopwords=["b", "a"], **extra)
    data = component.to_dict()
    assert json.loads(json.dumps(data)) == data  # plain data
    assert data["init_parameters"]["stopwords"] == ["a", "b"]
    assert set(data["init_parameters"]) >= set(BM25Settings().to_dict())
    assert component_class.from_dict(data).to_dict() == data
    copy_of_data = copy.deepcopy(data)
    short = {**data, "type": f"simlm_haystack.{component_class.__name__}"}
    assert component_class.from_dict(short).to_dict() == data
    assert data == copy_of_data
    pipeline = Pipeline()
    pipeline.add_component("embedder", component)
    loaded = Pipeline.loads(pipeline.dumps().replace(f"type: {data['type']}", f"type: {short['type']}"))
    assert loaded.get_component("embedder").to_dict() == data


def test_components_refuse_wrong_input_types_with_a_clear_message() -> None:
    with pytest.raises(TypeError, match=r"expects a list of Documents, got str.*BM25SparseTextEmbedder"):
        BM25SparseDocumentEmbedder().run("a string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is str"):
        BM25SparseDocumentEmbedder().run([Document(content="a"), "b"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"expects a string, got list.*BM25SparseDocumentEmbedder"):
        BM25SparseTextEmbedder().run([Document(content="a")])  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        BM25SparseTextEmbedder(b=2.0)


def test_components_fill_a_qdrant_haystack_sparse_pipeline_and_qdrant_scores_bm25() -> None:
    """Indexed with qdrant-haystack's sparse IDF layout, searched through its sparse retriever: each score is
    BM25 with Qdrant's IDF, ln(1 + (N - n + 0.5) / (n + 0.5)), summed here by hand."""
    from haystack.components.writers import DocumentWriter
    from haystack_integrations.components.retrievers.qdrant import QdrantSparseEmbeddingRetriever
    from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

    store = QdrantDocumentStore(location=":memory:", use_sparse_embeddings=True, sparse_idf=True, embedding_dim=4)
    corpus = [
        Document(id=str(number), content=text)
        for number, text in enumerate(
            [
                "Aspirin lowers the risk of heart attack.",
                "Heart disease and heart attack risk rise with age.",
                "Statins lower cholesterol.",
                "Aspirin can cause stomach bleeding.",
            ]
        )
    ]
    indexing = Pipeline()
    indexing.add_component("embedder", BM25SparseDocumentEmbedder())
    indexing.add_component("writer", DocumentWriter(store))
    indexing.connect("embedder.documents", "writer.documents")
    indexing.run({"embedder": {"documents": corpus}})

    query = Pipeline()
    query.add_component("embedder", BM25SparseTextEmbedder())
    query.add_component("retriever", QdrantSparseEmbeddingRetriever(document_store=store, top_k=4))
    query.connect("embedder.sparse_embedding", "retriever.query_sparse_embedding")
    found = query.run({"embedder": {"text": "aspirin heart attack"}})["retriever"]["documents"]

    encoder = BM25Encoder()
    vectors = [
        dict(zip(v.indices, v.values, strict=True)) for v in encoder.encode_documents([d.content for d in corpus])
    ]
    terms = encoder.encode_query("aspirin heart attack").indices
    frequency = {term: sum(term in vector for vector in vectors) for term in terms}
    idf = {term: math.log(1 + (len(corpus) - n + 0.5) / (n + 0.5)) for term, n in frequency.items()}
    expected = {str(i): sum(idf[t] * vector.get(t, 0.0) for t in terms) for i, vector in enumerate(vectors)}
    assert {d.id: d.score for d in found} == pytest.approx({i: s for i, s in expected.items() if s > 0}, rel=1e-5)
    assert [d.id for d in found] == sorted((i for i in expected if expected[i] > 0), key=lambda i: -expected[i])


# ---------------------------------------------------------------------------------------------------------------
# (c) LangChain


def test_langchain_sparse_embeddings_equal_the_components_vectors(documents: list[Document]) -> None:
    pytest.importorskip("langchain_qdrant")
    from langchain_qdrant import SparseEmbeddings
    from langchain_qdrant import SparseVector as LangChainSparseVector

    from simlm_haystack.langchain.sparse import BM25SparseEmbeddings

    sparse = BM25SparseEmbeddings(k=1.1, stopwords=["aspirin"])
    assert isinstance(sparse, SparseEmbeddings)
    embedder = BM25SparseDocumentEmbedder(k=1.1, stopwords=["aspirin"])
    texts = [document.content or "" for document in documents]
    titles = [document.meta.get("title") for document in documents]
    expected = [document.sparse_embedding for document in embedder.run(documents)["documents"]]
    got = sparse.embed_documents(texts, titles=titles)
    assert all(isinstance(vector, LangChainSparseVector) for vector in got)
    assert [(v.indices, v.values) for v in got] == [(e.indices, e.values) for e in expected]
    query = BM25SparseTextEmbedder(k=1.1, stopwords=["aspirin"]).run("aspirin for heart attack")["sparse_embedding"]
    assert sparse.embed_query("aspirin for heart attack") == LangChainSparseVector(
        indices=query.indices, values=query.values
    )
    assert asyncio.run(sparse.aembed_documents(texts, titles)) == got
    assert asyncio.run(sparse.aembed_query("heart")) == sparse.embed_query("heart")
    assert BM25SparseEmbeddings.from_settings(sparse.settings).settings == sparse.settings
    # Without titles, a text is read alone.
    assert sparse.embed_documents(["Aspirin reduces"]) == sparse.embed_documents(["reduces"], titles=["Aspirin"])


def test_langchain_sparse_embeddings_refuse_wrong_inputs() -> None:
    pytest.importorskip("langchain_qdrant")
    from simlm_haystack.langchain.sparse import BM25SparseEmbeddings

    sparse = BM25SparseEmbeddings()
    with pytest.raises(TypeError, match="texts must be a list of strings, not str"):
        sparse.embed_documents("one string")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 of titles is int"):
        sparse.embed_documents(["a", "b"], titles=["x", 2])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="1 titles for 2 texts"):
        sparse.embed_documents(["a", "b"], titles=["x"])
    with pytest.raises(TypeError, match="expects a string"):
        sparse.embed_query(["a"])  # type: ignore[arg-type]
    with pytest.raises(EmptyQueryError):
        sparse.embed_query("")
