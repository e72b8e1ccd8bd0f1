"""The one place that turns texts into vectors.

Inference (the components) and training (the trainer) both go through :func:`tokenize` and
:func:`embed_features`, so what is trained is exactly what is served.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tokenizers.normalizers import Lowercase
from tqdm.auto import tqdm
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from simlm_haystack.backends import Backend, Graph, check_backend, load_graph
from simlm_haystack.errors import RecipeError
from simlm_haystack.fast import cls_forward, native_bf16
from simlm_haystack.fingerprint import cached_model_fingerprint, combined_fingerprint
from simlm_haystack.models import LoadedModel, load_model
from simlm_haystack.pooling import pool
from simlm_haystack.recipes import Recipe, Side
from simlm_haystack.st_checkpoint.dense import load_dense_head
from simlm_haystack.st_checkpoint.files import CheckpointFiles
from simlm_haystack.text_checks import check_queries

#: WordPiece reads a word of up to 100 characters as at least one token (longer ones become one [UNK]),
#: so cutting a text at this many characters per allowed token keeps every token the tokenizer would
#: keep, and a megabyte-long document is never tokenised whole. (Only whitespace runs of thousands of
#: characters inside the first max_length tokens could move the cut; such input is not a passage.)
MAX_CHARACTERS_PER_TOKEN = 101

#: ``"exact"``: the fp32 reference forward, bit for bit what training computes.
#: ``"fast"``: the same maths, faster: [CLS] recipes compute the last layer for [CLS] only
#: (~1e-6 from exact), and bf16 autocast is added only where bf16 is native (CPUs with AVX-512
#: BF16 or AMX, GPUs); elsewhere it stays fp32, because emulated bf16 is slower than fp32.
#: ``"bf16"``: bf16 autocast everywhere (plus the [CLS]-only last layer); min cosine to exact ~0.9999.
#: ``"int8"``: ``backend="onnx"`` only; weights quantised (see :mod:`simlm_haystack.backends`).
Precision = Literal["exact", "fast", "bf16", "int8"]
#: The torch backend's precisions; :data:`simlm_haystack.backends.BACKEND_PRECISIONS` has every backend's.
PRECISIONS: tuple[str, ...] = ("exact", "fast", "bf16")


#: sentence-transformers' ``do_lower_case`` puts this normaliser before the tokenizer's own; applied to the text
#: first, it gives the same tokens (lowercasing twice is lowercasing once) without changing a shared tokenizer.
_LOWERCASE = Lowercase()


def model_inputs(
    recipe: Recipe, side: Side, texts: Sequence[str], titles: Sequence[str | None] | None = None
) -> tuple[list[str], list[str] | None]:
    """The tokenizer's first and (for pair recipes) second sequences, prefixes and titles applied."""
    first, second = _joined_inputs(recipe, side, texts, titles)
    if recipe.lowercase:
        first = [_LOWERCASE.normalize_str(text) for text in first]
        second = None if second is None else [_LOWERCASE.normalize_str(text) for text in second]
    return first, second


def _joined_inputs(
    recipe: Recipe, side: Side, texts: Sequence[str], titles: Sequence[str | None] | None
) -> tuple[list[str], list[str] | None]:
    prefix = recipe.prefix(side)
    limit = recipe.max_length(side) * MAX_CHARACTERS_PER_TOKEN
    texts = [text[:limit] for text in texts]
    if titles is not None:
        titles = [None if title is None else title[:limit] for title in titles]
    if side == "query" or titles is None:
        if recipe.title_mode == "pair" and side == "document":
            return [prefix + recipe.default_title] * len(texts), list(texts)
        return [prefix + text for text in texts], None
    if len(titles) != len(texts):
        raise ValueError(f"Got {len(titles)} titles for {len(texts)} texts")
    if recipe.title_mode == "pair":
        # SimLM: tokenizer(title, text_pair=text); an empty or missing title becomes "-".
        return [prefix + (title or recipe.default_title) for title in titles], list(texts)
    return [prefix + (f"{title} {text}" if title else text) for title, text in zip(titles, texts, strict=True)], None


