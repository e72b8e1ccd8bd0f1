"""LangChain ``Embeddings`` that read a dual encoder as its recipe says, through the same encoder as Haystack."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from haystack.utils import ComponentDevice, Secret
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from simlm_haystack.backends import Backend
from simlm_haystack.docstrings import docstring_with
from simlm_haystack.encoding import DualEncoder, Precision
from simlm_haystack.errors import SettingsError
from simlm_haystack.langchain.huggingface_settings import (
    HUGGINGFACE_DOC,
    reconcile_huggingface_settings,
    sentence_transformer_settings,
)
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe
from simlm_haystack.settings import (
    HF_TOKEN,
    SETTINGS_DOC,
    EncoderSettings,
    HoldsEncoderSettings,
    hub_options,
    settings_arguments,
)
from simlm_haystack.st_checkpoint.arguments import model_argument
from simlm_haystack.st_checkpoint.files import CheckpointFiles
from simlm_haystack.text_checks import check_texts_and_titles


def _merge_settings(
    owner: str, ours: Mapping[str, Any], defaults: Mapping[str, Any], theirs: Mapping[str, Any]
) -> dict[str, Any]:
    """``ours`` with ``theirs`` (langchain-huggingface's) in place of the settings left at their defaults; a
    :class:`SettingsError` naming every setting given both ways, differently."""
    twice = sorted(name for name, value in theirs.items() if ours[name] != defaults[name] and ours[name] != value)
    if twice:
        raise SettingsError(
            f"{owner}: {', '.join(twice)} given both as its own parameters and in langchain-huggingface's "
            "arguments, differently; give each once"
        )
    return {**ours, **theirs}


@docstring_with(encoder_settings=SETTINGS_DOC, huggingface=HUGGINGFACE_DOC)
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

    It also takes ``langchain_huggingface.HuggingFaceEmbeddings``' keyword arguments, so that swapping that class
    for this one changes only the class name: the same vectors for a sentence-transformers checkpoint, the
    recipe's for a model card this package knows (see :mod:`simlm_haystack.langchain.huggingface_settings`).
    One name means two things there and here: ``model_kwargs``. Given with ``model_name=`` (langchain-huggingface's
    spelling), ``model_kwargs`` are ``SentenceTransformer(...)``'s arguments, as there (its ``model_kwargs``
    key holds ``AutoModel``'s); given with ``model=``, they are ``AutoModel.from_pretrained``'s, as in the
    Haystack embedders.

    ```python
    embeddings = DualEncoderEmbeddings(  # was HuggingFaceEmbeddings(...)
        model_name="sentence-transformers/all-MiniLM-L6-v2",
        model_kwargs={"device": "cpu"},
        encode_kwargs={"normalize_embeddings": True, "batch_size": 64},
    )
    ```

    The settings are the Haystack embedders' (:class:`~simlm_haystack.settings.EncoderSettings`); here a token
    may also be a plain string (kept as a ``Secret``, so that it never shows in a repr or a dump):

    {encoder_settings}
    :param progress_bar: Show a progress bar while embedding documents.
    {huggingface}
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        model_name: str | None = None,
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
        cache_folder: str | None = None,
        encode_kwargs: dict[str, Any] | None = None,
        query_encode_kwargs: dict[str, Any] | None = None,
        multi_process: bool = False,
        show_progress: bool = False,
    ) -> None:
        owner = type(self).__name__
        model = model_argument(owner, model, model_name, "langchain-huggingface")
        # With model_name=, model_kwargs are SentenceTransformer(...)'s (langchain-huggingface's meaning).
        theirs = model_kwargs if model_name is not None else None
        ours = {
            **settings_arguments(locals()),
            "model_kwargs": None if model_name is not None else model_kwargs,
            "progress_bar": progress_bar,
        }
        loading = {**ours, **sentence_transformer_settings(theirs)}  # to find the recipe (given twice: refused below)
        hub = hub_options(loading)
        # Resolved now (recipe, device, token, backend x precision, batch size), so that a wrong setting is an
        # error at construction, not mid-chain; equal settings load the model once with the Haystack embedders.
        resolved = resolve_recipe(str(loading["model"]), recipe, **hub)
        reconciled = reconcile_huggingface_settings(
            owner,
            resolved,
            CheckpointFiles(str(loading["model"]), **hub),
            model_kwargs=theirs,
            encode_kwargs=encode_kwargs,
            query_encode_kwargs=query_encode_kwargs,
            cache_folder=cache_folder,
            multi_process=multi_process,
            show_progress=show_progress,
        )
        given = recipe is not None
        if reconciled.pop("normalize", False):  # normalize_embeddings on a cosine recipe that does not normalise
            resolved, given = dataclasses.replace(resolved, normalize=True), True
        settings = _merge_settings(owner, ours, _DEFAULTS, reconciled)
        self.progress_bar = bool(settings.pop("progress_bar"))
        self.settings = EncoderSettings.create(**{**settings, "recipe": resolved}, recipe_given=given)
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


#: The defaults of the parameters, against which a setting given both as ours and as langchain-huggingface's is told.
_DEFAULTS = {
    name: parameter.default
    for name, parameter in inspect.signature(DualEncoderEmbeddings.__init__).parameters.items()
    if parameter.default is not inspect.Parameter.empty
}
