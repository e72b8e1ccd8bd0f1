"""Pooling: the last layer's token vectors into one vector, as the recipe says.

Every pooling mode sentence-transformers has (``cls``, ``lasttoken``, ``mean``, ``mean_sqrt_len_tokens``,
``weightedmean``, ``max``), alone or concatenated, over the real tokens less a prompt left out of pooling;
then the recipe's dense layers and its L2 normalisation. Inference (every backend) and training both pool here.
"""

from __future__ import annotations

import torch

from simlm_haystack.recipes import Recipe


def _pool_mode(mode: str, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One of sentence-transformers' pooling modes over right-padded ``hidden``, ``mask`` the tokens to pool."""
    length = hidden.shape[1]
    if mode == "cls":  # the first pooled token (position 0 unless a prompt is left out)
        return hidden[torch.arange(len(hidden)), mask.int().argmax(dim=1)]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "lasttoken":
        found, from_end = mask.flip(1).max(dim=1)
        last = length - 1 - torch.where(found == 0, length - 1, from_end)
        return (hidden * weights)[torch.arange(len(hidden)), last]
    if mode == "max":
        return hidden.masked_fill(weights == 0, float("-inf")).max(dim=1).values
    if mode == "weightedmean":
        weights = weights * torch.arange(1, length + 1, device=hidden.device, dtype=hidden.dtype).view(1, -1, 1)
    total = (hidden * weights).sum(dim=1)
    count = weights.sum(dim=1).clamp(min=1e-9)
    return total / (count.sqrt() if mode == "mean_sqrt_len_tokens" else count)


def pool(
    last_hidden_state: torch.Tensor,
    attention_mask: torch.Tensor,
    recipe: Recipe,
    *,
    skip_tokens: int = 0,
    head: torch.nn.Module | None = None,
) -> torch.Tensor:
    """The recipe's pooling (one mode, or several concatenated) of the last layer over the real tokens, less the
    first ``skip_tokens`` (:func:`prompt_length`); then its dense ``head``; then L2 if the recipe says so."""
    mask = attention_mask
    if skip_tokens:
        mask = mask.clone()
        mask[:, :skip_tokens] = 0
    vectors = [_pool_mode(mode, last_hidden_state, mask) for mode in recipe.pooling_modes]
    pooled = vectors[0] if len(vectors) == 1 else torch.cat(vectors, dim=-1)
    if head is not None:
        pooled = head(pooled)
    if recipe.normalize:
        pooled = torch.nn.functional.normalize(pooled.float(), p=2, dim=-1)
    return pooled


def training_scores_vectors(vectors: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """The vectors a training loss takes dot products of: a cosine recipe's unit vectors even where the recipe
    gives raw ones (sentence-transformers checkpoints without ``Normalize``), so that training optimises the
    similarity the collection searches by."""
    if recipe.similarity == "cosine" and not recipe.normalize:
        return torch.nn.functional.normalize(vectors.float(), p=2, dim=-1)
    return vectors
