"""A drop-in retriever: query text in, Documents out, over a Qdrant collection."""

from __future__ import annotations

import copy
from typing import Any

from haystack import Pipeline, default_from_dict, default_to_dict, super_component
from haystack.utils import ComponentDevice, Secret, deserialize_secrets_inplace

from simlm_haystack.components.base import HF_TOKEN
from simlm_haystack.components.pipelines import embedding_retriever
from simlm_haystack.components.text_embedder import DualEncoderTextEmbedder
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe, serialize_recipe
from simlm_haystack.stores import EmbeddingDocumentStore


@super_component
class DualEncoderRetriever:
    """Embeds a query with :class:`DualEncoderTextEmbedder` and searches Qdrant (or Qdrant Edge) with it.

    Replaces a retriever in an existing RAG pipeline: it takes ``query`` (plus optional
    ``filters`` and ``top_k``) and returns ``documents``.

    ```python
    from simlm_haystack import DualEncoderRetriever, qdrant_document_store

    store = qdrant_document_store("simlm", embedding_dim=768, path="qdrant_data", index="docs")
    retriever = DualEncoderRetriever(model="intfloat/simlm-base-msmarco-finetuned", document_store=store)
    documents = retriever.run(query="what is the capital of France?")["documents"]
    ```

    :param model: A hub id or a local checkpoint directory.
    :param document_store: The Qdrant or Qdrant Edge store the documents were written to with the same model.
    :param recipe: The recipe (found from the model when omitted).
    :param top_k: How many documents to return.
    :param filters: Haystack filters applied to every search.
    :param device: The device for the query encoder.
    :param token: The Hugging Face token for private models.
    :param precision: ``"exact"`` (default), ``"fast"`` or ``"bf16"``; see :class:`DualEncoderTextEmbedder`.
    :param local_files_only: Never ask the Hugging Face Hub.
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
        local_files_only: bool = False,
    ) -> None:
        self.model = model
        self.document_store = document_store
        self.top_k = top_k
        self.filters = filters
        self.precision = precision
        self.local_files_only = local_files_only
        self.text_embedder = DualEncoderTextEmbedder(
            model=model,
            recipe=recipe,
            device=device,
            token=token,
            precision=precision,
            local_files_only=local_files_only,
        )
        pipeline = Pipeline()
        pipeline.add_component("text_embedder", self.text_embedder)
        pipeline.add_component("retriever", embedding_retriever(document_store, top_k=top_k, filters=filters))
        pipeline.connect("text_embedder.embedding", "retriever.query_embedding")
        self.pipeline = pipeline
        self.input_mapping = {
            "query": ["text_embedder.text"],
            "filters": ["retriever.filters"],
            "top_k": ["retriever.top_k"],
        }
        self.output_mapping = {"retriever.documents": "documents"}

    def to_dict(self) -> dict[str, Any]:
        """Serialise the retriever with its store (secrets as environment-variable references only)."""
        embedder = self.text_embedder
        return default_to_dict(
            self,
            model=self.model,
            document_store=self.document_store.to_dict(),
            recipe=serialize_recipe(embedder.recipe if embedder._recipe_argument is not None else None),
            top_k=self.top_k,
            filters=self.filters,
            device=embedder.device.to_dict(),
            token=embedder.token.to_dict() if embedder.token else None,
            precision=self.precision,
            local_files_only=self.local_files_only,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DualEncoderRetriever:
        """Deserialise a retriever written by :meth:`to_dict` (``default_from_dict`` restores the store from its
        ``type``, Qdrant or Qdrant Edge)."""
        data = copy.deepcopy(data)  # deserialising in place would change the caller's dict
        init_parameters = data["init_parameters"]
        if init_parameters.get("device") is not None:
            init_parameters["device"] = ComponentDevice.from_dict(init_parameters["device"])
        deserialize_secrets_inplace(init_parameters, keys=["token"])
        return default_from_dict(cls, data)
