"""Models used for inference while evaluating or mining: dropout off, the caller's mode restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from simlm_haystack.components.base import DualEncoderComponentBase


@contextmanager
def eval_mode(*embedders: DualEncoderComponentBase) -> Iterator[None]:
    """Warm the embedders up and put their models in eval mode; each model's own mode comes back on exit.

    A trainer hands over the model it is training, in training mode: its dropout would make the
    vectors random. Embedders that share one model are counted once.
    """
    models: dict[int, torch.nn.Module] = {}
    for embedder in embedders:
        embedder.warm_up()
        assert embedder.encoder is not None
        models[id(embedder.encoder.loaded.model)] = embedder.encoder.loaded.model
    was_training = {key: model.training for key, model in models.items()}
    for model in models.values():
        model.eval()
    try:
        yield
    finally:
        for key, model in models.items():
            model.train(was_training[key])
