"""LangChain ``Embeddings`` that read a dual encoder as its recipe says, through the same encoder as Haystack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from haystack.utils import ComponentDevice, Secret
from langchain_core.embeddings import Embeddings
from langchain_core.runnables.config import run_in_executor

from simlm_haystack.backends import Backend, check_backend
from simlm_haystack.components.base import HF_TOKEN, load_encoder_with_settings
from simlm_haystack.encoding import DualEncoder, Precision
from simlm_haystack.models import embedding_dim as model_embedding_dim
from simlm_haystack.recipes import Recipe, resolve_recipe


def _check_strings(name: str, values: Any, *, optional_items: bool = False) -> list[Any]:
    """``values`` as a list, or a TypeError naming the first item that is not a string."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise TypeError(f"{name} must be a list of strings, not {type(values).__name__}")
    for position, value in enumerate(values):
        if not (isinstance(value, str) or (optional_items and value is None)):
            allowed = "a string or None" if optional_items else "a string"
            raise TypeError(f"item {position} of {name} is {type(value).__name__}, not {allowed}")
    return list(values)


class DualEncoderEmbeddings(Embeddings):
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

    :param model: A hub id or a local checkpoint directory.
    :param recipe: A recipe name, a :class:`~simlm_haystack.Recipe` or its dict; found from the model
        when omitted (a recipe file beside the checkpoint, then the known hub ids).
    :param device: ``"cpu"``, ``"cuda:0"``, ... or a Haystack ``ComponentDevice``; Haystack's default
        device when omitted (so that the Haystack embedders with the same settings share the model).
    :param token: The Hugging Face token, a string or a Haystack ``Secret``; read from ``HF_API_TOKEN`` /
        ``HF_TOKEN`` by default. Kept as a ``Secret``, so that it never shows in a repr or a dump.
    :param batch_size: Texts per forward pass.
    :param progress_bar: Show a progress bar while embedding documents.
    :param precision: ``"exact"`` (the fp32 reference), ``"fast"`` or ``"bf16"`` (torch), ``"int8"``
        (onnx); see the Haystack text embedder.
    :param backend: ``"torch"``, ``"onnx"`` or ``"openvino"``, as on the Haystack embedders.
    :param local_files_only: Never ask the Hugging Face Hub.
    :param trust_remote_code: Allow a checkpoint's own code (off: only verified architectures).
    :param revision: A branch, tag or commit of the hub model.
    :param model_kwargs: Passed to ``AutoModel.from_pretrained``.
    :param tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
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
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
        check_backend(backend, precision)
        self.model = str(model)
        # Resolved now, so that a wrong or missing recipe is an error at construction, not mid-chain.
        self.recipe = resolve_recipe(self.model, recipe)
        # Resolved as the Haystack embedders resolve it, so that equal settings load the model once.
        self.device = ComponentDevice.resolve_device(
            ComponentDevice.from_str(device) if isinstance(device, str) else device
        )
        self.token = Secret.from_token(token) if isinstance(token, str) else token
        self.batch_size = batch_size
        self.progress_bar = progress_bar
        self.precision = precision
        self.backend = backend
        self.local_files_only = local_files_only
        self.trust_remote_code = trust_remote_code
        self.revision = revision
        self.model_kwargs = model_kwargs
        self.tokenizer_kwargs = tokenizer_kwargs
        self.encoder: DualEncoder | None = None

    @classmethod
    def from_encoder(
        cls, encoder: DualEncoder, *, batch_size: int = 32, progress_bar: bool = False
    ) -> DualEncoderEmbeddings:
        """Embeddings around an already loaded :class:`DualEncoder` (e.g. the model a trainer is training)."""
        embeddings = cls(
            model=encoder.loaded.source,
            recipe=encoder.recipe,
            device=ComponentDevice.from_str(str(encoder.loaded.model.device)),
            precision=encoder.precision,
            backend=encoder.backend,
            batch_size=batch_size,
            progress_bar=progress_bar,
        )
        embeddings.encoder = encoder
        return embeddings

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, recipe={self.recipe.name!r}, "
            f"device={self.device.to_torch_str()!r}, precision={self.precision!r}, backend={self.backend!r})"
        )

    def warm_up(self) -> DualEncoder:
        """Load the model (once per process and settings, shared with the Haystack embedders)."""
        if self.encoder is None:
            self.encoder = load_encoder_with_settings(self)
        return self.encoder

    @property
    def embedding_dim(self) -> int:
        """The vector size, read from the model's config (no weights are loaded for it)."""
        if self.encoder is not None:
            return self.encoder.embedding_dim
        return model_embedding_dim(
            self.model,
            token=self.token.resolve_value() if self.token else None,
            local_files_only=self.local_files_only,
        )

    def embed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[list[float]]:
        """Embed passages, each with its title if given (``None``: no title), as the recipe says.

        :raises TypeError: ``texts`` is not a list of strings, or ``titles`` not a list of strings or
            ``None`` (the message names the item).
        :raises ValueError: ``titles`` and ``texts`` differ in length.
        """
        texts = _check_strings("texts", texts)
        if titles is not None:
            titles = _check_strings("titles", titles, optional_items=True)
            if len(titles) != len(texts):
                raise ValueError(f"Got {len(titles)} titles for {len(texts)} texts")
        if not texts:
            return []
        vectors = self.warm_up().encode(
            "document", texts, titles, batch_size=self.batch_size, progress_bar=self.progress_bar
        )
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed one query as the recipe says (its own max length and prefix)."""
        if not isinstance(text, str):
            raise TypeError(f"{type(self).__name__}.embed_query expects a string, got {type(text).__name__}")
        return self.warm_up().encode("query", [text], batch_size=1)[0].tolist()

    async def aembed_documents(self, texts: list[str], titles: list[str | None] | None = None) -> list[list[float]]:
        """Like :meth:`embed_documents`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_documents, texts, titles)

    async def aembed_query(self, text: str) -> list[float]:
        """Like :meth:`embed_query`, in a worker thread so that the event loop stays free."""
        return await run_in_executor(None, self.embed_query, text)
