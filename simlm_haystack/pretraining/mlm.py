"""Plain whole-word masked language modelling: how the offline fallback generator is trained.

Where no masked LM sharing the encoder's vocabulary can be had, SimLM's generator can be trained
first on the corpus itself (``--generator corpus``): the encoder's first ``generator_layers``
layers with a masked-LM head, taught to fill whole-word masks exactly as it will be asked to (every
masked token shown as [MASK], at the encoder's mask rate). It is small and has seen only the corpus,
so its guesses are weaker than a generator pre-trained on a large corpus, but far more plausible
than unigram draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import PreTrainedModel

from simlm_haystack.pretraining.backbone import Backbone
from simlm_haystack.pretraining.masking import IGNORE, WholeWordMasker
from simlm_haystack.pretraining.rlm import token_cross_entropy


class AllMaskCollator:
    """Passages with ``rate`` of their words replaced by [MASK]; labels at those positions only."""

    def __init__(self, masker: WholeWordMasker, *, mask_rate: float) -> None:
        self.masker = masker
        self.mask_rate = mask_rate

    def __call__(self, items: list[tuple[Any, np.random.Generator]]) -> dict[str, torch.Tensor]:
        passages = [passage for passage, _ in items]
        encoding = self.masker.encode("document", [p.text for p in passages], [p.title for p in passages])
        (mask,) = self.masker.masks(encoding, [self.mask_rate], [rng for _, rng in items])
        features = self.masker.features(encoding)
        features["labels"] = encoding["input_ids"].masked_fill(~mask, IGNORE)
        features["input_ids"] = encoding["input_ids"].masked_fill(mask, self.masker.tokenizer.mask_token_id)
        return features


class MaskedLanguageModel(nn.Module):
    """A ``*ForMaskedLM`` model and its loss: cross-entropy at the masked positions."""

    accepts_loss_kwargs = False

    def __init__(self, masked_lm: PreTrainedModel) -> None:
        super().__init__()
        self.encoder = masked_lm
        self.backbone = Backbone(masked_lm)

    def forward(self, labels: torch.Tensor, **features: torch.Tensor) -> dict[str, torch.Tensor]:
        hidden = self.backbone.encode(features)
        return {"loss": token_cross_entropy(self.backbone, hidden, labels)}