def tokenize(
    tokenizer: PreTrainedTokenizerBase,
    recipe: Recipe,
    side: Side,
    texts: Sequence[str],
    titles: Sequence[str | None] | None = None,
    *,
    padding: bool = False,
    return_tensors: str | None = None,
) -> BatchEncoding:
    """Tokenise as the recipe says: prefixes, (title, text) pairs, the side's max length, truncation."""
    first, second = model_inputs(recipe, side, texts, titles)
    return tokenizer(
        first,
        text_pair=second,
        max_length=recipe.max_length(side),
        truncation=True,
        padding=padding,
        return_tensors=return_tensors,
        return_attention_mask=True,
    )


def prompt_length(tokenizer: PreTrainedTokenizerBase, recipe: Recipe, side: Side) -> int:
    """How many leading tokens pooling skips: none, unless the recipe keeps the prompt out of pooling
    (sentence-transformers' ``include_prompt=False``); then the prompt's tokens with the leading special token,
    counted as sentence-transformers counts them (the prompt tokenised alone, less a trailing special token)."""
    prefix = recipe.prefix(side)
    if recipe.prompt_in_pooling or not prefix:
        return 0
    ids = tokenizer(_LOWERCASE.normalize_str(prefix) if recipe.lowercase else prefix)["input_ids"]
    return len(ids) - 1 if ids and ids[-1] in tokenizer.all_special_ids else len(ids)


def embed_features(model: PreTrainedModel, features: dict[str, torch.Tensor], recipe: Recipe) -> torch.Tensor:
    """Forward a tokenised batch and pool it; with gradients when called from training."""
    output = model(**features, return_dict=True)
    return pool(output.last_hidden_state, features["attention_mask"], recipe)


def check_trainable(recipe: Recipe) -> None:
    """Raise a :class:`RecipeError` for a recipe the trainers cannot train exactly: one with dense layers (their
    weights are not trained nor saved with the model) or one that keeps its prompt out of pooling."""
    problems = []
    if recipe.dense:
        problems.append(f"dense layers after pooling ({', '.join(layer.path for layer in recipe.dense)})")
    if not recipe.prompt_in_pooling and (recipe.query_prefix or recipe.document_prefix):
        problems.append("prompt tokens left out of pooling (include_prompt=False)")
    if problems:
        raise RecipeError(
            f"Recipe {recipe.name!r} cannot be trained here: it has {' and '.join(problems)}. "
            "Encoding with it is exact; for training, pass recipe= one without them."
        )


class _FlatEncoding:
    """A tokenised corpus as one flat int64 array per input plus row offsets.

    Built once per :meth:`DualEncoder.encode` call, so that padding a batch is one numpy gather
    instead of a Python loop over its rows.
    """

    def __init__(self, encoding: BatchEncoding, names: Sequence[str]) -> None:
        rows = encoding["input_ids"]
        self.lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)
        total = int(self.lengths.sum())
        self.flat = {
            name: np.fromiter(chain.from_iterable(encoding[name]), dtype=np.int64, count=total) for name in names
        }

    def pad(self, indices: np.ndarray, pad_token_id: int) -> dict[str, np.ndarray]:
        """Dynamic padding: the chosen rows, right-padded to the longest of them (int64 arrays)."""
        lengths = self.lengths[indices]
        columns = np.arange(int(lengths.max()))
        real = columns[None, :] < lengths[:, None]
        # Padding positions gather the row's first token, then get the fill value.
        positions = self.offsets[indices][:, None] + np.where(real, columns[None, :], 0)
        batch = {}
        for name, flat in self.flat.items():
            fill = pad_token_id if name == "input_ids" else 0
            batch[name] = np.where(real, flat[positions], fill)
        return batch


