"""sentence-transformers' ``Dense`` layers, run after pooling exactly as its ``Dense`` module runs them.

Their weights are the checkpoint's (``<path>/model.safetensors`` or ``pytorch_model.bin``); their shapes and
activations are the recipe's :class:`~simlm_haystack.recipes.DenseLayer` data. Only ``torch.nn`` activation
classes are built (sentence-transformers' own rule without ``trust_remote_code``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import torch
from torch import nn

from simlm_haystack.errors import ModelLoadError, RecipeError
from simlm_haystack.recipes import DenseLayer
from simlm_haystack.st_checkpoint.files import CheckpointFiles, HubUnreachableError


def _activation(name: str) -> nn.Module:
    module_name, _, class_name = name.rpartition(".")
    try:
        activation = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError):
        raise RecipeError(f"Dense activation {name!r} does not exist in this torch") from None
    if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
        raise RecipeError(f"Dense activation {name!r} is not a torch.nn.Module class")
    return activation()


class Dense(nn.Module):
    """``activation(linear(x))``, plus ``x`` (or ``residual(x)`` where the sizes differ) with ``use_residual``:
    sentence-transformers' ``Dense.forward``, with its parameter names, so its weights load as they are."""

    def __init__(self, layer: DenseLayer) -> None:
        super().__init__()
        self.layer = layer
        self.linear = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias)
        self.activation_function = _activation(layer.activation)
        if layer.use_residual and layer.in_features != layer.out_features:
            self.residual = nn.Linear(layer.in_features, layer.out_features, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.activation_function(self.linear(x))
        if self.layer.use_residual:
            out = out + (x if self.layer.in_features == self.layer.out_features else self.residual(x))
        return out


def _state_dict(files: CheckpointFiles, path: str) -> dict[str, torch.Tensor]:
    safetensors = files.path(f"{path}/model.safetensors")
    if safetensors is not None:
        from safetensors.torch import load_file

        return load_file(str(safetensors))
    pickled = files.path(f"{path}/pytorch_model.bin")
    if pickled is not None:
        return torch.load(str(pickled), map_location="cpu", weights_only=True)
    raise ModelLoadError(f"{files.model!r} has no weights for its Dense layer in {path!r}")


def load_dense_head(
    files: CheckpointFiles, layers: Sequence[DenseLayer], *, device: str | torch.device = "cpu"
) -> nn.Sequential | None:
    """The recipe's dense layers with the checkpoint's weights, in eval mode on ``device``; ``None`` for none."""
    if not layers:
        return None
    head = nn.Sequential()
    for layer in layers:
        module = Dense(layer)
        try:
            state = _state_dict(files, layer.path)
        except HubUnreachableError as error:
            raise ModelLoadError(f"The Dense layer of {files.model!r} cannot be loaded: {error}") from error
        try:
            module.load_state_dict(state)
        except RuntimeError as error:
            raise ModelLoadError(f"Dense layer {layer.path!r} of {files.model!r} does not fit: {error}") from None
        head.append(module)
    return head.eval().to(device)
