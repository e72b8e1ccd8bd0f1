"""Query-as-context pre-training (Wu et al., 2023; caskcsg/ir ``cotmae-qc``), both variants.

* **contrastive** (coCondenser + query-as-context): each passage and its query are whole-word masked
  (15%, BERT's 80/10/10) and encoded; their vectors are pooled as the recipe serves them, and each of
  the 2B texts of a batch must pick its partner out of the other 2B - 1 (in-batch negatives; the
  reference's symmetric loss), plus the encoder's masked-LM loss over both. GradCache
  (``gradcache_chunk_size``) makes large batches fit: the same loss and gradients, one chunk in memory.
* **generative** (CoT-MAE + query-as-context): the passage is masked at 30% (masked-LM loss on it),
  and a one-layer decoder generates the query from the passage's last-layer [CLS] alone: its input is
  that [CLS] followed by the query's token embeddings, under a causal mask that also limits each
  token to the [CLS] and the ``attention_window`` tokens up to itself (cotmae-qc's ``attn_window 3``).

Departures from the reference, on purpose: the contrastive vectors are the recipe's (for SimLM:
L2-normalised [CLS], scores divided by the recipe's temperature, 0.02) so what is pre-trained is
what is served, where coCondenser takes raw [CLS] dot products at temperature 1; coCondenser's
extra Condenser head (2 layers on a middle layer) is left out, because it comes with the Condenser
checkpoint the paper starts from. The generative decoder is a copy of the encoder's last layer under
the causal mask, where cotmae-qc uses a randomly initialised GPT-2 block: one layer type for every
decoder here, and a warm start for short runs.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from simlm_haystack.errors import SettingsError
from simlm_haystack.pooling import pool, training_scores_vectors
from simlm_haystack.pretraining.backbone import Backbone
from simlm_haystack.pretraining.masking import IGNORE, WholeWordMasker
from simlm_haystack.pretraining.pairs import PseudoQueryPair
from simlm_haystack.pretraining.rlm import token_cross_entropy
from simlm_haystack.recipes import Recipe
from simlm_haystack.training.gradcache import RandomState, padded_row_chunks

VARIANTS = ("contrastive", "generative")


class QueryAsContextCollator:
    """Batches ``{"passage": {... masked, "labels"}, "query": {...}}``; each item draws its (query, passage)
    pair (one of its queries, or a sentence or span cut out of it: see :class:`.pairs.PseudoQueryPair`)."""

    def __init__(self, masker: WholeWordMasker, *, variant: str, mask_rate: float) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.masker = masker
        self.variant = variant
        self.mask_rate = mask_rate

    def __call__(self, items: list[tuple[PseudoQueryPair, np.random.Generator]]) -> dict[str, Any]:
        rngs = [rng for _, rng in items]
        drawn = [pair.draw(rng) for pair, rng in items]
        queries = [query for query, _ in drawn]
        passages = [passage for _, passage in drawn]
        passage = self.masker.encode("document", [p.text for p in passages], [p.title for p in passages])
        query = self.masker.encode("query", queries)
        return {
            "passage": self.masker.masked_lm_inputs(passage, self.mask_rate, rngs),
            "query": (
                self.masker.masked_lm_inputs(query, self.mask_rate, rngs)
                if self.variant == "contrastive"
                else self.masker.features(query)
            ),
        }


class QueryAsContextModel(nn.Module):
    """The encoder (with its masked-LM head) and, for the generative variant, the query decoder.

    :param masked_lm: The encoder as its ``*ForMaskedLM`` class.
    :param recipe: How vectors are pooled (contrastive variant) and the default temperature.
    :param variant: ``"contrastive"`` or ``"generative"``.
    :param temperature: Contrastive scores are divided by it (default: the recipe's).
    :param decoder_layers: Depth of the generative decoder (cotmae-qc: 1).
    :param attention_window: Each query token sees the [CLS] and this many tokens up to itself (<= 0: all before it).
    :param gradcache_chunk_size: Contrastive variant: embed this many texts at a time (GradCache).
    """

    accepts_loss_kwargs = False

    def __init__(
        self,
        masked_lm: PreTrainedModel,
        recipe: Recipe,
        *,
        variant: str,
        temperature: float | None = None,
        decoder_layers: int = 1,
        attention_window: int = 3,
        gradcache_chunk_size: int | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
        self.encoder = masked_lm
        self.backbone = Backbone(masked_lm)
        self.recipe = recipe
        self.variant = variant
        self.temperature = temperature or recipe.temperature
        self.attention_window = attention_window
        self.gradcache_chunk_size = gradcache_chunk_size
        if variant == "generative":
            layers = self.backbone.layers
            if not 0 < decoder_layers <= len(layers):
                raise SettingsError(f"decoder_layers must be within 1..{len(layers)}, not {decoder_layers}")
            self.decoder = nn.ModuleList(copy.deepcopy(layer) for layer in layers[-decoder_layers:])

    def forward(self, passage: dict[str, torch.Tensor], query: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.variant == "generative":
            return self._generative(passage, query)
        if self.gradcache_chunk_size:
            return self._contrastive_gradcache(passage, query, self.gradcache_chunk_size)
        return self._contrastive(passage, query)

    # ---- pieces ----

    def _encode(self, features: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(pooled vector, summed masked-LM loss, labelled token count) of one masked batch."""
        inputs = {name: value for name, value in features.items() if name != "labels"}
        hidden = self.backbone.encode(inputs)
        labels = features["labels"]
        selected = labels != IGNORE
        logits = self.backbone.mlm_logits(hidden[selected]).float()
        mlm_sum = F.cross_entropy(logits, labels[selected], reduction="sum")
        vectors = training_scores_vectors(pool(hidden, features["attention_mask"], self.recipe).float(), self.recipe)
        return vectors, mlm_sum, selected.sum()

    def contrastive_loss(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors ``[passages; queries]`` (2B, d): each text's partner is the other half's same row;
        every other text of the batch is a negative (coCondenser's symmetric in-batch loss)."""
        count = len(vectors)
        scores = vectors @ vectors.T / self.temperature
        scores = scores.masked_fill(torch.eye(count, dtype=torch.bool, device=scores.device), float("-inf"))
        targets = (torch.arange(count, device=scores.device) + count // 2) % count
        return F.cross_entropy(scores, targets)

    def generation_loss(self, encoder_hidden: torch.Tensor, query: dict[str, torch.Tensor]) -> torch.Tensor:
        """Cross-entropy of generating each query token after the first from the [CLS] and the tokens before it."""
        ids, attention_mask = query["input_ids"], query["attention_mask"]
        hidden = torch.cat([encoder_hidden[:, :1], self.backbone.embed(ids)[:, 1:]], dim=1)
        window = self.attention_window

        def causal_window(batch: Any, head: Any, q: Any, k: Any) -> Any:
            allowed = k <= q
            return allowed & ((k == 0) | (q - k < window)) if window > 0 else allowed

        mask = self.backbone.attention_mask(hidden, attention_mask, and_mask_function=causal_window)
        hidden = self.backbone.run_layers(self.decoder, hidden, mask)
        labels = ids.masked_fill(attention_mask == 0, IGNORE)[:, 1:]
        return token_cross_entropy(self.backbone, hidden[:, :-1], labels)

    # ---- variants ----

    def _generative(self, passage: dict[str, torch.Tensor], query: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = {name: value for name, value in passage.items() if name != "labels"}
        hidden = self.backbone.encode(inputs)
        mlm_loss = token_cross_entropy(self.backbone, hidden, passage["labels"])
        generation_loss = self.generation_loss(hidden, query)
        return {
            "loss": mlm_loss + generation_loss,
            "mlm_loss": mlm_loss.detach(),
            "generation_loss": generation_loss.detach(),
        }

    def _contrastive(self, passage: dict[str, torch.Tensor], query: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        passage_vectors, passage_sum, passage_count = self._encode(passage)
        query_vectors, query_sum, query_count = self._encode(query)
        contrastive = self.contrastive_loss(torch.cat([passage_vectors, query_vectors]))
        mlm_loss = (passage_sum + query_sum) / (passage_count + query_count).clamp(min=1)
        return {"loss": contrastive + mlm_loss, "contrastive_loss": contrastive.detach(), "mlm_loss": mlm_loss.detach()}

    def _contrastive_gradcache(
        self, passage: dict[str, torch.Tensor], query: dict[str, torch.Tensor], chunk_size: int
    ) -> dict[str, torch.Tensor]:
        """GradCache (Gao et al., 2021): vectors without a graph, the loss's gradient w.r.t. them, then on
        ``backward()`` each chunk again with its graph, pushing that gradient (and its share of the
        masked-LM loss) through. The Trainer's ``backward()`` reaches the second pass through a hook."""
        sides = (passage, query)
        states: list[list[RandomState]] = []
        vectors, mlm_sum, count = [], torch.zeros(()), torch.zeros((), dtype=torch.long)
        with torch.no_grad():
            for features in sides:
                side_states = []
                for piece in padded_row_chunks(features, chunk_size):
                    side_states.append(RandomState(*piece.values()))
                    piece_vectors, piece_sum, piece_count = self._encode(piece)
                    vectors.append(piece_vectors)
                    mlm_sum, count = mlm_sum + piece_sum.cpu(), count + piece_count.cpu()
                states.append(side_states)
        everything = torch.cat(vectors).requires_grad_()
        with torch.enable_grad():
            contrastive = self.contrastive_loss(everything)
            (gradient,) = torch.autograd.grad(contrastive, everything)
        count = count.clamp(min=1)
        mlm_loss = (mlm_sum / count).to(contrastive.device)
        surrogate = (contrastive.detach() + mlm_loss).requires_grad_()
        # backward() runs outside the Trainer's autocast: the second pass re-enters the first pass's precision.
        device = everything.device.type
        precision = (device, torch.get_autocast_dtype(device), torch.is_autocast_enabled(device))
        surrogate.register_hook(
            functools.partial(self._gradcache_backward, sides, states, gradient, count, chunk_size, precision)
        )
        return {"loss": surrogate, "contrastive_loss": contrastive.detach(), "mlm_loss": mlm_loss}

    def _gradcache_backward(
        self,
        sides: Sequence[dict[str, torch.Tensor]],
        states: Sequence[Sequence[RandomState]],
        gradient: torch.Tensor,
        count: torch.Tensor,
        chunk_size: int,
        precision: tuple[str, torch.dtype, bool],
        grad_output: torch.Tensor,
    ) -> None:
        offset = 0
        device, dtype, enabled = precision
        with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
            for features, side_states in zip(sides, states, strict=True):
                for piece, state in zip(padded_row_chunks(features, chunk_size), side_states, strict=True):
                    with state:
                        piece_vectors, piece_sum, _ = self._encode(piece)
                    part = gradient[offset : offset + len(piece_vectors)]
                    offset += len(piece_vectors)
                    surrogate = (piece_vectors * part).sum() + piece_sum / count.to(piece_sum.device)
                    (surrogate * grad_output).backward()
