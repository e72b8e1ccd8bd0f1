"""Digests of what decides a model's vectors: its weights and its tokenizer.

The weights are hashed, not the model's name: a checkpoint updated in place (or trained in memory)
gets a new fingerprint. Used wherever stored or cached vectors must be known to come from the same
model: an evaluation index to reuse, a collection's record of the encoder that filled it, an
exported ONNX graph.
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from itertools import chain
from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

#: Weights no encoder reads: vectors are pooled from ``last_hidden_state``, never from BERT's pooler. A
#: checkpoint saved without one (SimLM-shaped ones, the test checkpoints) gets a randomly initialised pooler
#: at every load, which would give the same weights a new fingerprint in every process.
UNREAD_WEIGHTS: tuple[str, ...] = ("pooler.",)


def _update_with_weights(digest: Any, model: torch.nn.Module) -> None:
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(UNREAD_WEIGHTS):
            continue
        tensor = tensor.detach().cpu().contiguous()
        if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16; the bits are what matter
            tensor = tensor.view(torch.int16)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(memoryview(tensor.numpy()).cast("B"))


def _update_with_tokenizer(digest: Any, tokenizer: PreTrainedTokenizerBase) -> None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:  # a slow tokenizer: its vocabulary is what it has
        digest.update(json.dumps(tokenizer.get_vocab(), sort_keys=True).encode())
        return
    state = json.loads(backend.to_str())
    # Every tokenizer call sets these two to its own arguments; they say nothing about the model.
    state.pop("truncation", None)
    state.pop("padding", None)
    digest.update(json.dumps(state, sort_keys=True).encode())


def model_fingerprint(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> str:
    """A 32-hex-digit digest of the weights (names, dtypes, shapes, bits; not :data:`UNREAD_WEIGHTS`) and the
    tokenizer."""
    digest = hashlib.blake2b(digest_size=16)
    _update_with_weights(digest, model)
    _update_with_tokenizer(digest, tokenizer)
    return digest.hexdigest()


def combined_fingerprint(base: str, extra: torch.nn.Module) -> str:
    """``base`` (a model's fingerprint) extended by the weights of ``extra`` (layers that run after it)."""
    digest = hashlib.blake2b(base.encode(), digest_size=16)
    _update_with_weights(digest, extra)
    return digest.hexdigest()


#: Per model: the state its fingerprint was taken in, the tokenizer it was taken with, and the fingerprint.
_fingerprints: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, ...], int, str]] = (
    weakref.WeakKeyDictionary()
)
_fingerprints_lock = threading.Lock()


def _weights_state(model: torch.nn.Module) -> tuple[int, ...]:
    """Where each tensor lives and how often it was changed in place (an optimiser step, ``load_state_dict``
    and ``copy_`` all count; ``tensor.data.copy_`` does not, as it bypasses the version counter)."""
    return tuple(
        value for tensor in chain(model.parameters(), model.buffers()) for value in (tensor.data_ptr(), tensor._version)
    )


def cached_model_fingerprint(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase) -> str:
    """:func:`model_fingerprint`, hashed once per model and computed again only after its weights changed.

    Checking a collection's encoder on every query must not hash hundreds of megabytes each time; a model
    trained in memory between two evaluations still gets a new fingerprint.
    """
    state = _weights_state(model)
    with _fingerprints_lock:
        cached = _fingerprints.get(model)
        if cached is not None and cached[0] == state and cached[1] == id(tokenizer):
            return cached[2]
    fingerprint = model_fingerprint(model, tokenizer)
    with _fingerprints_lock:
        _fingerprints[model] = (state, id(tokenizer), fingerprint)
    return fingerprint
