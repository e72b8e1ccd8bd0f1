"""Batches of queries and their passages, tokenised exactly as the embedders tokenise them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from simlm_haystack.encoding import tokenize
from simlm_haystack.recipes import Recipe
from simlm_haystack.training.data import Passage


class DualEncoderCollator:
    """Items ``{"query", "passages": [positive, *negatives]}`` -> the tensors the recipe makes."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, recipe: Recipe, input_names: Sequence[str]) -> None:
        self.tokenizer = tokenizer
        self.recipe = recipe
        self.input_names = list(input_names)

    def _features(self, side: str, texts: list[str], titles: list[str | None] | None) -> dict[str, torch.Tensor]:
        encoded = tokenize(self.tokenizer, self.recipe, side, texts, titles, padding=True, return_tensors="pt")  # type: ignore[arg-type]
        return {name: encoded[name] for name in self.input_names}

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        passages: list[Passage] = [passage for item in items for passage in item["passages"]]
        batch: dict[str, Any] = {
            "query": self._features("query", [item["query"] for item in items], None),
            "passage": self._features("document", [p.text for p in passages], [p.title for p in passages]),
        }
        batch["queries"] = [item["query"] for item in items]  # to name the batch if its loss is not finite
        if all(p.score is not None for p in passages):
            batch["teacher_scores"] = torch.tensor([p.score for p in passages]).view(len(items), -1)
        return batch
