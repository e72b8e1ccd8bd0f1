"""In-batch negatives across processes: every device's embeddings gathered, with gradients.

Under ``torchrun`` each process embeds its own batch. Gathered, every process scores the whole
global batch, so each query has every device's passages as negatives, as on one device with the
global batch. Every process computes the same global loss; the gather's backward sums the
gradients that all processes send back to a process's own embeddings (``world_size`` times the
global loss's gradient), and DistributedDataParallel averages the weights' gradients over the
processes: the weights get exactly the global batch's gradient. (sentence-transformers'
``MultipleNegativesRankingLoss(gather_across_devices=True)`` does the same with each process
scoring only its own queries; scoring all of them lets every loss here work unchanged.)
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as distributed_functional


def world_size() -> int:
    """Processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor`` concatenated along the first dimension, in rank order, with
    gradients flowing back to each process's own rows. Processes may hold different numbers of rows
    (the last batch of an epoch): rows are padded for the collective and the padding cut away."""
    if world_size() == 1:
        return tensor
    rows = torch.tensor([len(tensor)], device=tensor.device)
    counts = [torch.zeros_like(rows) for _ in range(world_size())]
    dist.all_gather(counts, rows)
    sizes = [int(count) for count in counts]
    padded = torch.nn.functional.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, max(sizes) - len(tensor)))
    pieces = distributed_functional.all_gather(padded)
    return torch.cat([piece[:size] for piece, size in zip(pieces, sizes, strict=True)])


def gather_batch(
    query_embeddings: torch.Tensor, passage_embeddings: torch.Tensor, teacher_scores: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The global batch: queries, passages (still one group per query, in query order) and teacher scores."""
    return (
        all_gather_with_grad(query_embeddings),
        all_gather_with_grad(passage_embeddings),
        None if teacher_scores is None else all_gather_with_grad(teacher_scores),
    )
