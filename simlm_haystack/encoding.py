"""The one place that turns texts into vectors.

Inference (the components) and training (the trainer) both go through :func:`tokenize` and
:func:`embed_features`, so what is trained is exactly what is served.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any, Literal

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from simlm_haystack.models import LoadedModel
from simlm_haystack.recipes import Recipe, Side

#: WordPiece reads a word of up to 100 characters as at least one token (longer ones become one [UNK]),
#: so cutting a text at this many characters per allowed token keeps every token the tokenizer would
#: keep, and a megabyte-long document is never tokenised whole. (Only whitespace runs of thousands of
#: characters inside the first max_length tokens could move the cut; such input is not a passage.)
MAX_CHARACTERS_PER_TOKEN = 101

Precision = Literal["exact", "bf16"]
PRECISIONS: tuple[str, ...] = ("exact", "bf16")


def model_inputs(
    recipe: Recipe, side: Side, texts: Sequence[str], titles: Sequence[str | None] | None = None
) -> tuple[list[str], list[str] | None]:
    """The tokenizer's first and (for pair recipes) second sequences, prefixes and titles applied."""
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


def pool(last_hidden_state: torch.Tensor, attention_mask: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """[CLS] of the last layer, or the mean over real tokens; then L2 if the recipe says so."""
    if recipe.pooling == "cls":
        pooled = last_hidden_state[:, 0]
    else:
        mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
        pooled = (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    if recipe.normalize:
        pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=-1)
    return pooled


def embed_features(model: PreTrainedModel, features: dict[str, torch.Tensor], recipe: Recipe) -> torch.Tensor:
    """Forward a tokenised batch and pool it; with gradients when called from training."""
    output = model(**features, return_dict=True)
    return pool(output.last_hidden_state, features["attention_mask"], recipe)


def _pad_batch(encoding: BatchEncoding, indices: np.ndarray, pad_token_id: int, names: Sequence[str]) -> dict[str, Any]:
    """Dynamic padding: stack the chosen rows to the longest of them, in one numpy array per input."""
    lengths = [len(encoding["input_ids"][i]) for i in indices]
    width = max(lengths)
    batch = {}
    for name in names:
        fill = pad_token_id if name == "input_ids" else 0
        array = np.full((len(indices), width), fill, dtype=np.int64)
        for row, (i, length) in enumerate(zip(indices, lengths, strict=True)):
            array[row, :length] = encoding[name][i]
        batch[name] = torch.from_numpy(array)
    return batch


class DualEncoder:
    """A loaded model read through its recipe: texts in, vectors out."""

    def __init__(self, loaded: LoadedModel, recipe: Recipe, *, precision: Precision = "exact") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
        self.loaded = loaded
        self.recipe = recipe
        self.precision = precision
        accepted = inspect.signature(loaded.model.forward).parameters
        # DistilBERT takes no token_type_ids; BERT (SimLM) must get them for the (title, text) pair.
        self.input_names = [name for name in loaded.tokenizer.model_input_names if name in accepted]

    @property
    def embedding_dim(self) -> int:
        return self.loaded.embedding_dim

    def _autocast(self) -> Any:
        if self.precision == "bf16":
            return torch.autocast(device_type=self.loaded.model.device.type, dtype=torch.bfloat16)
        return nullcontext()

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
        tokenizer = self.loaded.tokenizer
        encoding = tokenize(tokenizer, self.recipe, side, texts, titles)
        lengths = np.fromiter((len(ids) for ids in encoding["input_ids"]), dtype=np.int64, count=len(texts))
        # Longest first: similar lengths share a batch (little padding), and a too-large batch fails at once.
        order = np.argsort(-lengths, kind="stable")
        output = np.empty((len(texts), self.embedding_dim), dtype=np.float32)
        device = self.loaded.model.device
        with (
            torch.inference_mode(),
            self._autocast(),
            tqdm(total=len(texts), disable=not progress_bar, desc=f"Encoding {side}s", unit=side) as progress,
        ):
            for start in range(0, len(texts), batch_size):
                indices = order[start : start + batch_size]
                batch = _pad_batch(encoding, indices, tokenizer.pad_token_id or 0, self.input_names)
                batch = {name: tensor.to(device) for name, tensor in batch.items()}
                vectors = embed_features(self.loaded.model, batch, self.recipe)
                output[indices] = vectors.float().cpu().numpy()
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
