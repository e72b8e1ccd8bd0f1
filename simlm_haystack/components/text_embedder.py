"""A Haystack component that embeds a query as the model was trained to read queries."""

from __future__ import annotations

import asyncio

from haystack import component

from simlm_haystack.components.base import DualEncoderComponentBase


@component
class DualEncoderTextEmbedder(DualEncoderComponentBase):
    """Embeds a query string with a dual encoder, exactly as its recipe says.

    ```python
    from simlm_haystack import DualEncoderTextEmbedder

    embedder = DualEncoderTextEmbedder(model="intfloat/simlm-base-msmarco-finetuned")
    embedding = embedder.run("what is the capital of France?")["embedding"]
    ```

    :param model: A hub id or a local checkpoint directory.
    :param recipe: A recipe name, a :class:`~simlm_haystack.Recipe` or its dict; found from the
        model when omitted (a recipe file beside the checkpoint, then the known hub ids).
    :param device: The device to run on; Haystack's default device when omitted.
    :param token: The Hugging Face token for private models.
    :param batch_size: Texts per forward pass.
    :param progress_bar: Unused for a single query; kept so both embedders take the same settings.
    :param precision: ``"exact"`` (default): the fp32 reference forward, what training computes.
        ``"fast"``: the same maths with less work ([CLS] recipes compute the last layer for [CLS]
        only, ~1e-6 from exact) and bf16 autocast only where bf16 is native (AVX-512 BF16 / AMX
        CPUs, GPUs). ``"bf16"``: bf16 autocast everywhere; on CPUs without native bf16 (e.g. AMD
        Zen 3) it is several times slower than fp32. See BENCHMARKS.md, "Speed on a plain CPU".
    :param local_files_only: Never ask the Hugging Face Hub.
    :param trust_remote_code: Allow a checkpoint's own code (off: only verified architectures).
    :param revision: A branch, tag or commit of the hub model.
    :param model_kwargs: Passed to ``AutoModel.from_pretrained``.
    :param tokenizer_kwargs: Passed to ``AutoTokenizer.from_pretrained``.
    """

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
