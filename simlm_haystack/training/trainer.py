"""A Hugging Face ``Trainer`` for dual encoders that reads texts exactly as the embedders do.

The collator tokenises through :func:`simlm_haystack.encoding.tokenize` and ``compute_loss``
embeds through :func:`simlm_haystack.encoding.embed_features`, with the model's recipe; one shared
encoder reads queries and passages (SimLM, TAS-B). Everything else (optimiser, warm-up and linear
decay, gradient accumulation, bf16 autocast, checkpoints, resuming, several GPUs, the evaluation
loop and best-checkpoint selection) is the Trainer's; retrieval metrics come from a
:class:`~simlm_haystack.training.evaluator.RetrievalEvaluator` merged into its evaluation loop, as
sentence-transformers merges its evaluators.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import broadcast_object_list
from torch import nn
from torch.utils.data import DataLoader
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, Trainer, set_seed
from transformers.trainer_utils import EvalLoopOutput, get_last_checkpoint

from simlm_haystack.encoding import DualEncoder, check_trainable, embed_features
from simlm_haystack.errors import NonFiniteLossError
from simlm_haystack.models import LoadedModel, local_model_path
from simlm_haystack.pooling import training_scores_vectors
from simlm_haystack.recipe_resolution import resolve_recipe
from simlm_haystack.recipes import Recipe
from simlm_haystack.st_checkpoint.writing import save_sentence_transformers_config
from simlm_haystack.training.arguments import DualEncoderTrainingArguments
from simlm_haystack.training.collator import DualEncoderCollator
from simlm_haystack.training.data import TrainingDataset, TrainingExample, check_examples
from simlm_haystack.training.distributed import gather_batch
from simlm_haystack.training.gradcache import gradcache_loss
from simlm_haystack.training.losses import LossOptions, build_loss
from simlm_haystack.training.samplers import ShuffledBatchSampler, TasBalancedBatchSampler

#: Metrics of an encoder, e.g. a :class:`~simlm_haystack.training.evaluator.RetrievalEvaluator`.
Evaluator = Callable[[DualEncoder], dict[str, float]]


class BatchSamplerTrainer(Trainer):
    """A Trainer whose training batches are drawn whole by ``self.train_sampler`` (in-batch negatives
    need the sampler to choose who shares a batch: TAS-B's balanced topics, distinct passages)."""

    train_sampler: Any

    def get_train_dataloader(self) -> DataLoader:
        loader = DataLoader(
            self.train_dataset,
            batch_sampler=self.train_sampler,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)


class DualEncoderTrainer(BatchSamplerTrainer):
    """``Trainer`` with a contrastive / distillation ``compute_loss``, a batch sampler that picks each
    query's passages, an evaluator's metrics in the evaluation loop and the recipe saved with every
    checkpoint.

    :param recipe: How the model reads queries and passages (saved beside each checkpoint).
    :param loss: A loss from :mod:`simlm_haystack.training.losses`.
    :param train_sampler: Yields batches of :class:`~simlm_haystack.training.data.Draw`.
    :param evaluator: Called with the model being trained (a :class:`~simlm_haystack.encoding.DualEncoder`
        around it) at each evaluation; its metrics are logged with the ``eval_`` prefix, so that
        ``metric_for_best_model="nDCG@10"`` selects the best checkpoint. It is the only evaluation
        unless an ``eval_dataset`` is given too.
    """

    def __init__(
        self,
        *args: Any,
        recipe: Recipe,
        loss: nn.Module,
        train_sampler: ShuffledBatchSampler,
        evaluator: Evaluator | None = None,
        **kwargs: Any,
    ) -> None:
        self.evaluator = evaluator
        # The Trainer insists on an eval_dataset when eval_strategy is set; the evaluator is the evaluation.
        placeholder = kwargs.get("eval_dataset") is None and evaluator is not None
        if placeholder:
            kwargs["eval_dataset"] = "evaluator"
        super().__init__(*args, **kwargs)
        if placeholder:
            self.eval_dataset = None
        self.recipe = recipe
        self.loss = loss
        self.train_sampler = train_sampler

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        if eval_dataset is None and self.eval_dataset is None and self.evaluator is not None:
            return DataLoader([])  # the Trainer's loop has nothing to do; evaluation_loop adds the evaluator's
        return super().get_eval_dataloader(eval_dataset)

    def _embed(self, model: nn.Module, features: dict[str, torch.Tensor]) -> torch.Tensor:
        vectors = embed_features(model, features, self.recipe).float()  # type: ignore[arg-type]
        return training_scores_vectors(vectors, self.recipe)

    def _loss_on_embeddings(
        self, query_embeddings: torch.Tensor, passage_embeddings: torch.Tensor, teacher_scores: torch.Tensor | None
    ) -> torch.Tensor:
        """The loss of this process's batch or, gathered across processes, of the global batch."""
        if self.args.gather_across_devices and self.args.world_size > 1:
            query_embeddings, passage_embeddings, teacher_scores = gather_batch(
                query_embeddings, passage_embeddings, teacher_scores
            )
        return self.loss(query_embeddings, passage_embeddings, teacher_scores)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        teacher_scores = inputs.get("teacher_scores")
        chunk_size = self.args.gradcache_chunk_size
        if chunk_size:
            loss = gradcache_loss(
                lambda features: self._embed(model, features),
                self._loss_on_embeddings,
                inputs["query"],
                inputs["passage"],
                teacher_scores,
                chunk_size,
            )
        else:
            query_embeddings = self._embed(model, inputs["query"])
            loss = self._loss_on_embeddings(query_embeddings, self._embed(model, inputs["passage"]), teacher_scores)
        if not torch.isfinite(loss.detach()).all():
            # Stop before the optimiser step, so the weights and every checkpoint written so far stay good.
            raise NonFiniteLossError(self._non_finite_message(loss, inputs.get("queries") or []))
        return (loss, None) if return_outputs else loss

    def _non_finite_message(self, loss: torch.Tensor, queries: Sequence[str]) -> str:
        last = get_last_checkpoint(self.args.output_dir) if Path(self.args.output_dir).is_dir() else None
        first = f", first query {queries[0][:80]!r}" if queries else ""
        return (
            f"Training stopped: the loss is {loss.item()} at step {self.state.global_step + 1} "
            f"(a batch of {len(queries)} queries{first}). The last good checkpoint is "
            f"{last or 'none (no checkpoint was written yet)'}: resume from it (resume_from_checkpoint / --resume) "
            "with a lower learning rate, or without bf16/fp16 if it overflowed."
        )

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        """Weights, config and tokenizer (the Trainer's), the recipe beside them for the embedders, and the
        sentence-transformers configuration of that recipe (so that sentence-transformers loads it too)."""
        super()._save(output_dir, state_dict)
        if self.args.should_save:
            directory = output_dir or self.args.output_dir
            self.recipe.save(directory)
            hidden_size = int(self.accelerator.unwrap_model(self.model).config.hidden_size)
            save_sentence_transformers_config(directory, self.recipe, hidden_size=hidden_size)

    def evaluation_loop(
        self,
        dataloader: DataLoader,
        description: str,
        prediction_loss_only: bool | None = None,
        ignore_keys: list[str] | None = None,
        metric_key_prefix: str = "eval",
    ) -> EvalLoopOutput:
        """The Trainer's loop (over an ``eval_dataset`` if there is one), then the evaluator's metrics,
        prefixed like the Trainer's (``eval_nDCG@10``). The evaluator runs on the main process; the
        others receive its metrics."""
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.evaluator is None:
            return output
        metrics = self.evaluator(self._encoder_in_training()) if self.is_world_process_zero() else {}
        metrics = broadcast_object_list([metrics])[0]
        output.metrics.update({f"{metric_key_prefix}_{name}": value for name, value in metrics.items()})
        return output

    def _encoder_in_training(self) -> DualEncoder:
        """The weights being trained, read through the recipe (no copy)."""
        model = self.accelerator.unwrap_model(self.model)
        source = getattr(model.config, "_name_or_path", "") or self.args.output_dir
        loaded = LoadedModel(model, self.processing_class, source)  # type: ignore[arg-type]
        return DualEncoder(loaded, self.recipe, precision="bf16" if self.args.bf16 else "exact")


def load_trainable(model: str | Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A fresh, unshared copy of the weights (``load_model`` shares one copy between components;
    training that one would change what they serve)."""
    source = local_model_path(model)
    return AutoModel.from_pretrained(source), AutoTokenizer.from_pretrained(source)


def build_trainer(
    model: str | Path,
    examples: Sequence[TrainingExample],
    args: DualEncoderTrainingArguments,
    *,
    recipe: str | Recipe | None = None,
    evaluator: Evaluator | None = None,
) -> DualEncoderTrainer:
    """Everything wired: model, tokenizer, recipe, loss, sampler, collator. Call ``.train()`` on it.

    The data is checked against what the loss and sampler need before any step is taken.
    """
    recipe = resolve_recipe(model, recipe)
    check_trainable(recipe)
    # Seeded before loading: weights the checkpoint lacks (an unused pooler) are initialised the same every run.
    set_seed(args.seed)
    network, tokenizer = load_trainable(model)
    options = LossOptions(
        temperature=args.temperature or recipe.temperature,
        kl_contrastive_weight=args.kl_contrastive_weight,
        pair_alpha=args.pair_alpha,
    )
    loss = build_loss(args.loss, options)
    check_examples(examples, n_negatives=args.n_negatives, needs_teacher_scores=loss.needs_teacher_scores)
    encoder = DualEncoder(LoadedModel(network, tokenizer, str(model)), recipe)
    sampler: ShuffledBatchSampler
    if args.tas_clusters:
        # TAS clusters the queries once, with the model as it is before training.
        query_embeddings = encoder.encode("query", [e.query for e in examples], batch_size=64)
        sampler = TasBalancedBatchSampler(
            examples,
            args.per_device_train_batch_size,
            query_embeddings,
            n_clusters=args.tas_clusters,
            n_negatives=args.n_negatives,
            n_margin_bins=args.margin_bins,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
    else:
        sampler = ShuffledBatchSampler(
            examples,
            args.per_device_train_batch_size,
            n_negatives=args.n_negatives,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )
    return DualEncoderTrainer(
        model=network,
        args=args,
        train_dataset=TrainingDataset(examples),
        data_collator=DualEncoderCollator(tokenizer, recipe, encoder.input_names),
        processing_class=tokenizer,
        recipe=recipe,
        loss=loss,
        train_sampler=sampler,
        evaluator=evaluator,
    )


def train(
    model: str | Path,
    examples: Sequence[TrainingExample],
    args: DualEncoderTrainingArguments,
    *,
    recipe: str | Recipe | None = None,
    evaluator: Evaluator | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> DualEncoderTrainer:
    """Train, then save the final (or, with ``load_best_model_at_end``, the best) model, its tokenizer
    and its recipe in ``args.output_dir``: loadable by ``AutoModel`` and by our embedders."""
    trainer = build_trainer(model, examples, args, recipe=recipe, evaluator=evaluator)
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model(args.output_dir)
    return trainer
