"""Training losses, one job each, in the shape the trainer calls them.

Every loss takes ``query_embeddings`` (B, d), ``passage_embeddings`` (B * G, d) laid out as one
group per query, ``[positive, negative_1, ..., negative_{G-1}]``, and optionally
``teacher_scores`` (B, G) in the same order. Scores are dot products of the recipe's vectors:
cosine for normalised recipes (SimLM), raw dot for TAS-B.

:data:`LOSSES` maps each loss's name (the trainer's ``loss`` argument, the CLI's ``--loss``) to its
constructor; :func:`build_loss` builds one by name.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _group_size(query_embeddings: torch.Tensor, passage_embeddings: torch.Tensor) -> int:
    queries, passages = len(query_embeddings), len(passage_embeddings)
    if passages % queries:
        raise ValueError(f"{passages} passages cannot be split into groups for {queries} queries")
    return passages // queries


def group_scores(query_embeddings: torch.Tensor, passage_embeddings: torch.Tensor) -> torch.Tensor:
    """(B, G): each query's scores for its own group (positive first)."""
    group = _group_size(query_embeddings, passage_embeddings)
    grouped = passage_embeddings.view(len(query_embeddings), group, -1)
    return torch.einsum("bd,bgd->bg", query_embeddings, grouped)


class InfoNCELoss(nn.Module):
    """Cross-entropy of each query's positive against every passage of the batch (in-batch and hard
    negatives), scores divided by the temperature (SimLM: 0.02 over normalised [CLS]; TAS-B: 1.0)."""

    needs_teacher_scores = False

    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature

    def scores_and_targets(self, query_embeddings: Tensor, passage_embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """(B, B * G) unscaled scores of each query against every passage, and each positive's column."""
        group = _group_size(query_embeddings, passage_embeddings)
        targets = torch.arange(len(query_embeddings), device=query_embeddings.device) * group
        return query_embeddings @ passage_embeddings.T, targets

    def forward(
        self,
        query_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
    ) -> Tensor:
        scores, targets = self.scores_and_targets(query_embeddings, passage_embeddings)
        return F.cross_entropy(scores / self.temperature, targets)


class FullContrastiveLoss(InfoNCELoss):
    """SimLM's full contrastive loss (``full_contrastive_loss``, on by default in SimLM's fine-tuning):
    InfoNCE whose softmax also runs over three more blocks of in-batch scores, all divided by the
    temperature. For query i with positive p_i, the candidates are

    - ``qp``: s(q_i, every passage of the batch) (plain InfoNCE; the target is s(q_i, p_i));
    - ``pq``: s(p_i, q_j) for the other queries j != i;
    - ``qq``: s(q_i, q_j) for the other queries j != i;
    - ``pp``: s(p_i, p_j) for the other queries' positives j != i (hard negatives are not in this block).

    So a positive must be closer to its query than to other queries, and a query closer to its positive
    than to other queries, besides InfoNCE's query-passage ranking.
    """

    def scores_and_targets(self, query_embeddings: Tensor, passage_embeddings: Tensor) -> tuple[Tensor, Tensor]:
        """(B, B * G + 3 B) unscaled scores ``[qp | pq | qq | pp]`` (each block's diagonal, a text
        against itself or its own pair, set to -inf outside ``qp``) and each positive's column."""
        query_to_passage, targets = super().scores_and_targets(query_embeddings, passage_embeddings)
        positives = passage_embeddings[targets]
        itself = torch.eye(len(query_embeddings), dtype=torch.bool, device=query_embeddings.device)
        blocks = [
            query_to_passage,
            (positives @ query_embeddings.T).masked_fill(itself, float("-inf")),
            (query_embeddings @ query_embeddings.T).masked_fill(itself, float("-inf")),
            (positives @ positives.T).masked_fill(itself, float("-inf")),
        ]
        return torch.cat(blocks, dim=1), targets


class _DistillationLoss(nn.Module, abc.ABC):
    """A loss that learns from teacher scores: checks they are there, then :meth:`distill`."""

    needs_teacher_scores = True

    def forward(
        self,
        query_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
    ) -> Tensor:
        if teacher_scores is None:
            raise ValueError(f"{type(self).__name__} needs teacher scores")
        return self.distill(query_embeddings, passage_embeddings, teacher_scores)

    @abc.abstractmethod
    def distill(self, query_embeddings: Tensor, passage_embeddings: Tensor, teacher_scores: Tensor) -> Tensor:
        """The loss, given teacher scores (B, G) in the passages' group order."""


class MarginMSELoss(_DistillationLoss):
    """TAS-B / Hofstätter et al.: MSE between the student's and the teacher's margins
    s(q, p+) - s(q, p-), over each query's own negatives, on raw scores (no temperature)."""

    def distill(self, query_embeddings: Tensor, passage_embeddings: Tensor, teacher_scores: Tensor) -> Tensor:
        student = group_scores(query_embeddings, passage_embeddings)
        if student.shape[1] < 2:
            raise ValueError("MarginMSELoss needs at least one negative per query")
        student_margins = student[:, :1] - student[:, 1:]
        teacher_margins = (teacher_scores[:, :1] - teacher_scores[:, 1:]).to(student.dtype)
        return F.mse_loss(student_margins, teacher_margins)


class KLDistillationLoss(_DistillationLoss):
    """SimLM's distillation: ``contrastive_weight`` x InfoNCE + KL(teacher || student) over each
    query's group, with student scores / t and the teacher's scores / ``teacher_temperature``."""

    def __init__(self, temperature: float, contrastive_weight: float = 0.2, teacher_temperature: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.contrastive_weight = contrastive_weight
        self.teacher_temperature = teacher_temperature
        self.contrastive = InfoNCELoss(temperature)

    def distill(self, query_embeddings: Tensor, passage_embeddings: Tensor, teacher_scores: Tensor) -> Tensor:
        student_log_probs = F.log_softmax(group_scores(query_embeddings, passage_embeddings) / self.temperature, dim=1)
        teacher_log_probs = F.log_softmax(teacher_scores.to(student_log_probs.dtype) / self.teacher_temperature, dim=1)
        kl = F.kl_div(student_log_probs, teacher_log_probs, reduction="batchmean", log_target=True)
        return self.contrastive_weight * self.contrastive(query_embeddings, passage_embeddings) + kl


class PairLoss(nn.Module):
    """PAIR (Ren et al., 2021): ``(1 - alpha) L_query + alpha L_passage``, alpha = 0.1.

    ``L_query`` is InfoNCE. ``L_passage`` is PAIR's passage-centric relation s(q, p+) > s(p+, p-):
    each positive must be closer to its query than to any negative passage of the batch (the other
    queries' positives and every hard negative), all scores divided by the temperature.
    """

    needs_teacher_scores = False

    def __init__(self, temperature: float = 1.0, alpha: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature
        self.alpha = alpha
        self.query_centric = InfoNCELoss(temperature)

    def passage_centric(self, query_embeddings: torch.Tensor, passage_embeddings: torch.Tensor) -> torch.Tensor:
        group = _group_size(query_embeddings, passage_embeddings)
        positive_rows = torch.arange(len(query_embeddings), device=passage_embeddings.device) * group
        positives = passage_embeddings[positive_rows]
        to_query = (positives * query_embeddings).sum(-1, keepdim=True)
        # A positive is not its own negative.
        itself = F.one_hot(positive_rows, len(passage_embeddings)).bool()
        to_passages = (positives @ passage_embeddings.T).masked_fill(itself, float("-inf"))
        logits = torch.cat([to_query, to_passages], dim=1) / self.temperature
        return F.cross_entropy(logits, torch.zeros(len(positives), dtype=torch.long, device=logits.device))

    def forward(
        self,
        query_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
    ) -> Tensor:
        return (1 - self.alpha) * self.query_centric(query_embeddings, passage_embeddings) + self.alpha * (
            self.passage_centric(query_embeddings, passage_embeddings)
        )


@dataclass(frozen=True)
class LossOptions:
    """What the registry's constructors may read: the recipe's temperature and each loss's own settings."""

    temperature: float = 1.0
    kl_contrastive_weight: float = 0.2
    pair_alpha: float = 0.1


#: Every loss by name: a constructor from :class:`LossOptions`.
LOSSES: dict[str, Callable[[LossOptions], nn.Module]] = {
    "infonce": lambda options: InfoNCELoss(options.temperature),
    "full-contrastive": lambda options: FullContrastiveLoss(options.temperature),
    "margin-mse": lambda options: MarginMSELoss(),
    "kl": lambda options: KLDistillationLoss(options.temperature, contrastive_weight=options.kl_contrastive_weight),
    "pair": lambda options: PairLoss(options.temperature, alpha=options.pair_alpha),
}


def build_loss(name: str, options: LossOptions | None = None) -> nn.Module:
    """The loss registered as ``name`` (see :data:`LOSSES`), built with ``options``."""
    if name not in LOSSES:
        raise ValueError(f"Unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
    return LOSSES[name](options or LossOptions())
