"""The Hugging Face ``Trainer`` under both pre-training methods, and the wiring from a checkpoint to it.

The Trainer does the optimiser, warm-up and decay, gradient accumulation, autocast, checkpoints,
resuming and several GPUs (``torchrun``). What is ours: batches drawn by
:class:`~simlm_haystack.pretraining.corpus.PassageBatchSampler`, the loss the model returns, and
saving. Every save writes the *encoder alone* (as its base class: ``AutoModel`` and the embedders
load it), its tokenizer and the recipe file; checkpoints add ``pretraining_heads.safetensors`` (the
masked-LM head and the decoder), which resuming needs and the final output does not.
"""

from __future__ import annotations

import dataclasses
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn
from transformers import TrainerCallback, set_seed
from transformers.trainer_utils import get_last_checkpoint

from simlm_haystack.encoding import check_trainable
from simlm_haystack.errors import DataError, NonFiniteLossError
from simlm_haystack.pretraining.arguments import PretrainingArguments
from simlm_haystack.pretraining.backbone import input_names, load_masked_lm, weights_beside_base
from simlm_haystack.pretraining.corpus import CorpusPassage, DrawDataset, PassageBatchSampler
from simlm_haystack.pretraining.generator import CORPUS, load_generator
from simlm_haystack.pretraining.masking import ReplacedLMCollator, WholeWordMasker
from simlm_haystack.pretraining.mlm import AllMaskCollator, MaskedLanguageModel
from simlm_haystack.pretraining.pairs import PseudoQueryPair
from simlm_haystack.pretraining.query_as_context import QueryAsContextCollator, QueryAsContextModel
from simlm_haystack.pretraining.rlm import ReplacedLanguageModel
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.writing import save_sentence_transformers_config
from simlm_haystack.training.trainer import BatchSamplerTrainer

HEADS_FILE = "pretraining_heads.safetensors"
GENERATOR_DIRECTORY = "generator"  # --generator corpus: the generator trained first
WEIGHTS_FILE = "model.safetensors"


def head_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Trained parameters outside the encoder proper (masked-LM head, decoder); tied ones count as the encoder's."""
    encoder = {id(parameter) for parameter in model.backbone.base.parameters()}
    return {
        name: parameter
        for name, parameter in model.named_parameters()
        if id(parameter) not in encoder and parameter.requires_grad
    }


