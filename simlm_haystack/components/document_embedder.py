"""A Haystack component that embeds Documents as the model was trained to read passages."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from haystack import Document, component
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.backends import Backend
from simlm_haystack.components.base import (
    DOCUMENT_READING_DOC,
    DualEncoderComponentBase,
    ReadsDocuments,
    register_short_type,
)
from simlm_haystack.components.sentence_transformers_settings import (
    SENTENCE_TRANSFORMERS_DOC,
    SentenceTransformersPrecision,
)
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import HF_TOKEN, SETTINGS_DOC


@component
class DualEncoderDocumentEmbedder(DualEncoderComponentBase, ReadsDocuments):
    """Embeds Documents with a dual encoder, exactly as its recipe says.

    The title comes from ``Document.meta[title_field]``: SimLM reads ``(title, text)`` as a token
    pair (``"-"`` for a missing title); other recipes read ``title + " " + text``. Fields in
    ``meta_fields_to_embed`` are joined before the content with ``embedding_separator``, as
    Haystack's own embedders do.

    ```python
    from haystack import Document
    from simlm_haystack import DualEncoderDocumentEmbedder

    embedder = DualEncoderDocumentEmbedder(model="intfloat/simlm-base-msmarco-finetuned")
    result = embedder.run([Document(content="Paris is the capital of France.", meta={"title": "Paris"})])
    ```

    It also takes ``SentenceTransformersDocumentEmbedder``'s parameters, so that a pipeline YAML
    written with that embedder loads with only its ``type:`` changed (to
    ``simlm_haystack.DualEncoderDocumentEmbedder``). Unlike it, this embedder reads a title (see above).
    """

    side = "document"

    @docstring_with(
        encoder_settings=SETTINGS_DOC,
        document_reading=DOCUMENT_READING_DOC,
        sentence_transformers=SENTENCE_TRANSFORMERS_DOC,
    )
    def __init__(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        batch_size: int = 32,
        progress_bar: bool = True,
        precision: Precision | SentenceTransformersPrecision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        title_field: str | None = "title",
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        prefix: str | None = None,
        suffix: str = "",
        normalize_embeddings: bool | None = None,
        truncate_dim: int | None = None,
        config_kwargs: dict[str, Any] | None = None,
        encode_kwargs: dict[str, Any] | None = None,
        quantization_ranges: list[list[float]] | None = None,
    ) -> None:
        """
        {encoder_settings}
        :param progress_bar: Show a progress bar while embedding.
        {document_reading}
        {sentence_transformers}
        """
        self._configure(locals())
        self.progress_bar = progress_bar
        self.title_field = title_field
        self.meta_fields_to_embed = list(meta_fields_to_embed or [])
        self.embedding_separator = embedding_separator

    def _init_parameters(self) -> dict[str, Any]:
        return {
            "progress_bar": self.progress_bar,
            "title_field": self.title_field,
            "meta_fields_to_embed": self.meta_fields_to_embed,
            "embedding_separator": self.embedding_separator,
        }

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Embed Documents; returns new Documents with ``embedding`` set, the input left untouched.

        :param documents: The Documents to embed.
        :returns: ``{"documents": [...]}`` in the input order.
        """
        titles, texts = self._titles_and_texts(documents, text_embedder="DualEncoderTextEmbedder")
        if not documents:
            return {"documents": []}
        encoder = self.load_encoder()
        vectors = encoder.encode("document", texts, titles, batch_size=self.batch_size, progress_bar=self.progress_bar)
        return {
            "documents": [
                replace(document, embedding=vector.tolist())
                for document, vector in zip(documents, vectors, strict=True)
            ]
        }

    @component.output_types(documents=list[Document])
    async def run_async(self, documents: list[Document]) -> dict[str, list[Document]]:
        """Like :meth:`run`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.run, documents)


register_short_type(DualEncoderDocumentEmbedder)
