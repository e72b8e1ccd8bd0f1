"""A Haystack component that embeds a query as the model was trained to read queries."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import component
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.backends import Backend
from simlm_haystack.components.base import DualEncoderComponentBase, register_short_type
from simlm_haystack.components.sentence_transformers_settings import (
    SENTENCE_TRANSFORMERS_DOC,
    SentenceTransformersPrecision,
)
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import HF_TOKEN, SETTINGS_DOC


@component
class DualEncoderTextEmbedder(DualEncoderComponentBase):
    """Embeds a query string with a dual encoder, exactly as its recipe says.

    ```python
    from simlm_haystack import DualEncoderTextEmbedder

    embedder = DualEncoderTextEmbedder(model="intfloat/simlm-base-msmarco-finetuned")
    embedding = embedder.run("what is the capital of France?")["embedding"]
    ```

    It also takes ``SentenceTransformersTextEmbedder``'s parameters, so that a pipeline YAML written
    with that embedder loads with only its ``type:`` changed (to ``simlm_haystack.DualEncoderTextEmbedder``).
    """

    side = "query"

    @docstring_with(encoder_settings=SETTINGS_DOC, sentence_transformers=SENTENCE_TRANSFORMERS_DOC)
    def __init__(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        precision: Precision | SentenceTransformersPrecision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        prefix: str | None = None,
        suffix: str = "",
        normalize_embeddings: bool | None = None,
        truncate_dim: int | None = None,
        progress_bar: bool = True,
        config_kwargs: dict[str, Any] | None = None,
        encode_kwargs: dict[str, Any] | None = None,
        quantization_ranges: list[list[float]] | None = None,
    ) -> None:
        """
        {encoder_settings}
        :param progress_bar: Accepted for sentence-transformers' sake; a query shows no bar.
        {sentence_transformers}
        """
        self._configure(locals())

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed one query.

        :param text: The query.
        :returns: ``{"embedding": [...]}``.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self).__name__} expects a string, got {type(text).__name__}. "
                "To embed Documents, use DualEncoderDocumentEmbedder."
            )
        vector = self.load_encoder().encode("query", [text], batch_size=1)[0]
        return {"embedding": vector.tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """Like :meth:`run`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.run, text)


register_short_type(DualEncoderTextEmbedder)