class PretrainingTrainer(BatchSamplerTrainer):
    """``Trainer`` whose model returns ``{"loss", <parts>}``; the parts are logged, averaged over each logging window.

    :param recipe: Saved beside every checkpoint and the output.
    :param train_sampler: Yields batches of :class:`~simlm_haystack.pretraining.corpus.PassageDraw`.
    :param extra_encoder_weights: Saved with the encoder, unchanged (see
        :func:`~simlm_haystack.pretraining.backbone.weights_beside_base`).
    """

    def __init__(
        self,
        *args: Any,
        recipe: Recipe,
        train_sampler: PassageBatchSampler,
        extra_encoder_weights: dict[str, torch.Tensor] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.recipe = recipe
        self.train_sampler = train_sampler
        self.extra_encoder_weights = extra_encoder_weights or {}
        self._parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        self._in_checkpoint = False

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(**inputs)
        loss = outputs["loss"]
        if not torch.isfinite(loss.detach()).all():
            # Stop before the optimiser step, so the weights and every checkpoint written so far stay good.
            raise NonFiniteLossError(self._non_finite_message(loss))
        if model.training:
            for name, value in outputs.items():
                if name != "loss":
                    self._parts[name].append(value.detach().float())
        return (loss, outputs) if return_outputs else loss

    def _non_finite_message(self, loss: torch.Tensor) -> str:
        last = get_last_checkpoint(self.args.output_dir) if Path(self.args.output_dir).is_dir() else None
        return (
            f"Pre-training stopped: the loss is {loss.item()} at step {self.state.global_step + 1}. The last good "
            f"checkpoint is {last or 'none (no checkpoint was written yet)'}: resume from it (--resume) with a lower "
            "learning rate, or without bf16/fp16 if it overflowed."
        )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            for name, values in self._parts.items():
                logs[name] = round(torch.stack(values).mean().item(), 4)
            self._parts.clear()
        super().log(logs, start_time)

    # ---- saving and resuming ----

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        self._in_checkpoint = True
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self._in_checkpoint = False

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """The encoder (its base class, as ``AutoModel`` loads it), tokenizer and recipe; heads in checkpoints."""
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        model = self.accelerator.unwrap_model(self.model)
        base = model.backbone.base
        base.save_pretrained(output_dir, state_dict={**base.state_dict(), **self.extra_encoder_weights})
        self.processing_class.save_pretrained(output_dir)
        self.recipe.save(output_dir)
        save_sentence_transformers_config(output_dir, self.recipe, hidden_size=int(base.config.hidden_size))
        if self._in_checkpoint:
            heads = {name: p.detach().cpu().contiguous() for name, p in head_parameters(model).items()}
            safetensors.torch.save_file(heads, os.path.join(output_dir, HEADS_FILE), metadata={"format": "pt"})

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        model = self.accelerator.unwrap_model(model or self.model)
        checkpoint = Path(resume_from_checkpoint)
        if not (checkpoint / WEIGHTS_FILE).is_file() or not (checkpoint / HEADS_FILE).is_file():
            raise DataError(f"{checkpoint} is not a pre-training checkpoint (no {WEIGHTS_FILE} and {HEADS_FILE})")
        encoder_state = safetensors.torch.load_file(checkpoint / WEIGHTS_FILE)
        for name in self.extra_encoder_weights:
            encoder_state.pop(name, None)
        model.backbone.base.load_state_dict(encoder_state, strict=True)
        heads = safetensors.torch.load_file(checkpoint / HEADS_FILE)
        parameters = head_parameters(model)
        if heads.keys() != parameters.keys():
            raise DataError(
                f"{checkpoint / HEADS_FILE} was written by another pre-training set-up "
                f"(it has {sorted(heads)[:3]}..., this model needs {sorted(parameters)[:3]}...)"
            )
        with torch.no_grad():
            for name, tensor in heads.items():
                parameters[name].copy_(tensor)

    def save_encoder(self, output_dir: str | Path | None = None) -> None:
        """The final output: encoder, tokenizer and recipe only."""
        self.save_model(str(output_dir) if output_dir is not None else None)


def train_generator(
    model: str | Path, args: PretrainingArguments, passages: Sequence[CorpusPassage], recipe: Recipe
) -> str:
    """The offline fallback generator: the encoder's first ``args.generator_layers`` layers, trained with
    whole-word masks on the corpus for ``args.generator_steps`` steps, saved (with its head) in
    ``OUTPUT/generator``. Trained once: a directory already there is used as it is."""
    directory = Path(args.output_dir) / GENERATOR_DIRECTORY
    if (directory / "config.json").is_file():
        return str(directory)
    set_seed(args.seed)
    masked_lm, tokenizer = load_masked_lm(model, num_hidden_layers=args.generator_layers)
    masker = WholeWordMasker(tokenizer, recipe, input_names(masked_lm.base_model, tokenizer))
    stage = dataclasses.replace(
        args, output_dir=str(directory / "training"), max_steps=args.generator_steps, save_strategy="no"
    )
    trainer = PretrainingTrainer(
        model=MaskedLanguageModel(masked_lm),
        args=stage,
        train_dataset=DrawDataset(passages),
        data_collator=AllMaskCollator(masker, mask_rate=args.encoder_mask_rate),
        processing_class=tokenizer,
        recipe=recipe,
        train_sampler=PassageBatchSampler(len(passages), args.per_device_train_batch_size, seed=args.seed + 1),
    )
    trainer.train()
    if args.should_save:
        masked_lm.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
    trainer.accelerator.wait_for_everyone()
    return str(directory)


def build_pretrainer(
    model: str | Path,
    args: PretrainingArguments,
    *,
    passages: Sequence[CorpusPassage] | None = None,
    pairs: Sequence[PseudoQueryPair] | None = None,
    recipe: str | Recipe | None = None,
) -> PretrainingTrainer:
    """Everything wired for ``args.method``: SimLM reads ``passages``, query-as-context reads ``pairs`` (any
    :class:`~simlm_haystack.pretraining.pairs.PseudoQueryPair`). ``args.freeze_embeddings`` and
    ``args.freeze_layers`` leave those parts of the encoder as they are.

    The data, the generator and the model are checked here, before any step is taken.
    """
    recipe = resolve_recipe(model, recipe)
    check_trainable(recipe)
    set_seed(args.seed)  # before loading: a head the checkpoint lacks is initialised the same every run
    masked_lm, tokenizer = load_masked_lm(model)
    masker = WholeWordMasker(tokenizer, recipe, input_names(masked_lm.base_model, tokenizer))
    items: Sequence[Any]
    if args.method == "simlm":
        if not passages:
            raise DataError("SimLM pre-training needs a corpus (passages)")
        vocab_size = int(masked_lm.config.vocab_size)
        spec = train_generator(model, args, passages, recipe) if args.generator == CORPUS else args.generator
        generator = load_generator(spec, tokenizer, vocab_size, recipe=recipe, passages=passages)
        network: nn.Module = ReplacedLanguageModel(masked_lm, generator, decoder_layers=args.decoder_layers or 2)
        collator: Any = ReplacedLMCollator(
            masker, encoder_mask_rate=args.encoder_mask_rate, decoder_mask_rate=args.decoder_mask_rate
        )
        items = passages
    else:
        if not pairs:
            raise DataError("Query-as-context pre-training needs (passage, query) pairs")
        network = QueryAsContextModel(
            masked_lm,
            recipe,
            variant=args.qc_variant,
            temperature=args.temperature,
            decoder_layers=args.decoder_layers or 1,
            attention_window=args.attention_window,
            gradcache_chunk_size=args.gradcache_chunk_size,
        )
        collator = QueryAsContextCollator(masker, variant=args.qc_variant, mask_rate=float(args.qc_mask_rate))
        items = pairs
    network.backbone.freeze(embeddings=args.freeze_embeddings, layers=args.freeze_layers)
    sampler = PassageBatchSampler(
        len(items),
        args.per_device_train_batch_size,
        seed=args.data_seed if args.data_seed is not None else args.seed,
        drop_last=args.dataloader_drop_last,
    )
    return PretrainingTrainer(
        model=network,
        args=args,
        train_dataset=DrawDataset(items),
        data_collator=collator,
        processing_class=tokenizer,
        recipe=recipe,
        train_sampler=sampler,
        extra_encoder_weights=weights_beside_base(model, masked_lm),
    )


def pretrain(
    model: str | Path,
    args: PretrainingArguments,
    *,
    passages: Sequence[CorpusPassage] | None = None,
    pairs: Sequence[PseudoQueryPair] | None = None,
    recipe: str | Recipe | None = None,
    resume_from_checkpoint: str | bool | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> PretrainingTrainer:
    """Pre-train, then write the encoder, its tokenizer and its recipe in ``args.output_dir``
    (loadable by ``AutoModel``, the embedders, and the fine-tuning trainer). ``callbacks`` are added to
    the Trainer's (a wall-clock budget, a progress report)."""
    trainer = build_pretrainer(model, args, passages=passages, pairs=pairs, recipe=recipe)
    for callback in callbacks:
        trainer.add_callback(callback)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_encoder(args.output_dir)
    return trainer
