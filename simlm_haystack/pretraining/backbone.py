"""The few places pre-training reaches inside an encoder: its embeddings, its layers, its masked-LM head.

Known families: BERT (BERT, MiniLM, SimLM, E5, BGE) and DistilBERT (TAS-B). The encoder is loaded
as its ``*ForMaskedLM`` class. Where the checkpoint carries a masked-LM head (bert-base-uncased), it
is used as it is; where it does not (sentence-transformers checkpoints such as all-MiniLM-L6-v2),
Transformers initialises the head as BERT does: the output projection is *tied to the word
embeddings* (so from the first step a hidden state scores tokens by similarity to their embeddings),
its bias is zero, the transform's dense layer is drawn from N(0, initializer_range) and its LayerNorm
is the identity. Only the encoder proper (``base``) is ever saved for retrieval.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForMaskedLM,
    AutoTokenizer,
    BertForMaskedLM,
    DistilBertForMaskedLM,
    ElectraForMaskedLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaForMaskedLM,
)
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import logging as transformers_logging

from simlm_haystack.errors import ModelLoadError, SettingsError
from simlm_haystack.models import _from_pretrained, local_model_path
from simlm_haystack.pretraining.corpus import one_line as _one_line

logger = logging.getLogger(__name__)

KNOWN = (BertForMaskedLM, DistilBertForMaskedLM)

#: ``(batch, head, query position, key position) -> attend?``, as Transformers' mask functions take it.
MaskFunction = Callable[[int, int, int, int], bool]


class Backbone:
    """A ``*ForMaskedLM`` model read through one interface, whatever its family."""

    def __init__(self, masked_lm: PreTrainedModel) -> None:
        if type(masked_lm) not in KNOWN:
            raise ModelLoadError(
                f"Pre-training knows BERT and DistilBERT encoders, not {type(masked_lm).__name__} "
                f"(model type {masked_lm.config.model_type!r})"
            )
        self.masked_lm = masked_lm
        self.is_bert = isinstance(masked_lm, BertForMaskedLM)

    @property
    def base(self) -> PreTrainedModel:
        """The encoder proper: what is saved, and what the embedders load."""
        return self.masked_lm.base_model

    @property
    def layers(self) -> nn.ModuleList:
        return self.base.encoder.layer if self.is_bert else self.base.transformer.layer

    @property
    def embeddings(self) -> nn.Module:
        """Token, position (and token type) embeddings: the input of the first layer."""
        return self.base.embeddings

    def freeze(self, *, embeddings: bool = False, layers: int = 0) -> None:
        """Stop training the embeddings and/or the first ``layers`` layers (the optimiser skips them).

        A masked-LM head tied to the word embeddings is frozen with them: it is the same tensor.
        """
        if layers > len(self.layers):
            raise SettingsError(f"freeze_layers is {layers}, but the encoder has only {len(self.layers)} layers")
        frozen = [*([self.embeddings] if embeddings else []), *self.layers[:layers]]
        for module in frozen:
            for parameter in module.parameters():
                parameter.requires_grad_(False)

    @property
    def vocab_size(self) -> int:
        return int(self.masked_lm.config.vocab_size)

    def embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Token (+ position, + token type) embeddings, as the encoder's first layer sees them."""
        if self.is_bert:
            return self.base.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        return self.base.embeddings(input_ids)

    def encode(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """The last layer's hidden states (batch, length, hidden)."""
        return self.base(**features, return_dict=True).last_hidden_state

    def attention_mask(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, and_mask_function: MaskFunction | None = None
    ) -> torch.Tensor | None:
        """The mask the layers take, built as the model builds its own (padding, plus an optional pattern)."""
        return create_bidirectional_mask(
            config=self.masked_lm.config,
            inputs_embeds=hidden,
            attention_mask=attention_mask,
            and_mask_function=and_mask_function,
        )

    @staticmethod
    def run_layers(layers: nn.ModuleList, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for layer in layers:
            hidden = layer(hidden, mask)
        return hidden

    def mlm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores over the vocabulary from hidden states, through the masked-LM head."""
        logits = head_logits(self.masked_lm, hidden)
        assert logits is not None  # a known family
        return logits


def head_logits(masked_lm: nn.Module, hidden: torch.Tensor) -> torch.Tensor | None:
    """The masked-LM head of a known family applied to some hidden states (``None`` if the family is unknown).

    Applying the head to chosen positions only saves projecting every position onto the vocabulary.
    """
    if isinstance(masked_lm, BertForMaskedLM):
        return masked_lm.cls(hidden)
    if isinstance(masked_lm, DistilBertForMaskedLM):
        model = masked_lm
        return model.vocab_projector(model.vocab_layer_norm(model.activation(model.vocab_transform(hidden))))
    if isinstance(masked_lm, ElectraForMaskedLM):  # the paper's generator
        return masked_lm.generator_lm_head(masked_lm.generator_predictions(hidden))
    if isinstance(masked_lm, RobertaForMaskedLM):
        return masked_lm.lm_head(hidden)
    return None


def load_masked_lm(model: str | Path, **config: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh, trainable ``*ForMaskedLM`` copy of ``model`` (its head initialised if it has none) and its
    tokenizer; ``config`` overrides the checkpoint's configuration (``num_hidden_layers=2``: its first 2 layers)."""
    source = local_model_path(model)
    verbosity = transformers_logging.get_verbosity()
    # Transformers reports a missing head as a table and, for a tied bias, as a "corrupted" checkpoint;
    # neither is news here (sentence encoders have no head), so say it once, plainly, below.
    transformers_logging.set_verbosity_error()
    try:
        tokenizer = _from_pretrained(AutoTokenizer, source, local_files_only=False)
        masked_lm, info = _from_pretrained(
            AutoModelForMaskedLM, source, local_files_only=False, output_loading_info=True, **config
        )
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"Could not load {str(model)!r} as a masked language model: {_one_line(error)}") from error
    finally:
        transformers_logging.set_verbosity(verbosity)
    prefix = masked_lm.base_model_prefix + "."
    missing = sorted(key for key in info["missing_keys"] if not key.startswith(prefix))
    if missing:
        logger.info(
            "%s has no masked-LM head (%s): initialised, its output projection tied to the word embeddings",
            model,
            ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else ""),
        )
    if not getattr(tokenizer, "is_fast", False):
        raise ModelLoadError(f"Model {model!r} has no fast tokenizer (tokenizer.json); whole-word masking needs one.")
    Backbone(masked_lm)  # an unknown family is an error here, before anything else is done
    return masked_lm, tokenizer


def weights_beside_base(model: str | Path, masked_lm: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Weights the checkpoint's ``AutoModel`` has that the masked LM's base lacks (BERT's pooler, which no
    recipe reads): written with the encoder, so that loading it initialises nothing anew (and says so)."""
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    try:
        full = _from_pretrained(AutoModel, local_model_path(model), local_files_only=False)
    finally:
        transformers_logging.set_verbosity(verbosity)
    base = set(masked_lm.base_model.state_dict())
    return {name: tensor.detach().clone() for name, tensor in full.state_dict().items() if name not in base}


def input_names(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """What the tokenizer returns that the encoder takes (DistilBERT takes no token_type_ids)."""
    accepted = inspect.signature(model.forward).parameters
    return [name for name in tokenizer.model_input_names if name in accepted]
