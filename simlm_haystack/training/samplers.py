"""Batch samplers: which queries share a batch, and which positive and negatives each one uses.

A sampler yields lists of :class:`~simlm_haystack.training.data.Draw`; every choice comes from a
generator seeded with ``(seed, epoch)``, so an epoch is the same whether or not training was
interrupted and resumed inside it (the Trainer calls ``set_epoch`` and skips the batches done).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from simlm_haystack.training.data import Draw, TrainingExample


def kmeans(vectors: torch.Tensor, n_clusters: int, *, iterations: int = 25, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means with k-means++ seeding; returns each vector's cluster (empty clusters are dropped
    from the numbering, so labels are 0..k'-1)."""
    generator = torch.Generator().manual_seed(seed)
    vectors = vectors.float()
    n_clusters = min(n_clusters, len(vectors))
    centroids = vectors[torch.randint(len(vectors), (1,), generator=generator)]
    for _ in range(1, n_clusters):
        distances = torch.cdist(vectors, centroids).min(dim=1).values ** 2
        if distances.sum() <= 0:
            break
        centroids = torch.cat([centroids, vectors[torch.multinomial(distances, 1, generator=generator)]])
    for _ in range(iterations):
        labels = torch.cdist(vectors, centroids).argmin(dim=1)
        updated = torch.stack(
            [vectors[labels == k].mean(0) if (labels == k).any() else centroids[k] for k in range(len(centroids))]
        )
        if torch.allclose(updated, centroids):
            break
        centroids = updated
    labels = torch.cdist(vectors, centroids).argmin(dim=1)
    return torch.unique(labels, return_inverse=True)[1]


class ShuffledBatchSampler(Sampler[list[Draw]]):
    """Random batches; each query gets a random positive and ``n_negatives`` random hard negatives."""

    def __init__(
        self, examples: Sequence[TrainingExample], batch_size: int, *, n_negatives: int = 1, seed: int = 0
    ) -> None:
        self.examples = examples
        self.queries_per_batch = batch_size
        # Read by accelerate to shard batches between processes: every batch but the last has this size.
        self.batch_size: int | None = batch_size
        self.n_negatives = n_negatives
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch])

    def _batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        order = rng.permutation(len(self.examples))
        return [order[start : start + self.queries_per_batch] for start in range(0, len(order), self.queries_per_batch)]

    def _negatives(self, rng: np.random.Generator, example: TrainingExample, positive: int) -> tuple[int, ...]:
        count = len(example.negatives)
        if self.n_negatives == 0 or count == 0:
            return ()
        # Too few negatives: repeat some rather than change the group size mid-batch.
        return tuple(int(i) for i in rng.choice(count, self.n_negatives, replace=count < self.n_negatives))

    def draw(self, rng: np.random.Generator, index: int) -> Draw:
        example = self.examples[index]
        positive = int(rng.integers(len(example.positives)))
        return Draw(int(index), positive, self._negatives(rng, example, positive))

    def __iter__(self) -> Iterator[list[Draw]]:
        rng = self._generator()
        for batch in self._batches(rng):
            yield [self.draw(rng, index) for index in batch]

    def __len__(self) -> int:
        return math.ceil(len(self.examples) / self.queries_per_batch)


class TasBalancedBatchSampler(ShuffledBatchSampler):
    """TAS-Balanced (Hofstätter et al., 2021): the queries of a batch come from one k-means cluster of
    the query embeddings; with teacher scores, each negative comes from a margin bin drawn uniformly
    among the bins the query has, so easy and hard pairs are equally likely whatever their counts.

    Margins are ``teacher(q, p+) - teacher(q, p-)``, binned into ``n_margin_bins`` equal-width bins
    over the range of all margins in the training set.
    """

    def __init__(
        self,
        examples: Sequence[TrainingExample],
        batch_size: int,
        query_embeddings: torch.Tensor | np.ndarray,
        *,
        n_clusters: int,
        n_negatives: int = 1,
        n_margin_bins: int = 10,
        seed: int = 0,
    ) -> None:
        super().__init__(examples, batch_size, n_negatives=n_negatives, seed=seed)
        # A cluster's last batch is short, anywhere in the epoch: accelerate must shard variable-size
        # batches (None), or it drops every pair of batches that ends on a short one.
        self.batch_size = None
        self.clusters = kmeans(torch.as_tensor(np.asarray(query_embeddings)), n_clusters, seed=seed).numpy()
        self.use_margins = n_negatives > 0 and all(example.has_teacher_scores for example in examples)
        if self.use_margins:
            margins = np.array(
                [p.score - n.score for e in examples for p in e.positives for n in e.negatives], dtype=np.float64
            )
            self.bin_edges = np.linspace(margins.min(), margins.max(), n_margin_bins + 1)

    def margin_bins(self, example: TrainingExample, positive: int) -> np.ndarray:
        """Each negative's margin bin (0..n_margin_bins-1) against the positive."""
        margins = np.array([example.positives[positive].score - n.score for n in example.negatives])
        return np.clip(np.searchsorted(self.bin_edges, margins, side="right") - 1, 0, len(self.bin_edges) - 2)

    def _negatives(self, rng: np.random.Generator, example: TrainingExample, positive: int) -> tuple[int, ...]:
        if not self.use_margins:
            return super()._negatives(rng, example, positive)
        bins = self.margin_bins(example, positive)
        present = np.unique(bins)
        chosen = []
        for _ in range(self.n_negatives):
            in_bin = np.flatnonzero(bins == rng.choice(present))
            chosen.append(int(rng.choice(in_bin)))
        return tuple(chosen)

    def _batches(self, rng: np.random.Generator) -> list[np.ndarray]:
        batches = []
        for cluster in np.unique(self.clusters):
            members = rng.permutation(np.flatnonzero(self.clusters == cluster))
            size = self.queries_per_batch
            batches += [members[start : start + size] for start in range(0, len(members), size)]
        return [batches[i] for i in rng.permutation(len(batches))]

    def __len__(self) -> int:
        counts = [int((self.clusters == cluster).sum()) for cluster in np.unique(self.clusters)]
        return sum(math.ceil(count / self.queries_per_batch) for count in counts)
