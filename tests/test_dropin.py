"""A drop-in swap is one edit: a pipeline YAML written with sentence-transformers' embedders loads and runs
with only its ``type:`` line changed to ours, and gives the vectors the model was trained to produce."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.writers import DocumentWriter
from haystack.core.errors import DeserializationError
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.retrievers.qdrant import QdrantEmbeddingRetriever
from haystack_integrations.document_stores.qdrant import QdrantDocumentStore

from simlm_haystack import (
    DualEncoderDocumentEmbedder,
    DualEncoderTextEmbedder,
    RecipeError,
    build_indexing_pipeline,
    get_recipe,
)

ST_TEXT = SentenceTransformersTextEmbedder.__module__ + ".SentenceTransformersTextEmbedder"
ST_DOCUMENT = SentenceTransformersDocumentEmbedder.__module__ + ".SentenceTransformersDocumentEmbedder"
OURS_TEXT = [
    "simlm_haystack.components.text_embedder.DualEncoderTextEmbedder",
    "simlm_haystack.DualEncoderTextEmbedder",
]
OURS_DOCUMENT = [
    "simlm_haystack.components.document_embedder.DualEncoderDocumentEmbedder",
    "simlm_haystack.DualEncoderDocumentEmbedder",
]

DOCUMENTS = [
    Document(id="1", content="Vitamin D deficiency is associated with a higher risk of cancer.", meta={"topic": "D"}),
    Document(id="2", content="Aspirin lowers the risk of a second heart attack.", meta={"topic": "cardio"}),
    Document(id="3", content="Regular exercise improves insulin sensitivity.", meta={"topic": "metabolism"}),
    Document(id="4", content="The Eiffel Tower is in Paris.", meta={}),
]
QUERY = "does vitamin D protect against cancer?"


@pytest.fixture(scope="module")
def minilm_checkpoint(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> str:
    """all-MiniLM-L6-v2 as a local checkpoint that carries its recipe, as a trained checkpoint does:
    sentence-transformers loads it from this path, and our embedders find its recipe beside it."""
    directory = tmp_path_factory.mktemp("minilm-checkpoint")
    for entry in Path(minilm_path).iterdir():
        (directory / entry.name).symlink_to(entry)
    get_recipe("minilm").save(directory)
    return str(directory)


def swap_type(yaml: str, theirs: str, ours: str) -> str:
    """Change the one ``type:`` line, and check that nothing else changed."""
    swapped = yaml.replace(f"type: {theirs}\n", f"type: {ours}\n")
    changed = [(a, b) for a, b in zip(yaml.splitlines(), swapped.splitlines(), strict=True) if a != b]
    assert changed == [(f"    type: {theirs}", f"    type: {ours}")]
    return swapped


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def our_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("simlm_haystack") and r.levelno >= logging.WARNING]


@pytest.mark.integration
@pytest.mark.parametrize("ours", OURS_TEXT)
def test_query_pipeline_swap_is_one_edit(
    minilm_checkpoint: str, tmp_path: Path, ours: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = str(tmp_path / "qdrant")
    store = QdrantDocumentStore(path=path, embedding_dim=384, similarity="cosine", progress_bar=False)
    embedder = DualEncoderDocumentEmbedder(model=minilm_checkpoint, progress_bar=False)
    build_indexing_pipeline(embedder, store).run({"embedder": {"documents": DOCUMENTS}})
    store.close()

    theirs = Pipeline()
    theirs.add_component("text_embedder", SentenceTransformersTextEmbedder(model=minilm_checkpoint, progress_bar=False))
    theirs.add_component(
        "retriever",
        QdrantEmbeddingRetriever(
            document_store=QdrantDocumentStore(path=path, embedding_dim=384, similarity="cosine", progress_bar=False),
            top_k=3,
        ),
    )
    theirs.connect("text_embedder.embedding", "retriever.query_embedding")
    their_result = theirs.run({"text_embedder": {"text": QUERY}}, include_outputs_from={"text_embedder"})
    yaml = theirs.dumps()
    theirs.close()  # a local Qdrant folder is open to one client at a time

    swapped = Pipeline.loads(swap_type(yaml, ST_TEXT, ours))
    assert isinstance(swapped.get_component("text_embedder"), DualEncoderTextEmbedder)
    our_result = swapped.run({"text_embedder": {"text": QUERY}}, include_outputs_from={"text_embedder"})
    swapped.close()
    assert our_warnings(caplog) == []  # their defaults all agree with the recipe or mean nothing here

    our_vector = our_result["text_embedder"]["embedding"]
    assert our_vector == DualEncoderTextEmbedder(model=minilm_checkpoint).run(QUERY)["embedding"]
    # The swap is honest: their embedder's vector for this model is ours.
    assert cosine(their_result["text_embedder"]["embedding"], our_vector) >= 0.99999
    assert [d.id for d in our_result["retriever"]["documents"]] == [
        d.id for d in their_result["retriever"]["documents"]
    ]
    assert our_result["retriever"]["documents"][0].id == "1"


@pytest.mark.integration
@pytest.mark.parametrize("ours", OURS_DOCUMENT)
def test_indexing_pipeline_swap_is_one_edit(
    minilm_checkpoint: str, ours: str, caplog: pytest.LogCaptureFixture
) -> None:
    theirs = Pipeline()
    theirs.add_component(
        "embedder",
        SentenceTransformersDocumentEmbedder(
            model=minilm_checkpoint, progress_bar=False, batch_size=2, meta_fields_to_embed=["topic"]
        ),
    )
    theirs.add_component(
        "writer", DocumentWriter(QdrantDocumentStore(":memory:", embedding_dim=384, progress_bar=False))
    )
    theirs.connect("embedder.documents", "writer.documents")
    their_result = theirs.run({"embedder": {"documents": DOCUMENTS}}, include_outputs_from={"embedder"})

    swapped = Pipeline.loads(swap_type(theirs.dumps(), ST_DOCUMENT, ours))
    embedder = swapped.get_component("embedder")
    assert isinstance(embedder, DualEncoderDocumentEmbedder)
    assert (embedder.batch_size, embedder.progress_bar, embedder.meta_fields_to_embed) == (2, False, ["topic"])
    our_result = swapped.run({"embedder": {"documents": DOCUMENTS}}, include_outputs_from={"embedder"})
    assert our_result["writer"]["documents_written"] == len(DOCUMENTS)
    assert our_warnings(caplog) == []

    ours_direct = DualEncoderDocumentEmbedder(
        model=minilm_checkpoint, progress_bar=False, meta_fields_to_embed=["topic"]
    )
    expected = ours_direct.run(DOCUMENTS)["documents"]
    for mine, direct, their in zip(
        our_result["embedder"]["documents"], expected, their_result["embedder"]["documents"], strict=True
    ):
        np.testing.assert_allclose(mine.embedding, direct.embedding, rtol=0, atol=1e-6)  # batches of 2 vs 32
        assert cosine(their.embedding, mine.embedding) >= 0.99999


@pytest.mark.integration
def test_a_prefix_the_model_was_not_trained_with_is_refused_when_the_yaml_loads(minilm_checkpoint: str) -> None:
    theirs = Pipeline()
    theirs.add_component("text_embedder", SentenceTransformersTextEmbedder(model=minilm_checkpoint, prefix="query: "))
    swapped = swap_type(theirs.dumps(), ST_TEXT, OURS_TEXT[1])
    with pytest.raises(DeserializationError, match=r"prefix='query: ', but recipe 'minilm' puts '' before a query"):
        Pipeline.loads(swapped)


@pytest.mark.integration
def test_settings_that_do_not_apply_are_ignored_with_one_warning_when_the_yaml_loads(
    minilm_checkpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    theirs = Pipeline()
    theirs.add_component(
        "embedder",
        SentenceTransformersDocumentEmbedder(
            model=minilm_checkpoint,
            encode_kwargs={"convert_to_numpy": True},
            config_kwargs={"output_hidden_states": False},
        ),
    )
    swapped = Pipeline.loads(swap_type(theirs.dumps(), ST_DOCUMENT, OURS_DOCUMENT[1]))
    assert isinstance(swapped.get_component("embedder"), DualEncoderDocumentEmbedder)
    warnings = our_warnings(caplog)
    assert len(warnings) == 1
    assert (
        warnings[0].getMessage()
        == "DualEncoderDocumentEmbedder ignores config_kwargs, encode_kwargs: they do not apply to it"
    )


@pytest.mark.parametrize("embedder", [DualEncoderTextEmbedder, DualEncoderDocumentEmbedder])
def test_sentence_transformers_settings_that_agree_with_the_recipe_are_accepted(
    tiny_bert: str, embedder: type, caplog: pytest.LogCaptureFixture
) -> None:
    side = embedder.side
    e5 = get_recipe("e5")
    component = embedder(
        model=tiny_bert,
        recipe="e5",
        prefix=e5.prefix(side),
        suffix="",
        normalize_embeddings=True,
        truncate_dim=None,
        precision="float32",
        backend="torch",
        tokenizer_kwargs={"model_max_length": e5.max_length(side)},
        batch_size=8,
        progress_bar=False,
        config_kwargs=None,
        encode_kwargs={},
        quantization_ranges=None,
    )
    assert component.precision == "exact"  # their float32 is our exact
    assert component.to_dict()["init_parameters"]["precision"] == "exact"
    assert component.backend == "torch"
    assert our_warnings(caplog) == []
    # Their default normalize_embeddings=False adds no normalisation, so it agrees with a normalising recipe too.
    assert embedder(model=tiny_bert, recipe="simlm", normalize_embeddings=False, prefix="").recipe.normalize


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"prefix": "query: "}, r"prefix='query: ', but recipe 'simlm' puts '' before a (query|document)"),
        ({"suffix": " end"}, r"suffix=' end', but recipe 'simlm' adds no suffix"),
        ({"recipe": "tas-b", "normalize_embeddings": True}, r"normalize_embeddings=True, but recipe 'tas-b' keeps"),
        ({"truncate_dim": 16}, r"truncate_dim=16 cuts the vectors"),
        ({"precision": "int8"}, r"precision='int8' quantises the vectors"),
        ({"precision": "binary"}, r"precision='binary' quantises the vectors"),
        ({"tokenizer_kwargs": {"model_max_length": 512}}, r"tokenizer_kwargs\['model_max_length'\]=512, but recipe"),
    ],
)
@pytest.mark.parametrize("embedder", [DualEncoderTextEmbedder, DualEncoderDocumentEmbedder])
def test_each_setting_that_would_change_the_vectors_is_refused(
    tiny_bert: str, embedder: type, setting: dict, message: str
) -> None:
    settings = {"recipe": "simlm", **setting}
    with pytest.raises(RecipeError, match=message):
        embedder(model=tiny_bert, **settings)


def test_all_refused_settings_are_named_in_one_error(tiny_bert: str) -> None:
    with pytest.raises(RecipeError) as error:
        DualEncoderTextEmbedder(
            model=tiny_bert,
            recipe="tas-b",
            prefix="q: ",
            normalize_embeddings=True,
            precision="ubinary",
            truncate_dim=8,
        )
    message = str(error.value)
    assert message.startswith("DualEncoderTextEmbedder would not produce the vectors the model was trained to produce")
    for name in ("prefix='q: '", "normalize_embeddings=True", "precision='ubinary'", "truncate_dim=8"):
        assert message.count(name) == 1, name


def test_unknown_precision_and_backend_are_errors(tiny_bert: str) -> None:
    with pytest.raises(ValueError, match=r"precision must be one of \('exact', 'fast', 'bf16'\).*not 'float16'"):
        DualEncoderTextEmbedder(model=tiny_bert, recipe="simlm", precision="float16")
    # sentence-transformers' backends are ours too (tests/test_onnx.py); an unknown one is named.
    with pytest.raises(ValueError, match=r"backend must be one of \('torch', 'onnx', 'openvino'\), not 'tensorrt'"):
        DualEncoderDocumentEmbedder(model=tiny_bert, recipe="simlm", backend="tensorrt")  # type: ignore[arg-type]


@pytest.mark.parametrize("embedder", [DualEncoderTextEmbedder, DualEncoderDocumentEmbedder])
def test_settings_that_do_not_apply_give_exactly_one_warning(
    tiny_bert: str, embedder: type, caplog: pytest.LogCaptureFixture
) -> None:
    embedder(
        model=tiny_bert,
        recipe="simlm",
        config_kwargs={"output_attentions": False},
        encode_kwargs={"convert_to_tensor": True},
        quantization_ranges=[[-1.0], [1.0]],
    )
    warnings = our_warnings(caplog)
    assert len(warnings) == 1
    assert warnings[0].getMessage() == (
        f"{embedder.__name__} ignores config_kwargs, encode_kwargs, quantization_ranges: they do not apply to it"
    )
