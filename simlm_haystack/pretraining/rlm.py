"""SimLM's replaced language modelling with a representation bottleneck (Wang et al., 2023).

As in unilm ``simlm/src/models/rlm.py``: a frozen generator fills the encoder mask (30% of the
words) and, separately, the decoder mask (50%, a superset); the encoder reads the first corrupted
copy and predicts the original token at *every* position; a shallow decoder (2 layers, copies of
the encoder's last 2) reads the encoder's last-layer [CLS] in place of its own first token, plus the
embeddings of the 50%-corrupted copy, and predicts every original token too. Its only view of the
passage is that [CLS] vector, so the vector must carry the passage. Loss = encoder + decoder (the
generator is frozen: its own MLM loss, weighted 0.2 in the paper's code, is always 0 there).

Two details differ from the reference code, on purpose: the decoder's copy is embedded with its token
types (the reference drops them, so a (title, text) pair reads as one segment there), and the
cross-entropy is taken over real positions only, before the vocabulary projection (same mean, less
memory: padding and special tokens are not projected onto 30k tokens).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from simlm_haystack.errors import SettingsError
from simlm_haystack.pretraining.backbone import Backbone
from simlm_haystack.pretraining.generator import Generator
from simlm_haystack.pretraining.masking import IGNORE


def token_cross_entropy(backbone: Backbone, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the masked-LM head's prediction at each labelled position."""
    selected = labels != IGNORE
    logits = backbone.mlm_logits(hidden[selected])
    return F.cross_entropy(logits.float(), labels[selected])


class ReplacedLanguageModel(nn.Module):
    """Encoder (with its masked-LM head), bottleneck decoder and frozen generator; only the encoder is kept.

    :param masked_lm: The encoder as its ``*ForMaskedLM`` class (see :mod:`.backbone`).
    :param generator: Fills the masked positions (see :mod:`.generator`).
    :param decoder_layers: Depth of the decoder, initialised from the encoder's last layers.
    """

    accepts_loss_kwargs = False  # the Trainer must scale the loss for gradient accumulation itself

    def __init__(self, masked_lm: PreTrainedModel, generator: Generator, *, decoder_layers: int = 2) -> None:
        super().__init__()
        self.encoder = masked_lm
        self.backbone = Backbone(masked_lm)
        if not 0 < decoder_layers <= len(self.backbone.layers):
            raise SettingsError(f"decoder_layers must be within 1..{len(self.backbone.layers)}, not {decoder_layers}")
        self.decoder = nn.ModuleList(copy.deepcopy(layer) for layer in self.backbone.layers[-decoder_layers:])
        self.generator = generator

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        encoder_mask: torch.Tensor,
        decoder_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        encoder_ids = self.generator.replace(input_ids, attention_mask, encoder_mask, **types)
        decoder_ids = self.generator.replace(input_ids, attention_mask, decoder_mask, **types)
        hidden = self.backbone.encode({"input_ids": encoder_ids, "attention_mask": attention_mask, **types})
        encoder_loss = token_cross_entropy(self.backbone, hidden, labels)
        decoder_loss = self.decoder_loss(hidden, decoder_ids, attention_mask, labels, token_type_ids)
        real = labels != IGNORE
        return {
            "loss": encoder_loss + decoder_loss,
            "encoder_loss": encoder_loss.detach(),
            "decoder_loss": decoder_loss.detach(),
            # how many real tokens the generator changed (a generator that copies its input teaches nothing)
            "replaced": ((encoder_ids != input_ids) & real).sum().detach() / real.sum().clamp(min=1),
        }

    def decoder_loss(
        self,
        encoder_hidden: torch.Tensor,
        decoder_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        labels: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The decoder's loss; of the encoder's output it reads the last layer's [CLS] only."""
        embedded = self.backbone.embed(decoder_ids, token_type_ids)
        hidden = torch.cat([encoder_hidden[:, :1], embedded[:, 1:]], dim=1)
        hidden = self.backbone.run_layers(self.decoder, hidden, self.backbone.attention_mask(hidden, attention_mask))
        return token_cross_entropy(self.backbone, hidden, labels)
