"""Training losses, one job each, in the shape the trainer calls them.

Every loss takes ``query_embeddings`` (B, d), ``passage_embeddings`` (B * G, d) laid out as one
group per query, ``[positive, negative_1, ..., negative_{G-1}]``, and optionally
``teacher_scores`` (B, G) in the same order. Scores are dot products of the recipe's vectors:
cosine for normalised recipes (SimLM), raw dot for TAS-B.
"""

from __future__ import annotations

import abc

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

    def forward(
        self,
        query_embeddings: torch.Tensor,
        passage_embeddings: torch.Tensor,
        teacher_scores: torch.Tensor | None = None,
    ) -> Tensor:
        group = _group_size(query_embeddings, passage_embeddings)
        scores = query_embeddings @ passage_embeddings.T / self.temperature
        targets = torch.arange(len(query_embeddings), device=scores.device) * group
        return F.cross_entropy(scores, targets)


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


LOSSES = ("infonce", "margin-mse", "kl", "pair")


def build_loss(name: str, temperature: float, **options: float) -> nn.Module:
    """A loss by name; ``temperature`` is the recipe's."""
    if name == "infonce":
        return InfoNCELoss(temperature)
    if name == "margin-mse":
        return MarginMSELoss()
    if name == "kl":
        return KLDistillationLoss(temperature, **options)
    if name == "pair":
        return PairLoss(temperature, **options)
    raise ValueError(f"Unknown loss {name!r}; known losses: {', '.join(LOSSES)}")