@contextmanager
def _intra_op_threads(threads: int | None) -> Iterator[None]:
    """Run with ``threads`` intra-op threads, then restore the process's setting (``None``: unchanged)."""
    before = torch.get_num_threads()
    if threads is None or threads == before:
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DualEncoder:
    """A loaded model read through its recipe: texts in, vectors out.

    :param precision: ``"exact"``, ``"fast"``, ``"bf16"`` (torch) or ``"int8"`` (onnx); see
        :data:`simlm_haystack.backends.BACKEND_PRECISIONS`. Another value is a ``ValueError``.
    :param backend: ``"torch"`` runs the model; ``"onnx"`` and ``"openvino"`` run its exported graph
        (exported once, cached by the weights' fingerprint, checked against the model when loaded).
        The graph is the weights as they are when the encoder is made: a model trained further needs a
        new encoder. Tokenising, batching and pooling are this class's whatever the backend.
    :param cache_dir: Where exported graphs are cached (default: ``$SIMLM_HAYSTACK_ONNX_CACHE`` or
        ``~/.cache/simlm_haystack/onnx``).
    :param head: The recipe's dense layers, loaded (:func:`~simlm_haystack.st_checkpoint.dense.load_dense_head`);
        when omitted, a recipe with dense layers loads them from the checkpoint's folder or the Hub cache. They run
        in torch after pooling, on every backend.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        recipe: Recipe,
        *,
        precision: Precision = "exact",
        backend: Backend = "torch",
        cache_dir: str | Path | None = None,
        head: torch.nn.Module | None = None,
    ) -> None:
        check_backend(backend, precision)
        self.loaded = loaded
        self.recipe = recipe
        self.precision = precision
        self.backend = backend
        self.cache_dir = cache_dir
        if head is None and recipe.dense:
            files = CheckpointFiles(loaded.source, local_files_only=True)
            head = load_dense_head(files, recipe.dense, device=loaded.model.device)
        self.head = head
        self.skip_tokens = {side: prompt_length(loaded.tokenizer, recipe, side) for side in ("query", "document")}
        accepted = inspect.signature(loaded.model.forward).parameters
        # DistilBERT takes no token_type_ids; BERT (SimLM) must get them for the (title, text) pair.
        self.input_names = [name for name in loaded.tokenizer.model_input_names if name in accepted]
        self.graph: Graph | None = None
        if backend != "torch":
            self.graph = load_graph(loaded, self.input_names, backend=backend, precision=precision, cache_dir=cache_dir)

    @property
    def embedding_dim(self) -> int:
        return self.recipe.embedding_dim(self.loaded.embedding_dim)

    def fingerprint(self) -> str:
        """A digest of every weight that decides the vectors (the model's, its tokenizer's, the dense layers')."""
        base = cached_model_fingerprint(self.loaded.model, self.loaded.tokenizer)
        return base if self.head is None else combined_fingerprint(base, self.head)

    def _uses_bf16(self) -> bool:
        if self.backend != "torch":
            return False
        if self.precision == "bf16":
            return True
        return self.precision == "fast" and (self.loaded.model.device.type != "cpu" or native_bf16())

    def _autocast(self) -> Any:
        if self._uses_bf16():
            return torch.autocast(device_type=self.loaded.model.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _embed_batch(self, features: dict[str, np.ndarray], side: Side, *, single_thread: bool = False) -> torch.Tensor:
        """Inference only. ``exact`` is the forward of :func:`embed_features`; fast modes skip work nobody reads;
        a graph backend computes ``last_hidden_state`` (from the arrays as they are); the same :func:`pool` reads
        each."""
        reading = {"skip_tokens": self.skip_tokens[side], "head": self.head}
        if self.graph is not None:
            hidden = torch.from_numpy(self.graph(features, single_thread=single_thread))
            return pool(hidden, torch.from_numpy(features["attention_mask"]), self.recipe, **reading)
        device = self.loaded.model.device
        batch = {name: torch.from_numpy(array).to(device) for name, array in features.items()}
        mask = batch["attention_mask"]
        if self.precision != "exact" and self.recipe.reads_first_token_only:
            first = cls_forward(self.loaded.model, batch)
            if first is not None:
                return pool(first.unsqueeze(1), mask, self.recipe, **reading)
        hidden = self.loaded.model(**batch, return_dict=True).last_hidden_state
        return pool(hidden, mask, self.recipe, **reading)

    def _batches(
        self, side: Side, texts: Sequence[str], titles: Sequence[str | None] | None, batch_size: int
    ) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
        """The texts tokenised, as (row indices, model inputs) batches of at most ``batch_size``."""
        encoding = tokenize(self.loaded.tokenizer, self.recipe, side, texts, titles)
        if len(texts) == 1:  # a query: its one row needs neither padding nor ordering
            yield np.zeros(1, dtype=np.intp), {name: np.asarray(encoding[name], np.int64) for name in self.input_names}
            return
        flat = _FlatEncoding(encoding, self.input_names)
        # Longest first: similar lengths share a batch (little padding), and a too-large batch fails at once.
        order = np.argsort(-flat.lengths, kind="stable")
        for start in range(0, len(texts), batch_size):
            indices = order[start : start + batch_size]
            yield indices, flat.pad(indices, self.loaded.tokenizer.pad_token_id or 0)

    def encode(
        self,
        side: Side,
        texts: Sequence[str],
        titles: Sequence[str | None] | None = None,
        *,
        batch_size: int = 32,
        progress_bar: bool = False,
    ) -> np.ndarray:
        """Encode texts (with titles, for documents) into a float32 array of shape (len(texts), dim)."""
        if len(texts) == 0:
            return np.zeros((0, self.embedding_dim), dtype=np.float32)
        if side == "query":
            check_queries(texts)
        output = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        # One text (a query) is a chain of tiny matmuls: a second thread saves little, and on shared
        # cores each of its barriers can wait a whole time slice for a descheduled sibling (see
        # BENCHMARKS.md, "Tried and rejected"). Not in torch's exact mode, where MKL's thread count
        # must stay what the reference used; a graph backend runs one text on its one-thread session.
        single_thread = len(texts) == 1 and (
            self.graph is not None or (self.precision != "exact" and self.loaded.model.device.type == "cpu")
        )
        # No bar object at all without a bar: making a disabled one costs a query tens of microseconds.
        what = "queries" if side == "query" else "documents"
        progress = tqdm(total=len(texts), desc=f"Encoding {what}", unit=side) if progress_bar else None
        with (
            _intra_op_threads(1 if single_thread and self.graph is None else None),
            torch.inference_mode(),
            self._autocast(),
            nullcontext() if progress is None else progress,
        ):
            for indices, features in self._batches(side, texts, titles, batch_size):
                vectors = self._embed_batch(features, side, single_thread=single_thread)
                output[indices] = vectors.float().cpu().numpy()
                if progress is not None:
                    progress.update(len(indices))
        # bf16 can overflow where fp32 does not; a NaN vector in Qdrant would silently poison search.
        not_finite = np.flatnonzero(~np.isfinite(output).all(axis=1))
        if not_finite.size:
            shown = ", ".join(str(i) for i in not_finite[:10]) + (" ..." if not_finite.size > 10 else "")
            raise ValueError(
                f"The model produced non-finite values (NaN or inf) for {side} {shown} of this batch "
                f"(precision={self.precision!r}); nothing was returned. Try precision='exact'."
            )
        return output


def load_encoder(
    model: str, recipe: Recipe, *, precision: Precision = "exact", backend: Backend = "torch", **load_settings: Any
) -> DualEncoder:
    """The model loaded (once per process and settings: :func:`~simlm_haystack.models.load_model`
    with ``load_settings``) and read through ``recipe`` on ``backend``: what every embedder's
    ``warm_up`` does, Haystack's and LangChain's alike."""
    loaded = load_model(model, **load_settings)
    head = None
    if recipe.dense:
        files = CheckpointFiles(
            str(model),
            revision=load_settings.get("revision"),
            token=load_settings.get("token"),
            local_files_only=bool(load_settings.get("local_files_only")),
        )
        head = load_dense_head(files, recipe.dense, device=loaded.model.device)
    return DualEncoder(loaded, recipe, precision=precision, backend=backend, head=head)
