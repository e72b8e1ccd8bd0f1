"""A Haystack component that embeds a query as the model was trained to read queries."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import component
from haystack.utils import ComponentDevice, Secret

from simlm_haystack.components.base import (
    HF_TOKEN,
    Backend,
    DualEncoderComponentBase,
    SentenceTransformersPrecision,
    check_batch_size,
    register_short_type,
)
from simlm_haystack.encoding import Precision
from simlm_haystack.recipes import Recipe


@component
class DualEncoderTextEmbedder(DualEncoderComponentBase):
    """Embeds a query string with a dual encoder, exactly as its recipe says.

    ```python
    from simlm_haystack import DualEncoderTextEmbedder

    embedder = DualEncoderTextEmbedder(model="intfloat/simlm-base-msmarco-finetuned")
    embedding = embedder.run("what is the capital of France?")["embedding"]
    ```

    It also takes ``SentenceTransformersTextEmbedder``'s parameters, so that a pipeline YAML written
    with that embedder loads with only its ``type:`` changed (to ``simlm_haystack.DualEncoderTextEmbedder``).
    """

    side = "query"

    def __init__(
        self,
        *,
        model: str,
        recipe: str | Recipe | dict[str, Any] | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = HF_TOKEN,
        precision: Precision | SentenceTransformersPrecision = "exact",
        backend: Backend = "torch",
        local_files_only: bool = False,
        trust_remote_code: bool = False,
        revision: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        batch_size: int = 32,
        prefix: str | None = None,
        suffix: str = "",
        normalize_embeddings: bool | None = None,
        truncate_dim: int | None = None,
        progress_bar: bool = True,
        config_kwargs: dict[str, Any] | None = None,
        encode_kwargs: dict[str, Any] | None = None,
        quantization_ranges: list[list[float]] | None = None,
    ) -> None:
        """
        :param model: A hub id or a local checkpoint directory.
        :param recipe: A recipe name, a :class:`~simlm_haystack.Recipe` or its dict; found from the
            model when omitted (a recipe file beside the checkpoint, then the known hub ids).
        :param device: The device to run on; Haystack's default device when omitted.
        :param token: The Hugging Face token for private models.
        :param precision: ``"exact"`` (default): the fp32 reference forward, what training computes.
            ``"fast"``: the same maths with less work ([CLS] recipes compute the last layer for [CLS]
            only, ~1e-6 from exact) and bf16 autocast only where bf16 is native (AVX-512 BF16 / AMX
            CPUs, GPUs). ``"bf16"``: bf16 autocast everywhere; on CPUs without native bf16 (e.g. AMD
            Zen 3) it is several times slower than fp32. See BENCHMARKS.md, "Speed on a plain CPU".
            sentence-transformers' ``"float32"`` is ``"exact"``; its quantised precisions are refused.
        :param backend: ``"torch"`` (default) runs the model; ``"onnx"`` runs it exported once with
            PyTorch's dynamo exporter in ONNX Runtime (cached by the weights' fingerprint, checked
            against torch when loaded; ``precision="int8"`` quantises its weights); ``"openvino"`` runs
            the same graph in OpenVINO. Tokenising and pooling are the same code on every backend.
        :param local_files_only: Never ask the Hugging Face Hub.
        :param trust_remote_code: Allow a checkpoint's own code (off: only verified architectures).
        :param revision: A branch, tag or commit of the hub model.
        :param model_kwargs: Passed to ``AutoModel.from_pretrained``.
        :param tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``; a ``model_max_length``
            must be the recipe's query length.
        :param batch_size: Queries per forward pass where a caller encodes many at once (the evaluator's
            batched queries); ``run`` embeds one.
        :param prefix: sentence-transformers' prefix: accepted when it is the recipe's query prefix
            (the recipe applies it either way), refused otherwise.
        :param suffix: sentence-transformers' suffix: only ``""``.
        :param normalize_embeddings: sentence-transformers' normalisation: ``True`` only for a recipe
            that normalises; ``False``/``None`` add nothing to the model's own output.
        :param truncate_dim: sentence-transformers' truncation: only ``None``.
        :param progress_bar: Accepted for sentence-transformers' sake; a query shows no bar.
        :param config_kwargs: sentence-transformers' setting; ignored with a warning.
        :param encode_kwargs: sentence-transformers' setting; ignored with a warning.
        :param quantization_ranges: sentence-transformers' setting; ignored with a warning.
        """
        check_batch_size(batch_size)
        self._configure(
            model=model,
            recipe=recipe,
            device=device,
            token=token,
            precision=precision,
            backend=backend,
            local_files_only=local_files_only,
            trust_remote_code=trust_remote_code,
            revision=revision,
            model_kwargs=model_kwargs,
            tokenizer_kwargs=tokenizer_kwargs,
            prefix=prefix,
            suffix=suffix,
            normalize_embeddings=normalize_embeddings,
            truncate_dim=truncate_dim,
            ignored={
                "config_kwargs": config_kwargs,
                "encode_kwargs": encode_kwargs,
                "quantization_ranges": quantization_ranges,
            },
        )
        self.batch_size = batch_size

    def _init_parameters(self) -> dict[str, Any]:
        return {**DualEncoderComponentBase._init_parameters(self), "batch_size": self.batch_size}

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed one query.

        :param text: The query.
        :returns: ``{"embedding": [...]}``.
        """
        if not isinstance(text, str):
            raise TypeError(
                f"{type(self).__name__} expects a string, got {type(text).__name__}. "
                "To embed Documents, use DualEncoderDocumentEmbedder."
            )
        vector = self._warm_encoder().encode("query", [text], batch_size=1)[0]
        return {"embedding": vector.tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """Like :meth:`run`, in a worker thread so that the event loop stays free."""
        return await asyncio.to_thread(self.run, text)


register_short_type(DualEncoderTextEmbedder)
