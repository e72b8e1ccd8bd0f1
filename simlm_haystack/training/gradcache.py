"""GradCache (Gao et al., 2021): the gradients of a large contrastive batch in the memory of a chunk.

Embed every chunk without a graph, take the loss's gradient w.r.t. the embeddings, then on
``backward()`` embed each chunk again with a graph and push its slice of that gradient through.
The second forward replays each chunk's random state, so dropout draws the same masks as the first,
and re-enters the first's autocast (``backward()`` runs outside the Trainer's bf16 context), so the
gradients are those of the batch embedded chunk by chunk. The Trainer's ``backward()`` reaches the
second pass through a hook on the returned loss, as in sentence-transformers' cached losses.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence

import torch
from torch.utils.checkpoint import get_device_states, set_device_states

Features = dict[str, torch.Tensor]
Embed = Callable[[Features], torch.Tensor]
LossOnEmbeddings = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


class RandomState:
    """The RNG state (CPU and the tensors' devices) when created; entering restores it for the block
    and leaves the outer state as it was afterwards (sentence-transformers' ``RandContext``)."""

    def __init__(self, *tensors: torch.Tensor) -> None:
        self.cpu_state = torch.get_rng_state()
        self.devices, self.device_states = get_device_states(*tensors)

    def __enter__(self) -> None:
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        set_device_states(self.devices, self.device_states)

    def __exit__(self, *exc: object) -> None:
        self._fork.__exit__(*exc)


def padded_row_chunks(features: Features, size: int) -> Iterator[Features]:
    """``size`` rows at a time of a right-padded batch, each cut to its own longest row."""
    for start in range(0, len(features["attention_mask"]), size):
        piece = {name: tensor[start : start + size] for name, tensor in features.items()}
        width = int(piece["attention_mask"].sum(dim=1).max())
        if not piece["attention_mask"][:, width:].any():
            piece = {name: tensor[:, :width] for name, tensor in piece.items()}
        yield piece


def gradcache_loss(
    embed: Embed,
    loss_on_embeddings: LossOnEmbeddings,
    queries: Features,
    passages: Features,
    teacher_scores: torch.Tensor | None,
    chunk_size: int,
) -> torch.Tensor:
    """The loss of the batch, embedded ``chunk_size`` texts at a time; calling ``backward()`` on it
    accumulates the weights' gradients chunk by chunk (same as one backward through the whole batch)."""
    sides, states, embeddings = (queries, passages), [], []
    device = queries["input_ids"].device.type
    autocast = (device, torch.get_autocast_dtype(device), torch.is_autocast_enabled(device))
    with torch.no_grad():
        for features in sides:
            side_states, side_embeddings = [], []
            for piece in padded_row_chunks(features, chunk_size):
                side_states.append(RandomState(*piece.values()))
                side_embeddings.append(embed(piece))
            states.append(side_states)
            embeddings.append(torch.cat(side_embeddings).requires_grad_())
    with torch.enable_grad():
        loss = loss_on_embeddings(embeddings[0], embeddings[1], teacher_scores)
        gradients = torch.autograd.grad(loss, embeddings)
    surrogate = loss.detach().requires_grad_()
    surrogate.register_hook(
        functools.partial(_backward_by_chunk, embed, sides, states, gradients, chunk_size, autocast)
    )
    return surrogate


def _backward_by_chunk(
    embed: Embed,
    sides: Sequence[Features],
    states: Sequence[Sequence[RandomState]],
    gradients: Sequence[torch.Tensor],
    chunk_size: int,
    autocast: tuple[str, torch.dtype, bool],
    grad_output: torch.Tensor,
) -> None:
    device, dtype, enabled = autocast
    with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
        for features, side_states, gradient in zip(sides, states, gradients, strict=True):
            offset = 0
            for piece, state in zip(padded_row_chunks(features, chunk_size), side_states, strict=True):
                with state:
                    embedded = embed(piece)
                part = gradient[offset : offset + len(embedded)] * grad_output
                (embedded * part).sum().backward()
                offset += len(embedded)
