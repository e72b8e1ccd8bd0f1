"""Whole-word masking, and the collators that tokenise a batch through the recipe and mask it.

A word is a run of tokens the tokenizer's pre-tokenizer produced from one word (``word_ids``), so
``"transduction" -> ["trans", "##duction"]`` is masked whole or not at all, for WordPiece and BPE
alike. Masks are drawn as in unilm-simlm / CoT-MAE: the words are shuffled and taken greedily, a
word that would overshoot the budget being skipped, until ``round(rate x maskable tokens)`` tokens
are masked. Special tokens and padding are never masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedTokenizerBase

from simlm_haystack.encoding import tokenize
from simlm_haystack.errors import ModelLoadError
from simlm_haystack.recipes import Recipe, Side

IGNORE = -100  # the label cross-entropy skips


def word_spans(encoding: BatchEncoding, row: int) -> list[list[int]]:
    """The token positions of each word of one row, in order; special tokens and padding belong to none."""
    spans: list[list[int]] = []
    previous = None
    for position, (sequence, word) in enumerate(zip(encoding.sequence_ids(row), encoding.word_ids(row), strict=True)):
        if sequence is None or word is None:
            previous = None
            continue
        if (sequence, word) == previous:
            spans[-1].append(position)
        else:
            spans.append([position])
        previous = (sequence, word)
    return spans


def nested_whole_word_masks(
    spans: Sequence[Sequence[int]], length: int, rates: Sequence[float], rng: np.random.Generator
) -> list[np.ndarray]:
    """One boolean mask of ``length`` per rate (ascending), each a superset of the one before.

    The words are shuffled once; the first mask takes them greedily up to its budget, the next one
    keeps those and goes on through the same order up to its own budget. (unilm-simlm unions an
    independent second mask drawn at the rate that makes the union 50% *on average*; continuing one
    order gives each mask its rate exactly, with the same distribution of which words are masked.)
    """
    if list(rates) != sorted(rates) or any(not 0 <= rate <= 1 for rate in rates):
        raise ValueError(f"mask rates must be ascending and within [0, 1], got {list(rates)}")
    maskable = sum(len(span) for span in spans)
    order = rng.permutation(len(spans))
    taken = np.zeros(len(spans), dtype=bool)
    mask = np.zeros(length, dtype=bool)
    count = 0
    masks = []
    for rate in rates:
        budget = max(1, round(rate * maskable)) if rate > 0 and maskable else 0
        mask = mask.copy()
        for word in order:
            if count >= budget:
                break
            if not taken[word] and count + len(spans[word]) <= budget:
                taken[word] = True
                mask[list(spans[word])] = True
                count += len(spans[word])
        masks.append(mask)
    return masks


class WholeWordMasker:
    """Tokenises texts as the recipe says and draws whole-word masks for them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, recipe: Recipe, input_names: Sequence[str]) -> None:
        if tokenizer.mask_token_id is None:
            raise ModelLoadError(
                f"The tokenizer {type(tokenizer).__name__} has no mask token: it cannot be pre-trained"
            )
        self.tokenizer = tokenizer
        self.recipe = recipe
        self.input_names = list(input_names)

    def encode(self, side: Side, texts: list[str], titles: list[str | None] | None = None) -> BatchEncoding:
        return tokenize(self.tokenizer, self.recipe, side, texts, titles, padding=True, return_tensors="pt")

    def features(self, encoding: BatchEncoding) -> dict[str, torch.Tensor]:
        return {name: encoding[name] for name in self.input_names}

    def masks(
        self, encoding: BatchEncoding, rates: Sequence[float], rngs: Sequence[np.random.Generator]
    ) -> list[torch.Tensor]:
        """For each rate, a (batch, length) boolean mask; row ``i`` is drawn with ``rngs[i]``."""
        length = encoding["input_ids"].shape[1]
        rows = [nested_whole_word_masks(word_spans(encoding, i), length, rates, rng) for i, rng in enumerate(rngs)]
        return [torch.from_numpy(np.stack([row[level] for row in rows])) for level in range(len(rates))]

    @staticmethod
    def labels(encoding: BatchEncoding) -> torch.Tensor:
        """The original token at every real (non-special, non-padding) position; ``-100`` elsewhere."""
        real = torch.tensor(
            [[sequence is not None for sequence in encoding.sequence_ids(i)] for i in range(len(encoding["input_ids"]))]
        )
        return encoding["input_ids"].masked_fill(~real, IGNORE)

    def corrupt(self, input_ids: torch.Tensor, mask: torch.Tensor, rngs: Sequence[np.random.Generator]) -> torch.Tensor:
        """BERT's corruption of the masked positions: 80% [MASK], 10% a random token, 10% unchanged."""
        corrupted = input_ids.clone()
        for row, rng in enumerate(rngs):
            draw = torch.from_numpy(rng.random(input_ids.shape[1]))
            random_ids = torch.from_numpy(rng.integers(len(self.tokenizer), size=input_ids.shape[1]))
            to_mask = mask[row] & (draw < 0.8)
            to_random = mask[row] & (draw >= 0.8) & (draw < 0.9)
            corrupted[row, to_mask] = self.tokenizer.mask_token_id
            corrupted[row, to_random] = random_ids[to_random]
        return corrupted

    def masked_lm_inputs(
        self, encoding: BatchEncoding, rate: float, rngs: Sequence[np.random.Generator]
    ) -> dict[str, torch.Tensor]:
        """Features with ``rate`` of the words corrupted BERT's way, and ``labels`` only at those positions."""
        (mask,) = self.masks(encoding, [rate], rngs)
        features = self.features(encoding)
        features["labels"] = encoding["input_ids"].masked_fill(~mask, IGNORE)
        features["input_ids"] = self.corrupt(encoding["input_ids"], mask, rngs)
        return features


class ReplacedLMCollator:
    """SimLM batches: passages in the recipe's document form, an encoder mask (30%) and a decoder mask
    (50%, a superset of it), and the original token as the label of every real position.

    The masked tokens are not replaced here: the generator does that inside the model, on the device.
    """

    def __init__(self, masker: WholeWordMasker, *, encoder_mask_rate: float, decoder_mask_rate: float) -> None:
        self.masker = masker
        self.rates = (encoder_mask_rate, decoder_mask_rate)

    def __call__(self, items: list[tuple[Any, np.random.Generator]]) -> dict[str, torch.Tensor]:
        passages = [passage for passage, _ in items]
        rngs = [rng for _, rng in items]
        encoding = self.masker.encode("document", [p.text for p in passages], [p.title for p in passages])
        encoder_mask, decoder_mask = self.masker.masks(encoding, self.rates, rngs)
        return {
            **self.masker.features(encoding),
            "labels": self.masker.labels(encoding),
            "encoder_mask": encoder_mask,
            "decoder_mask": decoder_mask,
        }
