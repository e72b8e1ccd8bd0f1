"""A drop-in retriever: query text in, Documents out, over a Qdrant collection."""

from __future__ import annotations

from typing import Any

from haystack import default_from_dict, default_to_dict, super_component
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.components.base import (
    HF_TOKEN,
    Backend,
    canonical_type,
    deserialize_model_kwargs,
    register_short_type,
)
from simlm_haystack.components.pipelines import build_query_pipeline
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe
from simlm_haystack.stores import EmbeddingDocumentStore


@super_component
class DualEncoderRetriever:
    """Embeds a query with :class:`DualEncoderTextEmbedder` and searches Qdrant (or Qdrant Edge) with it.

    Replaces a retriever in an existing RAG pipeline: it takes ``query`` (plus optional
    ``filters`` and ``top_k``) and returns ``documents``. Inside, it is the pipeline
    :func:`~simlm_haystack.build_query_pipeline` builds.

    ```python
    from simlm_haystack import DualEncoderRetriever, qdrant_document_store

    store = qdrant_document_store("simlm", embedding_dim=768, path="qdrant_data", index="docs")
    retriever = DualEncoderRetriever(model="intfloat/simlm-base-msmarco-finetuned", document_store=store)
    documents = retriever.run(query="what is the capital of France?")["documents"]
    retriever.close()  # releases the store (a local Qdrant folder is locked while open)
    ```
    """

    def __init__(
        self,
        *,
        model: str,
        document_store: EmbeddingDocumentStore,
        recipe: str | Recipe | dict[str, Any] | None = None,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        precision: Precision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        allow_other_encoder: bool = False,
    ) -> None:
        """
        :param model: A hub id or a local checkpoint directory.
        :param document_store: The Qdrant or Qdrant Edge store the documents were written to with the same model.
        :param recipe: The recipe (found from the model when omitted).
        :param top_k: How many documents to return.
        :param filters: Haystack filters applied to every search (a run's ``filters`` replace them).
        :param device: The device for the query encoder.
        :param token: The Hugging Face token for private models.
        :param precision: ``"exact"`` (default), ``"fast"`` or ``"bf16"``; see :class:`DualEncoderTextEmbedder`.
        :param backend: ``"torch"`` (default) runs the model; ``"onnx"`` runs it exported once with
            PyTorch's dynamo exporter in ONNX Runtime (cached by the weights' fingerprint, checked
            against torch when loaded; ``precision="int8"`` quantises its weights); ``"openvino"`` runs
            the same graph in OpenVINO. Tokenising and pooling are the same code on every backend.
        :param local_files_only: Never ask the Hugging Face Hub.
        :param trust_remote_code: Allow a checkpoint's own code (off: only verified architectures).
        :param revision: A branch, tag or commit of the hub model.
        :param model_kwargs: Passed to ``AutoModel.from_pretrained``.
        :param tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
        :param batch_size: The text embedder's ``batch_size`` (for callers that encode many queries at once).
        :param allow_other_encoder: Search a collection whose recorded encoder (model weights or recipe)
            differs from this one, with a warning; otherwise that is an
            :class:`~simlm_haystack.EncoderMismatchError` when the retriever warms up, before any query is
            encoded (see :mod:`simlm_haystack.stores.identity`).
        """
        self.text_embedder = DualEncoderTextEmbedder(
            model=model,
            recipe=recipe,
            device=device,
            token=token,
            precision=precision,
            backend=backend,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            revision=revision,
            model_kwargs=model_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            batch_size=batch_size,
        )
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.allow_other_encoder = allow_other_encoder
        self.pipeline = build_query_pipeline(
            self.text_embedder, document_store, top_k=top_k, filters=filters, allow_other_encoder=allow_other_encoder
        )
        self.input_mapping = {
            "query": ["text_embedder.text"],
            "filters": ["retriever.filters"],
            "top_k": ["retriever.top_k"],
        }
        self.output_mapping = {"retriever.documents": "documents"}

    def close(self) -> None:
        """Close the document store's Qdrant client (a local store's folder lock is released)."""
        self.document_store.close()

    async def close_async(self) -> None:
        """Close the document store's asynchronous Qdrant client."""
        await self.document_store.close_async()

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store (secrets as environment-variable references only)."""
        # The text embedder's init parameters are exactly the retriever's embedder settings.
        return default_to_dict(
            self,
            document_store=self.document_store,
            top_k=self.top_k,
            filters=self.filters,
            allow_other_encoder=self.allow_other_encoder,
            **self.text_embedder._init_parameters(),
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderRetriever:
        """Deserialise a retriever written by :meth:`to_dict`; ``data`` is not changed."""
        return default_from_dict(cls, deserialize_model_kwargs(canonical_type(cls, data)))


register_short_type(DualEncoderRetriever)
