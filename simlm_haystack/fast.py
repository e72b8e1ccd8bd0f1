"""Inference-only speed-ups that keep the maths of the reference forward pass.

* :func:`cls_forward`: for [CLS]-pooled recipes the last transformer layer is computed for the
  [CLS] position only (keys and values still come from every token). Only row 0 of the last
  layer is ever read, so the result is the same up to float rounding (~1e-6) and the last layer
  costs ``1 / sequence length`` of its full price. BERT (SimLM, BGE) and DistilBERT (TAS-B) are
  known; any other architecture gets ``None`` and the caller runs the full forward.
* :func:`native_bf16`: whether this CPU multiplies bf16 in hardware. Without it (e.g. AMD Zen 3,
  AVX2 only) oneDNN emulates bf16 and a bf16 matmul is several times *slower* than fp32.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch import nn
from transformers import BertModel, DistilBertModel, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask


@cache
def native_bf16() -> bool:
    """True when the CPU has bf16 matmul instructions (AVX-512 BF16 or AMX), so bf16 autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: trust oneDNN's own check
        return bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)())
    return "avx512_bf16" in flags or "amx_bf16" in flags


@dataclass(frozen=True)
class _PostNormBlock:
    """The modules of one post-LayerNorm encoder layer, named by their role, whatever the family."""

    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attention_out: nn.Linear
    attention_norm: nn.LayerNorm
    ffn_in: nn.Linear
    activation: nn.Module
    ffn_out: nn.Linear
    output_norm: nn.LayerNorm
    num_heads: int


def _last_block(model: PreTrainedModel) -> _PostNormBlock | None:
    # Exact types only: a subclass may change the layer, and then the full forward is the safe path.
    if type(model) is BertModel:
        config = model.config
        if config.is_decoder or getattr(config, "position_embedding_type", "absolute") != "absolute":
            return None
        layer = model.encoder.layer[-1]
        return _PostNormBlock(
            query=layer.attention.self.query,
            key=layer.attention.self.key,
            value=layer.attention.self.value,
            attention_out=layer.attention.output.dense,
            attention_norm=layer.attention.output.LayerNorm,
            ffn_in=layer.intermediate.dense,
            activation=layer.intermediate.intermediate_act_fn,
            ffn_out=layer.output.dense,
            output_norm=layer.output.LayerNorm,
            num_heads=config.num_attention_heads,
        )
    if type(model) is DistilBertModel:
        layer = model.transformer.layer[-1]
        return _PostNormBlock(
            query=layer.attention.q_lin,
            key=layer.attention.k_lin,
            value=layer.attention.v_lin,
            attention_out=layer.attention.out_lin,
            attention_norm=layer.sa_layer_norm,
            ffn_in=layer.ffn.lin1,
            activation=layer.ffn.activation,
            ffn_out=layer.ffn.lin2,
            output_norm=layer.output_layer_norm,
            num_heads=model.config.n_heads,
        )
    return None


def supports_cls_forward(model: PreTrainedModel) -> bool:
    """Whether :func:`cls_forward` knows this architecture."""
    return _last_block(model) is not None


def _first_token_of_last_layer(
    block: _PostNormBlock, hidden: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """The last layer's output at position 0: its query against every token's key and value."""
    batch, length, width = hidden.shape
    head_dim = width // block.num_heads
    first = hidden[:, :1]
    query = block.query(first).view(batch, 1, block.num_heads, head_dim).transpose(1, 2)
    key = block.key(hidden).view(batch, length, block.num_heads, head_dim).transpose(1, 2)
    value = block.value(hidden).view(batch, length, block.num_heads, head_dim).transpose(1, 2)
    # True = attend; padding keys are masked out exactly as the model's own mask does.
    keep = attention_mask.bool()[:, None, None, :]
    context = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=keep, scale=head_dim**-0.5)
    context = context.transpose(1, 2).reshape(batch, 1, width)
    attended = block.attention_norm(block.attention_out(context) + first)
    output = block.output_norm(block.ffn_out(block.activation(block.ffn_in(attended))) + attended)
    return output[:, 0]


def cls_forward(model: PreTrainedModel, features: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The last layer's [CLS] vector, shape (batch, hidden); ``None`` if the model is not a known one.

    Embeddings and all but the last layer run through the model's own modules, with the mask the
    model itself would build; only the last layer is written out here. Inference only (eval mode:
    no dropout).
    """
    block = _last_block(model)
    if block is None:
        return None
    attention_mask = features["attention_mask"]
    if type(model) is BertModel:
        hidden = model.embeddings(input_ids=features["input_ids"], token_type_ids=features.get("token_type_ids"))
        layers = model.encoder.layer
    else:
        hidden = model.embeddings(features["input_ids"])
        layers = model.transformer.layer
    mask = create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)
    for layer in layers[:-1]:
        hidden = layer(hidden, mask)
    return _first_token_of_last_layer(block, hidden, attention_mask)
