"""LangChain ``Embeddings`` that read a dual encoder as its recipe says, through the same encoder as Haystack."""

from __future__ import annotations

from typing import Any

from haystack.utils import ComponentDevice, Secret
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from simlm_haystack.backends import Backend
from simlm_haystack.encoding import DualEncoder, Precision
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import (
    HF_TOKEN,
    EncoderSettings,
    HoldsEncoderSettings,
    document_settings,
    settings_arguments,
)
from simlm_haystack.text_checks import check_texts_and_titles


@document_settings
class DualEncoderEmbeddings(HoldsEncoderSettings, Embeddings):
    """SimLM, TAS-B, E5, ... in LangChain, encoded exactly as each model was trained.

    The same :class:`~simlm_haystack.encoding.DualEncoder` the Haystack embedders use, sharing their
    loaded model: a document embedded here and through ``DualEncoderDocumentEmbedder`` gets the same
    vector. Queries and documents are read differently (lengths, prefixes), and documents take a
    title: ``embed_documents(texts, titles)`` feeds SimLM the ``(title, text)`` pair it was trained
    on (``"-"`` for a missing title) and other recipes ``title + " " + text``.

    ```python
    from simlm_haystack.langchain import DualEncoderEmbeddings

    embeddings = DualEncoderEmbeddings(model="intfloat/simlm-base-msmarco-finetuned")  # recipe: simlm
    vectors = embeddings.embed_documents(["Paris is the capital of France."], titles=["Paris"])
    query = embeddings.embed_query("what is the capital of France?")
    ```

    The settings are the Haystack embedders' (:class:`~simlm_haystack.settings.EncoderSettings`); here a token
    may also be a plain string (kept as a ``Secret``, so that it never shows in a repr or a dump):

    {encoder_settings}
    :param progress_bar: Show a progress bar while embedding documents.
    """

    def __init__(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: str | ComponentDevice | None = None,
        token: str | Secret | None = HF_TOKEN,
        batch_size: int = 32,
        progress_bar: bool = False,
        precision: Precision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        # Resolved now (recipe, device, token, backend x precision, batch size), so that a wrong setting is an
        # error at construction, not mid-chain; equal settings load the model once with the Haystack embedders.
        self.settings = EncoderSettings.create(**settings_arguments(locals()))
        self.progress_bar = progress_bar
        self.encoder: DualEncoder | None = None

    @classmethod
    def from_encoder(
        cls, encoder: DualEncoder, *, batch_size: int = 32, progress_bar: bool = False
    ) -> DualEncoderEmbeddings:
        """Embeddings around an already loaded :class:`DualEncoder` (e.g. the model a trainer is training)."""
        settings = EncoderSettings.of_encoder(encoder, batch_size=batch_size)
        embeddings = cls(**settings.arguments(), progress_bar=progress_bar)
        embeddings.encoder = encoder
        return embeddings

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, recipe={self.recipe.name!r}, "
            f"device={self.device.to_torch_str()!r}, precision={self.precision!r}, backend={self.backend!r})"
        )

    def warm_up(self) -> DualEncoder:
        """Load the model (once per process and settings, shared with the Haystack embedders)."""
        return self.load_encoder()

    @property
    def embedding_dim(self) -> int:
        """The vector size, read from the model's config (no weights are loaded for it)."""
        if self.encoder is not None:
            return self.encoder.embedding_dim
        return model_embedding_dim(
            self.model,
            recipe=self.recipe,
            token=self.token.resolve_value() if self.token else None,
            local_files_only=self.local_files_only,
        )

    def embed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[list[float]]:
        """Embed passages, each with its title if given (``None``: no title), as the recipe says.

        :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or
            ``None`` (the message names the item).
        :raises ValueError: ``titles`` and ``texts`` differ in length.
        """
        texts, titles = check_texts_and_titles(texts, titles)
        if not texts:
            return []
        vectors = self.load_encoder().encode(
            "document", texts, titles, batch_size=self.batch_size, progress_bar=self.progress_bar
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query as the recipe says (its own max length and prefix)."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.embed_query expects a string, got {type(text).__name__}")
        return self.load_encoder().encode("query", [text], batch_size=1)[0].tolist()

    async def aembed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[list[float]]:
        """Like :meth:`embed_documents`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_documents, texts, titles)

    async def aembed_query(self, text: str) -> list[float]:
        """Like :meth:`embed_query`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_query, text)
